// Live updates and navigation for the console (console.js): server-sent events bring the
// changed queue rows (or have them fetched) and refresh the open conversation; links open
// conversations in the pane, the filters and search reload the queue, and Back and Forward
// work.
"use strict";
(() => {
  const Desk = window.Desk;
  const shell = document.querySelector(".console");
  const form = document.getElementById("queue-form");

  // Live updates: one event per change, with the conversation's queue row when the server
  // rendered it (null: it left the queue). The unfiltered queue places those rows as they
  // come. What else changed within a window (a filtered queue, a search, an event without a
  // row) is one row fetch per conversation; more than BURST of them are one reload of the
  // queue instead, and while such bursts go on the window widens to BUSY_MS.
  const QUIET_MS = 150;
  const BUSY_MS = 1000;
  const BURST = 8;
  const pending = new Map(); // conversation id -> its row's markup, null, or undefined: fetch
  let flushTimer = null;
  let windowMs = QUIET_MS;

  const LEFT = "left"; // the conversation moved where this page may not see it
  function changed(data) {
    pending.set(data.conversation_id, data.what === LEFT ? LEFT : data.row);
    if (!flushTimer) flushTimer = window.setTimeout(flush, windowMs);
  }

  function flush() {
    flushTimer = null;
    const changes = Array.from(pending);
    pending.clear();
    const filtered = Desk.filtered();
    const fetch = [];
    const placed = [];
    for (const [id, markup] of changes) {
      if (markup === LEFT) { placed.push([null, Desk.placeRow(id, null, true)]); continue; }
      if (filtered || markup === undefined) { fetch.push(id); continue; }
      const row = markup === null ? null : Desk.rowFrom(markup);
      placed.push([row, Desk.placeRow(id, row)]);
    }
    Desk.announceChanges(placed);
    windowMs = fetch.length > BURST ? BUSY_MS : QUIET_MS;
    if (fetch.length > BURST) reloadForBurst().catch(() => undefined);
    else for (const id of fetch) Desk.refreshRow(id).catch(() => undefined);
    if (changes.some(([id]) => id === Desk.openId())) Desk.refreshConversation();
  }

  async function reloadForBurst() {
    const before = new Set(Desk.rows().map((r) => r.dataset.conversationId));
    await Desk.loadQueue();
    Desk.announceArrivals(Desk.rows().filter((r) => !before.has(r.dataset.conversationId)));
  }

  // The stream: on an error the browser reconnects by itself, except after an answer that is
  // not a stream (a gateway's 502 while the service restarts): then this page opens a new one,
  // less often the longer the desk stays away. Either way the banner says so meanwhile.
  let connected = false;
  let retryMs = 2000;
  function listen() {
    if (!window.EventSource) { window.setInterval(() => Desk.loadQueue().catch(() => undefined), 5000); return; }
    const source = new EventSource("/console/events");
    source.addEventListener("ready", () => {
      // Subscribed from here on: reload once, so a change applied between the page's first
      // render (or a dropped connection) and this subscription is not missed.
      Desk.loadQueue().catch(() => undefined);
      if (connected) Desk.refreshConversation();
      connected = true;
      retryMs = 2000;
      shell.dataset.live = "on";
      Desk.connection("stream", true);
    });
    source.addEventListener("conversation", (event) => {
      try { changed(JSON.parse(event.data)); } catch (e) { /* a malformed event */ }
    });
    source.addEventListener("reload", () => { Desk.loadQueue().catch(() => undefined); Desk.refreshConversation(); });
    source.addEventListener("error", () => {
      shell.dataset.live = "off";
      Desk.connection("stream", false);
      if (source.readyState !== EventSource.CLOSED) return;
      window.setTimeout(listen, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    });
    // the session ended elsewhere (signed out in another tab, token revoked): back to sign-in
    source.addEventListener("ended", () => { source.close(); window.location.assign("/dashboard"); });
  }

  // Navigation: links to conversations open in the pane; filters and search reload the queue.
  function conversationHref(anchor) {
    const match = anchor && anchor.getAttribute("href").match(/^\/dashboard\/c\/([^?#]+)/);
    return match ? decodeURIComponent(match[1]) : null;
  }

  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    // the narrow layout's way from the open conversation (above the queue) to the queue
    if (event.target.closest("a.back-to-queue")) {
      event.preventDefault();
      Desk.closeConversation({ push: true, focus: true });
      return;
    }
    const anchor = event.target.closest("a[href^='/dashboard/c/']");
    const row = !anchor && event.target.closest("#queue tbody tr");
    const cid = anchor ? conversationHref(anchor) : row ? row.dataset.conversationId : null;
    if (!cid) return;
    event.preventDefault();
    Desk.openConversation(cid);
  });

  form.addEventListener("change", (event) => {
    if (event.target.closest(".filters")) Desk.loadQueue({ say: true }).catch(() => undefined);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    Desk.loadQueue({ push: true, say: true }).catch(() => undefined);
  });
  document.getElementById("clear-search").addEventListener("click", (event) => {
    event.preventDefault();
    form.reset();
    for (const input of form.querySelectorAll("input")) {
      if (input.type === "checkbox") input.checked = false; else input.value = "";
    }
    for (const select of form.querySelectorAll("select")) select.value = "";
    Desk.loadQueue({ push: true, say: true }).catch(() => undefined);
  });
  window.addEventListener("popstate", () => {
    const params = new URLSearchParams(window.location.search);
    for (const input of form.querySelectorAll("input, select")) {
      if (input.type === "checkbox") input.checked = params.get(input.name) === "1";
      else input.value = params.get(input.name) || "";
    }
    const match = window.location.pathname.match(/^\/dashboard\/c\/(.+)$/);
    Desk.loadQueue().catch(() => undefined);
    if (match) Desk.openConversation(decodeURIComponent(match[1]), { push: false });
    else Desk.closeConversation();
  });

  listen();
  // waiting times move on: the queue's and the open conversation's ("Waiting 1 h 4 min")
  window.setInterval(() => {
    Desk.refreshWaiting().catch(() => undefined);
    Desk.refreshConversation();
  }, 60000);
})();
