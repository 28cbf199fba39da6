"""The queue gauges are counted by the database; they agree with a count of the rows."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, arrive

from services.status import metrics
from services.status.models import Conversation
from shared.events import Channel


async def test_queue_gauges_match_a_count_of_the_open_conversations(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    channels = (Channel.CHAT, Channel.SMS, Channel.EMAIL)
    departments = ("reference", "writing-center", "care-team")
    for i in range(24):
        await arrive(
            sessions,
            f"c{i}",
            channel=channels[i % 3],
            department=departments[i % 4 % 3],
            minutes_ago=7 * i,
            overnight=i % 5 == 0,
            crisis=i % 7 == 0,
        )
    async with sessions() as session:
        rows = {c.conversation_id: c for c in (await session.scalars(select(Conversation)))}
        rows["c3"].assignee = "lokafor"  # assigned: not the oldest waiting
        rows["c21"].assignee = "lokafor"
        rows["c14"].acknowledged_at = T0  # an acknowledged crisis
        rows["c22"].department = None  # not routed yet
        rows["c8"].state = "closed"
        await session.commit()
        now = T0 + timedelta(minutes=5)
        await metrics.refresh(session=session, now=now)
        # read at once, with no await between: another status app on this event loop (the
        # broker tier's session server) refreshes the same process-wide gauges on its own tick
        open_ = [c for c in rows.values() if c.state == "open"]
        get = REGISTRY.get_sample_value
        counts = Counter((c.department or "unrouted", c.channel) for c in open_)
        for (department, channel), n in counts.items():
            labels = {"department": department, "channel": channel}
            assert get("refdesk_queue_open_conversations", labels) == n
        waiting: dict[str, float] = {}
        for c in open_:
            if c.assignee is None:
                label = c.department or "unrouted"
                age = (now - c.opened_at).total_seconds()
                waiting[label] = max(waiting.get(label, 0.0), age)
        for department, age in waiting.items():
            assert (
                get("refdesk_queue_oldest_waiting_age_seconds", {"department": department}) == age
            )
        assert get("refdesk_overnight_tickets_waiting") == sum(c.overnight for c in open_)
        unacked = sum(c.crisis and c.acknowledged_at is None for c in open_)
        assert get("refdesk_crises_unacknowledged") == unacked
        assert len(counts) > 5 and unacked >= 2 and len(waiting) == 4  # the mix is really mixed
