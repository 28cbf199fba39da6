"""Producer and consumer of refdesk.notifications agree: every command the router builds
from the shipped policy renders in the notifier on its channel (a context field renamed on
one side fails here)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from services.notifier.outgoing import Outgoing, build
from services.notifier.settings import NotifierSettings
from services.router.commands import commands_for, survey_for
from services.router.policy import DecisionInput, Policy, default_policy_path, load_policy
from shared.events import (
    Channel,
    ConversationClosed,
    InteractionReceived,
    NotificationKind,
    NotificationRequested,
    Patron,
    derived_id,
)

OPEN = datetime(2025, 10, 1, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Chicago
NIGHT = datetime(2025, 10, 5, 8, 0, tzinfo=UTC)  # a Sunday, 03:00 in Chicago
CONTACTS = {Channel.SMS: "+18175550123", Channel.EMAIL: "ana@my.tccd.edu", Channel.CHAT: None}

CASES = [
    (Channel.CHAT, "I want to kill myself tonight", OPEN),
    (Channel.SMS, "I lost a library book, I'm Ana Gomez TCC ID 2223334, the book is 1984", OPEN),
    (Channel.SMS, "can i renew my book", OPEN),
    (Channel.CHAT, "how do I cite a website in APA", OPEN),
    (Channel.SMS, "HOURS", OPEN),
    (Channel.EMAIL, "Where can I find peer reviewed articles on climate?", NIGHT),
    (Channel.SMS, "I don't want to be alive anymore", NIGHT),
]


@functools.cache
def _policy() -> Policy:
    return load_policy(default_policy_path())


def _commands(channel: Channel, text: str, at: datetime) -> list[NotificationRequested]:
    policy = _policy()
    interaction = InteractionReceived(
        interaction_id=derived_id("test", text),
        conversation_id=f"{channel.value}-c1",
        channel=channel,
        provider="test",
        provider_message_id="m-1",
        patron=Patron(contact=CONTACTS[channel]),
        text=text,
        received_at=at,
    )
    decision = policy.decide(DecisionInput(channel=channel, text=text, received_at=at), online=None)
    return commands_for(interaction, decision, policy)


@pytest.mark.parametrize(("channel", "text", "at"), CASES)
def test_every_router_command_renders(channel: Channel, text: str, at: datetime) -> None:
    settings = NotifierSettings(run_dir=Path("/tmp"))
    for cmd in _commands(channel, text, at):
        assert build(cmd, settings).text


def test_the_cases_cover_every_kind_the_router_sends() -> None:
    kinds = {cmd.kind for case in CASES for cmd in _commands(*case)}
    assert kinds >= {
        NotificationKind.CRISIS_ALERT,
        NotificationKind.CRISIS_RESOURCES,
        NotificationKind.CIRCULATION_EMAIL,
        NotificationKind.HANDOFF,
        NotificationKind.KEYWORD_REPLY,
        NotificationKind.AFTER_HOURS_ACK,
    }


SURVEY_URL = "https://s.tccd.edu/r"
SURVEY_SETTINGS = NotifierSettings(run_dir=Path("/tmp"), survey_url=SURVEY_URL)


def survey(channel: Channel, contact: str, **thread: Any) -> NotificationRequested:
    """The router's survey command for a ticket closed on `channel` (`thread`: the email
    thread the close names)."""
    closed = ConversationClosed(
        conversation_id=f"{channel.value}-c1",
        channel=channel,
        closed_at=OPEN,
        patron_contact=contact,
        **thread,
    )
    cmd = survey_for(closed)
    assert cmd is not None
    return cmd


def test_the_survey_after_a_close_renders_with_the_notifiers_link() -> None:
    assert SURVEY_URL in build(survey(Channel.SMS, "+18175550123"), SURVEY_SETTINGS).text


def parsed(out: Outgoing) -> EmailMessage:
    assert out.email is not None
    mail = message_from_bytes(out.email.data, policy=email_policy.default)
    assert isinstance(mail, EmailMessage)
    return mail


def test_an_email_survey_threads_under_the_patrons_latest_email() -> None:
    """The survey reached the patron as a new thread, beside the conversation it asks about."""
    cmd = survey(
        Channel.EMAIL,
        "patron@example.edu",
        in_reply_to="<second@mail.example.edu>",
        references=["<first@mail.example.edu>", "<reply-1@refdesk.example>"],
        subject="Overdue book",
    )
    mail = parsed(build(cmd, SURVEY_SETTINGS))
    assert mail["In-Reply-To"] == "<second@mail.example.edu>"
    assert mail["References"].split() == [
        "<first@mail.example.edu>",
        "<reply-1@refdesk.example>",
        "<second@mail.example.edu>",
    ]
    assert mail["Subject"] == "Re: Overdue book"
    # it answers the closing, not the patron's email (RFC 3834)
    assert mail["Auto-Submitted"] == "auto-generated"
    text = mail.get_body(("plain",))
    assert text is not None and SURVEY_URL in text.get_content()
    # an email ticket with nothing to answer gets the survey as before
    plain = parsed(build(survey(Channel.EMAIL, "patron@example.edu"), SURVEY_SETTINGS))
    assert plain["In-Reply-To"] is None and not plain["Subject"].startswith("Re:")


def test_a_resent_email_is_the_same_email_date_included() -> None:
    """The Date was the moment of each attempt, so a resend after a crash was another email
    beside the same Message-ID (an outside probe)."""
    cmd = survey(Channel.EMAIL, "patron@example.edu")
    first, again = build(cmd, SURVEY_SETTINGS), build(cmd, SURVEY_SETTINGS)
    assert first.email is not None and again.email is not None
    assert first.email.data == again.email.data
    assert parsed(first)["Date"].datetime == cmd.requested_at.replace(microsecond=0)
