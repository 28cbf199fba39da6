"""Producer and consumer of refdesk.notifications agree: every command the router builds
from the shipped policy renders in the notifier on its channel (a context field renamed on
one side fails here)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.notifier.outgoing import build
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
    (Channel.SMS, "HELP", OPEN),
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


def test_the_survey_after_a_close_renders_with_the_notifiers_link() -> None:
    closed = ConversationClosed(
        conversation_id="sms-c1",
        channel=Channel.SMS,
        closed_at=OPEN,
        patron_contact="+18175550123",
    )
    cmd = survey_for(closed)
    assert cmd is not None
    settings = NotifierSettings(run_dir=Path("/tmp"), survey_url="https://s.tccd.edu/r")
    assert "https://s.tccd.edu/r" in build(cmd, settings).text
