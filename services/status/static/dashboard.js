// Live dashboard: status buttons, a heartbeat, and a poll of /dashboard/state every 2 s.
"use strict";
const LABELS = { chat: ["💬", "Chat"], sms: ["📱", "SMS"], email: ["✉️", "Email"] };
const HEADERS = { "X-Requested-With": "refdesk", "Content-Type": "application/json" };
const staffId = document.getElementById("me").dataset.staffId;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function renderStatus(me) {
  const span = document.getElementById("my-status");
  span.textContent = me.status;
  span.className = "status-" + me.status.toLowerCase();
}

function renderOnline(online) {
  const list = document.getElementById("online");
  list.replaceChildren();
  const departments = Object.keys(online).sort();
  if (!departments.length) list.append(el("li", "Nobody is online.", "empty"));
  for (const department of departments) {
    const item = el("li");
    item.append(el("strong", department), ": ");
    online[department].forEach((p, i) => {
      if (i) item.append(", ");
      item.append(el("span", `${p.name} (${p.status})`, "status-" + p.status.toLowerCase()));
    });
    list.append(item);
  }
}

function renderQueue(rows) {
  const body = document.querySelector("#queue tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = el("tr", undefined, [row.crisis ? "crisis" : "", row.overnight ? "overnight" : ""].join(" ").trim());
    tr.dataset.conversationId = row.conversation_id;
    const [icon, label] = LABELS[row.channel] || ["", row.channel];
    const channel = el("td", undefined, "channel channel-" + row.channel);
    const iconSpan = el("span", icon);
    iconSpan.setAttribute("aria-hidden", "true");
    channel.append(iconSpan, " " + label);
    const id = el("td", row.conversation_id);
    if (row.overnight) id.append(" ", el("span", "Overnight", "tag"));
    if (row.crisis) id.append(" ", el("span", "Crisis", "tag"));
    tr.append(channel, id, el("td", row.department || "unrouted"), el("td", row.priority),
              el("td", row.age_s + " s"), el("td", row.assignee || ""));
    body.append(tr);
  }
}

async function refresh() {
  try {
    const response = await fetch("/dashboard/state", { credentials: "same-origin" });
    if (response.status === 401) { window.location.reload(); return; }
    if (!response.ok) return;
    const state = await response.json();
    renderStatus(state.me);
    renderOnline(state.online);
    renderQueue(state.queue);
  } catch (err) { /* the next poll retries */ }
}

async function setStatus(status) {
  const message = document.getElementById("message");
  const response = await fetch(`/staff/${encodeURIComponent(staffId)}/status`, {
    method: "PUT", credentials: "same-origin", headers: HEADERS, body: JSON.stringify({ status }),
  });
  if (response.ok) { renderStatus(await response.json()); message.textContent = ""; }
  else { message.textContent = "Could not change status (" + response.status + ")."; }
}

async function heartbeat() {
  await fetch("/shift/heartbeat", { method: "POST", credentials: "same-origin", headers: HEADERS })
    .catch(() => undefined);
}

document.querySelectorAll(".set-status").forEach((button) =>
  button.addEventListener("click", () => setStatus(button.dataset.status)));
setInterval(refresh, 2000);
setInterval(heartbeat, 30000);
heartbeat();
