// Sound alerts for the console (console.js calls Desk.chime): a librarian helping someone at
// the desk, or working in another window, hears a new conversation arrive, a crisis (three
// urgent tones, repeated while the crisis bar shows: nobody has acknowledged it) and a new
// message in their own conversation. The tones are synthesised (Web Audio: no file to load,
// nothing to fail), at most one every two seconds, and the top bar's "Sound" button turns
// them off and on for this browser (remembered). Browsers play sound only after the page was
// used once (a click or a key); the sign-in form counts.
"use strict";
(() => {
  const Desk = window.Desk;
  const KEY = "refdesk.sound";
  const GAP_MS = 2000;
  const REPEAT_MS = 30000;
  const TONES = {
    arrival: [[660, 0, 0.12], [880, 0.14, 0.18]],
    message: [[740, 0, 0.14]],
    crisis: [[988, 0, 0.16], [988, 0.22, 0.16], [988, 0.44, 0.28]],
  };
  const toggle = document.getElementById("sound-toggle");
  let context = null;
  let last = 0;

  function enabled() {
    try { return window.localStorage.getItem(KEY) !== "off"; } catch (e) { return true; }
  }

  function show() {
    if (!toggle) return;
    const on = enabled();
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    toggle.querySelector(".sound-state").textContent = on ? "on" : "off";
  }

  function audio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!context) context = new Context();
    if (context.state === "suspended") context.resume().catch(() => undefined);
    return context;
  }

  // a kind of alert: "arrival", "message" or "crisis" (a crisis is never held back by the gap)
  function chime(kind) {
    const tones = TONES[kind];
    if (!tones || !enabled()) return;
    const now = Date.now();
    if (kind !== "crisis" && now - last < GAP_MS) return;
    last = now;
    const ctx = audio();
    if (!ctx) return;
    for (const [frequency, at, length] of tones) {
      const start = ctx.currentTime + at;
      const tone = ctx.createOscillator();
      const level = ctx.createGain();
      tone.type = "sine";
      tone.frequency.value = frequency;
      level.gain.setValueAtTime(0.0001, start);
      level.gain.exponentialRampToValueAtTime(0.25, start + 0.02);
      level.gain.exponentialRampToValueAtTime(0.0001, start + length);
      tone.connect(level).connect(ctx.destination);
      tone.start(start);
      tone.stop(start + length + 0.02);
    }
  }

  if (toggle) {
    toggle.addEventListener("click", () => {
      const on = !enabled();
      try { window.localStorage.setItem(KEY, on ? "on" : "off"); } catch (e) { /* private mode */ }
      show();
      Desk.announce(on ? "Sound alerts on." : "Sound alerts off.");
      if (on) chime("arrival"); // what it sounds like, and the page's first use for the browser
    });
  }
  // the first click or key anywhere lets the browser play later alerts
  const unlock = () => { if (enabled()) audio(); };
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });

  // a crisis nobody has acknowledged sounds again every 30 s while its bar shows
  const bar = document.getElementById("crisis-bar");
  if (bar) window.setInterval(() => { if (!bar.hidden) chime("crisis"); }, REPEAT_MS);

  show();
  Object.assign(Desk, { chime });
})();
