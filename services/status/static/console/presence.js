// My status (Online, Away, Offline), a heartbeat while the page is open, and Who's Online.
"use strict";
(() => {
  const me = document.getElementById("me");
  const staffId = me.dataset.staffId;
  const message = document.getElementById("message");

  function renderStatus(status) {
    const span = document.getElementById("my-status");
    span.textContent = status;
    span.className = `status status-${status.toLowerCase()}`;
    for (const button of me.querySelectorAll(".set-status")) {
      button.setAttribute("aria-pressed", String(button.dataset.status === status));
    }
  }

  function renderOnline(online) {
    const list = document.getElementById("online");
    list.replaceChildren();
    const departments = Object.keys(online).sort();
    if (!departments.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "Nobody is online.";
      list.append(li);
    }
    for (const department of departments) {
      const li = document.createElement("li");
      const strong = document.createElement("strong");
      strong.textContent = department;
      li.append(strong, ": ", online[department].map((p) => `${p.name} (${p.status})`).join(", "));
      list.append(li);
    }
  }

  async function setStatus(status) {
    try {
      const data = await window.Desk.request("PUT", `/staff/${encodeURIComponent(staffId)}/status`, { status });
      renderStatus(data.status);
      message.textContent = `Your status is ${data.status}.`;
      poll(); // Who's Online shows the change now, not at the next poll
    } catch (err) {
      const retry = err.unreachable ? ". Try again in a moment." : "";
      message.textContent = `Could not change your status: ${err.message}${retry}`;
    }
  }

  // The desk answers but its message broker does not: patrons' new messages wait with their
  // providers, and what staff do is saved and goes out once it is back (the outbox).
  const brokerBanner = document.getElementById("broker-banner");
  function brokerNotice(up) {
    if (!brokerBanner) return;
    if (up) { brokerBanner.replaceChildren(); return; }
    if (brokerBanner.textContent) return;  // said once, not again
    const strong = document.createElement("strong");
    strong.textContent = "New patron messages are delayed:";
    brokerBanner.replaceChildren(strong, " refdesk's message broker is not answering. Your replies and other actions are saved and go out once it is back; you need not send them again.");
  }

  async function poll() {
    try {
      const response = await fetch("/dashboard/state", { credentials: "same-origin" });
      if (response.status === 401) { window.location.reload(); return; }
      if (!response.ok) return;
      const state = await response.json();
      renderStatus(state.me.status);
      renderOnline(state.online);
      brokerNotice(state.broker !== false);
    } catch (err) { /* the next poll retries */ }
  }

  // The heartbeat keeps the librarian's shift alive, and tells the page whether the desk still
  // answers: one not answered within 10 s (a service that hangs, or is down) puts up the
  // banner, and is tried again every 10 s until it is answered.
  const BEAT_MS = 30000;
  const RETRY_MS = 10000;
  let beatTimer = null;
  async function heartbeat() {
    window.clearTimeout(beatTimer);
    let ok = true;
    try {
      await window.Desk.request("POST", "/shift/heartbeat", undefined, { timeoutMs: RETRY_MS });
    } catch (err) {
      ok = !err.unreachable;  // a refusal (4xx) is an answer: the desk is there
    }
    window.Desk.connection("desk", ok);
    beatTimer = window.setTimeout(heartbeat, ok ? BEAT_MS : RETRY_MS);
  }

  for (const button of me.querySelectorAll(".set-status")) {
    button.addEventListener("click", () => setStatus(button.dataset.status));
  }
  window.setInterval(poll, 10000); // colleagues' changes within ten seconds
  heartbeat();
})();
