"""What the webhook endpoints document in OpenAPI: problem answers, success bodies and examples.

Kept apart from the routes so a route reads as what it does; `tests/integration/ingest/
test_openapi_schemathesis.py` holds the documents to the answers.
"""

from __future__ import annotations

from typing import Any

from shared.openapi import problem_answers

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
    return problem_answers(_REASONS, *codes)


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
_TEXT = {"type": "string"}
MAILGUN_FIELDS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": True,
    "properties": {
        "from": _TEXT,
        "sender": _TEXT,
        "recipient": _TEXT,
        "subject": _TEXT,
        "body-plain": _TEXT,
        "stripped-text": _TEXT,
        "body-html": _TEXT,
        "Message-Id": _TEXT,
        "In-Reply-To": _TEXT,
        "References": _TEXT,
        "message-headers": {**_TEXT, "description": "JSON list of [name, value] pairs"},
        "timestamp": _TEXT,
        "token": _TEXT,
        "signature": {**_TEXT, "description": "hex HMAC-SHA256 of timestamp + token"},
    },
}
"""The Mailgun route's fields refdesk reads (docs/ingest.md), in either form encoding."""
MAILGUN_FILES: dict[str, Any] = {
    **MAILGUN_FIELDS,
    "properties": {
        **MAILGUN_FIELDS["properties"],
        "attachment-count": _TEXT,
        "attachment-1": {
            "type": "string",
            "format": "binary",
            "description": "a file of the message (attachment-1 .. attachment-N, inline "
            "images included)",
        },
    },
}
MAILGUN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Mailgun posts multipart/form-data when the message has files, "
        "application/x-www-form-urlencoded otherwise",
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": MAILGUN_FIELDS,
                "example": MAILGUN_EXAMPLE,
            },
            "multipart/form-data": {
                "schema": MAILGUN_FILES,
                "example": {
                    "sender": "ana@example.edu",
                    "subject": "Lost book",
                    "body-plain": "Hi, the receipt is attached.",
                    "Message-Id": "<m1@example.edu>",
                    "timestamp": "1700000000",
                    "token": "abc",
                    "signature": "0",
                    "attachment-count": "1",
                },
            },
        },
    }
}
"""The email route's body: both encodings Mailgun sends (a form of one had been documented,
and every email with a file arrives in the other)."""
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
