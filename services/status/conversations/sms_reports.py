"""What the SMS provider reported about a text after accepting it (refdesk.sms-reports), on the
text's transcript line: the carrier delivered it, or did not and why.

A report names the text by the provider's id (Twilio's MessageSid) only; the notifier's
announcement puts that id on the line (`message_id`). Reports come on their own topic, before
or after the announcement, and Twilio's callbacks in any order: the most final report per id
is kept (`sms_reports`) and applied to the line when both are known, whichever came first.

A text Twilio refused outright (its create answered 4xx) never gets a report: the notifier's
failed announcement carries Twilio's error code instead, said in the same words (`refusal`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status import rows
from services.status.conversations import transcript
from services.status.conversations.transcript import DELIVERED, UNDELIVERED
from services.status.models import TEXT_SENT, ConversationRow, SmsReportRow, TranscriptEntry
from shared.events import Channel, DeliveryState, NotificationDelivered, SmsStatusReported

RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "read": 3,
    "undelivered": 3,
    "failed": 3,
    "canceled": 3,
}
"""How final each of Twilio's words is; a word not listed counts as queued. A report never
replaces one of higher rank, so a `sent` posted after `delivered` changes nothing."""
FINAL = 3
STATE = {"delivered": DELIVERED, "read": DELIVERED}
"""The line's state after a final report; every other final word is UNDELIVERED."""

REASONS = {
    30003: "unreachable handset",
    30004: "blocked by the recipient",
    30005: "unknown number",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier",
    30008: "unknown error",
    30034: "sending number not registered for A2P 10DLC",
    21610: "the patron replied STOP",
    21211: "not a valid phone number",
    21614: "not a mobile number",
}
"""Twilio's common error codes for a text that was not delivered (a status callback's ErrorCode)
or that Twilio refused to send (its answer to the create), in the desk's words."""
NO_REASON = "the carrier did not deliver it"

_LINES = "refdesk.sms_report_lines"
"""The unit of work's index: provider id -> the id of its outbound SMS line (None: none yet)."""


def reason(error_code: int | None) -> str:
    """Why a text was not delivered, as the console says it."""
    if error_code is None:
        return NO_REASON
    return REASONS.get(error_code, f"error {error_code}")


def refusal(error_code: int) -> str:
    """Why Twilio refused to send a text, as the console says it (the notifier's failed
    announcement carries the code)."""
    return REASONS.get(error_code, f"the SMS provider refused it (error {error_code})")


def _order(status: str, reported_at: datetime, error_code: int | None) -> tuple[object, ...]:
    """Reports in the order the most final wins: by rank, then the later, then by word and
    code, so that any arrival order ends with the same report kept."""
    return (RANK.get(status, 0), reported_at, status, -1 if error_code is None else error_code)


def _index(session: AsyncSession) -> dict[str, str | None]:
    found: dict[str, str | None] = session.info.setdefault(_LINES, {})
    return found


# the index says what the unit's transcript lines say, so it ends with them (commit, rollback)
rows.written_at_commit(lambda _session: None, _LINES)


def _sent_ids(events: Iterable[BaseModel]) -> set[str]:
    return {
        data.message_id
        for data in events
        if isinstance(data, NotificationDelivered)
        and data.channel is Channel.SMS
        and data.message_id
    }


async def preload(session: AsyncSession, events: list[BaseModel]) -> None:
    """The reports and lines a batch's reports and SMS announcements touch, in one query per
    table."""
    reported = {data.provider_id for data in events if isinstance(data, SmsStatusReported)}
    await rows.preload(session, SmsReportRow, reported | _sent_ids(events))
    await _find_lines(session, reported)


def lines_of(provider_ids: Iterable[str]) -> Select[str | None, str, str]:
    """The texts refdesk sent with these provider ids: (provider id, line id, conversation id),
    read off the partial index `ix_transcript_text_sent`."""
    return (
        select(TranscriptEntry.message_id, TranscriptEntry.id, TranscriptEntry.conversation_id)
        .where(TranscriptEntry.message_id.in_(sorted(provider_ids)))
        .where(TEXT_SENT)
    )


async def _find_lines(session: AsyncSession, provider_ids: set[str]) -> None:
    """Index the outbound SMS lines that carry these provider ids, read with their
    conversations (the lines this unit wrote itself are indexed by `on_delivered`)."""
    index = _index(session)
    wanted = provider_ids - index.keys()
    if not wanted:
        return
    index.update(dict.fromkeys(wanted))
    found = await session.execute(lines_of(wanted))
    lines: list[str] = []
    conversations: set[str] = set()
    for provider_id, line_id, conversation_id in found:
        assert provider_id is not None  # one of those asked for
        index[provider_id] = line_id
        lines.append(line_id)
        conversations.add(conversation_id)
    await transcript.preload(session, lines)
    await rows.preload(session, ConversationRow, conversations)


async def _apply(session: AsyncSession, line_id: str, report: SmsReportRow) -> None:
    """Put a final report on its line and tell the consoles."""
    if RANK.get(report.status, 0) < FINAL:
        return
    state = STATE.get(report.status, UNDELIVERED)
    why = None if state == DELIVERED else reason(report.error_code)
    await transcript.report_delivery(session, line_id, state, why, report.reported_at)


async def on_reported(session: AsyncSession, data: SmsStatusReported) -> None:
    """A report: kept if it is the most final yet, and applied to its line if that is known."""
    report = await rows.get(session, SmsReportRow, data.provider_id)
    if report is None:
        report = rows.add(
            session,
            SmsReportRow(
                provider_id=data.provider_id,
                status=data.status,
                error_code=data.error_code,
                reported_at=data.reported_at,
            ),
        )
    elif _order(data.status, data.reported_at, data.error_code) > _order(
        report.status, report.reported_at, report.error_code
    ):
        report.status, report.error_code = data.status, data.error_code
        report.reported_at = data.reported_at
    else:
        return
    await _find_lines(session, {data.provider_id})
    line_id = _index(session)[data.provider_id]
    if line_id is not None:
        await _apply(session, line_id, report)


async def _refused(session: AsyncSession, key: str, error_code: int) -> None:
    """A text Twilio refused: its line says why in words (an announcement without a code keeps
    its own short reason, such as "rejected 400")."""
    entry = await transcript.line(session, key)
    if entry is not None and entry["delivery_state"] == DeliveryState.FAILED.value:
        await transcript.rewrite(session, key, delivery_reason=refusal(error_code))


async def on_delivered(session: AsyncSession, data: NotificationDelivered) -> None:
    """After the notifier's announcement wrote a text's line: why Twilio refused it, or the
    report that came first."""
    if data.channel is not Channel.SMS:
        return
    if data.state is DeliveryState.FAILED and data.error_code is not None:
        await _refused(session, data.idempotency_key, data.error_code)
    if not data.message_id:
        return
    entry = await transcript.line(session, data.idempotency_key)
    if entry is None or entry["direction"] != "out" or entry["message_id"] != data.message_id:
        return
    _index(session)[data.message_id] = data.idempotency_key
    report = await rows.get(session, SmsReportRow, data.message_id)
    if report is not None:
        await _apply(session, data.idempotency_key, report)
