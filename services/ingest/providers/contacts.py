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

from email.utils import getaddresses

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from services.ingest.providers.errors import InvalidField


def normalize_phone(raw: str, default_region: str = "US", *, field: str = "phone") -> str:
    """Return `raw` as an E.164 number; InvalidField(field) if it is not a valid number."""
    try:
        number = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidField(field, "not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidField(field, "not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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
