"""route_batch through fakes of its ports: given a poll batch, then these events are published
in this order and these interactions recorded as processed. The broker is a fake; processed
ids live in a real SQLite file (milliseconds)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.router import tables
from services.router.conversations import (
    Remembered,
    circulation_named,
    follow_up_keeps,
    forget_named,
)
from services.router.handlers import CONSUMER, RouterDeps, route_batch
from services.router.policy import Policy, PolicyError, default_policy_path, load_policy
from services.router.policy.holder import PolicyHolder
from services.router.presence import PresenceView
from services.router.tables import processed
from shared.db import create_engine, migrate, processed_among
from shared.events import (
    Channel,
    ConversationClosed,
    InteractionReceived,
    NotificationKind,
    NotificationRequested,
    Patron,
    Priority,
    derived_id,
    new_event,
)
from shared.syncdb import UnitRunner
from shared.topics import NOTIFICATIONS, ROUTING
from tests.fakes import FakeBroker

OPEN_HOURS = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Chicago
OVERNIGHT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # a Wednesday, 02:00 in Chicago
DECIDED = OVERNIGHT + timedelta(minutes=10)
NOW = OPEN_HOURS + timedelta(hours=1)
SOON = NOW - timedelta(minutes=3)
LONG_AGO = NOW - timedelta(minutes=30)
"""When the tests' batches are decided, whenever the tests run (the desk still closed)."""
RENEWAL = "can i renew my book"
CRISIS = "I don't feel safe and I've been thinking about hurting myself"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'router.db'}")
    await migrate(engine, "router")
    yield engine
    await engine.dispose()


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def deps(broker: FakeBroker, engine: AsyncEngine, policy: Policy) -> Iterator[RouterDeps]:
    db = UnitRunner(engine, name="router-test")
    yield RouterDeps(
        broker=broker,  # type: ignore[arg-type]
        policies=PolicyHolder(default_policy_path(), policy),
        presence=PresenceView(),
        db=db,
        clock=lambda: DECIDED,
    )
    db.close()


def interaction(
    text: str, *, conversation: str | None = None, when: datetime = OPEN_HOURS
) -> InteractionReceived:
    return InteractionReceived(
        interaction_id=str(uuid.uuid4()),
        conversation_id=conversation or f"sms-{uuid.uuid4()}",
        channel=Channel.SMS,
        provider="test",
        provider_message_id=str(uuid.uuid4()),
        patron=Patron(contact="+18175550123"),
        text=text,
        received_at=when,
    )


def closing(conversation: str, channel: Channel = Channel.SMS) -> ConversationClosed:
    """Staff closed this conversation."""
    return ConversationClosed(
        conversation_id=conversation,
        channel=channel,
        closed_by="staff",
        closed_at=OPEN_HOURS,
        patron_contact="+18175550123",
    )


def item(data: BaseModel) -> tuple[Any, BaseModel]:
    event_id = getattr(data, "interaction_id", None) or str(uuid.uuid4())
    return new_event(data, source="test", event_id=event_id), data


async def recorded(engine: AsyncEngine, ids: list[str]) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(processed_among, processed, CONSUMER, ids)


async def test_a_decision_then_its_commands_keyed_by_conversation_and_recorded(
    deps: RouterDeps, broker: FakeBroker, engine: AsyncEngine
) -> None:
    renewal = interaction(RENEWAL)
    await route_batch(deps, [item(renewal)])
    topics = [topic for topic, _, _ in broker.published]
    assert topics == [ROUTING.name, NOTIFICATIONS.name]
    assert {key for _, key, _ in broker.published} == {renewal.conversation_id}
    [decision] = broker.on(ROUTING.name)
    assert decision["id"] == derived_id(renewal.interaction_id, "decision")
    assert (decision["data"]["action"], decision["data"]["department"]) == (
        "transfer",
        "nw-circulation",
    )
    [handoff] = broker.on(NOTIFICATIONS.name)
    assert handoff["data"]["kind"] == "handoff"
    assert handoff["id"] == derived_id(renewal.interaction_id, "handoff")
    assert await recorded(engine, [renewal.interaction_id]) == {renewal.interaction_id}


async def test_a_batch_keeps_its_order_and_decides_a_repeat_once(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    first, crisis = interaction(RENEWAL), interaction(CRISIS)
    await route_batch(deps, [item(first), item(crisis), item(first)])
    decisions = broker.on(ROUTING.name)
    assert [d["data"]["interaction_id"] for d in decisions] == [
        first.interaction_id,
        crisis.interaction_id,
    ]
    kinds = [n["data"]["kind"] for n in broker.on(NOTIFICATIONS.name)]
    assert kinds == ["handoff", "crisis_alert", "crisis_resources"]


async def test_a_redelivered_batch_publishes_nothing_new(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    renewal = interaction(RENEWAL)
    await route_batch(deps, [item(renewal)])
    published = len(broker.published)
    await route_batch(deps, [item(renewal)])
    assert len(broker.published) == published


async def test_a_broker_failure_raises_and_records_nothing(
    deps: RouterDeps, broker: FakeBroker, engine: AsyncEngine
) -> None:
    renewal = interaction(RENEWAL)
    broker.down = True
    with pytest.raises(ConnectionError):
        await route_batch(deps, [item(renewal)])
    assert await recorded(engine, [renewal.interaction_id]) == set()
    broker.down = False  # the redelivered batch is decided again, with the same ids
    await route_batch(deps, [item(renewal)])
    [decision] = broker.on(ROUTING.name)
    assert decision["id"] == derived_id(renewal.interaction_id, "decision")


async def test_one_after_hours_ack_per_conversation_and_none_for_a_crisis(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    conversation = f"sms-{uuid.uuid4()}"
    texts = [RENEWAL, "also where do i return it", CRISIS]
    await route_batch(
        deps,
        [item(interaction(t, conversation=conversation, when=OVERNIGHT)) for t in texts],
    )
    acks = [n for n in broker.on(NOTIFICATIONS.name) if n["data"]["kind"] == "after_hours_ack"]
    assert len({a["id"] for a in acks}) == 1
    assert acks[0]["id"] == derived_id(conversation, "after-hours-ack")


async def test_a_closed_sms_ticket_gets_a_survey_and_a_closed_chat_none(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    def closed(channel: Channel) -> ConversationClosed:
        return closing(f"{channel.value}-{uuid.uuid4()}", channel)

    sms, chat = closed(Channel.SMS), closed(Channel.CHAT)
    await route_batch(deps, [item(sms), item(chat)])
    assert broker.on(ROUTING.name) == []
    [survey] = broker.on(NOTIFICATIONS.name)
    assert survey["data"]["kind"] == "survey"
    assert survey["id"] == derived_id(sms.conversation_id, "survey")


# ---- follow-ups: a patron's later messages in a conversation already routed --------------

LOST = "I lost my library book 1984, I am Ana Gomez, TCC ID 1234567"
FINE = "do I need to pay a fine for the lost book?"


def kinds(broker: FakeBroker, conversation: str) -> list[str]:
    return [
        n["data"]["kind"]
        for n in broker.on(NOTIFICATIONS.name)
        if n["data"]["conversation_id"] == conversation
    ]


def decisions(broker: FakeBroker, conversation: str) -> list[dict[str, Any]]:
    return [
        d["data"] for d in broker.on(ROUTING.name) if d["data"]["conversation_id"] == conversation
    ]


async def test_the_circulation_email_names_the_patron_the_email_came_from(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    """An email from "Begoña Ortíz" about a lost book names nobody in its text: the managers'
    email carries the From's name and asks only for the TCC ID."""
    email = interaction("I lost my library book 1984, what do I do?").model_copy(
        update={
            "channel": Channel.EMAIL,
            "conversation_id": f"email-{uuid.uuid4()}",
            "patron": Patron(contact="bortiz@my.tccd.edu", name="Begoña Ortíz"),
        }
    )
    await route_batch(deps, [item(email)])
    [command] = [
        n["data"]
        for n in broker.on(NOTIFICATIONS.name)
        if n["data"]["conversation_id"] == email.conversation_id
        and n["data"]["kind"] == "circulation_email"
    ]
    assert command["context"]["patron_name"] == "Begoña Ortíz"
    assert command["context"]["missing_fields"] == ["tcc_id"]


@pytest.mark.parametrize("one_batch", [True, False])
async def test_a_follow_up_sends_no_second_hand_off_or_circulation_email(
    deps: RouterDeps, broker: FakeBroker, one_batch: bool
) -> None:
    renewal, lost = f"sms-{uuid.uuid4()}", f"sms-{uuid.uuid4()}"
    firsts = [interaction(RENEWAL, conversation=renewal), interaction(LOST, conversation=lost)]
    laters = [
        interaction("also can i renew the other one", conversation=renewal),
        interaction(FINE, conversation=lost),
        interaction(LOST, conversation=lost),  # the same again: nothing new to email
        interaction(LOST.replace("1984", "Beloved"), conversation=lost),
    ]
    if one_batch:
        await route_batch(deps, [item(i) for i in firsts + laters])
    else:
        await route_batch(deps, [item(i) for i in firsts])
        await route_batch(deps, [item(i) for i in laters])
    assert kinds(broker, renewal) == ["handoff"]
    # the fine question names nothing, nor does the same lost-book message again (the
    # managers have it); a second book names something new; the patron is told once that
    # the circulation managers will contact them
    assert kinds(broker, lost) == ["circulation_email", "handoff", "circulation_email"]
    # the second threads under the first (the notifier derives its Message-ID from the key)
    emails = [
        n
        for n in broker.on(NOTIFICATIONS.name)
        if n["data"]["conversation_id"] == lost and n["data"]["kind"] == "circulation_email"
    ]
    assert emails[0]["data"]["context"]["earlier_key"] is None
    assert emails[1]["data"]["context"]["earlier_key"] == emails[0]["data"]["idempotency_key"]
    first, *follow_ups = decisions(broker, renewal)
    assert not first["follow_up"] and first["handoff_text"]
    assert [d["follow_up"] for d in follow_ups] == [True]
    assert follow_ups[0]["handoff_text"] is None
    assert [d["follow_up"] for d in decisions(broker, lost)] == [False, True, True, True]


async def test_a_crisis_in_a_follow_up_is_escalated_in_full(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    conversation = f"sms-{uuid.uuid4()}"
    await route_batch(deps, [item(interaction(RENEWAL, conversation=conversation))])
    await route_batch(deps, [item(interaction(CRISIS, conversation=conversation))])
    assert kinds(broker, conversation) == ["handoff", "crisis_alert", "crisis_resources"]
    crisis = decisions(broker, conversation)[-1]
    assert crisis["follow_up"] and crisis["action"] == "escalate_crisis"
    assert crisis["department"] == "care-team"


async def test_after_a_close_the_patrons_next_message_is_routed_afresh(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    conversation = f"sms-{uuid.uuid4()}"
    await route_batch(deps, [item(interaction(RENEWAL, conversation=conversation))])
    closed = closing(conversation)
    again = interaction(RENEWAL, conversation=conversation)
    await route_batch(deps, [item(closed), item(again)])
    assert [d["follow_up"] for d in decisions(broker, conversation)] == [False, False]
    assert kinds(broker, conversation) == ["handoff", "survey", "handoff"]


async def test_a_redelivered_first_message_is_still_decided_as_the_first(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    first = interaction(RENEWAL)
    broker.down = True
    with pytest.raises(ConnectionError):
        await route_batch(deps, [item(first)])
    broker.down = False  # nothing was recorded: the redelivery is the conversation's first
    await route_batch(deps, [item(first)])
    [decision] = decisions(broker, first.conversation_id)
    assert not decision["follow_up"]
    assert kinds(broker, first.conversation_id) == ["handoff"]


def _command(kind: NotificationKind, **context: str) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=str(uuid.uuid4()),
        kind=kind,
        channel=Channel.SMS,
        recipient="+18175550123",
        conversation_id="sms-1",
        interaction_id="i-1",
        priority=Priority.NORMAL,
        context=context,
        requested_at=OPEN_HOURS,
    )


@pytest.mark.parametrize(
    ("kind", "before", "sent"),
    [
        (NotificationKind.HANDOFF, Remembered(OPEN_HOURS), False),
        (NotificationKind.CIRCULATION_EMAIL, Remembered(OPEN_HOURS), True),
        (
            NotificationKind.CIRCULATION_EMAIL,
            Remembered(OPEN_HOURS, circulation_emailed=True),
            False,
        ),
        (NotificationKind.SAFETY_REVIEW_ALERT, Remembered(OPEN_HOURS), True),
        (NotificationKind.SAFETY_REVIEW_ALERT, Remembered(OPEN_HOURS, crisis=True), False),
        (NotificationKind.CRISIS_ALERT, Remembered(OPEN_HOURS, crisis=True), True),
        (NotificationKind.CRISIS_RESOURCES, Remembered(OPEN_HOURS, crisis=True), True),
        # within REALERT_AFTER of the last alert: the CARE Team and the patron were told
        (
            NotificationKind.CRISIS_ALERT,
            Remembered(OPEN_HOURS, crisis=True, crisis_alerted_at=SOON),
            False,
        ),
        (
            NotificationKind.CRISIS_RESOURCES,
            Remembered(OPEN_HOURS, crisis=True, crisis_alerted_at=SOON),
            False,
        ),
        (
            NotificationKind.CRISIS_ALERT,
            Remembered(OPEN_HOURS, crisis=True, crisis_alerted_at=LONG_AGO),
            True,
        ),
        (
            NotificationKind.SAFETY_REVIEW_ALERT,
            Remembered(OPEN_HOURS, review_alerted_at=SOON),
            False,
        ),
        (
            NotificationKind.SAFETY_REVIEW_ALERT,
            Remembered(OPEN_HOURS, review_alerted_at=LONG_AGO),
            True,
        ),
        # a review alert minutes before is no reason to hold the CARE Team's first alert
        (NotificationKind.CRISIS_ALERT, Remembered(OPEN_HOURS, review_alerted_at=SOON), True),
        (NotificationKind.KEYWORD_REPLY, Remembered(OPEN_HOURS), True),
        (NotificationKind.AFTER_HOURS_ACK, Remembered(OPEN_HOURS), False),
    ],
)
def test_what_a_follow_up_sends(kind: NotificationKind, before: Remembered, sent: bool) -> None:
    assert follow_up_keeps(_command(kind), before, NOW) is sent


@pytest.mark.parametrize("field", ["patron_name", "tcc_id", "item"])
def test_a_second_circulation_email_is_sent_when_it_names_something(field: str) -> None:
    emailed = Remembered(OPEN_HOURS, circulation_emailed=True)
    command = _command(NotificationKind.CIRCULATION_EMAIL, **{field: "x"})
    assert follow_up_keeps(command, emailed, NOW)


def test_a_circulation_email_naming_the_same_as_the_last_is_not_sent_again() -> None:
    """The same lost-book message twelve times had emailed the circulation managers twelve
    times, each with the same name, TCC ID and item (an outside review)."""
    command = _command(NotificationKind.CIRCULATION_EMAIL, tcc_id="2223334", item="Dune")
    emailed = Remembered(
        OPEN_HOURS, circulation_emailed=True, circulation_named=circulation_named(command)
    )
    assert not follow_up_keeps(command, emailed, NOW)
    more = _command(NotificationKind.CIRCULATION_EMAIL, tcc_id="2223334", item="Beloved")
    assert follow_up_keeps(more, emailed, NOW)


async def test_a_crisis_conversation_stays_a_follow_up_after_its_close_and_gets_no_survey(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    conversation = f"sms-{uuid.uuid4()}"
    await route_batch(deps, [item(interaction(CRISIS, conversation=conversation))])
    closed = closing(conversation)
    later = interaction("can i renew my book", conversation=conversation)
    await route_batch(deps, [item(closed), item(later)])
    assert [d["follow_up"] for d in decisions(broker, conversation)] == [False, True]
    assert kinds(broker, conversation) == ["crisis_alert", "crisis_resources"]
    await route_batch(deps, [item(closed.model_copy(update={"closed_at": OVERNIGHT}))])
    assert "survey" not in kinds(broker, conversation)


async def test_a_follow_up_after_hours_sends_no_acknowledgement_the_first_did_not(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    conversation = f"chat-{uuid.uuid4()}"
    first = interaction(RENEWAL, conversation=conversation, when=OPEN_HOURS)
    later = interaction("also how do I cite this in APA?", conversation=conversation)
    later = later.model_copy(update={"received_at": OVERNIGHT})
    await route_batch(deps, [item(first), item(later)])
    assert "after_hours_ack" not in kinds(broker, conversation)


@pytest.mark.parametrize(
    ("texts", "surveyed"), [(["HELP", "HOURS"], False), (["HELP", RENEWAL], True)]
)
async def test_a_conversation_of_keywords_only_gets_no_survey_when_closed(
    deps: RouterDeps, broker: FakeBroker, texts: list[str], surveyed: bool
) -> None:
    conversation = f"sms-{uuid.uuid4()}"
    await route_batch(deps, [item(interaction(t, conversation=conversation)) for t in texts])
    closed = closing(conversation)
    await route_batch(deps, [item(closed)])
    assert ("survey" in kinds(broker, conversation)) is surveyed


async def test_a_question_after_keywords_only_is_routed_as_the_first(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    conversation = f"sms-{uuid.uuid4()}"
    texts = ["HOURS", RENEWAL]
    await route_batch(deps, [item(interaction(t, conversation=conversation)) for t in texts])
    _, renewal = decisions(broker, conversation)
    assert not renewal["follow_up"] and renewal["department"] == "nw-circulation"
    assert "handoff" in kinds(broker, conversation)


# ---- an opening of a conversation: the first, or the first message after a close ----------


def emailed(text: str, conversation: str, when: datetime = OVERNIGHT) -> InteractionReceived:
    """A patron's email (replies thread into the conversation by its id)."""
    mail = interaction(text, conversation=conversation, when=when)
    return mail.model_copy(
        update={"channel": Channel.EMAIL, "patron": Patron(contact="ana@example.edu")}
    )


def acks(broker: FakeBroker, conversation: str) -> list[str]:
    """The distinct idempotency keys of the conversation's after-hours acknowledgements."""
    return sorted(
        {
            n["id"]
            for n in broker.on(NOTIFICATIONS.name)
            if n["data"]["conversation_id"] == conversation
            and n["data"]["kind"] == "after_hours_ack"
        }
    )


async def test_a_ticket_reopened_after_hours_is_acknowledged_once_per_opening(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    """An outside review: a patron who replied to the survey of a closed email ticket after
    hours got no acknowledgement (its key was the conversation's, for ever)."""
    conversation = f"email-{uuid.uuid4()}"
    await route_batch(deps, [item(emailed(RENEWAL, conversation))])
    assert acks(broker, conversation) == [derived_id(conversation, "after-hours-ack")]
    closed = closing(conversation, Channel.EMAIL)
    await route_batch(deps, [item(closed)])
    reply = emailed("thanks, but I still can't renew it", conversation)
    broker.down = True  # published nothing, recorded nothing: decided again, into the same key
    with pytest.raises(ConnectionError):
        await route_batch(deps, [item(reply)])
    broker.down = False
    await route_batch(deps, [item(reply)])
    reopened = derived_id(conversation, "after-hours-ack", OPEN_HOURS.isoformat())
    assert acks(broker, conversation) == sorted(
        [derived_id(conversation, "after-hours-ack"), reopened]
    )
    # the close and the reply redelivered after their rows were written (a crash before the
    # offset commit): the close does not close the reopened ticket again, so the patron's next
    # email is a follow-up of this opening and gets no third acknowledgement
    await route_batch(deps, [item(closed), item(reply)])
    await route_batch(deps, [item(emailed("one more thing", conversation))])
    assert len(acks(broker, conversation)) == 2
    assert [d["follow_up"] for d in decisions(broker, conversation)] == [False, False, True]


async def test_two_openings_in_one_batch_and_on_another_replica_keep_their_keys(
    deps: RouterDeps, broker: FakeBroker, engine: AsyncEngine
) -> None:
    """Keys come from the events (the conversation and the close before the opening), so a
    second router instance on the same database, given the batch again, repeats them."""
    conversation = f"email-{uuid.uuid4()}"
    first = closing(conversation, Channel.EMAIL)
    second = first.model_copy(update={"closed_at": OVERNIGHT})
    batch = [
        item(emailed(RENEWAL, conversation)),
        item(first),
        item(emailed("I still can't renew it", conversation)),
        item(second),
        item(emailed("and now it says overdue", conversation)),
    ]
    await route_batch(deps, batch)
    keys = acks(broker, conversation)
    assert len(keys) == 3
    other = UnitRunner(engine, name="router-replica")
    try:
        replica = RouterDeps(
            broker=broker,  # type: ignore[arg-type]
            policies=deps.policies,
            presence=PresenceView(),
            db=other,
            clock=lambda: DECIDED,
        )
        await route_batch(replica, batch)
    finally:
        other.close()
    assert acks(broker, conversation) == keys
    # the closes given again closed nothing: the patron's next email follows up the third opening
    await route_batch(deps, [item(emailed("any news?", conversation))])
    assert decisions(broker, conversation)[-1]["follow_up"]
    assert acks(broker, conversation) == keys
    assert kinds(broker, conversation).count("survey") == 2


# ---- a follow-up in a circulation managers' conversation that supplies the details ---------

HOLD = "why is there a hold on my library account? i cant register"
DETAILS = "my name is Dana Whitfield and my id is 7654321"


class Suggests:
    """A stand-in for the learned net that reads every message as a renewal (the outside
    review's follow-up was routed transfer/nw-circulation)."""

    version = "clf-test"

    def assess(self, *_: Any, **__: Any) -> Any:
        from services.router.learned import Assessment
        from shared.events import Action

        return Assessment(
            lang="en",
            risk=0.01,
            escalate=False,
            review=False,
            corroborates=False,
            best=(Action.TRANSFER, "nw-circulation"),
            suggestion=(Action.TRANSFER, "nw-circulation"),
            confidence=0.9,
            model_first=False,
            model_version="clf-test",
        )


@pytest.mark.parametrize("one_batch", [True, False])
async def test_a_follow_up_that_names_the_patron_emails_the_circulation_managers_again(
    deps: RouterDeps, broker: FakeBroker, one_batch: bool
) -> None:
    deps.model = Suggests()  # type: ignore[assignment]
    conversation = f"sms-{uuid.uuid4()}"
    first = interaction(HOLD, conversation=conversation)
    later = interaction(DETAILS, conversation=conversation)
    if one_batch:
        await route_batch(deps, [item(first), item(later)])
    else:
        await route_batch(deps, [item(first)])
        await route_batch(deps, [item(later)])
    await route_batch(deps, [item(later)])  # redelivered: nothing more
    assert kinds(broker, conversation) == ["circulation_email", "handoff", "circulation_email"]
    emails = [
        n["data"]
        for n in broker.on(NOTIFICATIONS.name)
        if n["data"]["conversation_id"] == conversation and n["data"]["kind"] == "circulation_email"
    ]
    assert emails[0]["context"]["patron_name"] is None
    assert emails[1]["context"]["patron_name"] == "Dana Whitfield"
    assert emails[1]["context"]["tcc_id"] == "7654321"
    assert emails[1]["recipient"] == emails[0]["recipient"]
    assert emails[1]["idempotency_key"] == derived_id(later.interaction_id, "circulation-email")
    # it says it adds to the first (which named the item): "Still missing: item" had told the
    # managers to ask for what the patron had given
    assert (emails[0]["context"]["follow_up"], emails[1]["context"]["follow_up"]) == (False, True)
    follow_up = decisions(broker, conversation)[1]
    assert follow_up["follow_up"]
    assert (follow_up["action"], follow_up["department"]) == (
        "email_circulation",
        "circulation-managers",
    )
    assert follow_up["rules"][0]["rule_id"] == "circulation-follow-up"
    assert follow_up["rules"][0]["matched"] == ["patron_name", "tcc_id"]  # names, not values


async def test_a_follow_up_naming_nothing_or_after_a_close_sends_no_second_email(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    deps.model = Suggests()  # type: ignore[assignment]
    conversation = f"sms-{uuid.uuid4()}"
    await route_batch(deps, [item(interaction(HOLD, conversation=conversation))])
    await route_batch(deps, [item(interaction("ok thanks", conversation=conversation))])
    assert kinds(broker, conversation) == ["circulation_email", "handoff"]
    # closed: the patron's next message is a new question, routed as itself
    fresh = interaction(DETAILS, conversation=conversation)
    await route_batch(deps, [item(closing(conversation)), item(fresh)])
    assert decisions(broker, conversation)[-1]["department"] == "nw-circulation"
    assert kinds(broker, conversation).count("circulation_email") == 1


async def test_what_a_circulation_email_named_is_forgotten_at_the_close_and_after_retention(
    deps: RouterDeps, broker: FakeBroker, engine: AsyncEngine
) -> None:
    """The digest of a patron's name, TCC ID and item was kept for ever: anyone with a copy of
    the database could test a guess against it (an outside review). A close clears it, and
    the hourly purge clears what conversations first routed a retention ago still hold."""
    deps.model = Suggests()  # type: ignore[assignment]
    kept, closed = f"sms-{uuid.uuid4()}", f"sms-{uuid.uuid4()}"
    for conversation in (kept, closed):
        await route_batch(deps, [item(interaction(HOLD, conversation=conversation))])
        await route_batch(deps, [item(interaction(DETAILS, conversation=conversation))])
    await route_batch(deps, [item(closing(closed))])

    async def named() -> dict[str, str | None]:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    tables.conversations.c.conversation_id, tables.conversations.c.circulation_named
                )
            )
            return {row[0]: row[1] for row in rows}

    assert (await named())[kept] is not None and (await named())[closed] is None
    async with engine.begin() as conn:
        assert await conn.run_sync(forget_named, before=NOW - timedelta(days=365)) == 0
        assert await conn.run_sync(forget_named, before=NOW + timedelta(days=1)) == 1
    assert (await named())[kept] is None


async def test_a_close_published_after_the_patron_wrote_again_is_passed_over(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    """A close made while the broker was away reached the router from status's outbox after
    the patron's next message: the patron was sent the survey after asking a new question,
    and their next text was routed as a new round (an outside review). A close that accounted
    only for older messages (`through`) changes nothing; an up-to-date one still closes."""
    conversation = f"sms-{uuid.uuid4()}"
    first = interaction(RENEWAL, conversation=conversation, when=OPEN_HOURS)
    await route_batch(deps, [item(first)])
    await route_batch(deps, [item(interaction("thanks!", conversation=conversation))])
    assert kinds(broker, conversation).count("survey") == 0
    late = closing(conversation).model_copy(update={"through": OPEN_HOURS})
    again = interaction(
        "also can I renew my laptop?",
        conversation=conversation,
        when=OPEN_HOURS + timedelta(minutes=3),
    )
    await route_batch(deps, [item(again)])
    await route_batch(deps, [item(late)])
    assert "survey" not in kinds(broker, conversation)
    more = interaction("hello?", conversation=conversation, when=OPEN_HOURS + timedelta(minutes=9))
    await route_batch(deps, [item(more)])
    assert decisions(broker, conversation)[-1]["follow_up"]  # still the same round
    current = closing(conversation).model_copy(
        update={"through": more.received_at, "closed_at": more.received_at + timedelta(minutes=1)}
    )
    await route_batch(deps, [item(current)])
    assert kinds(broker, conversation).count("survey") == 1


# ---- HELP, INFO, AYUDA in a crisis conversation ---------------------------------------------


@pytest.mark.parametrize("word", ["HELP", "help", "Ayuda", "AYUDA!", "INFO", "help please"])
async def test_a_help_word_in_a_crisis_conversation_is_a_message_of_the_crisis(
    deps: RouterDeps, broker: FakeBroker, word: str
) -> None:
    """An outside review: a patron in an escalated SMS conversation who texted HELP or AYUDA
    got the canned keyword reply ("Escriba su pregunta...; Pueden aplicarse tarifas")."""
    conversation = f"sms-{uuid.uuid4()}"
    await route_batch(deps, [item(interaction(CRISIS, conversation=conversation))])
    await route_batch(deps, [item(interaction(word, conversation=conversation))])
    assert kinds(broker, conversation) == ["crisis_alert", "crisis_resources"]
    later = decisions(broker, conversation)[-1]
    assert later["follow_up"]  # the status service leaves it with the CARE Team, escalated
    assert all(hit["rule_id"] != "sms-keyword" for hit in later["rules"])


@pytest.mark.parametrize(
    ("word", "kind"),
    [("STOP", "sms_opt_out"), ("BAJA", "sms_opt_out"), ("ALTO", "sms_opt_out")],
)
async def test_an_opt_out_in_a_crisis_conversation_is_still_an_opt_out(
    deps: RouterDeps, broker: FakeBroker, word: str, kind: str
) -> None:
    conversation = f"sms-{uuid.uuid4()}"
    await route_batch(deps, [item(interaction(CRISIS, conversation=conversation))])
    await route_batch(deps, [item(interaction(word, conversation=conversation))])
    assert kind in kinds(broker, conversation)
    later = decisions(broker, conversation)[-1]
    assert [hit["rule_id"] for hit in later["rules"]] == ["sms-keyword"]


async def test_ayuda_outside_a_crisis_is_still_answered_as_a_keyword(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    conversation = f"sms-{uuid.uuid4()}"
    await route_batch(deps, [item(interaction(RENEWAL, conversation=conversation))])
    await route_batch(deps, [item(interaction("AYUDA", conversation=conversation))])
    assert kinds(broker, conversation) == ["handoff", "keyword_reply"]


async def test_mail_from_a_desk_departments_address_is_read_at_the_desk_and_answered_by_no_one(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    """The circulation managers answered the email refdesk sent them, to the desk: their reply
    was acknowledged as a patron's and sent to them again as a new circulation request (a loop
    of emails to their mailbox). A department's own mail is read at the desk, nothing sent."""
    reply = emailed(
        "Hi, the replacement fee for the lost book is $25; the patron can pay at any campus. "
        "Their TCC ID A00123456, item The Great Gatsby.",
        "email-managers",
    ).model_copy(update={"patron": Patron(contact="TCC.Circulation@tccd.edu")})
    await route_batch(deps, [item(reply)])
    [decided] = decisions(broker, "email-managers")
    assert (decided["action"], decided["department"]) == ("answer", "reference")
    assert [r["rule_id"] for r in decided["rules"]] == ["desk-department-mail"]
    assert kinds(broker, "email-managers") == []  # no acknowledgement, no circulation email
    # the same words from a patron are a circulation request, answered
    await route_batch(deps, [item(emailed(reply.text or "", "email-patron"))])
    assert decisions(broker, "email-patron")[0]["action"] == "email_circulation"
    assert "circulation_email" in kinds(broker, "email-patron")


def managers_at(tmp_path: Path, contact: str, also_from: list[str]) -> Path:
    """The shipped policy with the circulation managers' addresses changed, as a file."""
    path = tmp_path / "policy.yaml"
    addresses = f"    contact: {contact}\n    also_from: [{', '.join(also_from)}]\n"
    text = default_policy_path().read_text()
    path.write_text(text.replace("    contact: tcc.circulation@tccd.edu\n", addresses))
    return path


async def test_a_departments_old_address_in_also_from_is_still_its_own_mail(
    engine: AsyncEngine, broker: FakeBroker, tmp_path: Path
) -> None:
    """The circulation managers' address changed for the new term: their reply from the old
    mailbox was read as a patron's, sent a circulation email to the new address and an
    acknowledgement back to the old one (the loop `desk-department-mail` prevents). Kept in
    the department's `also_from`, the old address is still the department's own mail."""
    path = managers_at(tmp_path, "circ.managers@tccd.edu", ["tcc.circulation@tccd.edu"])
    changed = load_policy(path)
    managers = changed.department("circulation-managers")
    assert changed.department_of_address("TCC.Circulation@tccd.edu") is managers
    assert changed.department_of_address("circ.managers@tccd.edu") is managers
    db = UnitRunner(engine, name="router-also-from")
    moved = RouterDeps(
        broker=broker,  # type: ignore[arg-type]
        policies=PolicyHolder(path, changed),
        presence=PresenceView(),
        db=db,
        clock=lambda: OPEN_HOURS,
    )
    reply = emailed(
        "The replacement fee for the lost book is $25. TCC ID A00123456, item 1984.",
        "email-old-mailbox",
    ).model_copy(update={"patron": Patron(contact="tcc.circulation@tccd.edu")})
    try:
        await route_batch(moved, [item(reply)])
    finally:
        db.close()
    [decided] = decisions(broker, "email-old-mailbox")
    assert [r["rule_id"] for r in decided["rules"]] == ["desk-department-mail"]
    assert kinds(broker, "email-old-mailbox") == []


@pytest.mark.parametrize(
    ("also_from", "why"),
    [
        ("nw.circulation@tccd.edu", "is also 'nw-circulation'"),
        ("TCC.Circulation@tccd.edu", "is its contact already"),
    ],
)
def test_an_also_from_another_department_has_is_refused(
    tmp_path: Path, also_from: str, why: str
) -> None:
    path = managers_at(tmp_path, "tcc.circulation@tccd.edu", [also_from])
    with pytest.raises(PolicyError, match=why):
        load_policy(path)


def test_an_also_from_that_is_not_an_address_is_refused(tmp_path: Path) -> None:
    path = managers_at(tmp_path, "tcc.circulation@tccd.edu", ["circulation desk"])
    with pytest.raises(PolicyError, match="also_from"):
        load_policy(path)


async def test_a_crisis_a_desk_department_reports_still_alerts_the_care_team(
    deps: RouterDeps, broker: FakeBroker
) -> None:
    report = emailed(
        "A student at our desk just told us she has been saving pills and plans to take them "
        "all tonight. She is still here.",
        "email-writing-center",
    ).model_copy(update={"patron": Patron(contact="writing.center@tccd.edu")})
    await route_batch(deps, [item(report)])
    assert decisions(broker, "email-writing-center")[0]["action"] == "escalate_crisis"
    assert kinds(broker, "email-writing-center") == ["crisis_alert"]  # nothing to their mailbox


async def test_a_flood_of_one_patrons_crisis_messages_alerts_once_in_a_while(
    engine: AsyncEngine, broker: FakeBroker, policy: Policy
) -> None:
    """One number texting the same crisis words 20 times in two minutes, in several batches:
    the CARE Team is alerted and the patron sent the resources once, and again only once
    REALERT_AFTER has passed since (a flood had sent 31 of each in a minute, an outside
    review); every message is still decided, an escalation each."""
    clock = {"now": OPEN_HOURS}
    db = UnitRunner(engine, name="router-flood")
    flood = RouterDeps(
        broker=broker,  # type: ignore[arg-type]
        policies=PolicyHolder(default_policy_path(), policy),
        presence=PresenceView(),
        db=db,
        clock=lambda: clock["now"],
    )
    conversation = f"sms-{uuid.uuid4()}"
    try:
        for second in range(0, 120, 6):
            clock["now"] = OPEN_HOURS + timedelta(seconds=second)
            text = interaction(CRISIS, conversation=conversation, when=clock["now"])
            await route_batch(flood, [item(text)])
        clock["now"] = OPEN_HOURS + timedelta(minutes=11)
        later = interaction(CRISIS, conversation=conversation, when=clock["now"])
        await route_batch(flood, [item(later)])
    finally:
        db.close()
    kinds = [c["data"]["kind"] for c in broker.on(NOTIFICATIONS.name)]
    assert kinds.count("crisis_alert") == 2 and kinds.count("crisis_resources") == 2
    decisions = broker.on(ROUTING.name)
    assert len(decisions) == 21
    assert {d["data"]["action"] for d in decisions} == {"escalate_crisis"}
    # each decision is dated by the router's clock, the moment its texts speak from
    first, last = (datetime.fromisoformat(d["data"]["decided_at"]) for d in decisions[::20])
    assert (first, last) == (OPEN_HOURS, OPEN_HOURS + timedelta(minutes=11))
