// What staff do in the open conversation, each through the JSON API: claim, acknowledge a
// crisis, transfer, close, convert SMS to email, add a note, reply (with macros and, for SMS,
// a live segment count). Events are delegated: the conversation pane is swapped often.
"use strict";
(() => {
  const Desk = window.Desk;
  const pane = document.getElementById("conversation-pane");
  const DONE = {
    claim: "Claimed: the conversation is yours.",
    release: "Given back to the queue: anyone who staffs its department may claim it.",
    acknowledge: "Crisis acknowledged. The other actions are open now.",
    "care-report": "Recorded: the CARE Team incident report is marked as filed.",
    "care-report/withdraw": "Taken back. If nobody else recorded it, no CARE Team report is marked as filed: file it at the link above, then record it.",
    unblock: "Unblocked: this patron's messages reach the desk again.",
  };
  const PENDING = {
    claim: "Claiming…",
    acknowledge: "Acknowledging the crisis…",
    "care-report": "Recording the CARE Team report…",
    "care-report/withdraw": "Taking the record back…",
    unblock: "Unblocking…",
  };
  // what a failed action was, in the sentence "Could not …"
  const VERBS = {
    "care-report": "record the CARE Team report",
    "care-report/withdraw": "take the CARE Team report's record back",
  };
  const NOT_A_QUESTION = "not-a-question";  // services/status/topics.py
  const WORKING = {
    "transfer-form": "Transferring…",
    "close-form": "Closing…",
    "convert-form": "Converting…",
    "block-form": "Blocking…",
  };
  let opener = null;

  const VARIABLES = {
    patron_first_name: "the patron's first name",
    survey_url: "the survey link",
    department_name: "the department's name",
  };
  const path = (suffix) => `/conversations/${encodeURIComponent(Desk.openId())}${suffix}`;
  const byId = (id) => document.getElementById(id);
  const Segments = window.RefdeskSegments;

  // A status line: done (green), `pending` while the desk has not answered yet, or `warning`
  // when something did not go through.
  function say(id, text, { warning = false, pending = false } = {}) {
    const node = byId(id);
    if (!node) return;
    node.textContent = text;
    if (warning || pending) node.dataset.tone = warning ? "warning" : "pending";
    else delete node.dataset.tone;
  }

  // Why an action did not go through: the desk's own words for a refusal (a 4xx's detail), or
  // plain words, with what to do, when the desk could not be reached ("Failed to fetch").
  function why(err, retry = "Try again in a moment.") {
    return err.unreachable ? `${err.message}. ${retry}` : err.message;
  }

  // A button whose request is in flight: disabled, marked busy and, given `label`, saying so;
  // the returned function puts it back.
  function busy(button, label = null) {
    const before = button.textContent;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    if (label) button.textContent = label;
    return () => {
      button.removeAttribute("aria-busy");
      if (label) button.textContent = before;
      button.disabled = false;
    };
  }

  async function afterChange(message) {
    say("action-status", message);
    const id = Desk.openId();
    await Desk.refreshConversation();
    if (id) Desk.refreshRow(id).catch(() => undefined);
  }

  async function act(name, button) {
    const idle = busy(button);  // a disabled button loses focus: it is put back below
    say("action-status", PENDING[name] || "Working…", { pending: true });
    try {
      await Desk.request("POST", path(`/${name}`));
      await afterChange(DONE[name] || "Done.");
    } catch (err) {
      idle();
      say("action-status", `Could not ${VERBS[name] || name}: ${why(err)}`, { warning: true });
      await Desk.refreshConversation();  // show who has it now, or what changed
    }
    // after Claim or Acknowledge crisis the next thing is the reply: focus goes there (it was
    // left on the page's body, and the next Tab went back to "Skip to main content")
    if (document.activeElement === document.body || !document.activeElement) {
      const next = byId("reply-text") || byId("conv-title");
      if (next) next.focus();
    }
  }

  // SMS segments, counted as the notifier will count the text it sends.
  function updateCounter() {
    const counter = byId("segment-counter");
    const textarea = byId("reply-text");
    if (!counter || !textarea) return;
    const text = Segments.pyStrip(textarea.value);
    const [encoding, segments] = Segments.smsSegments(text);
    const budget = Number(counter.dataset.budget);
    const n = Array.from(text).length;
    counter.textContent = `${n} character${n === 1 ? "" : "s"}, ${encoding}, ${segments} segment${segments === 1 ? "" : "s"}`;
    counter.dataset.segments = String(segments);
    counter.dataset.encoding = encoding;
    const over = segments > budget;
    counter.classList.toggle("over", over);
    let warning = "";
    if (over) warning = `Over the desk's budget of ${budget} segments: shorten it, or send one idea per text.`;
    else if (encoding === "UCS-2") warning = outsideWarning(text);
    if (byId("segment-warning").textContent !== warning) say("segment-warning", warning);
    const fix = byId("plain-punctuation");
    if (fix) fix.hidden = encoding !== "UCS-2" || Segments.plain(text) === text;
  }

  // Names what pushed a text out of GSM-7 (often invisible: a pasted non-breaking space).
  function outsideWarning(text) {
    const outside = Segments.outsideGsm7(text);
    const named = outside.slice(0, 3).map(Segments.describe);
    if (outside.length > 3) named.push(`${outside.length - 3} more`);
    const list = named.length > 1 ? `${named.slice(0, -1).join(", ")} and ${named.at(-1)}` : named[0];
    const verb = outside.length === 1 ? "is" : "are";
    return `The ${list} ${verb} outside GSM-7, so each segment holds 70 characters, not 160.`;
  }

  function usePlainPunctuation() {
    const textarea = byId("reply-text");
    if (!textarea) return;
    textarea.value = Segments.plain(textarea.value);
    textarea.focus();
    updateCounter();
    remember();
  }

  // The open conversation's unsent reply, kept for this tab (Desk.drafts) as it is typed.
  function remember() {
    const cid = Desk.openId();
    const textarea = byId("reply-text");
    if (!cid || !textarea) return;
    const subject = byId("reply-subject");
    Desk.drafts.save(cid, textarea.value, subject ? subject.value : null);
  }

  // Brings back the kept reply of the conversation just opened (or reloaded): only into an
  // empty reply box; a closed conversation's is forgotten.
  function restore({ tell = false } = {}) {
    const cid = Desk.openId();
    const conversation = byId("conversation");
    if (!cid || !conversation) return;
    if (conversation.dataset.state === "closed") { Desk.drafts.drop(cid); return; }
    const textarea = byId("reply-text");
    const draft = Desk.drafts.load(cid);
    if (!textarea || textarea.value.trim() || !draft || sending) return;
    textarea.value = draft.text;
    const subject = byId("reply-subject");
    if (subject && draft.subject) subject.value = draft.subject;
    if (tell) say("composer-status", "Your unsent reply is back in the reply box: this tab kept it.");
  }

  function insertAtCursor(textarea, text) {
    const start = textarea.selectionStart ?? textarea.value.length;
    const end = textarea.selectionEnd ?? textarea.value.length;
    const before = textarea.value.slice(0, start);
    const gap = before && !/\s$/.test(before) ? " " : "";
    textarea.value = before + gap + text + textarea.value.slice(end);
    const caret = (before + gap + text).length;
    textarea.setSelectionRange(caret, caret);
  }

  async function insertMacro() {
    const select = byId("macro-select");
    const textarea = byId("reply-text");
    if (!select.value) { say("macro-error", "Choose a macro first."); select.focus(); return; }
    try {
      const data = await Desk.request("GET", path(`/macros/${encodeURIComponent(select.value)}`));
      say("macro-error", "");
      insertAtCursor(textarea, data.text);
      textarea.focus();
      updateCounter();
      remember();
    } catch (err) {
      const label = select.options[select.selectedIndex].textContent;
      if (err.unreachable) { say("macro-error", `Could not insert “${label}”: ${why(err)}`); return; }
      const reason = err.message
        .replace(/^macro needs/, "it needs")
        .replace(/\b[a-z]+(_[a-z]+)+\b/g, (name) => VARIABLES[name] || name);
      say("macro-error", `“${label}” can't be used here: ${reason}.`);
    }
  }

  // A reply in flight: one at a time (Ctrl+Enter submits past a disabled button), its text
  // held as sent, its button saying so; past SLOW_MS the line under it says the desk is slow,
  // and the request goes on (a broker stall of 45 s invited a second send).
  const SLOW_MS = 15000;
  const SENDING = "Sending…";
  const STILL = "Still sending: the desk is slow to confirm. Do not send it again; it shows in the transcript once it goes out.";
  let sending = null;  // {cid, slow}

  // The composer as the reply in flight has it (again after a refresh replaced it).
  function showSending() {
    const button = byId("send-reply");
    const form = byId("composer");
    if (!button || !form) return;
    const on = Boolean(sending && sending.cid === Desk.openId());
    if (on && !button.dataset.label) button.dataset.label = button.textContent;
    if (!on && button.dataset.label) { button.textContent = button.dataset.label; delete button.dataset.label; }
    if (on) button.textContent = SENDING;
    button.disabled = on;
    if (on) form.setAttribute("aria-busy", "true"); else form.removeAttribute("aria-busy");
    for (const id of ["reply-text", "reply-subject"]) if (byId(id)) byId(id).readOnly = on;
    if (on && byId("composer-status").textContent !== (sending.slow ? STILL : SENDING)) {
      say("composer-status", sending.slow ? STILL : SENDING, { pending: true });
    }
  }

  async function sendReply(form) {
    if (sending) return;  // the reply in flight is not sent twice
    const textarea = byId("reply-text");
    if (!textarea.value.trim()) { say("composer-status", "Write a message first.", { warning: true }); textarea.focus(); return; }
    const body = { text: textarea.value };
    const subject = byId("reply-subject");
    if (subject && subject.value.trim()) body.subject = subject.value.trim();
    const cid = Desk.openId();
    const url = path("/replies");
    sending = { cid, slow: false };
    showSending();
    const slow = window.setTimeout(() => { if (sending) { sending.slow = true; showSending(); } }, SLOW_MS);
    let failed = null;
    try {
      await Desk.request("POST", url, body);
    } catch (err) {
      failed = err;
    } finally {
      window.clearTimeout(slow);
      sending = null;
      showSending();
    }
    if (!failed) Desk.drafts.drop(cid);
    if (Desk.openId() !== cid) {  // the librarian opened another conversation meanwhile
      Desk.announce(failed ? `Your reply was not sent: ${why(failed)}` : "Your reply was sent.");
      if (!failed) Desk.refreshRow(cid).catch(() => undefined);
      return;
    }
    if (!failed) {
      if (byId("reply-text")) byId("reply-text").value = "";
      updateCounter();
      say("composer-status", "Sent to the patron's channel. Its delivery shows in the transcript.");
      await afterChange("");
    } else {
      say("composer-status", `Not sent: ${why(failed, "Your reply is kept here; try again in a moment.")}`, { warning: true });
      // a colleague took or closed it: the reply box may go with the next refresh, the
      // conversation's status line stays
      if (failed.status === 403 || failed.status === 409) say("action-status", `Your reply was not sent: ${failed.message}`, { warning: true });
    }
    if (form.isConnected && byId("reply-text")) byId("reply-text").focus();
  }

  async function saveNote(form) {
    const textarea = byId("note-text");
    const button = form.querySelector("button[type=submit]");
    if (button.disabled) return;  // the note in flight is not saved twice (Ctrl+Enter)
    if (!textarea.value.trim()) { say("note-status", "Write the note first."); textarea.focus(); return; }
    const idle = busy(button, "Saving…");
    try {
      await Desk.request("POST", path("/notes"), { text: textarea.value });
      textarea.value = "";
      say("note-status", "Note saved. Only staff see it.");
      await afterChange("");
    } catch (err) {
      say("note-status", `Not saved: ${why(err, "Your note is kept here; try again in a moment.")}`);
    } finally {
      idle();
    }
  }

  function checked(form, name) {
    const input = form.querySelector(`input[name="${name}"]:checked`);
    return input && input.value ? input.value : null;
  }

  async function submitDialog(form) {
    const dialog = form.closest("dialog");
    const errorId = form.id.replace("-form", "-error");
    const button = form.querySelector("button[type=submit]");
    let call, message, leave = null;
    if (form.id === "transfer-form") {
      const select = byId("transfer-department");
      const option = select.options[select.selectedIndex];
      const name = option.dataset.name || option.textContent;
      const note = byId("transfer-text").value.trim() || null;
      call = ["/transfer", { department: select.value, note }];
      // a crisis with nothing written sends the patron nothing (no prepared hand-off)
      const told = note || !byId("transfer-text").hasAttribute("data-crisis");
      message = `Transferred to ${name}. ${told ? "The patron gets the hand-off message." : "No message went to the patron."}`;
      leave = [`Transferred to ${name}`, `${told ? "The patron gets the hand-off message, and the" : "Nothing was sent to the patron. The"} conversation is in that department's queue now.`];
    } else if (form.id === "close-form") {
      const scale = checked(form, "read_scale");
      // the latest line on screen: a patron's message after it (arrived as Close was pressed)
      // refuses the close, so the question is read rather than answered with a survey
      const lines = document.querySelectorAll("#transcript > li[data-line-id]");
      const seen = lines.length ? lines[lines.length - 1].dataset.lineId : null;
      call = ["/close", { read_scale: scale ? Number(scale) : null, topic: checked(form, "topic"), seen }];
      message = /send survey/.test(button.textContent) ? "Closed. The patron will get the rating survey." : "Closed.";
    } else if (form.id === "block-form") {
      call = ["/block", { reason: byId("block-reason").value.trim() }];
      message = "Blocked: this sender's messages stay off the desk unless the crisis net flags them, and nothing automatic answers them.";
    } else {
      call = ["/convert-to-email", { email: byId("convert-email").value.trim() }];
      message = "Converted: replies go by email from now on.";
    }
    if (button.disabled) return;  // already on its way (Ctrl+Enter, a second click)
    const cid = Desk.openId();
    const idle = busy(button, WORKING[form.id]);
    if (form.id === "close-form") Desk.setClosing(cid);
    try {
      await Desk.request("POST", path(call[0]), call[1]);
      if (form.id === "close-form") Desk.drafts.drop(cid);  // closed: nothing left to reply to
      if (leave) Desk.expectLeave(...leave);
      say(errorId, "");
      dialog.close();
      await afterChange(message);
      const title = byId("conv-title");
      if (title) title.focus();
      else document.querySelector("#conversation-pane h2")?.focus();
    } catch (err) {
      say(errorId, why(err));
    } finally {
      Desk.setClosing(null);
      idle();
    }
  }

  function openDialog(button) {
    const dialog = byId(button.dataset.dialog);
    if (!dialog) return;
    opener = button;
    if (dialog.id === "transfer-dialog") prefillHandoff();
    Desk.regionsIn(dialog);  // its own live regions, in place before anything is said
    dialog.showModal();
  }

  function prefillHandoff() {
    const select = byId("transfer-department");
    byId("transfer-text").value = select.options[select.selectedIndex].dataset.handoff || "";
  }

  pane.addEventListener("click", (event) => {
    const action = event.target.closest("button[data-action]");
    if (action) { act(action.dataset.action, action); return; }
    const dialogButton = event.target.closest("button[data-dialog]");
    if (dialogButton) { openDialog(dialogButton); return; }
    const close = event.target.closest("[data-close]");
    if (close) { close.closest("dialog").close(); return; }
    if (event.target.closest("#macro-insert")) insertMacro();
    else if (event.target.closest("#plain-punctuation")) usePlainPunctuation();
  });

  pane.addEventListener("close", (event) => {
    if (event.target.tagName === "DIALOG" && opener && opener.isConnected) opener.focus();
  }, true);

  pane.addEventListener("submit", (event) => {
    const form = event.target;
    event.preventDefault();
    if (form.id === "composer") sendReply(form);
    else if (form.id === "note-form") saveNote(form);
    else if (form.closest("dialog")) submitDialog(form);
  });

  // A conversation set aside as not a question (spam, a wrong number) gets no survey: the
  // close dialog says so, and its button no longer promises one.
  function surveyByTopic() {
    const aside = byId("close-aside-note");
    if (!aside) return;
    const setAside = checked(byId("close-form"), "topic") === NOT_A_QUESTION;
    aside.hidden = !setAside;
    const submit = byId("close-submit");
    if (!submit.hasAttribute("data-surveyed")) return;  // no survey would go anyway
    byId("close-survey-note").hidden = setAside;
    submit.textContent = setAside ? "Close without survey" : "Close and send survey";
  }

  pane.addEventListener("input", (event) => {
    if (event.target.id === "reply-text") updateCounter();
    if (event.target.id === "reply-text" || event.target.id === "reply-subject") remember();
  });
  pane.addEventListener("change", (event) => {
    if (event.target.id === "transfer-department") prefillHandoff();
    if (event.target.name === "topic" && event.target.form && event.target.form.id === "close-form") surveyByTopic();
  });
  pane.addEventListener("keydown", (event) => {
    // Ctrl+Enter (or Cmd+Enter) sends from the composer or saves the note.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.tagName === "TEXTAREA") {
      event.preventDefault();
      event.target.form.requestSubmit();
    }
  });
  document.addEventListener("desk:opened", () => { restore({ tell: true }); updateCounter(); showSending(); });
  document.addEventListener("desk:refreshed", () => { restore(); updateCounter(); showSending(); });
  restore({ tell: true });
  updateCounter();
})();
