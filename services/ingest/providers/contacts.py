"""Normalise patron contacts: phones to E.164, email addresses to lower case.

Email addresses are checked by `email-validator` (syntax only: no DNS lookup), which accepts
what RFC 5322 and RFC 6531 allow and a reply can be sent to: quoted local parts
(`"john smith"@example.com`), internationalised domains and local parts (`jose@münchen.de`,
kept in Unicode as the patron wrote them), and address literals (`ana@[192.0.2.1]`). It refuses
names no mail can reach (`jane@localhost`, a domain without a dot, `.invalid`) and malformed
addresses. Callers that must not lose a message over an odd address fall back (see
`services.ingest.providers.mailgun` and `mime`).
"""

from __future__ import annotations

import re
from email.utils import getaddresses

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from services.ingest.providers.errors import InvalidField

_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
"""Any number in E.164 form: `+`, then 8 to 15 digits, the first not 0."""
_SHORT_CODE = re.compile(r"[0-9]{3,8}")
_ALPHANUMERIC_SENDER = re.compile(r"(?=[0-9 ]*[A-Za-z])[A-Za-z0-9 ]{1,11}")
"""An alphanumeric sender ID: up to 11 letters, digits and spaces, at least one letter."""
_CHANNEL_ADDRESS = re.compile(r"[a-z]{2,16}:\+[1-9][0-9]{7,14}")
"""A number on another Twilio channel, such as `whatsapp:+18175155555`."""


def normalize_phone(raw: str, default_region: str = "US", *, field: str = "phone") -> str:
    """Return `raw` as an E.164 number; InvalidField(field) if it is not a phone number.

    A number phonenumbers considers valid is written in its E.164 form. A number already in
    E.164 form that it does not know (a Mexican mobile in the pre-2019 `+521` format, a new or
    test range) is kept as sent: its carrier delivered it, and refusing it would lose the
    message."""
    text = raw.strip()
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidField(field, "not a phone number") from exc
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if _E164.fullmatch(text):
        return text
    raise InvalidField(field, "not a valid phone number")


def normalize_sms_sender(raw: str, *, field: str = "From") -> str:
    """The contact for a text's sender as Twilio reported it (a verified request).

    An E.164 number is normalised by `normalize_phone`; a short code (3 to 8 digits), an
    alphanumeric sender ID or a number on another channel (`whatsapp:+1...`) is kept as sent.
    InvalidField(field) only for what no Twilio sender looks like."""
    text = raw.strip()
    if text.startswith("+"):
        return normalize_phone(text, field=field)
    if (
        _SHORT_CODE.fullmatch(text)
        or _ALPHANUMERIC_SENDER.fullmatch(text)
        or _CHANNEL_ADDRESS.fullmatch(text)
    ):
        return text
    raise InvalidField(field, "not a phone number, short code or sender ID")


def normalize_addr_spec(addr: str, *, field: str = "email") -> str:
    """One bare address (no display name) in its normal form, lower-cased; InvalidField(field)
    unless mail can be sent to it."""
    try:
        checked = validate_email(
            addr.strip(),
            check_deliverability=False,
            allow_quoted_local=True,
            allow_domain_literal=True,
        )
    except EmailNotValidError as exc:
        raise InvalidField(field, "not an email address") from exc
    return checked.normalized.lower()


def parse_address(raw: str, *, field: str = "email") -> tuple[str | None, str]:
    """Split one address ("Jane Doe <jane@x.edu>") into (display name, lower-cased address)."""
    pairs = [(name, addr) for name, addr in getaddresses([raw]) if name or addr]
    if len(pairs) != 1:
        raise InvalidField(field, "expected exactly one email address")
    name, addr = pairs[0]
    return (name.strip() or None), normalize_addr_spec(addr, field=field)


def normalize_email(raw: str, *, field: str = "email") -> str:
    """The lower-cased address in `raw`; InvalidField(field) unless it holds exactly one."""
    return parse_address(raw, field=field)[1]
