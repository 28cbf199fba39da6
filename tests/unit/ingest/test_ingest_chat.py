"""Chat platform webhooks: Standard Webhooks signatures and the lifecycle event union."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

from services.ingest.providers.chat import (
    ChatEnded,
    ChatMessage,
    ChatStarted,
    ChatTransferred,
    TicketClosed,
    parse_chat_event,
    verify_chat_webhook,
)
from services.ingest.providers.errors import (
    InvalidField,
    InvalidSignature,
    MalformedBody,
    MissingSignature,
    StaleTimestamp,
    UnknownEventType,
)
from services.ingest.translate import chat_event
from shared.events import Channel, Patron, PatronRole

SECRET = "whsec_" + base64.b64encode(b"refdesk-chat-test-secret-32bytes").decode()
MESSAGE: dict[str, Any] = {
    "type": "chat.message",
    "timestamp": "2025-01-06T14:02:11Z",
    "data": {
        "conversation_id": "chat-81234",
        "message_id": "msg-5531",
        "sequence": 3,
        "author": "patron",
        "text": "How do I cite a journal article in APA?",
        "channel": "chat",
        "patron": {"name": "Jane Doe", "email": "Jane.Doe@my.tccd.edu", "role": "student"},
        "department": "reference",
        "campus": "campus-nw",
        "widget_version": "4.2",
    },
}


def signed(body: bytes, *, at: datetime | None = None, secret: str = SECRET) -> dict[str, str]:
    """Standard Webhooks headers for `body`, signed by the library at time `at`."""
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", at, body.decode())
    return {
        "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


BODY = json.dumps(MESSAGE).encode()


def test_valid_signature() -> None:
    verify_chat_webhook(secret=SECRET, headers=signed(BODY), body=BODY)


def test_header_names_are_case_insensitive() -> None:
    headers = {key.title(): value for key, value in signed(BODY).items()}
    verify_chat_webhook(secret=SECRET, headers=headers, body=BODY)


def test_rotated_keys_any_signature_matches() -> None:
    headers = signed(BODY)
    other = signed(BODY, secret="whsec_" + base64.b64encode(b"old-key").decode())
    headers["webhook-signature"] = f"{other['webhook-signature']} {headers['webhook-signature']}"
    verify_chat_webhook(secret=SECRET, headers=headers, body=BODY)


@pytest.mark.parametrize("age", [timedelta(minutes=6), timedelta(hours=2), -timedelta(minutes=6)])
def test_replay_outside_five_minutes_is_stale(age: timedelta) -> None:
    headers = signed(BODY, at=datetime.now(UTC) - age)
    with pytest.raises(StaleTimestamp) as caught:
        verify_chat_webhook(secret=SECRET, headers=headers, body=BODY)
    assert caught.value.field == "webhook-timestamp"
    assert caught.value.status == 403


def test_four_minutes_old_is_accepted() -> None:
    headers = signed(BODY, at=datetime.now(UTC) - timedelta(minutes=4))
    verify_chat_webhook(secret=SECRET, headers=headers, body=BODY)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b.replace(b"APA", b"MLA")),
        lambda h, b: ({**h, "webhook-id": "msg_other"}, b),
        lambda h, b: ({**h, "webhook-signature": "v1,AAAA"}, b),
        lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b),
        lambda h, b: ({**h, "webhook-signature": "garbage"}, b),
        lambda h, b: ({**h, "webhook-signature": "v1,***"}, b),
        lambda h, b: ({**h, "webhook-timestamp": "soon"}, b),
        lambda h, b: (h, b + b"\xff"),
    ],
)
def test_tampered_requests_are_invalid(tamper: Any) -> None:
    headers, body = tamper(signed(BODY), BODY)
    with pytest.raises(InvalidSignature) as caught:
        verify_chat_webhook(secret=SECRET, headers=headers, body=body)
    assert type(caught.value) is InvalidSignature


def test_wrong_secret_is_invalid() -> None:
    other = "whsec_" + base64.b64encode(b"someone-else").decode()
    with pytest.raises(InvalidSignature):
        verify_chat_webhook(secret=other, headers=signed(BODY), body=BODY)


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header(header: str) -> None:
    headers = {k: v for k, v in signed(BODY).items() if k != header}
    with pytest.raises(MissingSignature) as caught:
        verify_chat_webhook(secret=SECRET, headers=headers, body=BODY)
    assert (caught.value.field, caught.value.status) == (header, 401)


def test_chat_message() -> None:
    event = parse_chat_event(BODY)
    assert isinstance(event, ChatMessage)
    assert event.timestamp == datetime(2025, 1, 6, 14, 2, 11, tzinfo=UTC)
    assert event.data.conversation_id == "chat-81234"
    assert event.data.sequence == 3
    assert event.data.patron is not None
    assert event.data.patron.as_patron() == Patron(
        contact="jane.doe@my.tccd.edu", name="Jane Doe", role=PatronRole.STUDENT
    )


@pytest.mark.parametrize("author", ["staff", "refdesk", "Refdesk"])
def test_a_message_not_the_patrons_is_read_and_not_recorded(author: str) -> None:
    """refdesk's own messages echoed back by a platform that relays all it shows (author
    "refdesk", as the notifier posts them) had been refused 422, for every automated one."""
    body = json.dumps({**MESSAGE, "data": {**MESSAGE["data"], "author": author}}).encode()
    parsed = parse_chat_event(body)
    assert isinstance(parsed, ChatMessage) and parsed.data.author == author.lower()
    assert chat_event(parsed, webhook_id="msg_1") is None


def test_a_patron_written_in_another_case_is_the_patron_and_an_unknown_author_is_refused() -> None:
    """Read as not a patron's, "Patron" and "visitor" had dropped a crisis in silence."""
    shouting = {**MESSAGE, "data": {**MESSAGE["data"], "author": " Patron "}}
    parsed = parse_chat_event(json.dumps(shouting).encode())
    assert isinstance(parsed, ChatMessage) and parsed.data.author == "patron"
    assert chat_event(parsed, webhook_id="msg_1") is not None
    unknown = {**MESSAGE, "data": {**MESSAGE["data"], "author": "visitor"}}
    with pytest.raises(InvalidField, match="author"):
        parse_chat_event(json.dumps(unknown).encode())


def event(kind: str, data: dict[str, Any]) -> bytes:
    return json.dumps(
        {"type": kind, "timestamp": "2025-01-06T14:02:11-06:00", "data": data}
    ).encode()


def test_chat_started_with_sms_patron() -> None:
    parsed = parse_chat_event(
        event(
            "chat.started",
            {
                "conversation_id": "chat-9",
                "patron": {"name": "Sam", "phone": "(817) 515-5555", "role": "Faculty"},
                "department": "reference",
                "question": "Can I book a study room?",
            },
        )
    )
    assert isinstance(parsed, ChatStarted)
    assert parsed.data.patron.phone == "+18175155555"
    assert parsed.data.patron.role is PatronRole.FACULTY
    assert parsed.data.patron.as_patron().contact == "+18175155555"


def test_chat_transferred() -> None:
    parsed = parse_chat_event(
        event(
            "chat.transferred",
            {
                "conversation_id": "chat-9",
                "department": "writing-center",
                "from_department": "reference",
                "by": "staff-17",
                "note": "Someone from the Writing Center will join this chat.",
            },
        )
    )
    assert isinstance(parsed, ChatTransferred)
    assert (parsed.data.department, parsed.data.channel) == ("writing-center", Channel.CHAT)


def test_chat_ended_and_ticket_closed() -> None:
    ended = parse_chat_event(
        event("chat.ended", {"conversation_id": "chat-9", "closed_by": "patron"})
    )
    assert isinstance(ended, ChatEnded)
    assert (ended.data.reason, ended.data.channel) == ("ended", Channel.CHAT)
    closed = parse_chat_event(
        event(
            "ticket.closed",
            {
                "conversation_id": "c-42",
                "channel": "email",
                "closed_by": "staff-17",
                "patron": {"email": "jane.doe@my.tccd.edu"},
            },
        )
    )
    assert isinstance(closed, TicketClosed)
    assert (closed.data.channel, closed.data.reason) == (Channel.EMAIL, "closed")


def test_unknown_roles_read_as_unknown() -> None:
    data = {**MESSAGE["data"], "patron": {"role": "community member"}}
    parsed = parse_chat_event(event("chat.message", data))
    assert isinstance(parsed, ChatMessage)
    assert parsed.data.patron is not None
    assert parsed.data.patron.role is PatronRole.UNKNOWN


def test_unknown_type() -> None:
    with pytest.raises(UnknownEventType) as caught:
        parse_chat_event(event("chat.typing", {"conversation_id": "chat-9"}))
    assert (caught.value.field, caught.value.status) == ("type", 422)


def test_the_platform_may_close_a_texters_ticket() -> None:
    closed = parse_chat_event(
        event("ticket.closed", {"conversation_id": "sms-3c561ec4-bd2c", "channel": "sms"})
    )
    assert closed.data.conversation_id == "sms-3c561ec4-bd2c"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[]", "body"),
        (b"{}", "type"),
        (event("ticket.closed", {"conversation_id": "c-42"}), "data.channel"),
        (event("chat.message", {"message_id": "m", "text": "hi"}), "data.conversation_id"),
        (
            event("chat.message", {"conversation_id": "has space", "message_id": "m", "text": "x"}),
            "data.conversation_id",
        ),
        (
            event("chat.message", {"conversation_id": "c", "message_id": "m", "text": ""}),
            "data.text",
        ),
        (
            event("chat.message", {**MESSAGE["data"], "patron": {"email": "nope"}}),
            "data.patron.email",
        ),
        (
            event("chat.message", {**MESSAGE["data"], "patron": {"phone": "12"}}),
            "data.patron.phone",
        ),
        (event("chat.started", {"conversation_id": "c", "channel": "fax"}), "data.channel"),
        # past 64 bits no database keeps it: it failed the status service's batches until the
        # message was dead-lettered, and a crisis reached the console without its words
        (event("chat.message", {**MESSAGE["data"], "sequence": 2**63}), "data.sequence"),
        (event("chat.message", {**MESSAGE["data"], "sequence": 10**30}), "data.sequence"),
        # an integer as JSON writes one (a verifying probe: these were read as numbers)
        (event("chat.message", {**MESSAGE["data"], "sequence": True}), "data.sequence"),
        (event("chat.message", {**MESSAGE["data"], "sequence": "12"}), "data.sequence"),
        (event("chat.message", {**MESSAGE["data"], "sequence": 1.0}), "data.sequence"),
        (json.dumps({**MESSAGE, "timestamp": "2025-01-06T14:02:11"}).encode(), "timestamp"),
        # a year downstream arithmetic overflows on stalled the router and the status service
        (json.dumps({**MESSAGE, "timestamp": "9999-12-31T23:59:59Z"}).encode(), "timestamp"),
        (json.dumps({**MESSAGE, "timestamp": "0001-01-01T00:00:00+14:00"}).encode(), "timestamp"),
        (json.dumps({**MESSAGE, "timestamp": "1990-01-01T00:00:00Z"}).encode(), "timestamp"),
        # a chat event writing into a texter's or an emailer's conversation
        (
            event("chat.message", {**MESSAGE["data"], "conversation_id": "sms-3c561ec4-bd2c"}),
            "data.conversation_id",
        ),
        (event("chat.started", {"conversation_id": "email-1abcfabf"}), "data.conversation_id"),
        (
            event("ticket.closed", {"conversation_id": "email-1abcfabf", "channel": "sms"}),
            "data.conversation_id",
        ),
    ],
)
def test_invalid_events_name_the_field_path(body: bytes, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_chat_event(body)
    assert type(caught.value) is InvalidField
    assert caught.value.field == field
    assert "nope" not in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"type": "chat.message", "timestamp": ', b'\xff\xfe{"type": 1}', b"", b"  "],
)
def test_a_body_that_is_not_json_is_malformed_not_invalid(body: bytes) -> None:
    # audit: truncated or non-UTF-8 JSON was answered 422; docs/ingest.md promises 400
    with pytest.raises(MalformedBody) as caught:
        parse_chat_event(body)
    assert (caught.value.field, caught.value.status) == ("body", 400)


def test_a_body_in_any_charset_is_verified_over_its_raw_bytes() -> None:
    # issue 13, finding 4: an 8-bit ISO-8859-1 email was refused 403 (the body was decoded
    # as UTF-8 before the HMAC)
    import hashlib
    import hmac as hmac_

    body = "Subject: Pr\xe9stamo\r\n\r\n\xbfPuedo renovar?\r\n".encode("iso-8859-1")
    stamp = str(int(datetime.now(UTC).timestamp()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac_.new(key, b"msg_1." + stamp.encode() + b"." + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    verify_chat_webhook(secret=SECRET, headers=headers, body=body)
    with pytest.raises(InvalidSignature):
        verify_chat_webhook(secret=SECRET, headers=headers, body=body + b"\xe9")


def test_an_overlong_webhook_id_is_refused() -> None:
    headers = {**signed(BODY), "webhook-id": "m" * 256}
    with pytest.raises(InvalidSignature) as caught:
        verify_chat_webhook(secret=SECRET, headers=headers, body=BODY)
    assert caught.value.field == "webhook-id"


@pytest.mark.parametrize(
    ("stamped", "kept"),
    [
        ("2025-01-06T14:02:11-06:00", True),  # a minute before now: the platform's time
        ("2024-11-20T12:00:00-06:00", False),  # a year back ("Waiting 380 d")
        ("2025-03-01T12:00:00-06:00", False),  # months ahead
    ],
)
def test_a_chat_message_is_stamped_as_an_email_is(stamped: str, kept: bool) -> None:
    """An outside probe's chat stamped 2027 showed "Arrived Today" in the header and "Mar 1,
    2027" on its line; one stamped a year back sat atop the queue waiting 380 days."""
    from datetime import UTC, datetime

    from services.ingest.translate import chat_event

    now = datetime(2025, 1, 6, 20, 3, 11, tzinfo=UTC)
    body = json.dumps(
        {
            "type": "chat.message",
            "timestamp": stamped,
            "data": {
                "conversation_id": "chat-9",
                "message_id": "m-1",
                "author": "patron",
                "text": "hello",
            },
        }
    ).encode()
    got = chat_event(parse_chat_event(body), webhook_id="wh-1", now=now)
    assert got is not None and hasattr(got, "received_at")
    expected = datetime.fromisoformat(stamped).astimezone(UTC) if kept else now
    assert got.received_at == expected


def test_a_long_chat_message_is_kept_whole_to_an_emails_length_then_says_how_much_more() -> None:
    """Refused 422 past 10,000 characters before, the patron's whole message lost; then cut
    there, and an essay-like message's crisis at its end was read by nobody (an outside
    review). Kept whole to an email's 100,000 characters, a note of the rest past them."""
    from services.ingest.translate import CHAT_OVERFLOW_NOTE, chat_event

    essay = "I need help with my thesis. " * 400 + "Honestly I am going to kill myself tonight."
    parsed = parse_chat_event(event("chat.message", {**MESSAGE["data"], "text": essay}))
    published = chat_event(parsed, webhook_id="msg_essay")
    assert published is not None and published.text == essay  # 11,243 characters, whole
    assert published.attachments == []
    long = "I need help with my thesis. " * 4000  # 112,000 characters
    parsed = parse_chat_event(event("chat.message", {**MESSAGE["data"], "text": long}))
    published = chat_event(parsed, webhook_id="msg_long")
    assert published is not None and published.text == long.strip()[:100_000]
    [note] = published.attachments
    assert note.name == CHAT_OVERFLOW_NOTE == "chat-text-beyond-100000-characters.txt"
    assert note.size == len(long.strip()[100_000:].encode())
