// How many SMS segments a text costs: services/notifier/segments.py, line for line, so the
// composer shows what the notifier will count (tests run both on the same strings).
// GSM-7: 160 septets in one segment, 153 per part; extension characters cost 2 and are never
// split. Any other character forces UCS-2: 70 UTF-16 units in one segment, 67 per part; a
// surrogate pair is never split.
"use strict";
(function (root) {
  const GSM7_BASIC = new Set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà");
  const GSM7_EXTENSION = new Set("\f^{}\\[~]|€");
  const GSM7_SINGLE = 160, GSM7_MULTI = 153, UCS2_SINGLE = 70, UCS2_MULTI = 67;
  // Python's str.strip() removes these (str.isspace); the notifier strips the rendered body.
  const PY_SPACE = new Set(
    "\t\n\u000b\f\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003" +
    "\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000");

  function chars(text) { return Array.from(text); } // code points, as Python iterates

  function pyStrip(text) {
    const cs = chars(text);
    let start = 0, end = cs.length;
    while (start < end && PY_SPACE.has(cs[start])) start++;
    while (end > start && PY_SPACE.has(cs[end - 1])) end--;
    return cs.slice(start, end).join("");
  }

  function isGsm7(text) {
    return chars(text).every((ch) => GSM7_BASIC.has(ch) || GSM7_EXTENSION.has(ch));
  }

  function units(text, encoding) {
    if (encoding === "GSM-7") return chars(text).map((ch) => (GSM7_EXTENSION.has(ch) ? 2 : 1));
    return chars(text).map((ch) => (ch.codePointAt(0) > 0xffff ? 2 : 1));
  }

  function count(costs, single, multi) {
    if (costs.reduce((a, b) => a + b, 0) <= single) return 1;
    let segments = 1, used = 0;
    for (const cost of costs) {
      if (used + cost > multi) { segments += 1; used = 0; }
      used += cost;
    }
    return segments;
  }

  // Characters a phone keyboard or a pasted document slips in that have a plain GSM-7 twin,
  // with the name the composer gives them (several are invisible).
  const PLAIN = new Map([
    ["\u2018", ["'", "curly apostrophe"]], ["\u2019", ["'", "curly apostrophe"]],
    ["\u201c", ['"', "curly quote"]], ["\u201d", ['"', "curly quote"]],
    ["\u2013", ["-", "dash"]], ["\u2014", ["-", "long dash"]], ["\u2026", ["...", "ellipsis"]],
    ["\u00a0", [" ", "non-breaking space"]], ["\u202f", [" ", "narrow space"]],
    ["\u2009", [" ", "thin space"]], ["\u200b", ["", "zero-width space"]],
    ["\u200d", ["", "zero-width joiner"]], ["\ufeff", ["", "invisible byte-order mark"]],
    ["\u2022", ["-", "bullet"]], ["\t", [" ", "tab"]],
  ]);

  /** The distinct characters of a text outside GSM-7, in the order they first appear. */
  function outsideGsm7(text) {
    const seen = [];
    for (const ch of chars(text)) {
      if (!GSM7_BASIC.has(ch) && !GSM7_EXTENSION.has(ch) && !seen.includes(ch)) seen.push(ch);
    }
    return seen;
  }

  const INVISIBLE = new Set(["\u00a0", "\u202f", "\u2009", "\u200b", "\u200d", "\ufeff", "\t"]);

  /** How the composer names a character: its plain name (and itself, if it shows), or itself
      in quotes. */
  function describe(ch) {
    const known = PLAIN.get(ch);
    if (!known) return `\u201c${ch}\u201d`;
    return INVISIBLE.has(ch) ? known[1] : `${known[1]} ${ch}`;
  }

  /** The text with each character of PLAIN replaced by its GSM-7 twin. */
  function plain(text) {
    return chars(text).map((ch) => (PLAIN.has(ch) ? PLAIN.get(ch)[0] : ch)).join("");
  }

  /** [encoding, segments] for a text as the notifier sends it (0 segments for empty text). */
  function smsSegments(text) {
    if (!text) return ["GSM-7", 0];
    if (isGsm7(text)) return ["GSM-7", count(units(text, "GSM-7"), GSM7_SINGLE, GSM7_MULTI)];
    return ["UCS-2", count(units(text, "UCS-2"), UCS2_SINGLE, UCS2_MULTI)];
  }

  const api = { smsSegments, isGsm7, pyStrip, outsideGsm7, describe, plain, PLAIN };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.RefdeskSegments = api;
})(typeof window !== "undefined" ? window : globalThis);
