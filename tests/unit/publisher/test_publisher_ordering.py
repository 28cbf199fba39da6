"""The projector's order: given a poll batch as Kafka hands it over, then each conversation's
events as they happened, and which router decisions wait for a message not read yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka.structs import TopicPartition
from pydantic import BaseModel

from services.publisher import ordering
from services.publisher.ordering import Causes, Item, causal_order, split
from shared.events import (
    Action,
    AnyEvent,
    Channel,
    ConversationClosed,
    InteractionReceived,
    Patron,
    PresenceChanged,
    Priority,
    RoutingDecided,
    StaffStatus,
    new_event,
)
from shared.kafka import partition_of
from shared.topics import INTERACTIONS, PRESENCE, ROUTING

T = datetime(2025, 12, 1, 14, tzinfo=UTC)
offsets: dict[str, int] = {}


def item(topic: str, data: BaseModel, second: float, *, partition: int = 0) -> Item:
    at = T + timedelta(seconds=second)
    event = new_event(data, source="unit").model_copy(update={"time": at})
    offset = offsets[topic] = offsets.get(topic, -1) + 1
    return Item(
        topic, partition, offset, AnyEvent.model_validate_json(event.model_dump_json()), data
    )


def got(cid: str, second: float) -> Item:
    data = InteractionReceived(
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=Channel.CHAT,
        provider="chat",
        provider_message_id=f"m-{cid}",
        patron=Patron(),
        text="hours?",
        received_at=T,
    )
    return item(INTERACTIONS.name, data, second)


def decided(cid: str, second: float, *, by: str = "router") -> Item:
    data = RoutingDecided(
        decision_id=f"d-{cid}-{second}",
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=Channel.CHAT,
        action=Action.ANSWER,
        department="reference",
        priority=Priority.NORMAL,
        overnight=False,
        policy_version="test",
        decided_at=T,
        decided_by=by,
    )
    return item(ROUTING.name, data, second)


def closed(cid: str, second: float) -> Item:
    data = ConversationClosed(conversation_id=cid, channel=Channel.CHAT, closed_at=T)
    return item(INTERACTIONS.name, data, second)


def presence(staff: str, second: float) -> Item:
    data = PresenceChanged(
        staff_id=staff,
        status=StaffStatus.ONLINE,
        departments=["reference"],
        changed_at=T + timedelta(seconds=second),
    )
    return item(PRESENCE.name, data, 0)


def kinds(items: list[Item]) -> list[str]:
    return [f"{type(i.data).__name__}:{getattr(i.data, 'conversation_id', '')}" for i in items]


def test_a_batch_flattened_by_partition_comes_out_as_things_happened() -> None:
    # as aiokafka hands a batch over: the routing partition first, then the interactions one
    batch = [
        decided("a", 2),
        decided("b", 3),
        got("a", 1),
        got("b", 2.5),
        closed("a", 4),
        presence("ana", 9),
        presence("bo", 5),
    ]
    ordered = causal_order(batch)
    a = [i for i in ordered if getattr(i.data, "conversation_id", None) == "a"]
    b = [i for i in ordered if getattr(i.data, "conversation_id", None) == "b"]
    assert kinds(a) == ["InteractionReceived:a", "RoutingDecided:a", "ConversationClosed:a"]
    assert kinds(b) == ["InteractionReceived:b", "RoutingDecided:b"]
    staff = [i.data.staff_id for i in ordered if isinstance(i.data, PresenceChanged)]
    assert staff == ["bo", "ana"]


def test_equal_times_go_received_routed_closed() -> None:
    batch = [decided("c", 1), got("c", 1), closed("c", 1)]
    assert kinds(causal_order(batch)) == [
        "InteractionReceived:c",
        "RoutingDecided:c",
        "ConversationClosed:c",
    ]


def test_one_topics_order_is_kept_whatever_the_clocks_say() -> None:
    """Two events of one conversation on one partition stay in Kafka's order, even when the
    second's producer clock is behind (a close by staff right after a message)."""
    batch = [got("d", 5), closed("d", 4)]
    assert kinds(causal_order(batch)) == ["InteractionReceived:d", "ConversationClosed:d"]


class FakeConsumer:
    """Three partitions of refdesk.interactions, all assigned; `unread` of them have records
    beyond the position read."""

    def __init__(self, unread: set[int], assigned: set[int] | None = None) -> None:
        self.unread = unread
        self.assigned = {0, 1, 2} if assigned is None else assigned
        self.asked: list[list[TopicPartition]] = []

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(INTERACTIONS.name, p) for p in self.assigned}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {0, 1, 2}

    async def position(self, tp: TopicPartition) -> int:
        return 10

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked.append(tps)
        return {tp: 11 if tp.partition in self.unread else 10 for tp in tps}


def home(cid: str) -> int:
    """The partition of refdesk.interactions a conversation's messages go to."""
    return partition_of(cid.encode(), [0, 1, 2], [0, 1, 2])


async def test_a_decision_whose_message_is_still_unread_waits_with_what_follows_it() -> None:
    late, other = decided("e", 5), decided("f", 6)
    ordered = [got("g", 1), late, other]
    held = await Causes().held(ordered, FakeConsumer(unread={home("e")}))
    assert held == {(ROUTING.name, 0): late.offset}
    now, later = split(ordered, held)
    assert kinds(now) == ["InteractionReceived:g"]
    assert kinds(later) == ["RoutingDecided:e", "RoutingDecided:f"]


async def test_a_decision_goes_out_when_its_message_is_known_or_cannot_be_waited_for() -> None:
    consumer = FakeConsumer(unread={0, 1, 2})
    causes = Causes()
    # its message in the same batch
    assert await causes.held([got("h", 1), decided("h", 2)], consumer) == {}
    # its message published by an earlier batch
    causes.publish([got("i", 1)])
    assert await causes.held([decided("i", 2)], consumer) == {}
    # a staff transfer answers no message just read
    assert await causes.held([decided("j", 2, by="staff-7")], consumer) == {}
    # nothing unread in its message's partition: its message came before (or never will)
    assert await Causes().held([decided("k", 2)], FakeConsumer(unread=set())) == {}
    # that partition is another replica's
    mine = {0, 1, 2} - {home("l")}
    assert await Causes().held([decided("l", 2)], FakeConsumer({0, 1, 2}, mine)) == {}
    # something read from that partition is newer than the decision: its message was read
    newer = item(INTERACTIONS.name, closed("m", 9).data, 9, partition=home("m"))
    assert await Causes().held([newer, decided("m", 2)], consumer) == {}


async def test_a_decision_waits_no_longer_than_the_bound(monkeypatch: object) -> None:
    causes = Causes()
    decision = decided("n", 2)
    consumer = FakeConsumer(unread={home("n")})
    assert await causes.held([decision], consumer)
    causes.waiting_since[decision.event.id] -= ordering.MAX_HOLD_S + 1
    assert await causes.held([decision], consumer) == {}


def test_a_conversation_waiting_holds_its_later_events_and_what_they_hold() -> None:
    """x's decision waits in routing partition 0 (an earlier batch held it). x's second message
    holds its partition of refdesk.interactions from there; y's message sits after it in that
    partition (its producer's clock behind), so it waits too, and y's decision in another
    routing partition waits with it. v, before the held offset, goes out."""
    causes = Causes()
    causes.holding = {"x": {(ROUTING.name, 0): ordering.Holding((T + timedelta(seconds=2), 1), 0)}}
    assigned = {TopicPartition(t, p) for t in (INTERACTIONS.name, ROUTING.name) for p in (0, 1)}

    def at(topic: str, source: Item, offset: int, partition: int) -> Item:
        return Item(topic, partition, offset, source.event, source.data)

    v = at(INTERACTIONS.name, got("v", 1), 4, 0)
    x2 = at(INTERACTIONS.name, got("x", 3), 5, 0)
    y = at(INTERACTIONS.name, got("y", 2.5), 6, 0)
    y_decided = at(ROUTING.name, decided("y", 2.6), 9, 1)
    ordered = causal_order([v, x2, y, y_decided])
    held = causes.whole(ordered, {}, assigned)
    assert held == {(INTERACTIONS.name, 0): 5, (ROUTING.name, 1): 9}
    now, later = split(ordered, held)
    assert kinds(now) == ["InteractionReceived:v"]
    assert kinds(later) == ["InteractionReceived:y", "RoutingDecided:y", "InteractionReceived:x"]
    # once x's decision is published and its partition read again, x waits no more
    causes.publish([at(ROUTING.name, decided("x", 2), 0, 0)])
    again = causal_order([x2, y, y_decided, at(ROUTING.name, decided("x", 2), 0, 0)])
    assert causes.whole(again, {}, assigned) == {}
