"""What the webhook endpoints document in OpenAPI: problem answers, success bodies and examples.

Kept apart from the routes so a route reads as what it does; `tests/integration/ingest/
test_openapi_schemathesis.py` holds the documents to the answers.
"""

from __future__ import annotations

from typing import Any

from shared.http import PROBLEM

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SMS_STATUS_EXAMPLE = (
    "MessageSid=SM0123456789abcdef0123456789abcdef&MessageStatus=undelivered&ErrorCode=30007"
    "&AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B18175550100&To=%2B18175550123"
    "&ApiVersion=2010-04-01"
)
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
    413: "Body over its limit (REFDESK_INGEST_MAX_EMAIL_BODY_BYTES for email, "
    "REFDESK_MAX_BODY_BYTES otherwise)",
    415: "Unsupported content type",
    422: "A field is missing or invalid",
    503: "Broker or message store unavailable: the message was not recorded; retry after "
    "Retry-After",
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


def ok(media_type: str, schema: dict[str, Any], description: str) -> dict[int | str, Any]:
    """An OpenAPI 200 entry with one media type and its schema."""
    return {200: {"description": description, "content": {media_type: {"schema": schema}}}}


TWIML_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Stored (or a duplicate or blocked sender): an empty TwiML reply",
        "content": {"text/xml": {"schema": {"type": "string"}, "example": TWIML}},
    }
}
JSON_OK = ok("application/json", ACCEPTED_SCHEMA, "Stored, a duplicate, blocked, or ignored")
FORM_ERRORS = problems(400, 401, 403, 413, 415, 422, 503)
RAW_ERRORS = problems(400, 401, 403, 413, 415, 422, 503)


def form_body(example: str) -> dict[str, Any]:
    """An OpenAPI form-encoded request body with its example."""
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


MAILGUN_EXAMPLE = (
    "sender=ana%40example.edu&subject=Lost+book&body-plain=Hi"
    "&Message-Id=%3Cm1%40example.edu%3E&timestamp=1700000000"
    "&token=abc&signature=0"
)
MIME_BODY: dict[str, Any] = {
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
}
CHAT_BODY: dict[str, Any] = {
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
}
