"""What must be sent after a decision: pure translation into notification commands.

Idempotency keys are derived from ids, so a redelivered interaction yields the same keys and
the notifier's ledger drops the repeat. Keys that must hold once per conversation (the
after-hours acknowledgement, the survey) are derived from the conversation id alone.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from services.router.policy.decision import Decision
from services.router.policy.engine import Policy
from shared.events import (
    Action,
    AfterHoursAckContext,
    Channel,
    CirculationEmailContext,
    ConversationClosed,
    CrisisAlertContext,
    CrisisResourcesContext,
    HandoffContext,
    InteractionReceived,
    KeywordReplyContext,
    NotificationKind,
    NotificationRequested,
    Priority,
    SafetyReviewAlertContext,
    SurveyContext,
    derived_id,
)

PATRON_FACING = {Action.TRANSFER, Action.REFER_FACULTY, Action.REFER_COUNSELING}


def _patron_recipient(interaction: InteractionReceived) -> str | None:
    if interaction.channel is Channel.CHAT:
        return interaction.conversation_id
    return interaction.patron.contact


def _command(
    kind: NotificationKind,
    *,
    key: str,
    channel: Channel,
    recipient: str,
    interaction: InteractionReceived,
    priority: Priority,
    context: BaseModel,
) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=key,
        kind=kind,
        channel=channel,
        recipient=recipient,
        conversation_id=interaction.conversation_id,
        interaction_id=interaction.interaction_id,
        priority=priority,
        context=context.model_dump(mode="json"),
        requested_at=datetime.now(UTC),
    )


def _next_open(policy: Policy, received_at: datetime, lang: str) -> str:
    """When the desk opens next, as a patron reads it ("Monday at 8:00 AM", in Spanish
    "el lunes a las 8:00 a. m.")."""
    if lang != "en":
        return policy.describe_next_open(received_at, lang)
    opens = policy.next_open(received_at)
    return f"{opens:%A} at {opens:%I:%M %p}".replace(" 0", " ")


def commands_for(
    interaction: InteractionReceived, decision: Decision, policy: Policy
) -> list[NotificationRequested]:
    """The notification commands that follow one routing decision."""
    iid = interaction.interaction_id
    links = policy.links
    patron = _patron_recipient(interaction)
    out: list[NotificationRequested] = []

    def to_patron(kind: NotificationKind, key: str, context: BaseModel) -> None:
        if patron is not None:
            out.append(
                _command(
                    kind,
                    key=key,
                    channel=interaction.channel,
                    recipient=patron,
                    interaction=interaction,
                    priority=decision.priority,
                    context=context,
                )
            )

    if decision.action is Action.ESCALATE_CRISIS:
        care = policy.department("care-team")
        out.append(
            _command(
                NotificationKind.CRISIS_ALERT,
                key=derived_id(iid, "crisis-alert"),
                channel=Channel.EMAIL,
                recipient=care.contact,
                interaction=interaction,
                priority=Priority.URGENT,
                context=CrisisAlertContext(
                    conversation_ref=interaction.conversation_id,
                    channel=interaction.channel,
                    care_report_url=links.get("care_report", ""),
                    urgency=Priority.URGENT,
                    detected_at=interaction.received_at.isoformat(),
                ),
            )
        )
        to_patron(
            NotificationKind.CRISIS_RESOURCES,
            derived_id(iid, "crisis-resources"),
            CrisisResourcesContext(
                counseling_url=links.get("counseling_contacts", ""),
                mhfa_url=links.get("mental_health_first_aid"),
                lang=decision.lang,
            ),
        )
    elif decision.safety_review:
        out.append(safety_review_alert(interaction, decision, policy))
    if decision.action is Action.EMAIL_CIRCULATION:
        circ = policy.department(decision.department)
        out.append(
            _command(
                NotificationKind.CIRCULATION_EMAIL,
                key=derived_id(iid, "circulation-email"),
                channel=Channel.EMAIL,
                recipient=circ.contact,
                interaction=interaction,
                priority=decision.priority,
                context=CirculationEmailContext(
                    conversation_ref=interaction.conversation_id,
                    channel=interaction.channel,
                    patron_name=decision.guidance.extracted.get("patron_name"),
                    tcc_id=decision.guidance.extracted.get("tcc_id"),
                    item=decision.guidance.extracted.get("item"),
                    question=interaction.text,
                    patron_contact=interaction.patron.contact,
                    missing_fields=list(decision.guidance.missing_fields),
                ),
            )
        )
    if decision.action in PATRON_FACING and decision.handoff_text:
        to_patron(
            NotificationKind.HANDOFF,
            derived_id(iid, "handoff"),
            HandoffContext(
                department_name=policy.department(decision.department).name,
                handoff_text=decision.handoff_text,
                lang=decision.lang,
            ),
        )
    if decision.keyword_reply:
        to_patron(
            NotificationKind.KEYWORD_REPLY,
            derived_id(iid, "keyword"),
            KeywordReplyContext(
                reply_text=decision.keyword_reply,
                keyword=interaction.text.strip().upper()[:20],
                lang=decision.lang,
            ),
        )
    if (
        decision.overnight
        and decision.after_hours_ack
        and decision.action is not Action.ESCALATE_CRISIS
    ):
        to_patron(
            NotificationKind.AFTER_HOURS_ACK,
            derived_id(interaction.conversation_id, "after-hours-ack"),
            AfterHoursAckContext(
                next_open=_next_open(policy, interaction.received_at, decision.lang),
                lang=decision.lang,
            ),
        )
    return out


def safety_review_alert(
    interaction: InteractionReceived, decision: Decision, policy: Policy
) -> NotificationRequested:
    """To the staff on duty (the desk's address, not the CARE Team): read this one now."""
    return _command(
        NotificationKind.SAFETY_REVIEW_ALERT,
        key=derived_id(interaction.interaction_id, "safety-review"),
        channel=Channel.EMAIL,
        recipient=policy.desk.contact,
        interaction=interaction,
        priority=Priority.HIGH,
        context=SafetyReviewAlertContext(
            conversation_ref=interaction.conversation_id,
            channel=interaction.channel,
            care_report_url=policy.links.get("care_report", ""),
            department_name=policy.department(decision.department).name,
            detected_at=interaction.received_at.isoformat(),
            risk_score=decision.risk_score,
            patron_lang=decision.lang,
        ),
    )


def survey_for(closed: ConversationClosed) -> NotificationRequested | None:
    """The survey macro for a closed email or SMS ticket (chats get none); once per ticket."""
    if closed.channel is Channel.CHAT or not closed.patron_contact:
        return None
    return NotificationRequested(
        idempotency_key=derived_id(closed.conversation_id, "survey"),
        kind=NotificationKind.SURVEY,
        channel=closed.channel,
        recipient=closed.patron_contact,
        conversation_id=closed.conversation_id,
        priority=Priority.NORMAL,
        context=SurveyContext().model_dump(mode="json"),  # the notifier adds its survey link
        requested_at=datetime.now(UTC),
    )
