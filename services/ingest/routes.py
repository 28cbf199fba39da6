"""The webhook endpoints. Each answers 2xx only after the broker acknowledged the event.

A route checks the media type, reads the body, verifies and parses it and hands it to the
`Ingest` use case; `_answer` maps what can go wrong to problem answers for every route alike.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from services.ingest.metrics import REQUESTS, SIGNATURE_FAILURES
from services.ingest.openapi import (
    CHAT_BODY,
    FORM_ERRORS,
    JSON_OK,
    MAILGUN_EXAMPLE,
    MIME_BODY,
    RAW_ERRORS,
    SMS_EXAMPLE,
    TWIML,
    TWIML_OK,
    form_body,
)
from services.ingest.providers.chat import parse_chat_event, verify_chat_webhook
from services.ingest.providers.errors import InvalidSignature, ProviderError, UnsupportedMedia
from services.ingest.providers.mailgun import parse_mailgun_form, verify_mailgun
from services.ingest.providers.mime import parse_mime
from services.ingest.providers.twilio import parse_twilio_sms, verify_twilio_signature
from services.ingest.service import BrokerUnavailable, Ingest
from services.ingest.settings import IngestSettings
from services.ingest.translate import chat_event
from shared.http import problem

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _error(channel: str, exc: ProviderError) -> Response:
    if isinstance(exc, InvalidSignature) or exc.status in (401, 403):
        SIGNATURE_FAILURES.labels(channel=channel).inc()
    REQUESTS.labels(channel=channel, outcome=f"rejected_{exc.status}").inc()
    title = {
        401: "Signature required",
        403: "Signature refused",
        415: "Unsupported media type",
        422: "Invalid field",
    }.get(exc.status, "Bad request")
    return problem(exc.status, title, exc.detail or None, field=exc.field)


def _unavailable(channel: str, retry_after: int) -> Response:
    REQUESTS.labels(channel=channel, outcome="unavailable").inc()
    return problem(
        503,
        "Broker unavailable",
        "the message was not stored; retry later",
        retry_after=retry_after,
    )


async def _answer(
    channel: str,
    retry_after: int,
    accept: Callable[[], Awaitable[str]],
    reply: Callable[[str], Response],
) -> Response:
    """Run one webhook's verify-parse-accept; a provider error is its problem answer, an
    unavailable broker a 503 with Retry-After; the outcome is counted and answered."""
    try:
        outcome = await accept()
    except ProviderError as exc:
        return _error(channel, exc)
    except BrokerUnavailable:
        return _unavailable(channel, retry_after)
    REQUESTS.labels(channel=channel, outcome=outcome).inc()
    return reply(outcome)


def build_router(ingest: Ingest, settings: IngestSettings) -> APIRouter:
    """Routes for SMS (Twilio), email (Mailgun and raw MIME) and chat platform webhooks."""
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])
    twilio_token, mailgun_key, chat_secret = settings.secrets()
    retry_after = settings.retry_after_s

    def url_of(request: Request) -> str:
        url = settings.public_base_url.rstrip("/") + request.url.path
        return f"{url}?{request.url.query}" if request.url.query else url

    @router.post(
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
            params = [(k, str(v)) for k, v in (await request.form()).multi_items()]
            verify_twilio_signature(
                auth_token=twilio_token,
                url=url_of(request),
                params=params,
                signature=x_twilio_signature,
            )
            return await ingest.accept_sms(parse_twilio_sms(params))

        return await _answer("sms", retry_after, accept, _twiml)

    @router.post(
        "/email",
        summary="Mailgun inbound route",
        response_class=Response,
        openapi_extra=form_body(MAILGUN_EXAMPLE),
        responses={**JSON_OK, **FORM_ERRORS},
    )
    async def email(request: Request) -> Response:
        if _media_type(request) not in FORM_TYPES:
            return _error("email", _unsupported())

        async def accept() -> str:
            form = {k: v for k, v in (await request.form()).items()}
            token = str(form.get("token") or "")
            verify_mailgun(
                signing_key=mailgun_key,
                timestamp=_s(form.get("timestamp")),
                token=token,
                signature=_s(form.get("signature")),
                now=time.time(),
                tolerance_s=settings.signature_tolerance_s,
            )
            return await ingest.accept_mailgun(parse_mailgun_form(form), token=token)

        return await _answer("email", retry_after, accept, _accepted)

    @router.post(
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
            verify_chat_webhook(secret=chat_secret, headers=dict(request.headers), body=body)
            return await ingest.accept_email(parse_mime(body), provider="mime")

        return await _answer("email", retry_after, accept, _accepted)

    @router.post(
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
            verify_chat_webhook(secret=chat_secret, headers=dict(request.headers), body=body)
            parsed = parse_chat_event(body)
            webhook_id = request.headers["webhook-id"]
            return await ingest.accept_platform(
                chat_event(parsed, webhook_id=webhook_id), webhook_id=webhook_id
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
