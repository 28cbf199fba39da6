// The records page: its Print button, and the answer in view once it is shown.
"use strict";
(() => {
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
  const heading = document.getElementById("answer-heading");
  if (heading) heading.focus();
})();
