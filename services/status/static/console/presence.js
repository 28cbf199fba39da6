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
      message.textContent = `Could not change your status: ${err.message}`;
    }
  }

  async function poll() {
    try {
      const response = await fetch("/dashboard/state", { credentials: "same-origin" });
      if (response.status === 401) { window.location.reload(); return; }
      if (!response.ok) return;
      const state = await response.json();
      renderStatus(state.me.status);
      renderOnline(state.online);
    } catch (err) { /* the next poll retries */ }
  }

  function heartbeat() {
    window.Desk.request("POST", "/shift/heartbeat").catch(() => undefined);
  }

  for (const button of me.querySelectorAll(".set-status")) {
    button.addEventListener("click", () => setStatus(button.dataset.status));
  }
  window.setInterval(poll, 10000); // colleagues' changes within ten seconds
  window.setInterval(heartbeat, 30000);
  heartbeat();
})();
