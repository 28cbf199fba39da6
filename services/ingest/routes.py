"""The webhook endpoints. Each answers 2xx only after the broker acknowledged the event."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from services.ingest.metrics import REQUESTS, SIGNATURE_FAILURES
from services.ingest.providers.chat import parse_chat_event, verify_chat_webhook
from services.ingest.providers.errors import (
    InvalidSignature,
    ProviderError,
    ReplayedToken,
    UnsupportedMedia,
)
from services.ingest.providers.mailgun import parse_mailgun_form, verify_mailgun
from services.ingest.providers.mime import parse_mime
from services.ingest.providers.twilio import parse_twilio_sms, verify_twilio_signature
from services.ingest.service import BrokerUnavailable, Ingest
from services.ingest.settings import IngestSettings
from services.ingest.translate import chat_event
from shared.events import derived_id
from shared.http import PROBLEM, problem

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SMS_EXAMPLE = (
    "MessageSid=SM0123456789abcdef0123456789abcdef"
    "&AccountSid=AC0123456789abcdef0123456789abcdef"
    "&From=%2B18175550123&To=%2B18175550100&Body=can+i+renew+my+book&NumMedia=0"
)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "additionalProperties": True,
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "the offending field (never its value)",
        },
    },
}
_REASONS = {
    400: "Malformed body",
    401: "Signature (or token) missing",
    403: "Signature refused: forged, stale or replayed",
    404: "Not found",
    413: "Body over REFDESK_MAX_BODY_BYTES",
    415: "Unsupported content type",
    422: "A field is missing or invalid",
    503: "Broker unavailable: the message was not stored; retry after Retry-After",
}
ACCEPTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"enum": ["accepted", "duplicate", "blocked", "ignored"]}},
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for RFC 9457 problem answers (503 with Retry-After)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {
            "description": _REASONS[code],
            "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}},
        }
        if code == 503:
            out[code]["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait (REFDESK_RETRY_AFTER_S)",
                    "required": True,
                    "schema": {"type": "integer"},
                }
            }
    return out


def _ok(media_type: str, schema: dict[str, Any], description: str) -> dict[int | str, Any]:
    return {200: {"description": description, "content": {media_type: {"schema": schema}}}}


TWIML_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Stored (or a duplicate or blocked sender): an empty TwiML reply",
        "content": {"text/xml": {"schema": {"type": "string"}, "example": TWIML}},
    }
}
JSON_OK = _ok("application/json", ACCEPTED_SCHEMA, "Stored, a duplicate, blocked, or ignored")
FORM_ERRORS = problems(400, 401, 403, 413, 415, 422, 503)
RAW_ERRORS = problems(401, 403, 413, 415, 422, 503)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _form_body(example: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object"},
                    "example": example,
                }
            },
        }
    }


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


def build_router(ingest: Ingest, settings: IngestSettings) -> APIRouter:
    """Routes for SMS (Twilio), email (Mailgun and raw MIME) and chat platform webhooks."""
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])
    twilio_token, mailgun_key, chat_secret = settings.secrets()

    def url_of(request: Request) -> str:
        url = settings.public_base_url.rstrip("/") + request.url.path
        return f"{url}?{request.url.query}" if request.url.query else url

    @router.post(
        "/sms",
        summary="Twilio inbound SMS",
        openapi_extra=_form_body(SMS_EXAMPLE),
        response_class=Response,
        responses={**TWIML_OK, **FORM_ERRORS},
    )
    async def sms(
        request: Request, x_twilio_signature: Annotated[str | None, Header()] = None
    ) -> Response:
        if _media_type(request) not in FORM_TYPES:
            return _error("sms", _unsupported())
        try:
            form = await request.form()
            params = list(form.multi_items())
            verify_twilio_signature(
                auth_token=twilio_token,
                url=url_of(request),
                params=[(k, str(v)) for k, v in params],
                signature=x_twilio_signature,
            )
            outcome = await ingest.accept_sms(parse_twilio_sms([(k, str(v)) for k, v in params]))
        except ProviderError as exc:
            return _error("sms", exc)
        except BrokerUnavailable:
            return _unavailable("sms", settings.retry_after_s)
        REQUESTS.labels(channel="sms", outcome=outcome).inc()
        return Response(TWIML, media_type="text/xml")

    @router.post(
        "/email",
        summary="Mailgun inbound route",
        response_class=Response,
        openapi_extra=_form_body(
            "sender=ana%40example.edu&subject=Lost+book&body-plain=Hi"
            "&Message-Id=%3Cm1%40example.edu%3E&timestamp=1700000000"
            "&token=abc&signature=0"
        ),
        responses={**JSON_OK, **FORM_ERRORS},
    )
    async def email(request: Request) -> Response:
        if _media_type(request) not in FORM_TYPES:
            return _error("email", _unsupported())
        try:
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
            mail = parse_mailgun_form(form)
            message_key = derived_id("email", mail.message_id)
            # The signature covers only timestamp and token, so the token is bound to this
            # message before anything is accepted, by a unique insert that wins or loses: the
            # same token with another message is a replay (even sent at the same moment); with
            # the same message it is Mailgun retrying.
            if await ingest.store.claim("mailgun-token", token, message_key) != message_key:
                raise ReplayedToken("token", "already used")
            outcome = await ingest.accept_email(mail, provider="mailgun")
        except ProviderError as exc:
            return _error("email", exc)
        except BrokerUnavailable:
            return _unavailable("email", settings.retry_after_s)
        REQUESTS.labels(channel="email", outcome=outcome).inc()
        return _accepted(outcome)

    @router.post(
        "/email/mime",
        summary="Raw RFC 5322 message (Standard Webhooks signed)",
        response_class=Response,
        responses={**JSON_OK, **RAW_ERRORS},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "message/rfc822": {
                        "schema": {"type": "string"},
                        "example": "From: a@example.edu\r\nMessage-ID: <m@x>\r\n"
                        "Subject: hours\r\n\r\nWhen do you open?",
                    }
                },
            }
        },
    )
    async def email_mime(request: Request) -> Response:
        if _media_type(request) != "message/rfc822":
            return _error("email", _unsupported())
        body = await request.body()
        try:
            verify_chat_webhook(secret=chat_secret, headers=dict(request.headers), body=body)
            outcome = await ingest.accept_email(parse_mime(body), provider="mime")
        except ProviderError as exc:
            return _error("email", exc)
        except BrokerUnavailable:
            return _unavailable("email", settings.retry_after_s)
        REQUESTS.labels(channel="email", outcome=outcome).inc()
        return _accepted(outcome)

    @router.post(
        "/chat",
        summary="Chat platform lifecycle event (Standard Webhooks signed)",
        response_class=Response,
        responses={**JSON_OK, **RAW_ERRORS},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "object"},
                        "example": {
                            "type": "chat.message",
                            "timestamp": "2026-01-06T14:02:11Z",
                            "data": {
                                "conversation_id": "chat-81234",
                                "message_id": "msg-5531",
                                "text": "How do I cite a journal article in APA?",
                            },
                        },
                    }
                },
            }
        },
    )
    async def chat(request: Request) -> Response:
        if _media_type(request) != "application/json":
            return _error("chat", _unsupported())
        body = await request.body()
        try:
            verify_chat_webhook(secret=chat_secret, headers=dict(request.headers), body=body)
            parsed = parse_chat_event(body)
            webhook_id = request.headers["webhook-id"]
            outcome = await ingest.accept_platform(
                chat_event(parsed, webhook_id=webhook_id), webhook_id=webhook_id
            )
        except ProviderError as exc:
            return _error("chat", exc)
        except BrokerUnavailable:
            return _unavailable("chat", settings.retry_after_s)
        REQUESTS.labels(channel="chat", outcome=outcome).inc()
        return _accepted(outcome)

    return router


def _s(value: object) -> str | None:
    return None if value is None else str(value)


def _unsupported() -> ProviderError:
    return UnsupportedMedia("content-type", "unsupported content type")


def _accepted(outcome: str) -> Response:
    return Response(f'{{"status": "{outcome}"}}', media_type="application/json", status_code=200)
