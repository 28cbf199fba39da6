"""The order the projector publishes in: each conversation's events as they happened.

The projector reads three topics as one consumer, and a poll batch comes flattened partition by
partition, so a conversation's routing decision can sit before the message it answers. Within
a batch, `causal_order` merges each conversation's events from the two topics by the time of
their source event (received < routed < closed when equal), keeping each topic's own order;
presence changes go by their time.

Across batches the broker can hand over a decision before its message: a partition whose
records were fetched but not yet polled is not fetched again, while the other topics' are. So
`Causes` holds back a router decision whose interaction this projector has not published when
that interaction can still be unread: its partition of refdesk.interactions is assigned here,
has records beyond the position read, and nothing published from it (or read in this batch) is
as recent as the decision. The projector then sets that routing partition back to the decision
(its later records wait too, to keep their order, and are read again) and pauses that
partition alone for a moment (projector.Pauses); every other partition is read on. While a
decision waits, whatever of its conversation comes later waits as well, in whichever partition
it is read (`Causes.whole`): a conversation's second message, read while its first decision is
paused, is not published before that decision.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from aiokafka.structs import TopicPartition
from pydantic import BaseModel

from shared.events import (
    AnyEvent,
    ConversationClosed,
    InteractionReceived,
    PresenceChanged,
    RoutingDecided,
)
from shared.kafka import partition_of
from shared.topics import INTERACTIONS

RANK: dict[type[BaseModel], int] = {
    InteractionReceived: 0,
    RoutingDecided: 1,
    ConversationClosed: 2,
}
MAX_HOLD_S = 30.0
"""Longest a decision waits for its interaction (a safety bound: it normally waits one poll)."""


@dataclass(frozen=True)
class Item:
    """One decoded record and where it was read from."""

    topic: str
    partition: int
    offset: int
    event: AnyEvent
    data: BaseModel

    @property
    def where(self) -> tuple[str, int]:
        return self.topic, self.partition


def happened(item: Item) -> tuple[datetime, int]:
    """When the source event happened, and its place among a conversation's events."""
    if isinstance(item.data, PresenceChanged):
        return item.data.changed_at, 0
    return item.event.time, RANK.get(type(item.data), 0)


def causal_order(items: Sequence[Item]) -> list[Item]:
    """The batch in the order its events happened, each topic partition's order kept."""
    streams: dict[tuple[str, str], list[Item]] = {}
    presence: list[Item] = []
    for item in items:
        if isinstance(item.data, PresenceChanged):
            presence.append(item)
            continue
        conversation = str(getattr(item.data, "conversation_id", ""))
        streams.setdefault((conversation, item.topic), []).append(item)
    # heapq.merge never reorders within one input: a conversation's events of one topic (one
    # partition, Kafka's order) stay as read, and the topics interleave by time
    presence.sort(key=happened)
    return list(heapq.merge(*streams.values(), presence, key=happened))


class Positions(Protocol):
    """What `Causes` asks of the Kafka consumer (aiokafka's AIOKafkaConsumer)."""

    def assignment(self) -> set[TopicPartition]: ...

    def partitions_for_topic(self, topic: str) -> set[int] | None: ...

    async def position(self, partition: TopicPartition) -> int: ...

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...


def conversation_of(item: Item) -> str | None:
    """The conversation an item belongs to (None for a presence change)."""
    conversation = getattr(item.data, "conversation_id", None)
    return None if conversation is None else str(conversation)


@dataclass(frozen=True)
class Holding:
    """A conversation's first held event in one partition."""

    after: tuple[datetime, int]
    """Its place among its conversation's events (`happened`)."""
    offset: int


@dataclass
class Causes:
    """What the projector knows of the interactions it has published, to hold decisions back."""

    remembered: int = 100_000
    published: OrderedDict[str, None] = field(default_factory=OrderedDict)
    """Interaction ids published recently (the newest `remembered`)."""
    newest_published: dict[int, datetime] = field(default_factory=dict)
    """Partition of refdesk.interactions -> the latest event time published from it."""
    waiting_since: dict[str, float] = field(default_factory=dict)
    """Decision event id -> when it was first held (monotonic)."""
    holding: dict[str, dict[tuple[str, int], Holding]] = field(default_factory=dict)
    """Conversation -> where its first held event is in each partition, while held."""

    def publish(self, items: Iterable[Item]) -> None:
        """Note what was published (and forget the decisions no longer held)."""
        for item in items:
            if item.topic == INTERACTIONS.name:
                newest = self.newest_published.get(item.partition)
                if newest is None or item.event.time > newest:
                    self.newest_published[item.partition] = item.event.time
            if isinstance(item.data, InteractionReceived):
                self.published[item.data.interaction_id] = None
                self.published.move_to_end(item.data.interaction_id)
            elif isinstance(item.data, RoutingDecided):
                self.waiting_since.pop(item.event.id, None)
        while len(self.published) > self.remembered:
            self.published.popitem(last=False)

    async def held(
        self, ordered: Sequence[Item], consumer: Positions
    ) -> dict[tuple[str, int], int]:
        """Topic partition -> the offset from which to read it again: where a router decision
        must wait for its interaction, and where a conversation's later event must wait for a
        decision of it that waits (`whole`)."""
        return self.whole(ordered, await self._decisions(ordered, consumer), consumer.assignment())

    async def _decisions(
        self, ordered: Sequence[Item], consumer: Positions
    ) -> dict[tuple[str, int], int]:
        """Where the router decisions of this batch that must wait for their interaction are."""
        seen: set[str] = set()  # read in this batch, before the decision
        newest_read = dict(self.newest_published)
        suspects: list[tuple[Item, int]] = []
        partitions = sorted(consumer.partitions_for_topic(INTERACTIONS.name) or ())
        for item in ordered:
            data = item.data
            if item.topic == INTERACTIONS.name:
                newest = newest_read.get(item.partition)
                if newest is None or item.event.time > newest:
                    newest_read[item.partition] = item.event.time
            if isinstance(data, InteractionReceived):
                seen.add(data.interaction_id)
            elif (
                isinstance(data, RoutingDecided)
                and data.decided_by == "router"  # staff decisions follow no message just read
                and data.interaction_id not in seen
                and data.interaction_id not in self.published
                and partitions
            ):
                key = data.conversation_id.encode()
                suspects.append((item, partition_of(key, partitions, partitions)))
        if not suspects:
            return {}
        mine = {tp.partition for tp in consumer.assignment() if tp.topic == INTERACTIONS.name}
        wanted = sorted({p for _, p in suspects if p in mine})
        unread = await self._unread(consumer, wanted)
        held: dict[tuple[str, int], int] = {}
        now = time.monotonic()
        for decision, since in list(self.waiting_since.items()):
            if now - since > 2 * MAX_HOLD_S:  # published by another replica after a rebalance
                del self.waiting_since[decision]
        for item, partition in suspects:
            # Something read from that partition (published before, or in this batch) is as
            # recent as the decision: its interaction came before it, and is published first
            # (or waits itself, and the decision with it: `whole`).
            newest = newest_read.get(partition)
            if partition not in unread or (newest is not None and newest >= item.event.time):
                continue  # its interaction was read before (or is nowhere to wait for)
            first = self.waiting_since.setdefault(item.event.id, now)
            if now - first > MAX_HOLD_S:
                continue
            held[item.where] = min(held.get(item.where, item.offset), item.offset)
        return held

    def whole(
        self,
        ordered: Sequence[Item],
        held: dict[tuple[str, int], int],
        assigned: set[TopicPartition],
    ) -> dict[tuple[str, int], int]:
        """`held`, grown until no conversation has an event published after one of its own that
        waits. A held partition holds everything from its held offset on; an event of a
        conversation that waits (in this batch, or held by an earlier one in a partition paused
        meanwhile) holds whatever of it comes later, each in its own partition from there. So
        a hold costs the partitions its conversations' later events are in, and no others."""
        held = dict(held)
        reached: dict[tuple[str, int], int] = {}  # the furthest offset this batch read
        for item in ordered:
            reached[item.where] = max(reached.get(item.where, -1), item.offset)
        carried: dict[str, dict[tuple[str, int], Holding]] = {}
        for held_one, places in self.holding.items():
            for where, holding in places.items():  # not read again yet: still waiting
                if TopicPartition(*where) in assigned and reached.get(where, -1) < holding.offset:
                    carried.setdefault(held_one, {})[where] = holding
        earlier = {c: min(h.after for h in places.values()) for c, places in carried.items()}
        grown = True
        while grown:  # a partition held further back can hold more conversations, and so on
            grown = False
            waits_from = dict(earlier)  # conversation -> where its waiting starts
            for item in ordered:
                conversation = conversation_of(item)
                start = held.get(item.where)
                by_partition = start is not None and item.offset >= start
                since = waits_from.get(conversation) if conversation is not None else None
                if not by_partition and (since is None or happened(item) < since):
                    continue
                if conversation is not None and (since is None or happened(item) < since):
                    waits_from[conversation] = happened(item)
                if not by_partition:
                    held[item.where] = item.offset if start is None else min(start, item.offset)
                    grown = True
        for item in ordered:
            start = held.get(item.where)
            conversation = conversation_of(item)
            if conversation is None or start is None or item.offset < start:
                continue
            places = carried.setdefault(conversation, {})
            if item.where not in places or item.offset < places[item.where].offset:
                places[item.where] = Holding(happened(item), item.offset)
        self.holding = carried
        return held

    @staticmethod
    async def _unread(consumer: Positions, partitions: list[int]) -> set[int]:
        """Which of these partitions of refdesk.interactions have records not read yet."""
        if not partitions:
            return set()
        tps = [TopicPartition(INTERACTIONS.name, p) for p in partitions]
        ends = await consumer.end_offsets(tps)
        return {tp.partition for tp in tps if await consumer.position(tp) < ends[tp]}


def split(
    ordered: Sequence[Item], held: dict[tuple[str, int], int]
) -> tuple[list[Item], list[Item]]:
    """(to publish now, held back): a held partition's records from its held offset on."""
    now: list[Item] = []
    later: list[Item] = []
    for item in ordered:
        start = held.get(item.where)
        (later if start is not None and item.offset >= start else now).append(item)
    return now, later
