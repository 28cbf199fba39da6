"""Errors raised while verifying or parsing a provider request.

Each carries the HTTP status a route should answer with and the offending field.
`detail` never repeats the field's value: values are student data (phones, emails, text).
"""

from __future__ import annotations


class ProviderError(Exception):
    """A provider request was refused; `status` is the HTTP status, `field` what was wrong."""

    status: int = 400

    def __init__(self, field: str | None = None, detail: str = "") -> None:
        self.field = field
        self.detail = detail
        super().__init__(f"{field}: {detail}" if field else detail)


class InvalidSignature(ProviderError):
    """The request's signature (or other authentication material) does not verify."""

    status = 403


class MissingSignature(ProviderError):
    """The request carries no signature at all."""

    status = 401


class StaleTimestamp(InvalidSignature):
    """The signature verifies (or would) but its timestamp is outside the tolerance window.

    403 like InvalidSignature, of which it is a kind: the sender did authenticate, with
    credentials that are no longer acceptable; 401 would ask it to send credentials (and
    require a WWW-Authenticate header). Subclassing lets a route catch both at once.
    """


class ReplayedToken(InvalidSignature):
    """A signature token (Mailgun `token`, Standard Webhooks `webhook-id`) was already used.

    Raised by the caller's token store, not by this package, which does no I/O.
    """


class MalformedBody(ProviderError):
    """The body cannot be parsed at all (truncated or invalid JSON, invalid UTF-8, broken
    multipart): 400. A body that parses but has the wrong shape is an InvalidField (422)."""

    status = 400


class InvalidField(ProviderError):
    """A field is missing or malformed."""

    status = 422

    def __init__(self, field: str, detail: str = "invalid") -> None:
        super().__init__(field, detail)


class UnknownEventType(InvalidField):
    """A webhook names an event type this service does not handle."""


class UnsupportedMedia(ProviderError):
    """The request or message carries no content type this service can read."""

    status = 415
