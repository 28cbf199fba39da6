"""Mail a system sent: automatic replies and delivery status reports are marked, a bounce's
report is read (status, action, the returned Message-ID, the failed address), a bounce joins
the conversation of the email it reports on and only that one, and none binds its sender."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime

import pytest
from starlette.datastructures import Headers, UploadFile

from services.ingest.metrics import AUTOMATIC, BOUNCES
from services.ingest.providers.automatic import automatic_kind, read_report
from services.ingest.providers.emails import EmailInbound
from services.ingest.providers.mailgun import parse_mailgun_form
from services.ingest.providers.mime import parse_mime
from services.ingest.replies import PARTY_NAMESPACE, party_key, sent_entry
from services.ingest.service import Ingest
from services.ingest.store import IngestStore
from services.notifier.messages import make_message_id
from shared.events import (
    Automatic,
    Channel,
    NotificationKind,
    NotificationRequested,
    StaffReplyContext,
    derived_id,
)
from tests.fakes import FakeBroker

PATRON = "ana.gomez@my.tccd.edu"
DESK = "askdesk@tccd.edu"


def headers(**values: str) -> dict[str, str]:
    return {name.replace("_", "-").lower(): value for name, value in values.items()}


def kind_of(content_type: str | None = None, report_type: str | None = None, **values: str):
    found = headers(**values)
    return automatic_kind(
        lambda name: found.get(name.lower()), content_type=content_type, report_type=report_type
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # Gmail's vacation responder
        ({"Auto_Submitted": "auto-replied", "From": f"Ana <{PATRON}>"}, Automatic.AUTO_REPLY),
        # Exchange's automatic reply: auto-generated, answering refdesk's email
        (
            {
                "Auto_Submitted": "auto-generated",
                "In_Reply_To": "<abc@refdesk.tccd.edu>",
                "X_Auto_Response_Suppress": "All",
            },
            Automatic.AUTO_REPLY,
        ),
        (
            {"Auto_Submitted": "auto-notified; owner-email=x@y.edu", "References": "<a@b>"},
            Automatic.AUTO_REPLY,
        ),
        ({"X_Autoreply": "yes"}, Automatic.AUTO_REPLY),
        ({"X_Autorespond": "Out of office"}, Automatic.AUTO_REPLY),
        ({"Precedence": "auto_reply"}, Automatic.AUTO_REPLY),
        ({"From": "MAILER-DAEMON@mail.example.edu (Mail Delivery System)"}, Automatic.BOUNCE),
        ({"From": "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"}, Automatic.BOUNCE),
        ({"From": "postmaster@example.edu", "X_Failed_Recipients": PATRON}, Automatic.BOUNCE),
        # a person: none of the markers, whatever the words
        ({"From": f"Ana <{PATRON}>", "Subject": "Out of office? I need a book"}, None),
        ({"Auto_Submitted": "no", "In_Reply_To": "<a@b>"}, None),
        # a web form writing for a patron (auto-generated, answering nothing) is routed
        ({"Auto_Submitted": "auto-generated"}, None),
        # generated and asking for no automatic reply, in no thread: Exchange's out-of-office
        # to a new address, a learning system's noreply notice (an outside review)
        (
            {"Auto_Submitted": "auto-generated", "X_Auto_Response_Suppress": "DR, OOF, AutoReply"},
            Automatic.AUTO_REPLY,
        ),
        (
            {"Auto_Submitted": "auto-generated", "X_Auto_Response_Suppress": "All"},
            Automatic.AUTO_REPLY,
        ),
        # the header alone (Outlook sets it on ordinary mail too) is a person's email
        ({"X_Auto_Response_Suppress": "All"}, None),
        ({"Auto_Submitted": "auto-generated", "X_Auto_Response_Suppress": "DR, RN"}, None),
        ({"Precedence": "bulk"}, None),
        ({"From": "postmaster@tccd.edu"}, None),  # campus IT writing to the desk
    ],
)
def test_what_the_headers_declare(values: dict[str, str], expected: Automatic | None) -> None:
    assert kind_of(**values) is expected


@pytest.mark.parametrize(
    ("values", "bulk"),
    [
        ({"Precedence": "bulk"}, True),
        ({"Precedence": "List"}, True),
        ({"Precedence": "junk"}, True),
        ({"List_Id": "<campus-all.lists.tccd.edu>"}, True),
        ({"List_Unsubscribe": "<mailto:leave@lists.tccd.edu>"}, True),
        ({"Precedence": "first-class"}, False),
        ({"From": f"Ana <{PATRON}>"}, False),
    ],
)
def test_mail_sent_to_many_is_marked_bulk(values: dict[str, str], bulk: bool) -> None:
    """Still a person's words, maybe (routed, read), but answered by nobody automatically."""
    raw = "".join(f"{name.replace('_', '-')}: {value}\n" for name, value in values.items())
    mail = parse_mime(f"From: Ana <{PATRON}>\nMessage-ID: <b@x.edu>\n{raw}\nhello\n".encode())
    assert mail.bulk is bulk and mail.automatic is None


@pytest.mark.parametrize(
    ("report_type", "expected"),
    [
        ("delivery-status", Automatic.BOUNCE),
        ("disposition-notification", Automatic.AUTO_REPLY),  # a read receipt
        ("feedback-report", Automatic.AUTO_REPLY),
    ],
)
def test_a_report_is_automatic(report_type: str, expected: Automatic) -> None:
    assert kind_of("multipart/report", report_type, From=f"Ana <{PATRON}>") is expected


# A Postfix bounce of a staff reply, as it reaches the desk.
POSTFIX = f"""\
From: MAILER-DAEMON@mail.example.edu (Mail Delivery System)
To: {DESK}
Subject: Undelivered Mail Returned to Sender
Message-ID: <20261205100000.4F1@mail.example.edu>
Date: Sat, 5 Dec 2026 10:00:02 +0000
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.example.edu.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{PATRON}>: host mx.my.tccd.edu said: 550 5.1.1 User unknown

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.edu
Arrival-Date: Sat,  5 Dec 2026 10:00:00 +0000 (UTC)

Final-Recipient: rfc822; {PATRON}
Original-Recipient: rfc822;Ana.Gomez@my.tccd.edu
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{PATRON}>: Recipient address
    rejected: User unknown

--B1
Content-Type: text/rfc822-headers

From: TCC Library Ask Desk <{DESK}>
To: {PATRON}
Subject: Re: Lost book [refdesk #email-abc]
Message-ID: <{{message_id}}>

--B1--
"""

# Exchange Online's non-delivery report: the original returned whole, the address in
# Original-Recipient only, and a two-digit subject code.
EXCHANGE = f"""\
From: Microsoft Outlook <postmaster@tccd.onmicrosoft.com>
To: {DESK}
Subject: Undeliverable: Re: Lost book
Message-ID: <ndr-1@tccd.onmicrosoft.com>
Auto-Submitted: auto-replied
Content-Language: en-US
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="NDR"

--NDR
Content-Type: multipart/alternative; boundary="ALT"

--ALT
Content-Type: text/plain; charset="us-ascii"

Your message to {PATRON} couldn't be delivered.
{PATRON.split("@")[0]} wasn't found at my.tccd.edu.

--ALT
Content-Type: text/html; charset="us-ascii"

<p>Your message couldn't be delivered.</p>

--ALT--

--NDR
Content-Type: message/delivery-status

Reporting-MTA: dns;BN8PR12MB.namprd12.prod.outlook.com
Received-From-MTA: dns;refdesk.tccd.edu
Arrival-Date: Sat, 5 Dec 2026 10:00:00 +0000

Original-Recipient: rfc822;{PATRON}
Final-Recipient: rfc822;{PATRON}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found

--NDR
Content-Type: message/rfc822

From: TCC Library Ask Desk <{DESK}>
To: <{PATRON}>
Subject: Re: Lost book
Message-ID: <{{message_id}}>
Content-Type: text/plain

It is due Friday.

--NDR--
"""


def bounce_of(template: str, message_id: str) -> bytes:
    return template.replace("{message_id}", message_id).encode()


def test_a_postfix_bounce_is_read() -> None:
    mail = parse_mime(bounce_of(POSTFIX, "0123abcd@refdesk.tccd.edu"))
    assert mail.automatic is Automatic.BOUNCE
    assert mail.report is not None
    assert (mail.report.action, mail.report.status) == ("failed", "5.1.1")
    assert mail.report.message_id == "0123abcd@refdesk.tccd.edu"
    assert mail.report.recipients == (PATRON,)
    assert "could not" in mail.text
    assert mail.attachments == ()  # the report's parts are not files anyone sent


def test_an_exchange_online_report_is_read() -> None:
    mail = parse_mime(bounce_of(EXCHANGE, "ff00@refdesk.tccd.edu"))
    assert mail.automatic is Automatic.BOUNCE
    assert mail.report is not None
    assert (mail.report.action, mail.report.status) == ("failed", "5.1.10")
    assert mail.report.message_id == "ff00@refdesk.tccd.edu"
    assert mail.report.recipients == (PATRON,)
    assert mail.text.startswith("Your message to")
    assert mail.attachments == ()


def test_a_report_of_a_delay_and_of_several_recipients() -> None:
    status = f"""Reporting-MTA: dns; mx.example.edu

Final-Recipient: rfc822; care@tccd.edu
Action: delivered
Status: 2.0.0

Final-Recipient: rfc822; {PATRON}
Action: delayed
Status: 4.4.7
Will-Retry-Until: Mon, 7 Dec 2026 10:00:00 +0000
"""
    report = read_report(status, "Message-Id: <a1@refdesk.tccd.edu>\nTo: x@y.edu\n")
    assert (report.action, report.status) == ("delayed", "4.4.7")
    assert report.recipients == (PATRON, "x@y.edu")
    assert report.message_id == "a1@refdesk.tccd.edu"
    failed_too = status + "\nFinal-Recipient: rfc822; b@tccd.edu\nAction: failed\nStatus: 5.2.2\n"
    worst = read_report(failed_too, "")
    assert (worst.action, worst.status, worst.recipients) == ("failed", "5.2.2", ("b@tccd.edu",))


def test_a_report_that_everything_was_delivered_is_an_automatic_reply() -> None:
    delivered = POSTFIX.replace("Action: failed", "Action: delivered").replace(
        "Status: 5.1.1", "Status: 2.0.0"
    )
    mail = parse_mime(bounce_of(delivered, "1@refdesk.tccd.edu"))
    assert (mail.automatic, mail.report) == (Automatic.AUTO_REPLY, None)


def test_a_plain_text_bounce_is_read_from_its_body() -> None:
    qmail = f"""\
From: MAILER-DAEMON@mx.example.edu
To: {DESK}
Subject: failure notice
Message-ID: <q-1@mx.example.edu>

Hi. This is the qmail-send program at mx.example.edu.
I'm afraid I wasn't able to deliver your message to the following addresses.

<{PATRON}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

From: {DESK}
To: {PATRON}
Message-ID: <77aa@refdesk.tccd.edu>
Subject: Re: Lost book
"""
    mail = parse_mime(qmail.encode())
    assert mail.automatic is Automatic.BOUNCE
    assert mail.report is not None
    assert mail.report.message_id == "77aa@refdesk.tccd.edu"
    assert mail.report.recipients == (PATRON,)
    assert mail.report.status == "5.1.1"  # qmail's "(#5.1.1)": the console says why


@pytest.mark.parametrize(
    ("said", "status"),
    [
        # Postfix's bounce, written as plain text by an older relay
        (
            "host mx.example.edu[10.0.0.5] said: 550 5.1.1 <{p}>: Recipient address rejected",
            "5.1.1",
        ),
        # Exim's "Mail delivery failed"
        (
            "SMTP error from remote mail server after RCPT TO:<{p}>:\n    550-5.2.2 mailbox full",
            "5.2.2",
        ),
        ("host mx said: 452 4.2.2 Over quota (in reply to RCPT TO command)", "4.2.2"),
        # a code without a server's reply before it is a version or a date, not a status
        ("Delivery failed. Relay software 5.1.1 build 2024.", None),
        ("The mailbox does not exist.", None),
    ],
)
def test_a_plain_text_bounce_says_the_status_its_server_quoted(
    said: str, status: str | None
) -> None:
    """A bounce without a machine-readable report had lost its reason ("gave no reason")."""
    body = f"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.edu>
To: {DESK}
Subject: Undelivered Mail Returned to Sender
Message-ID: <p-1@mx.example.edu>

This is the mail system at host mx.example.edu.

{said.format(p=PATRON)}

------ This is a copy of the message, including all the headers. ------

From: {DESK}
To: {PATRON}
Message-ID: <77aa@refdesk.tccd.edu>
"""
    mail = parse_mime(body.encode())
    assert mail.report is not None and mail.report.status == status
    assert mail.report.message_id == "77aa@refdesk.tccd.edu"


def test_an_out_of_office_reply_through_mime() -> None:
    ooo = f"""\
From: Ana Gomez <{PATRON}>
To: {DESK}
Subject: Automatic reply: Re: Lost book
Message-ID: <oof-1@my.tccd.edu>
In-Reply-To: <77aa@refdesk.tccd.edu>
Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
Content-Type: text/plain

I am away until January 12 with limited access to email.
"""
    mail = parse_mime(ooo.encode())
    assert (mail.automatic, mail.report) == (Automatic.AUTO_REPLY, None)
    assert mail.sender_email == PATRON


def _file(name: str, content: bytes, content_type: str) -> UploadFile:
    headers = Headers({"content-type": content_type})
    return UploadFile(io.BytesIO(content), size=len(content), filename=name, headers=headers)


def test_a_mailgun_bounce_reads_the_posted_report_parts() -> None:
    form: dict[str, object] = {
        "from": "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "sender": "",
        "recipient": DESK,
        "subject": "Delivery Status Notification (Failure)",
        "body-plain": "Address not found. Your message wasn't delivered to the address.",
        "Message-Id": "<gmail-dsn-1@mx.google.com>",
        "message-headers": json.dumps(
            [["Content-Type", 'multipart/report; report-type="delivery-status"; boundary="x"']]
        ),
        "attachment-1": _file(
            "details.txt",
            f"Final-Recipient: rfc822; {PATRON}\nAction: failed\nStatus: 5.1.1\n".encode(),
            "message/delivery-status",
        ),
        "attachment-2": _file(
            "headers.txt",
            f"To: {PATRON}\nMessage-ID: <5e5e@refdesk.tccd.edu>\n".encode(),
            "text/rfc822-headers",
        ),
        "attachment-3": _file("photo.jpg", b"\xff\xd8\xff", "image/jpeg"),
    }
    mail = parse_mailgun_form(form)
    assert mail.automatic is Automatic.BOUNCE
    assert mail.report is not None
    assert (mail.report.status, mail.report.message_id) == ("5.1.1", "5e5e@refdesk.tccd.edu")
    assert mail.report.recipients == (PATRON,)
    assert [a.content_type for a in mail.attachments] == ["image/jpeg"]


def test_a_mailgun_auto_reply_is_marked_from_its_headers() -> None:
    form: dict[str, object] = {
        "from": f"Ana <{PATRON}>",
        "recipient": DESK,
        "subject": "Out of Office",
        "body-plain": "I am away this week.",
        "Message-Id": "<vac-1@mail.gmail.com>",
        "message-headers": json.dumps([["Auto-Submitted", "auto-replied"]]),
    }
    assert parse_mailgun_form(form).automatic is Automatic.AUTO_REPLY


# ---- the service: threading a bounce, binding no sender -----------------------------------


def command(
    conversation_id: str, *, to: str = PATRON, kind: NotificationKind = NotificationKind.STAFF_REPLY
) -> NotificationRequested:
    reply_id = str(uuid.uuid4())
    context = StaffReplyContext(reply_id=reply_id, staff_id="lib-7", text="It is due Friday.")
    return NotificationRequested(
        idempotency_key=derived_id(reply_id, kind.value),
        kind=kind,
        channel=Channel.EMAIL,
        recipient=to,
        conversation_id=conversation_id,
        context=context.model_dump(mode="json"),
        requested_at=datetime.now(UTC),
    )


async def sent(store: IngestStore, order: NotificationRequested) -> str:
    """Remember a command as ingest's consumer does; the Message-ID the notifier gives it."""
    entry = sent_entry(order)
    assert entry is not None
    await store.remember(entry)
    return make_message_id(order.idempotency_key, "refdesk.tccd.edu").strip("<>")


def published(broker: FakeBroker, mail: EmailInbound) -> dict[str, object]:
    [data] = [
        event["data"]
        for _topic, _key, event in broker.published
        if event["data"]["provider_message_id"] == mail.message_id
    ]
    return dict(data)


async def test_a_bounce_joins_the_conversation_of_the_email_it_reports_on(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    message_id = await sent(store, command("email-conv-1"))
    before = AUTOMATIC.labels(kind="bounce")._value.get()
    mail = parse_mime(bounce_of(POSTFIX, message_id))
    assert await ingest.accept_email(mail, provider="mime") == "accepted"
    data = published(broker, mail)
    assert data["conversation_id"] == "email-conv-1"
    assert data["automatic"] == "bounce"
    assert data["bounce"] == {"message_id": message_id, "status": "5.1.1", "action": "failed"}
    assert data["patron"] == {"contact": None, "name": None, "role": "unknown", "unverified": False}
    assert AUTOMATIC.labels(kind="bounce")._value.get() == before + 1


def bounced(to: str, action: str = "failed") -> float:
    return float(BOUNCES.labels(to=to, action=action)._value.get())


@pytest.mark.parametrize(
    ("kind", "to"),
    [
        (NotificationKind.STAFF_REPLY, "patron"),
        (NotificationKind.CIRCULATION_EMAIL, "staff"),
        (NotificationKind.SAFETY_REVIEW_ALERT, "staff"),
        (NotificationKind.CRISIS_ALERT, "care_team"),
        (NotificationKind.CRISIS_REESCALATION, "care_team"),
    ],
)
async def test_a_bounce_is_counted_by_whom_the_email_was_for(
    ingest: Ingest, broker: FakeBroker, store: IngestStore, kind: NotificationKind, to: str
) -> None:
    """A bounce of any email refdesk sent joins its conversation; one of a CARE Team alert is
    told apart (it pages: the next alert may bounce too)."""
    address = PATRON if to == "patron" else "care@tccd.edu"
    message_id = await sent(store, command("email-conv-2", to=address, kind=kind))
    before = bounced(to), bounced("unknown")
    mail = parse_mime(bounce_of(POSTFIX.replace(PATRON, address), message_id))
    await ingest.accept_email(mail, provider="mime")
    assert published(broker, mail)["conversation_id"] == "email-conv-2"
    assert (bounced(to), bounced("unknown")) == (before[0] + 1, before[1])
    assert await ingest.accept_email(mail, provider="mime") == "duplicate"
    assert bounced(to) == before[0] + 1  # a redelivered report is not counted again


async def test_a_report_of_a_delay_is_counted_as_one(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    message_id = await sent(store, command("email-conv-5"))
    delayed = POSTFIX.replace("Action: failed", "Action: delayed").replace("5.1.1", "4.4.7")
    before = bounced("patron", "delayed")
    mail = parse_mime(bounce_of(delayed, message_id))
    await ingest.accept_email(mail, provider="mime")
    assert published(broker, mail)["bounce"]["action"] == "delayed"  # type: ignore[index]
    assert bounced("patron", "delayed") == before + 1


@pytest.mark.parametrize("forged", ["another-address", "another-id"])
async def test_a_report_naming_another_address_or_id_starts_its_own_conversation(
    ingest: Ingest, broker: FakeBroker, store: IngestStore, forged: str
) -> None:
    message_id = await sent(store, command("email-conv-3"))
    if forged == "another-address":
        report = bounce_of(POSTFIX.replace(PATRON, "someone.else@my.tccd.edu"), message_id)
    else:
        report = bounce_of(POSTFIX, "not-refdesks@refdesk.tccd.edu")
    mail = parse_mime(report)
    before = bounced("unknown")
    await ingest.accept_email(mail, provider="mime")
    data = published(broker, mail)
    assert bounced("unknown") == before + 1
    assert data["conversation_id"] != "email-conv-3"
    assert data["automatic"] == "bounce"


async def test_automatic_mail_binds_no_address_to_its_conversation(
    ingest: Ingest, broker: FakeBroker, store: IngestStore
) -> None:
    """An out-of-office reply threads by In-Reply-To as any reply does, but its sender does not
    become an address of the conversation (a person's email would)."""
    message_id = await sent(store, command("email-conv-4"))
    ooo = f"""\
From: Ana Gomez <{PATRON}>
To: {DESK}
Subject: Automatic reply: Re: Lost book
Message-ID: <oof-2@my.tccd.edu>
In-Reply-To: <{message_id}>
Auto-Submitted: auto-replied
Content-Type: text/plain

I am away until January 12.
"""
    mail = parse_mime(ooo.encode())
    await ingest.accept_email(mail, provider="mime")
    data = published(broker, mail)
    assert (data["conversation_id"], data["automatic"]) == ("email-conv-4", "auto_reply")
    assert data["patron"]["contact"] == PATRON  # type: ignore[index]
    bound = await store.seen_conversation(PARTY_NAMESPACE, party_key("email-conv-4", PATRON))
    assert bound is None
