// The staff page (/dashboard/staff): focus what the page has just said (a saved change, a
// refusal, a token just issued) unless a field with an error took it, and copy a new token.
"use strict";
(() => {
  const COPIED = "Copied. Paste it where only they will read it.";
  const BLOCKED = "Copying is blocked here: the token is selected, press Ctrl+C (or Cmd+C) to copy it.";

  function sayWhatHappened() {
    // a form sent back with errors: its first field with one (the browser skips autofocus
    // when the address names a part of the page, as the add form's does)
    const wrong = document.querySelector("[autofocus]");
    if (wrong) {
      if (document.activeElement !== wrong) wrong.focus();
      return;
    }
    const said = document.querySelector("[data-focus]");
    if (said) said.focus();
  }

  function setUpCopy(button) {
    const field = document.getElementById(button.dataset.copy);
    const status = document.getElementById("copy-status");
    if (!field || !status) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      field.focus();
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        status.textContent = COPIED;
      } catch {
        let done = false;
        try { done = document.execCommand("copy"); } catch { done = false; }
        status.textContent = done ? COPIED : BLOCKED;
      }
    });
  }

  sayWhatHappened();
  for (const button of document.querySelectorAll("button[data-copy]")) setUpCopy(button);
})();
