"""Whether an email's From address may be forged, as the mail system that received it found.

Ingest cannot check SPF, DKIM or DMARC itself: it never sees the SMTP connection, and it has no
DNS. The receiving system records its checks in headers it adds at the top of the message:
`Authentication-Results` (RFC 8601; Exchange Online, Gmail, Postfix with OpenDKIM and
OpenDMARC) and Mailgun's `X-Mailgun-Spf` and `X-Mailgun-Dkim-Check-Result`. Only the topmost
of each is read, the one the receiving system added; a sender can write such headers into its
own message, but below the receiver's.

Only DMARC ties the checks to the From address. SPF checks the envelope's sender, so without
DMARC it catches a forger who gives the patron's domain there too, not one who gives their
own; Mailgun reports SPF and DKIM only.

Two findings of ingest's own count as a failure too, since the verdict may then be about
another address than the one read: a `From` that does not name one sender plainly (two
addresses, which a lenient parser folds into one, or an address written as the display name:
`"victim@my.tccd.edu" <attacker@evil.example>`), and an `Authentication-Results` whose
`header.from` names another domain than the sender address's.

The verdict can only take threading away (`services.ingest.service`): an email whose sender
failed is accepted and routed as any other, in a conversation of its own, so a patron's
message, a crisis included, is never refused or held because of it. A header written by the
sender that claims a pass changes nothing: without a verdict an email is threaded as before.
"""

from __future__ import annotations

import re
from enum import StrEnum


class SenderCheck(StrEnum):
    """The receiving system's finding about the From address."""

    PASSED = "passed"  # DMARC passed, or a DKIM signature or SPF passed
    FAILED = "failed"  # DMARC failed, SPF failed with no DKIM pass, or the From is not plain
    UNKNOWN = "unknown"  # no verdict: no such header, or only neutral results


_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"(?i)(?:^|;)\s*(dmarc|dkim|spf)\s*=\s*([a-z]+)")
_FAILING_SPF = frozenset({"fail", "softfail"})
_HEADER_FROM = re.compile(r"(?i)\bheader\.from\s*=\s*\"?([^\s;\"]+)")


def sender_check(
    *,
    authentication_results: str | None = None,
    spf: str | None = None,
    dkim: str | None = None,
    sender: str | None = None,
    plain_from: bool = True,
) -> SenderCheck:
    """The verdict from the receiver's `Authentication-Results` (preferred: it carries DMARC,
    which ties the checks to the From domain) and the provider's own SPF and DKIM results.

    It fails, whatever they say, when the From was not plain (`plain_from` false) or when
    `Authentication-Results` checked another domain (`header.from`) than the one of `sender`,
    the address the email is read as from. Otherwise DMARC decides when it was evaluated; else
    a passing DKIM signature or SPF passes, and SPF `fail` or `softfail` with no DKIM pass
    fails: mail forwarded by a university's own servers often fails SPF but keeps its DKIM
    signature.
    """
    if not plain_from or _checked_another_domain(authentication_results, sender):
        return SenderCheck.FAILED
    results = _results(authentication_results)
    if "pass" in results.get("dmarc", ()):
        return SenderCheck.PASSED
    if "fail" in results.get("dmarc", ()):
        return SenderCheck.FAILED
    dkim_results = {*results.get("dkim", ()), *_words(dkim)}
    spf_results = {*results.get("spf", ()), *_words(spf)}
    if "pass" in dkim_results or "pass" in spf_results:
        return SenderCheck.PASSED
    if spf_results & _FAILING_SPF:
        return SenderCheck.FAILED
    return SenderCheck.UNKNOWN


def _checked_another_domain(header: str | None, sender: str | None) -> bool:
    """Whether a `header.from` in an Authentication-Results value names a domain other than the
    sender address's (a DMARC pass for evil.example says nothing of my.tccd.edu)."""
    if not header or not sender or "@" not in sender:
        return False
    domain = _domain(sender.rpartition("@")[2])
    return any(_domain(found) != domain for found in _HEADER_FROM.findall(_uncommented(header)))


def _domain(name: str) -> str:
    """A domain in one spelling: lower case, no final dot, IDNA (`xn--`) for Unicode."""
    plain = name.strip().rstrip(".").lower()
    try:
        return plain.encode("idna").decode("ascii")
    except UnicodeError:
        return plain


def _uncommented(header: str) -> str:
    """A header value without its comments (they may nest)."""
    text = header
    while (stripped := _COMMENT.sub(" ", text)) != text:
        text = stripped
    return text


def _results(header: str | None) -> dict[str, set[str]]:
    """Each method's results in an Authentication-Results value, comments left out (RFC 8601:
    `authserv-id; method=result reason; ...`, several dkim= for several signatures; Exchange
    Online leaves the authserv-id out and starts with the first result)."""
    if not header:
        return {}
    found: dict[str, set[str]] = {}
    for method, result in _RESULT.findall(_uncommented(header)):
        found.setdefault(method.lower(), set()).add(result.lower())
    return found


def _words(value: str | None) -> set[str]:
    """A provider's one-word result ("Pass", "SoftFail"), lower-cased; empty when absent."""
    word = (value or "").strip().split(" ", 1)[0].lower()
    return {word} if word else set()
