"""The notifier's domain errors.

Two families, so a consumer needs only two ``except`` clauses:

- ``PermanentError``: this message can never be built or delivered as requested
  (unknown template, bad context, 5xx SMTP reply, 4xx provider reply). Dead-letter it; do not retry.
- ``TransientError``: the environment failed (4xx SMTP reply, 5xx/429 provider reply, refused
  connection, timeout, disconnect). Retry with backoff. Three kinds of it the lanes treat apart:
  ``UncertainSendError`` (the provider may have created the message: look before sending again),
  ``AuthenticationFailed`` (the provider refused the notifier's credentials: keep retrying,
  loudly, until an operator fixes them) and ``RateLimited`` (the provider asked us to slow
  down: wait at least as long as it said, whatever else succeeds meanwhile).

Error text never carries addresses, phone numbers or message bodies.
"""

from __future__ import annotations


class NotifierError(Exception):
    """Base of every error the notifier's builders and adapters raise."""


class PermanentError(NotifierError):
    """Retrying cannot help; the consumer dead-letters the command."""


class TransientError(NotifierError):
    """Retrying later may help; the consumer retries with backoff."""


class TemplateMissing(PermanentError):
    """No template exists for this kind on this channel."""

    def __init__(self, kind: str, channel: str, template: str) -> None:
        super().__init__(f"no {channel} template for {kind!r} ({template})")
        self.kind = kind
        self.channel = channel
        self.template = template


class InvalidContext(PermanentError):
    """The context lacks a key a template needs, or a value has the wrong type."""

    def __init__(self, kind: str, problems: list[str]) -> None:
        super().__init__(f"invalid context for {kind!r}: " + "; ".join(problems))
        self.kind = kind
        self.problems = problems


class TransientSendError(TransientError):
    """Delivery failed for a reason that may go away (4xx SMTP, 5xx/429 HTTP, network).

    ``retry_after_s``: how long the provider asked us to wait (a 503's or 429's Retry-After,
    capped; None when it said nothing). The retry comes no sooner."""

    def __init__(
        self, reason: str, *, code: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(reason if code is None else f"{reason} (code {code})")
        self.code = code
        self.retry_after_s = retry_after_s


class UncertainSendError(TransientSendError):
    """The request may have reached the provider and created the message (a read timeout, a
    connection lost after the request went out, a 5xx, a 2xx without a message id): the next
    attempt first asks the provider whether it exists (sms_delivery.py)."""


class RateLimited(TransientSendError):
    """The provider is refusing requests for now (HTTP 429); the message did not reach it.

    Retried no sooner than ``retry_after_s`` (its Retry-After, capped; None when it said
    nothing), and never pulled forward by another message's success on the lane: that says the
    provider is up, not that its limit has lifted."""


class AuthenticationFailed(TransientSendError):
    """The provider refused the notifier's credentials (Twilio 401, or 403 with an
    authentication code; SMTP 530/534/535/538). Retried with backoff and never given up for it,
    logged at ERROR and counted, so an operator fixes the token while the messages wait."""


class PermanentSendError(PermanentError):
    """Delivery was refused for good (5xx SMTP, 4xx HTTP, bad recipient, bad config).

    ``code`` is the SMTP or HTTP status; ``provider_code`` the provider's own reason for the
    refusal when it gives one (Twilio's error code: 21610 unsubscribed, 21211 invalid To, ...),
    announced so the desk can say why in words."""

    def __init__(
        self,
        reason: str,
        *,
        code: int | None = None,
        provider_code: int | None = None,
        status: str | None = None,
    ) -> None:
        super().__init__(reason if code is None else f"{reason} (code {code})")
        self.code = code
        self.provider_code = provider_code
        self.status = status
        """An SMTP refusal's enhanced status code (RFC 3463, "5.1.1"), when the relay gave
        one: announced so the desk can say why in words."""


class ChatEnded(PermanentSendError):
    """The chat platform answered 404 or 410: the chat is over, and a message into it cannot
    be seen. What happens every day a patron leaves, so it is settled as not delivered (the
    transcript says why), with no dead letter and no page for it."""


class OptedOut(PermanentSendError):
    """The patron's number texted STOP (consent.py): refdesk sends it nothing more, and says so
    with Twilio's own code for it (21610), without asking Twilio."""

    def __init__(self) -> None:
        super().__init__("the number opted out of texts (STOP)", provider_code=21610)


class TemplateInvalid(PermanentError):
    """A template does not compile; fix the template, then replay the dead letters."""

    def __init__(self, template: str, reason: str) -> None:
        super().__init__(f"template {template} is invalid: {reason}")
        self.template = template


class BodyTooLong(PermanentSendError):
    """Twilio error 21617: the body is over the Messages API's length limit. The SMS lane sends
    the rest of the text in smaller parts; it is permanent only when no smaller part helps."""


class SettingsRefused(AuthenticationFailed):
    """The provider refuses the notifier's own settings, not the message: a mail relay that does
    not offer the STARTTLS or AUTH they require, a From number or account Twilio does not know
    as the notifier's. An operator's fix, as refused credentials are, so the messages wait for
    it (retried, never given up for it, logged at ERROR and counted) rather than being dropped:
    a relay that failed to load its certificate stops offering STARTTLS, and every email, CARE
    Team alerts included, had been given up on at its first attempt."""


class Unconfirmed(UncertainSendError):
    """The relay took the whole message and did not confirm it in time (no reply after the
    message's final dot, or the connection lost there): it may have it, and a second copy may
    reach the patron (with the same Message-ID)."""
