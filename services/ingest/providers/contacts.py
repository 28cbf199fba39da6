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


def is_machine_sender(contact: str) -> bool:
    """Whether a text's sender is a service, not a person's phone: a short code or an
    alphanumeric sender ID (a verification code, a campus alert). Neither can take a reply."""
    return bool(_SHORT_CODE.fullmatch(contact) or _ALPHANUMERIC_SENDER.fullmatch(contact))


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


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=")
"""An RFC 2047 encoded word: decoded only once the header's structure is read, so a comma, an
angle bracket or an address inside one belongs to a name (RFC 2047 section 6.1)."""
_ADDRESS_IN_NAME = re.compile(r"[^\s<>()\[\]\",;:@]+@[^\s<>()\[\]\",;:@]+")


def written_addresses(raw: str) -> list[str]:
    """The addresses an address header names, read from its raw value (encoded words still
    encoded), each as written: what the header's structure really holds.

    Python's email policy folds a malformed list into one address of its choosing
    (`victim@my.tccd.edu <attacker@evil.example>` is read as the victim's), and a display name
    decoded first can change the structure; the value as written names two."""
    return [a for n, a in getaddresses([_ENCODED_WORD.sub("word", raw)]) if n or a]


def sole_address(raw: str) -> str | None:
    """The one address an address header's raw value names (`written_addresses`), in its
    normal form; None when it names none, more than one, or one no mail can reach."""
    found = written_addresses(raw)
    if len(found) != 1:
        return None
    try:
        return normalize_addr_spec(found[0])
    except InvalidField:
        return None


def names_another_address(name: str | None, address: str) -> bool:
    """Whether a display name holds an address other than `address`: a reader (and a mail
    client) takes `"victim@my.tccd.edu" <attacker@evil.example>` for the name's."""
    for found in _ADDRESS_IN_NAME.findall(name or ""):
        try:
            written = normalize_addr_spec(found)
        except InvalidField:
            written = found.lower()
        if written != address:
            return True
    return False


def plain_from(raw: str, name: str | None, address: str | None) -> bool:
    """Whether a From as written (`raw`) names one sender plainly, given the name and address
    read from it: not several addresses, not another one than was read, and no other address
    as its display name. A From that is not plain may have been checked by the receiving
    system as someone else's (`services.ingest.providers.authenticity`)."""
    if len(written_addresses(raw)) > 1:
        return False
    if address is None:  # nothing was read from it: it names no one
        return True
    return sole_address(raw) == address and not names_another_address(name, address)


def normalize_email(raw: str, *, field: str = "email") -> str:
    """The lower-cased address in `raw`; InvalidField(field) unless it holds exactly one."""
    return parse_address(raw, field=field)[1]
