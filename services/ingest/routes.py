"""The webhook endpoints. Each answers 2xx only after the broker acknowledged the event.

A route checks the media type, reads the body, verifies and parses it and hands it to the
`Ingest` use case; `_answer` maps what can go wrong to problem answers for every route alike.
Every path is also served with a trailing slash, as a provider may be configured with it: the
request is answered there (a redirect would send the provider to the address ingest sees
behind its proxy, and Twilio signs the URL as configured).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from services.ingest.errors import StoreUnavailable, store_failure
from services.ingest.metrics import (
    PREVIOUS_SECRET_ACCEPTED,
    PREVIOUS_SECRET_SET,
    REQUESTS,
    SIGNATURE_FAILURES,
)
from services.ingest.multipart import CloseDelimiter, boundary_of
from services.ingest.openapi import (
    CHAT_BODY,
    FORM_ERRORS,
    JSON_OK,
    MAILGUN_BODY,
    MIME_BODY,
    RAW_ERRORS,
    SMS_EXAMPLE,
    SMS_STATUS_EXAMPLE,
    TWIML,
    TWIML_OK,
    form_body,
)
from services.ingest.providers.chat import parse_chat_event, verify_chat_webhook
from services.ingest.providers.errors import (
    InvalidSignature,
    MalformedBody,
    ProviderError,
    UnsupportedMedia,
)
from services.ingest.providers.mailgun import parse_mailgun_form, verify_mailgun
from services.ingest.providers.mime import parse_mime
from services.ingest.providers.twilio import (
    SETTINGS_HEADER,
    parse_twilio_sms,
    parse_twilio_status,
    signing_secret,
    verify_twilio_signature,
)
from services.ingest.service import BrokerUnavailable, Ingest
from services.ingest.settings import IngestSettings
from services.ingest.translate import chat_event
from shared.http import problem
from shared.logs import REPEATING

log = logging.getLogger(__name__)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
EMAIL_PATHS = frozenset({"/webhooks/email", "/webhooks/email/mime"})
"""The paths whose bodies may be as large as REFDESK_INGEST_MAX_EMAIL_BODY_BYTES."""
MAX_EMAIL_FILES = 1000
"""Most file parts a Mailgun post may carry (Starlette's default); each is spooled to a
temporary file past 1 MiB, read for its length only and deleted when the request ends."""


def _post(router: APIRouter, path: str, **options: Any) -> Callable[[Any], Any]:
    """Register a POST route at `path` and at `path/` (kept out of the OpenAPI document)."""
    plain = router.post(path, **options)
    slashed = router.post(f"{path}/", **{**options, "include_in_schema": False})

    def register(endpoint: Any) -> Any:
        return plain(slashed(endpoint))

    return register


@contextlib.asynccontextmanager
async def _form(request: Request, **limits: int) -> AsyncIterator[FormData]:
    """The request's form, read within Starlette's limits (`max_part_size` for a text field,
    `max_files`, `max_fields`), its spooled files closed (and deleted) at the end; a body that
    cannot be parsed, or a multipart body without its closing boundary, is a MalformedBody
    (400)."""
    boundary = boundary_of(request.headers.get("content-type", ""))
    watch = None
    if _media_type(request) == "multipart/form-data" and boundary is not None:
        watch = CloseDelimiter(request.receive, boundary)
        request = Request(request.scope, watch)
    try:
        form = await request.form(**limits)
    except StarletteHTTPException as exc:  # Starlette's answer to a broken multipart body
        raise MalformedBody("body", str(exc.detail)) from exc
    except ClientDisconnect as exc:  # over the body limit: BodyLimit has answered 413
        raise MalformedBody("body", "the body was not received whole") from exc
    if watch is not None and not watch.seen:
        await form.close()
        raise MalformedBody("body", "the multipart body has no closing boundary")
    try:
        yield form
    finally:
        await form.close()


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _error(channel: str, exc: ProviderError) -> Response:
    if isinstance(exc, InvalidSignature) or exc.status in (401, 403):
        SIGNATURE_FAILURES.labels(channel=channel).inc()
    REQUESTS.labels(channel=channel, outcome=f"rejected_{exc.status}").inc()
    # what was refused and why, in refdesk's own words (never the body or a header's value);
    # a wrong secret after a rotation refuses every message of a channel, crises among them,
    # and had left no line at all (RefdeskWebhooksRefused pages on the counter)
    log.warning(
        "webhook refused",
        extra={
            "channel": channel,
            "status": exc.status,
            "error": type(exc).__name__,
            "field": exc.field,
            REPEATING: f"refused-{channel}-{exc.status}-{type(exc).__name__}",
        },
    )
    title = {
        400: "Malformed body",
        401: "Signature required",
        403: "Signature refused",
        415: "Unsupported media type",
        422: "Invalid field",
    }.get(exc.status, "Bad request")
    return problem(exc.status, title, exc.detail or None, field=exc.field)


def _store_unavailable(channel: str, retry_after: int, error: str) -> Response:
    # the error's type only: a driver's message can quote SQL parameters (patron data)
    log.warning("message store unavailable", extra={"channel": channel, "error": error})
    REQUESTS.labels(channel=channel, outcome="unavailable").inc()
    return problem(
        503,
        "Message store unavailable",
        "the message store is unavailable; nothing was recorded: retry later",
        retry_after=retry_after,
    )


def _unavailable(channel: str, retry_after: int) -> Response:
    REQUESTS.labels(channel=channel, outcome="unavailable").inc()
    return problem(
        503,
        "Broker unavailable",
        "the broker has not confirmed the message yet; retry later (a retry is never a second "
        "message)",
        retry_after=retry_after,
    )


async def _answer(
    channel: str,
    retry_after: int,
    accept: Callable[[], Awaitable[str]],
    reply: Callable[[str], Response],
) -> Response:
    """Run one webhook's verify-parse-accept; a provider error is its problem answer, an
    unavailable broker or database a 503 with Retry-After; the outcome is counted and
    answered."""
    try:
        outcome = await accept()
    except ProviderError as exc:
        return _error(channel, exc)
    except BrokerUnavailable:
        return _unavailable(channel, retry_after)
    except StoreUnavailable as exc:
        return _store_unavailable(channel, retry_after, exc.error)
    except Exception as exc:
        if not store_failure(exc):
            # answered 500 by the problem handler: counted, so the unavailable alert sees it
            REQUESTS.labels(channel=channel, outcome="error").inc()
            raise
        return _store_unavailable(channel, retry_after, type(exc).__name__)
    REQUESTS.labels(channel=channel, outcome=outcome).inc()
    return reply(outcome)


def either(verify: Callable[[str], None], current: str, previous: str | None, *, kind: str) -> None:
    """Verify a signature with the current secret, else (a secret being rotated, its previous
    value still set) with the previous one, counted (`PREVIOUS_SECRET_ACCEPTED`: the operator
    removes the previous secret once none are); the current one's refusal stands otherwise."""
    try:
        verify(current)
    except InvalidSignature:
        if previous is None:
            raise
        verify(previous)
        PREVIOUS_SECRET_ACCEPTED.labels(secret=kind).inc()


def build_router(ingest: Ingest, settings: IngestSettings) -> APIRouter:
    """Routes for SMS (Twilio), email (Mailgun and raw MIME) and chat platform webhooks."""
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])
    twilio_token, mailgun_key, chat_secret = settings.secrets()
    old_twilio, old_mailgun, old_chat = settings.previous_secrets()
    for name, previous in (("twilio", old_twilio), ("mailgun", old_mailgun), ("webhook", old_chat)):
        PREVIOUS_SECRET_SET.labels(secret=name).set(previous is not None)
        PREVIOUS_SECRET_ACCEPTED.labels(secret=name)  # the series exists from the start
    twilio_shared_key = settings.twilio_shared_key()
    retry_after = settings.retry_after_s
    email_limits = {
        "max_part_size": settings.ingest_max_email_body_bytes,
        "max_files": MAX_EMAIL_FILES,
    }

    def verify_standard_webhook(request: Request, body: bytes) -> None:
        headers = dict(request.headers)
        either(
            lambda secret: verify_chat_webhook(secret=secret, headers=headers, body=body),
            chat_secret,
            old_chat,
            kind="webhook",
        )

    def url_of(request: Request) -> str:
        url = settings.public_base_url.rstrip("/") + request.url.path
        return f"{url}?{request.url.query}" if request.url.query else url

    async def twilio_params(request: Request, signature: str | None) -> list[tuple[str, str]]:
        """A Twilio webhook's form parameters, once its signature is verified."""
        async with _form(request) as form:
            params = [(k, str(v)) for k, v in form.multi_items()]
        settings_header = request.headers.get(SETTINGS_HEADER)

        def verify(token: str) -> None:
            key, algorithm = signing_secret(
                settings_header, auth_token=token, shared_key=twilio_shared_key
            )
            verify_twilio_signature(
                auth_token=key,
                url=url_of(request),
                params=params,
                signature=signature,
                algorithm=algorithm,
                fragment=settings.ingest_twilio_url_fragment,
            )

        # a SharedKey signature does not use the Auth Token: the previous token changes nothing
        either(verify, twilio_token, None if settings_header else old_twilio, kind="twilio")
        return params

    @_post(
        router,
        "/sms",
        summary="Twilio inbound SMS",
        openapi_extra=form_body(SMS_EXAMPLE),
        response_class=Response,
        responses={**TWIML_OK, **FORM_ERRORS},
    )
    async def sms(
        request: Request, x_twilio_signature: Annotated[str | None, Header()] = None
    ) -> Response:
        if _media_type(request) not in FORM_TYPES:
            return _error("sms", _unsupported())

        async def accept() -> str:
            params = await twilio_params(request, x_twilio_signature)
            return await ingest.accept_sms(parse_twilio_sms(params))

        return await _answer("sms", retry_after, accept, _twiml)

    @_post(
        router,
        "/sms/status",
        summary="Twilio status callback for a text refdesk sent",
        openapi_extra=form_body(SMS_STATUS_EXAMPLE),
        response_class=Response,
        responses={**JSON_OK, **FORM_ERRORS},
    )
    async def sms_status(
        request: Request, x_twilio_signature: Annotated[str | None, Header()] = None
    ) -> Response:
        if _media_type(request) not in FORM_TYPES:
            return _error("sms_status", _unsupported())

        async def accept() -> str:
            params = await twilio_params(request, x_twilio_signature)
            return await ingest.accept_sms_status(
                parse_twilio_status(params, now=datetime.now(UTC))
            )

        return await _answer("sms_status", retry_after, accept, _accepted)

    @_post(
        router,
        "/email",
        summary="Mailgun inbound route",
        response_class=Response,
        openapi_extra=MAILGUN_BODY,
        responses={**JSON_OK, **FORM_ERRORS},
    )
    async def email(request: Request) -> Response:
        if _media_type(request) not in FORM_TYPES:
            return _error("email", _unsupported())

        async def accept() -> str:
            async with _form(request, **email_limits) as received:
                form = {k: v for k, v in received.items()}
                token = str(form.get("token") or "")
                either(
                    lambda key: verify_mailgun(
                        signing_key=key,
                        timestamp=_s(form.get("timestamp")),
                        token=token,
                        signature=_s(form.get("signature")),
                        now=time.time(),
                        tolerance_s=settings.signature_tolerance_s,
                    ),
                    mailgun_key,
                    old_mailgun,
                    kind="mailgun",
                )
                mail = parse_mailgun_form(form)
            return await ingest.accept_mailgun(mail, token=token)

        return await _answer("email", retry_after, accept, _accepted)

    @_post(
        router,
        "/email/mime",
        summary="Raw RFC 5322 message (Standard Webhooks signed)",
        response_class=Response,
        responses={**JSON_OK, **RAW_ERRORS},
        openapi_extra=MIME_BODY,
    )
    async def email_mime(request: Request) -> Response:
        if _media_type(request) != "message/rfc822":
            return _error("email", _unsupported())
        body = await request.body()

        async def accept() -> str:
            verify_standard_webhook(request, body)
            return await ingest.accept_email(parse_mime(body), provider="mime")

        return await _answer("email", retry_after, accept, _accepted)

    @_post(
        router,
        "/chat",
        summary="Chat platform lifecycle event (Standard Webhooks signed)",
        response_class=Response,
        responses={**JSON_OK, **RAW_ERRORS},
        openapi_extra=CHAT_BODY,
    )
    async def chat(request: Request) -> Response:
        if _media_type(request) != "application/json":
            return _error("chat", _unsupported())
        body = await request.body()

        async def accept() -> str:
            verify_standard_webhook(request, body)
            parsed = parse_chat_event(body)
            webhook_id = request.headers["webhook-id"]
            return await ingest.accept_platform(
                chat_event(parsed, webhook_id=webhook_id, now=datetime.now(UTC)),
                webhook_id=webhook_id,
            )

        return await _answer("chat", retry_after, accept, _accepted)

    return router


def _s(value: object) -> str | None:
    return None if value is None else str(value)


def _unsupported() -> ProviderError:
    return UnsupportedMedia("content-type", "unsupported content type")


def _twiml(_outcome: str) -> Response:
    return Response(TWIML, media_type="text/xml")


def _accepted(outcome: str) -> Response:
    return Response(f'{{"status": "{outcome}"}}', media_type="application/json", status_code=200)
