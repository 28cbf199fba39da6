// The desk console: the queue and the open conversation are server-rendered fragments this
// script swaps in without losing focus, drafts or open dialogs. live.js feeds it server-sent
// events and navigation; actions.js makes the changes, through the JSON API.
"use strict";
window.Desk = (() => {
  const JSON_HEADERS = { "X-Requested-With": "refdesk", "Content-Type": "application/json" };
  const shell = document.querySelector(".console");
  const pane = document.getElementById("conversation-pane");
  const form = document.getElementById("queue-form");
  const announcer = document.getElementById("announcer");
  let openId = shell.dataset.openId || null;

  class Problem extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  // The desk did not answer: no connection (fetch's TypeError "Failed to fetch"), a request
  // given up on, or a gateway's 502/503/504 while the service is down or restarting. Said in
  // the desk's words, never the browser's; `unreachable` lets each caller add what to do.
  const UNREACHABLE = "the desk could not be reached";
  function unreachable(status = 0) {
    const problem = new Problem(status, UNREACHABLE);
    problem.unreachable = true;
    return problem;
  }
  const GATEWAY = new Set([502, 503, 504]);

  // Screen readers hear `text`: politely, or at once when `urgent` (a crisis). Announcements
  // within the same moment are said together, not the last one alone. While a dialog is open
  // (Transfer, Close, Convert) everything outside it is inert to assistive technology, the
  // page's live regions too: the dialog's own pair says it then (`regionsIn`).
  const urgentAnnouncer = document.getElementById("announcer-urgent");
  let queued = { polite: [], urgent: [] };
  let announceTimer = null;
  function regionsIn(dialog) {
    let polite = dialog.querySelector(":scope > .dialog-announcer");
    let urgent = dialog.querySelector(":scope > .dialog-announcer-urgent");
    if (!polite) {
      polite = document.createElement("div");
      polite.className = "sr-only dialog-announcer";
      polite.setAttribute("aria-live", "polite");
      polite.setAttribute("aria-atomic", "true");
      urgent = polite.cloneNode();
      urgent.className = "sr-only dialog-announcer-urgent";
      urgent.setAttribute("aria-live", "assertive");
      dialog.append(polite, urgent);
    }
    return { polite, urgent };
  }
  function liveRegions() {
    const modal = Array.from(document.querySelectorAll("dialog[open]")).find((d) => d.matches(":modal"));
    return modal ? regionsIn(modal) : { polite: announcer, urgent: urgentAnnouncer };
  }
  function announce(text, { urgent = false } = {}) {
    queued[urgent ? "urgent" : "polite"].push(text);
    if (announceTimer) return;
    const regions = liveRegions();
    regions.polite.textContent = "";
    if (regions.urgent) regions.urgent.textContent = "";
    announceTimer = window.setTimeout(() => {
      announceTimer = null;
      const { polite, urgent: now } = queued;
      queued = { polite: [], urgent: [] };
      const where = liveRegions();
      if (now.length && where.urgent) where.urgent.textContent = now.join(" ");
      else polite.unshift(...now);
      if (polite.length) where.polite.textContent = polite.join(" ");
    }, 60);
  }

  // In one column the page scrolls under the sticky bars (a crisis, live updates stopped):
  // what the page scrolls to, a focused control among it, stays below them however tall they
  // wrap at the librarian's zoom.
  const bars = document.querySelector(".desk-bars");
  if (bars && window.ResizeObserver) {
    new ResizeObserver(() => {
      const height = bars.getBoundingClientRect().height;
      document.documentElement.style.scrollPaddingTop = height ? `${Math.ceil(height) + 8}px` : "";
    }).observe(bars);
  }

  // A call to the JSON API. `timeoutMs`: give up (as unreachable) after that long; without
  // it the request waits as long as the browser does (a reply is never cancelled).
  async function request(method, url, body, { timeoutMs = 0 } = {}) {
    const init = { method, credentials: "same-origin", headers: JSON_HEADERS };
    if (body !== undefined) init.body = JSON.stringify(body);
    let timer = null;
    if (timeoutMs) {
      const controller = new AbortController();
      init.signal = controller.signal;
      timer = window.setTimeout(() => controller.abort(), timeoutMs);
    }
    let response, data = null;
    try {
      response = await fetch(url, init);
      if ((response.headers.get("content-type") || "").includes("json")) data = await response.json();
    } catch (err) {
      // no connection, aborted or timed out (while asking, or while reading the answer)
      if (!response || err.name === "AbortError" || err.name === "TypeError") throw unreachable();
      if (response.ok) throw err;  // a success the page cannot read is not a success
    } finally {
      if (timer) window.clearTimeout(timer);
    }
    if (response.status === 401) { window.location.reload(); throw new Problem(401, "Signed out"); }
    if (GATEWAY.has(response.status)) throw unreachable(response.status);
    if (!response.ok) {
      throw new Problem(response.status, (data && (data.detail || data.title)) || `Error ${response.status}`);
    }
    return data;
  }

  // The banner while live updates are off: the event stream dropped (`stream`), or the desk
  // stopped answering the heartbeat (`desk`: a service that hangs keeps its stream open and
  // silent). Shown after a short grace, so a page reload or a stream's own reconnect does not
  // flash it; gone as soon as both are back.
  const liveBanner = document.getElementById("live-banner");
  const linksDown = new Set();
  let bannerTimer = null;
  function connection(link, ok) {
    if (ok) linksDown.delete(link); else linksDown.add(link);
    if (!linksDown.size) {
      window.clearTimeout(bannerTimer);
      bannerTimer = null;
      showBanner(false);
    } else if (!bannerTimer && !(liveBanner && liveBanner.textContent)) {
      bannerTimer = window.setTimeout(() => { bannerTimer = null; showBanner(linksDown.size > 0); }, 1500);
    }
  }
  function showBanner(on) {
    if (!liveBanner) return;
    if (!on) { liveBanner.replaceChildren(); return; }
    const lead = "Live updates stopped: reconnecting.";
    const what = document.getElementById("conversation")
      ? "The queue and this conversation may be out of date." : "The queue may be out of date.";
    if (liveBanner.textContent === `${lead} ${what}`) return;  // said once, not again
    const strong = document.createElement("strong");
    strong.textContent = lead;
    liveBanner.replaceChildren(strong, ` ${what}`);
  }

  // The unsent reply of each conversation, kept in this tab's sessionStorage: a reload (or
  // the browser restoring the tab) brings it back; closing the tab forgets it. Kept per
  // librarian and forgotten at sign-out: on a shared desk computer the next one to sign in
  // in the tab found the last one's draft, patron details and all, in the reply box.
  const DRAFTS = "refdesk.draft.";
  const meSection = document.getElementById("me");
  const DRAFT_KEY = `${DRAFTS}${meSection ? meSection.dataset.staffId : ""}.`;
  function forgetDrafts(keep) {
    try {
      const keys = [];
      for (let i = 0; i < window.sessionStorage.length; i++) keys.push(window.sessionStorage.key(i));
      for (const key of keys) {
        if (key && key.startsWith(DRAFTS) && !(keep && key.startsWith(keep))) window.sessionStorage.removeItem(key);
      }
    } catch (e) { /* storage turned off: nothing kept */ }
  }
  forgetDrafts(DRAFT_KEY);  // another librarian's, left by a session that ended without sign-out
  const signOut = document.querySelector('form[action="/dashboard/logout"]');
  if (signOut) signOut.addEventListener("submit", () => forgetDrafts(null));
  const drafts = {
    save(cid, text, subject) {
      try {
        if (text.trim()) window.sessionStorage.setItem(DRAFT_KEY + cid, JSON.stringify({ text, subject }));
        else window.sessionStorage.removeItem(DRAFT_KEY + cid);
      } catch (e) { /* storage full or turned off: the draft lives only on the page */ }
    },
    load(cid) {
      try { return JSON.parse(window.sessionStorage.getItem(DRAFT_KEY + cid) || "null"); } catch (e) { return null; }
    },
    drop(cid) {
      try { window.sessionStorage.removeItem(DRAFT_KEY + cid); } catch (e) { /* as above */ }
    },
  };

  function parse(markup) {
    const template = document.createElement("template");
    template.innerHTML = markup;
    return template.content;
  }

  // A fragment, or a Problem; one the server explains in the page's words (a conversation
  // that cannot be opened) carries that markup as `fragment`.
  async function html(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.status === 401) { window.location.reload(); throw new Problem(401, "Signed out"); }
    if (response.status === 204) return null;
    if (!response.ok) {
      if ((response.headers.get("content-type") || "").includes("text/html")) {
        const fragment = parse(await response.text());
        const problem = new Problem(response.status, fragment.textContent.replace(/\s+/g, " ").trim());
        problem.fragment = fragment;
        throw problem;
      }
      let detail = `Error ${response.status}`;
      try { const data = await response.json(); detail = data.detail || data.title || detail; } catch (e) { /* not JSON */ }
      throw new Problem(response.status, detail);
    }
    return parse(await response.text());
  }

  function queueParams() {
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (String(value).trim()) params.set(key, value);
    return params;
  }

  function syncUrl(push) {
    const path = openId ? `/dashboard/c/${encodeURIComponent(openId)}` : "/dashboard";
    // a phone number or email, or words, searched for stay out of the address (and so out of
    // the browser's history on a shared desk computer, as out of the title): words can be a
    // patron's name or their own; the form keeps them for the page's reloads
    const params = queueParams();
    params.delete("contact");
    params.delete("q");
    const query = params.toString();
    const url = path + (query ? `?${query}` : "");
    if (url === window.location.pathname + window.location.search) return;
    if (push) window.history.pushState({ openId }, "", url);
    else window.history.replaceState({ openId }, "", url);
  }

  function markCurrent() {
    for (const row of document.querySelectorAll("#queue tbody tr")) {
      const current = row.dataset.conversationId === openId;
      row.classList.toggle("current", current);
      const link = row.querySelector("a.open-link");
      if (current) link.setAttribute("aria-current", "true"); else link.removeAttribute("aria-current");
    }
  }

  function rows() { return Array.from(document.querySelectorAll("#queue tbody tr")); }

  function updateSummary() {
    const summary = document.getElementById("queue-summary");
    const empty = document.getElementById("queue-empty");
    const all = rows().length;
    const pinnedRows = rows().filter((r) => r.dataset.pinned);
    const pinned = pinnedRows.length;
    const n = all - pinned;
    empty.hidden = n > 0;
    document.getElementById("queue").hidden = all === 0;
    const searching = Boolean(summary.dataset.searching);
    const filtered = queueParams().toString() ? " (filtered)" : "";
    // a page of a longer queue (the server's count at the last load, never below what is shown)
    const total = Math.max(Number(summary.dataset.all || 0), n);
    const of = total > n ? ` of ${total}` : "";
    const head = searching
      ? `Search: ${n}${of} conversation${total === 1 ? "" : "s"} found${of ? " shown" : ""}`
      : `${n}${of} open${filtered}${of ? " shown, most urgent first: filter or search for the rest" : ""}`;
    const crises = pinnedRows.every((r) => r.classList.contains("crisis"));
    const kinds = crises ? (pinned === 1 ? "crisis" : "crises")
      : (pinned === 1 ? "crisis or possible crisis" : "crises or possible crises");
    const kept = pinned ? `, and ${pinned} ${kinds} shown whatever the ${searching ? "search" : "filters"}` : "";
    summary.textContent = `${head}${kept}`;
    updateCrisisBar();
  }

  // The bar above the page while any crisis in the queue waits for acknowledgement: a sighted
  // librarian scrolled down the queue, zoomed in or reading a conversation had no sign of one.
  const crisisBar = document.getElementById("crisis-bar");
  function waitingCrises() {
    return rows().filter((r) => r.classList.contains("crisis") && r.dataset.attention);
  }
  function updateCrisisBar() {
    if (!crisisBar) return;
    const waiting = waitingCrises();
    crisisBar.hidden = waiting.length === 0;
    if (!waiting.length) return;
    const open = waiting.some((r) => r.dataset.conversationId === openId);
    document.getElementById("crisis-bar-text").textContent = waiting.length === 1
      ? "A crisis is waiting to be acknowledged."
      : `${waiting.length} crises are waiting to be acknowledged.`;
    document.getElementById("crisis-bar-open").hidden = open && waiting.length === 1;
    document.getElementById("crisis-bar-open").textContent = waiting.length === 1 ? "Open it" : "Open the oldest";
  }
  if (crisisBar) {
    document.getElementById("crisis-bar-open").addEventListener("click", () => {
      const first = waitingCrises()[0];
      if (first) openConversation(first.dataset.conversationId);
    });
  }

  async function loadQueue({ push = false, say = false } = {}) {
    let fragment;
    try { fragment = await html(`/dashboard/fragments/queue?${queueParams()}`); }
    catch (err) {
      // a search the desk cannot run (the From date after the To date): said above the queue;
      // the rows shown were the last search's, and nothing had said so
      if (err.status !== 400 && err.status !== 422) throw err;
      const summary = document.getElementById("queue-summary");
      summary.textContent = `Search not run: ${err.message}. The rows below are from before.`;
      syncUrl(push);
      if (say) announce(summary.textContent);
      return;
    }
    const focused = rows().find((r) => r.contains(document.activeElement));
    const ignored = showIgnored(fragment, { asked: push || say });
    document.getElementById("queue-body").replaceChildren(fragment);
    const again = focused && rows().find((r) => r.dataset.conversationId === focused.dataset.conversationId);
    if (again) again.querySelector("a.open-link").focus();
    document.getElementById("clear-search").hidden = !queueParams().toString();
    markCurrent();
    updateCrisisBar();
    syncUrl(push);
    if (say) announce([ignored, document.getElementById("queue-summary").textContent.trim()].join(" ").trim());
  }

  // What of the search the desk ignored or mended (a From date after the To date: it searched
  // from the earlier to the later) is said above the queue, as on a page load; a search the
  // librarian runs clears what an earlier one had said. The sentences, for announcing.
  function showIgnored(fragment, { asked }) {
    const fresh = fragment.querySelector(".ignored-now");
    let box = document.getElementById("queue-ignored");
    if (!fresh) {
      if (box && asked) box.remove();
      return "";
    }
    fresh.remove();
    if (!box) {
      box = document.createElement("div");
      box.id = "queue-ignored";
      document.getElementById("queue-body").before(box);
    }
    box.replaceChildren(...fresh.children);
    return box.textContent.trim();
  }

  async function refreshRow(cid) {
    const fresh = await html(`/dashboard/fragments/row/${encodeURIComponent(cid)}?${queueParams()}`);
    const row = fresh && fresh.querySelector("tr");
    announceChanges([[row, placeRow(cid, row)]]);
  }

  function rowFrom(markup) {
    const template = document.createElement("template");
    template.innerHTML = markup;
    return template.content.querySelector("tr");
  }

  const FLAGGED = ".flag-crisis, .flag-review";
  const myName = (document.querySelector("#me .me-name strong") || {}).textContent || "";

  // Puts a conversation's fresh queue row in its place, or takes it out (row null: it left the
  // queue). What the change was, for announcing: "new" (a row new to the queue), "flagged" (a
  // row that became a crisis or a possible crisis), "mine" (a new patron message in a
  // conversation the librarian has), or null. A search shows only what it found, and every
  // crisis nobody has acknowledged (pinned): such a crisis joins the results as it arrives.
  // `gone`: the caller may no longer see the conversation (moved out of their sight): its row
  // goes from search results too, which otherwise keep closed conversations they matched.
  function placeRow(cid, row, gone = false) {
    const body = document.querySelector("#queue tbody");
    const searching = document.getElementById("queue").dataset.search === "1";
    const old = rows().find((r) => r.dataset.conversationId === cid);
    const hadFocus = old && old.contains(document.activeElement);
    if (!row) { if (old && (gone || !searching)) old.remove(); updateSummary(); return null; }
    if (!old && searching) {
      if (!row.dataset.attention) return null;
      pin(row);
    }
    const dept = (r) => (r.querySelector(".dept") || {}).textContent;
    const change = !old ? "new"
      : !old.querySelector(FLAGGED) && row.querySelector(FLAGGED) ? "flagged"
        : dept(old) !== dept(row) ? "moved"
          : newMessageForMe(old, row) ? "mine" : null;
    if (old) old.remove();
    const after = rows().find((r) => r.dataset.sort > row.dataset.sort);
    body.insertBefore(row, after || null);
    markCurrent();
    updateSummary();
    if (hadFocus) row.querySelector("a.open-link").focus();
    return change;
  }

  // A row shown above search results whatever it matched, as the server marks one.
  function pin(row) {
    if (row.dataset.pinned) return;
    row.dataset.pinned = "1";
    let flags = row.querySelector(".flags");
    if (!flags) {
      flags = document.createElement("span");
      flags.className = "flags";
      row.querySelector("td.question").prepend(flags);
    }
    const flag = document.createElement("span");
    flag.className = "flag";
    flag.textContent = "Shown whatever the search";
    flags.append(flag);
  }

  function newMessageForMe(old, row) {
    const assignee = row.querySelector(".assignee:not(.unassigned)");
    const preview = (r) => (r.querySelector(".preview") || {}).textContent;
    return Boolean(assignee && myName && assignee.textContent.trim() === myName.trim()
      && preview(old) !== preview(row) && row.dataset.conversationId !== openId);
  }

  // Tells screen readers what arrived: one row by its channel and flag, several by count.
  // While the console's tab is in the background, its title counts the conversations that
  // arrived ("(2) ..."), a crisis first ("(!) ..."); back in front, the title is itself again.
  const baseTitle = "Reference desk · TCC Libraries";
  let titleNow = document.title;
  let unseen = 0;
  let unseenCrisis = false;
  function markTitle(arrived) {
    if (!document.hidden || !arrived.length) return;
    unseen += arrived.length;
    unseenCrisis = unseenCrisis || arrived.some((r) => r.querySelector(".flag-crisis"));
    document.title = `${unseenCrisis ? "(!) " : ""}(${unseen}) ${titleNow}`;
  }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    unseen = 0;
    unseenCrisis = false;
    document.title = titleNow;
  });
  function setTitle(title) {
    titleNow = title;
    if (!unseen) document.title = title;
  }

  function announceArrivals(arrived) {
    announceChanges(arrived.map((row) => [row, "new"]));
  }

  // Says what changed in the queue: new conversations (one by its channel and flag, several
  // by count), a conversation that became a crisis (urgently: it interrupts), and new patron
  // messages in the librarian's own conversations. A crisis also marks the background title.
  //
  // A burst (ten texts in a second reach the page in several batches) is said as one count:
  // changes gather for GATHER_MS from the first, and a crisis among them is said at once with
  // what gathered before it.
  const GATHER_MS = 1500;
  let gathered = [];
  let gatherTimer = null;
  const isCrisis = (row) => Boolean(row && row.querySelector(".flag-crisis"));
  function announceChanges(changes) {
    const seen = changes.filter(([row, change]) => row && ["new", "flagged", "moved"].includes(change));
    markTitle(seen.map(([row]) => row));
    gathered.push(...changes.filter(([row]) => row));
    if (changes.some(([row, change]) => (change === "new" || change === "flagged") && isCrisis(row))) {
      sayGathered();
    } else if (!gatherTimer) {
      gatherTimer = window.setTimeout(sayGathered, GATHER_MS);
    }
  }

  // "an SMS conversation", "a Chat conversation"
  const withArticle = (word) => `${/^(?:[aeiou]|sms\b|mms\b)/i.test(word) ? "an" : "a"} ${word}`;

  function sayGathered() {
    if (gatherTimer) window.clearTimeout(gatherTimer);
    gatherTimer = null;
    const changes = gathered;
    gathered = [];
    const of = (kind) => {
      const rows = changes.filter(([, change]) => change === kind).map(([row]) => row);
      return rows.filter((row, i) => rows.indexOf(row) === i);  // a row counted once
    };
    const arrived = of("new");
    const flagged = of("flagged").filter((row) => row.querySelector(FLAGGED));
    const mine = of("mine");
    const moved = of("moved");
    const said = [];
    const label = (row) => row.querySelector(".channel-label").textContent;
    const flag = (row) => row.querySelector(FLAGGED);
    if (arrived.length === 1) {
      const row = arrived[0];
      said.push(`New ${label(row)} conversation in the queue${flag(row) ? ": " + flag(row).textContent : ""}.`);
    } else if (arrived.length > 1) {
      const n = arrived.filter(flag).length;
      const crises = n ? `, ${n} flagged crisis or possible crisis` : "";
      said.push(`${arrived.length} new conversations in the queue${crises}.`);
    }
    for (const row of flagged) {
      said.unshift(`${flag(row).textContent}: ${withArticle(label(row))} conversation in the queue, now at the top.`);
    }
    // a warm hand-off: the department it went to is told someone is already waiting there
    for (const row of moved) {
      const what = withArticle(label(row));
      said.push(`${what[0].toUpperCase()}${what.slice(1)} conversation was transferred to ${row.querySelector(".dept").textContent.trim()}.`);
    }
    if (mine.length === 1) said.push(`New message in your ${label(mine[0])} conversation.`);
    else if (mine.length > 1) said.push(`New messages in ${mine.length} of your conversations.`);
    const crisis = flagged.some(isCrisis) || arrived.some(isCrisis);
    if (said.length) announce(said.join(" "), { urgent: crisis });
    // and heard (sounds.js): a crisis, else a new conversation, else a message in one's own
    const kind = crisis ? "crisis" : arrived.length || moved.length ? "arrival" : mine.length ? "message" : null;
    if (kind && window.Desk && window.Desk.chime) window.Desk.chime(kind);
  }

  let leaving = null;
  // What the pane says when the next refresh finds the open conversation out of the
  // librarian's sight because of their own action (a transfer), instead of "has left".
  function expectLeave(title, text) { leaving = { title, text }; }

  function showPlaceholder(title, text) {
    const box = document.createElement("div");
    box.className = "placeholder";
    const h = document.createElement("h2");
    h.textContent = title;
    h.tabIndex = -1;
    const p = document.createElement("p");
    p.textContent = text;
    box.append(h, p);
    pane.replaceChildren(box);
    return h;
  }

  async function openConversation(cid, { push = true, focus = true } = {}) {
    let fragment;
    try { fragment = await html(`/dashboard/fragments/conversation/${encodeURIComponent(cid)}`); }
    catch (err) {
      if (err.status === 401) return;
      openId = null;
      let h;
      if (err.fragment) { pane.replaceChildren(err.fragment); h = pane.querySelector("h2"); }
      else h = showPlaceholder("This conversation cannot be opened", "It could not be loaded. Try again in a moment.");
      if (focus) h.focus();
      setTitle(baseTitle);
      markCurrent();
      syncUrl(push);
      return;
    }
    pane.replaceChildren(fragment);
    openId = cid;
    markCurrent();
    updateCrisisBar();
    syncUrl(push);
    const title = document.getElementById("conv-title");
    // the channel only, as the server titles the page: a name or number in a title reaches
    // browser history, the tab strip and shared screens
    const channel = (pane.querySelector("#conversation") || {}).dataset;
    setTitle(`${channel && channel.channelLabel ? channel.channelLabel + " conversation · " : ""}${baseTitle}`);
    if (focus) title.focus();
    if (liveBanner && liveBanner.textContent) showBanner(true);  // "this conversation" too now
    document.dispatchEvent(new CustomEvent("desk:opened", { detail: { id: cid } }));
  }

  function focusKey(root) {
    const active = document.activeElement;
    if (!active || !root.contains(active)) return null;
    if (active.id) return `#${CSS.escape(active.id)}`;
    for (const name of ["data-action", "data-dialog"]) {
      if (active.hasAttribute(name)) return `[${name}="${active.getAttribute(name)}"]`;
    }
    return null;
  }

  // Replace `current` by `fresh`, keeping focus on the same control. `keep` (optional) is an
  // element of `current` that survives: it moves into `fresh` in place of its namesake,
  // taking that one's attributes, so the librarian's own reply box keeps its draft, caret,
  // undo history and focus when a refresh lands while someone types (an SMS thread turned
  // email keeps its draft).
  function swap(current, fresh, keep = null) {
    if (!current || !fresh || current.outerHTML === fresh.outerHTML) return;
    const key = focusKey(current);
    const lost = current.contains(document.activeElement);
    const stand = keep && fresh.querySelector(`#${CSS.escape(keep.id)}`);
    const caret = stand ? [keep.selectionStart, keep.selectionEnd] : null;
    if (stand) {
      for (const name of keep.getAttributeNames()) {
        if (!stand.hasAttribute(name)) keep.removeAttribute(name);
      }
      for (const name of stand.getAttributeNames()) keep.setAttribute(name, stand.getAttribute(name));
      stand.replaceWith(keep);
    }
    current.replaceWith(fresh);
    const target = key && fresh.querySelector(key);
    if (target) {
      target.focus();
      if (target === keep && caret) keep.setSelectionRange(...caret);
    } else if (lost) document.getElementById("conv-title").focus();
  }

  // As swap, but when the focused control's part of `current` is unchanged, only the other
  // parts are replaced: the control keeps its node, so a screen reader is not sent back to it
  // (the minute's refresh of "Waiting 3 min" had re-focused the conversation's heading).
  function swapAroundFocus(current, fresh) {
    if (!current || !fresh || current.outerHTML === fresh.outerHTML) return;
    if (!aroundFocus(current, fresh)) swap(current, fresh);
  }

  // Brings `current` to `fresh` without replacing the node that holds focus, down through the
  // elements that contain it; false when that node itself changed (then swap re-focuses it).
  function aroundFocus(current, fresh) {
    const kids = Array.from(current.children);
    const freshKids = Array.from(fresh.children);
    const holder = kids.find((k) => k.contains(document.activeElement));
    const i = holder ? kids.indexOf(holder) : -1;
    if (i < 0 || kids.length !== freshKids.length || freshKids[i].tagName !== holder.tagName) return false;
    const twin = freshKids[i];
    if (holder.outerHTML !== twin.outerHTML) {
      if (holder === document.activeElement || !aroundFocus(holder, twin)) return false;
      for (const name of holder.getAttributeNames()) if (!twin.hasAttribute(name)) holder.removeAttribute(name);
      for (const name of twin.getAttributeNames()) holder.setAttribute(name, twin.getAttribute(name));
    }
    kids.forEach((kid, j) => {
      if (j !== i && kid.outerHTML !== freshKids[j].outerHTML) kid.replaceWith(freshKids[j]);
    });
    return true;
  }

  // The minute's refresh of the queue's waiting times. With focus in the queue the rows stay
  // the same nodes and only their Waiting cells change (a reload re-focused the row's link
  // each minute: about 480 times a shift for a screen reader); rows that came or went in the
  // meantime arrive by the live events, and the next minute tries again.
  async function refreshWaiting() {
    const focusedInQueue = rows().some((r) => r.contains(document.activeElement));
    if (!focusedInQueue) { await loadQueue(); return; }
    const fragment = await html(`/dashboard/fragments/queue?${queueParams()}`);
    const fresh = Array.from(fragment.querySelectorAll("#queue tbody tr"));
    const current = rows();
    const same = fresh.length === current.length
      && fresh.every((r, i) => r.dataset.conversationId === current[i].dataset.conversationId);
    if (!same) return;
    fresh.forEach((r, i) => {
      const now = current[i].querySelector("td.waiting");
      const next = r.querySelector("td.waiting");
      if (now && next && now.innerHTML !== next.innerHTML) now.innerHTML = next.innerHTML;
    });
  }

  function mergeTranscript(fresh) {
    const list = document.getElementById("transcript");
    const byId = new Map(Array.from(list.children).map((li) => [li.dataset.lineId, li]));
    const incoming = Array.from(fresh.querySelectorAll("#transcript > li"));
    incoming.forEach((li, i) => {
      const old = byId.get(li.dataset.lineId);
      if (old) { if (old.dataset.version !== li.dataset.version) old.replaceWith(li); return; }
      const next = incoming.slice(i + 1).map((n) => byId.get(n.dataset.lineId)).find(Boolean);
      list.insertBefore(li, next || null);
      if (li.dataset.role === "patron") {
        const text = (li.querySelector(".text") || {}).textContent || "";
        announce(`New message from the patron: ${text.slice(0, 100)}`);
      } else if (li.dataset.kind === "crisis_reescalation") {
        announce("This crisis was re-escalated to supervisors: nobody has acknowledged it.", { urgent: true });
      } else if (li.dataset.role === "automatic") {
        // a mail system's reply or report: said as what it is, never as the patron's words
        announce(`${li.querySelector(".who").textContent} received`);
      }
    });
  }

  function swapDialogs(fresh) {
    const article = document.getElementById("conversation");
    for (const id of ["transfer-dialog", "close-dialog", "convert-dialog"]) {
      const current = document.getElementById(id);
      const next = fresh.querySelector(`#${id}`);
      if (current && current.open) continue;
      if (current && next) current.replaceWith(next);
      else if (current) current.remove();
      else if (next) article.append(next);
    }
  }

  async function refreshNow() {
    const cid = openId;
    if (!cid || !document.getElementById("conversation")) return;
    let fragment;
    try { fragment = await html(`/dashboard/fragments/conversation/${encodeURIComponent(cid)}`); }
    catch (err) {
      if (err.status === 403 || err.status === 404) {
        openId = null;
        const why = err.fragment && err.fragment.querySelector("p");
        const mine = leaving;  // the librarian's own transfer moved it out of sight
        leaving = null;
        if (mine) showPlaceholder(mine.title, mine.text);
        else showPlaceholder("This conversation has left your queue", why ? why.textContent : "");
        // the tab no longer names a conversation ("Chat conversation · ..." stayed after a transfer)
        setTitle(baseTitle);
        markCurrent();
        syncUrl(false);
      }
      return;
    }
    if (cid !== openId) return;
    const fresh = fragment.querySelector("#conversation");
    const article = document.getElementById("conversation");
    article.className = fresh.className;
    Object.assign(article.dataset, fresh.dataset);
    swapAroundFocus(document.getElementById("conv-head"), fresh.querySelector("#conv-head"));
    mergeTranscript(fresh);
    const body = article.querySelector(".conv-body");
    body.className = fresh.querySelector(".conv-body").className;
    const aside = fresh.querySelector("#crisis-aside");
    const oldAside = document.getElementById("crisis-aside");
    if (aside && !oldAside) body.append(aside);
    else if (!aside && oldAside) oldAside.remove();
    else if (aside) swap(document.getElementById("care-report"), aside.querySelector("#care-report"));
    const wrap = document.getElementById("composer-wrap");
    const freshWrap = fresh.querySelector("#composer-wrap");
    if (wrap.dataset.version !== freshWrap.dataset.version) {
      const reply = document.getElementById("reply-text");
      const draft = reply ? reply.value.trim() : "";
      swap(wrap, freshWrap, reply);
      if (draft && !document.getElementById("reply-text")) {
        // the librarian's own close, whose news came before its answer: nothing to keep
        if (closing === cid) drafts.drop(cid);
        else keepDraft(draft, cid);
      }
      else restoreDraft(cid);
    }
    swap(document.getElementById("earlier"), fresh.querySelector("#earlier"));
    swapDialogs(fresh);
    document.dispatchEvent(new CustomEvent("desk:refreshed", { detail: { id: cid } }));
  }

  // The reply box went (a colleague claimed or closed the conversation, or it became a
  // crisis) while it held an unsent reply: the words stay on the page, in the note box when it
  // is there and empty; else they are held, and come back into the reply box when it returns
  // (a crisis the librarian then acknowledges).
  let held = null;  // {cid, draft}
  let closing = null;  // the conversation this page is closing (actions.js), while it does
  function setClosing(cid) { closing = cid; }
  function keepDraft(draft, cid) {
    const note = document.getElementById("note-text");
    const status = document.getElementById("action-status");
    if (note && !note.value.trim()) {
      note.value = draft;
      drafts.drop(cid);  // a note now, not a reply: not brought back into a reply box later
      const folded = note.closest("details");
      if (folded) folded.open = true;
      if (status) {
        status.textContent = "You can no longer reply here. Your unsent reply is in the note box: save it as a note for colleagues, or copy it.";
        status.dataset.tone = "warning";
      }
      return;
    }
    held = { cid, draft };
    if (!status) return;
    status.dataset.tone = "warning";
    if (document.querySelector('#conversation [data-action="acknowledge"]')) {
      status.textContent = `This conversation is now a crisis: acknowledge it to go on replying. Your unsent reply is kept and comes back then: “${draft}”`;
    } else {
      status.textContent = `You can no longer reply here. Your unsent reply: “${draft}”`;
    }
  }

  function restoreDraft(cid) {
    const reply = document.getElementById("reply-text");
    if (!held || held.cid !== cid || !reply || reply.value.trim()) return;
    reply.value = held.draft;
    held = null;
    const status = document.getElementById("action-status");
    if (status) {
      status.textContent = `${status.textContent} Your unsent reply is back in the reply box.`.trim();
      delete status.dataset.tone;
    }
  }

  let refreshing = Promise.resolve();
  function refreshConversation() {
    refreshing = refreshing.then(refreshNow, refreshNow);
    return refreshing;
  }

  // The pane empties and the title is the queue's again. `push`: a new history entry (the
  // narrow layout's "Back to the queue"; Back reopens the conversation); `focus`: the queue's
  // row of the conversation left, else the queue.
  function closeConversation({ push = null, focus = false } = {}) {
    const left = openId;
    openId = null;
    showPlaceholder("No conversation open", "Pick a conversation from the queue.");
    setTitle(baseTitle);
    markCurrent();
    if (liveBanner && liveBanner.textContent) showBanner(true);
    if (push !== null) syncUrl(push);
    if (!focus) return;
    const row = rows().find((r) => r.dataset.conversationId === left);
    const target = row ? row.querySelector("a.open-link") : document.getElementById("queue-pane");
    target.focus();
    target.scrollIntoView({ block: "nearest" });
  }

  markCurrent();
  updateCrisisBar();
  return {
    request, announce, openConversation, closeConversation, refreshConversation, refreshRow,
    expectLeave, connection, drafts,
    rowFrom, placeRow, announceArrivals, announceChanges, rows, loadQueue, refreshWaiting, regionsIn,
    setClosing,
    openId: () => openId,
    filtered: () => queueParams().toString() !== "", Problem,
  };
})();
