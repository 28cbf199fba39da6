"""What must be sent after a decision: pure translation into notification commands.

Idempotency keys are derived from ids, so a redelivered interaction yields the same keys and
the notifier's ledger drops the repeat. The survey, once per conversation, is keyed by the
conversation id alone; the after-hours acknowledgement, once per opening of the conversation,
by the conversation id and the close before the opening (none for the first opening, whose key
is the conversation's alone, as before openings were counted).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from services.router.policy.decision import Decision
from services.router.policy.engine import CIRCULATION_FOLLOW_UP, Policy
from shared.events import (
    Action,
    AfterHoursAckContext,
    Channel,
    CirculationEmailContext,
    ConversationClosed,
    CrisisAlertContext,
    CrisisKind,
    CrisisResourcesContext,
    HandoffContext,
    InteractionReceived,
    KeywordReplyContext,
    NotificationKind,
    NotificationRequested,
    Priority,
    SafetyReviewAlertContext,
    SmsConsentContext,
    SurveyContext,
    crisis_kinds_of,
    derived_id,
)

PATRON_FACING = {
    Action.TRANSFER,
    Action.REFER_FACULTY,
    Action.REFER_COUNSELING,
    Action.EMAIL_CIRCULATION,
}
REFERRALS = {Action.REFER_FACULTY, Action.REFER_COUNSELING, Action.EMAIL_CIRCULATION}
"""A referral's hand-off is the answer (where to go, who will contact them and when): after
hours it goes alone, without "a librarian will answer you when we open". A lost book, a bill or
a hold goes to the circulation managers by email, and the desk's staff do not see it: the
patron had heard nothing at all in open hours, and after hours a promise of a librarian's
reply at opening that nobody would keep."""
CONSENT_KIND = {
    "opt_out": NotificationKind.SMS_OPT_OUT,
    "opt_in": NotificationKind.SMS_OPT_IN,
    "resume": NotificationKind.SMS_OPT_IN,
}
"""The command recording a carrier opt-out or opt-in keyword against the patron's number."""


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


MIN_TIME = datetime.min.replace(tzinfo=UTC)


def _next_open(policy: Policy, moment: datetime, lang: str) -> str:
    """When the desk opens next after `moment`, as a patron reads it then ("Monday at 8:00
    AM", "tomorrow at 8:00 AM", in Spanish "el lunes a las 8:00 a. m.")."""
    if lang != "en":
        return policy.describe_next_open(moment, lang)
    return policy.hours.weekday_phrase(policy.next_open(moment), moment)


def after_hours_ack_key(conversation_id: str, opening: str | None) -> str:
    """The acknowledgement's idempotency key: one per opening of the conversation, named by the
    close before it (`conversations.close_token`; None: the first opening)."""
    if opening is None:
        return derived_id(conversation_id, "after-hours-ack")
    return derived_id(conversation_id, "after-hours-ack", opening)


def commands_for(
    interaction: InteractionReceived,
    decision: Decision,
    policy: Policy,
    *,
    opening: str | None = None,
    now: datetime | None = None,
    to_patron: bool = True,
) -> list[NotificationRequested]:
    """The notification commands that follow one routing decision: the staff's first, then
    the patron's (none when the patron left no way to reach them; none in answer to mail a
    mail system sent: an answer to an autoresponder or a bounce reaches nobody, and may loop;
    and none to mail sent to many, a list or a newsletter: an acknowledgement may reach every
    member of the list, RFC 3834 section 2, while staff still read it and answer by hand).
    `opening` names the conversation's opening the message belongs to (the close before it);
    `now`, when it is decided (the moment "opens tomorrow" is said from; None: its receipt);
    `to_patron` False: nothing unasked but a crisis's resources (a machine quoting refdesk, a
    sender staff blocked)."""
    out = staff_commands(interaction, decision, policy)
    patron = _patron_recipient(interaction)
    if patron is None or interaction.automatic is not None or interaction.bulk:
        return out
    crisis = decision.action is Action.ESCALATE_CRISIS
    if interaction.patron.unverified and not crisis:
        # a From that may be forged gets nothing unasked: the college's mail server had sent
        # a forger's victim hand-offs and acknowledgements (an outside review); staff read it
        # and reply by hand, and a crisis still gets its resources
        return out
    messages = patron_messages(interaction, decision, policy, opening=opening, now=now)
    if not to_patron:  # a patron in crisis is never left without the resources
        messages = [m for m in messages if m[0] is NotificationKind.CRISIS_RESOURCES]
    for kind, key, context in messages:
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
    return out


def staff_commands(
    interaction: InteractionReceived, decision: Decision, policy: Policy
) -> list[NotificationRequested]:
    """What staff are sent: the CARE Team's crisis alert, else the desk's safety review; the
    circulation managers' email."""
    out: list[NotificationRequested] = []
    if decision.action is Action.ESCALATE_CRISIS:
        out.append(crisis_alert(interaction, decision, policy))
    elif decision.safety_review:
        out.append(safety_review_alert(interaction, decision, policy))
    if decision.action is Action.EMAIL_CIRCULATION:
        out.append(circulation_email(interaction, decision, policy))
    return out


PatronMessage = tuple[NotificationKind, str, BaseModel]
"""A message to the patron: its kind, idempotency key and template context."""


def patron_messages(
    interaction: InteractionReceived,
    decision: Decision,
    policy: Policy,
    *,
    opening: str | None = None,
    now: datetime | None = None,
) -> list[PatronMessage]:
    """What the patron is sent, in order: crisis resources, the hand-off, a keyword's reply,
    the after-hours acknowledgement (once per opening of the conversation, in the policy's
    words for the channel and language; never beside a crisis nor a
    referral's hand-off, which is the answer; it replaces the hand-off of a transfer that
    became a ticket, which would promise a second time). An
    opt-out or opt-in keyword is first recorded against the number (a command that sends nothing),
    so an opt-in's reply goes out after it; an opt-out's reply, if the policy has one, is the
    one text the notifier still sends the number."""
    iid, lang = interaction.interaction_id, decision.lang
    # an email's automatic answers thread under the patron's email (RFC 3834)
    answers = interaction.provider_message_id if interaction.channel is Channel.EMAIL else None
    answered_subject = interaction.subject if answers else None
    out: list[PatronMessage] = []
    if decision.sms_consent is not None:
        kind = CONSENT_KIND[decision.sms_consent]
        confirmation = derived_id(iid, "keyword") if decision.keyword_reply else None
        resume = decision.sms_consent == "resume"  # YES, routed as a message besides
        consent = SmsConsentContext(
            keyword=decision.sms_keyword or interaction.text.strip(" \t\r\n.!?,;:¡¿").upper()[:20],
            confirmation_key=confirmation if kind is NotificationKind.SMS_OPT_OUT else None,
            if_opted_out=resume,
            lang=lang,
        )
        out.append((kind, derived_id(iid, kind.value), consent))
    if decision.action is Action.ESCALATE_CRISIS:
        resources = CrisisResourcesContext(
            counseling_url=policy.links.get("counseling_contacts", ""),
            mhfa_url=policy.links.get("mental_health_first_aid"),
            lang=lang,
            in_reply_to=answers,
            subject=answered_subject,
        )
        out.append(
            (NotificationKind.CRISIS_RESOURCES, derived_id(iid, "crisis-resources"), resources)
        )
    acknowledging = (
        decision.overnight
        and bool(decision.after_hours_ack)
        and decision.action is not Action.ESCALATE_CRISIS
        and not (decision.action in REFERRALS and decision.handoff_text)
    )
    # after hours a ticket's hand-off ("nobody is online: we made a ticket") would be a second
    # text promising another time: the acknowledgement says when the desk opens, alone
    ticket_after_hours = decision.fallback is not None and acknowledging
    if decision.action in PATRON_FACING and decision.handoff_text and not ticket_after_hours:
        handoff = HandoffContext(
            department_name=policy.department(decision.department).name,
            handoff_text=decision.handoff_text,
            lang=lang,
            in_reply_to=answers,
            subject=answered_subject,
        )
        out.append((NotificationKind.HANDOFF, derived_id(iid, "handoff"), handoff))
    if decision.keyword_reply:
        reply = KeywordReplyContext(
            reply_text=decision.keyword_reply,
            keyword=decision.sms_keyword or interaction.text.strip().upper()[:20],
            lang=lang,
        )
        out.append((NotificationKind.KEYWORD_REPLY, derived_id(iid, "keyword"), reply))
    if acknowledging:
        ack = AfterHoursAckContext(
            next_open=_next_open(policy, max(interaction.received_at, now or MIN_TIME), lang),
            ack_text=decision.after_hours_ack,
            lang=lang,
            in_reply_to=answers,
            subject=answered_subject,
        )
        key = after_hours_ack_key(interaction.conversation_id, opening)
        out.append((NotificationKind.AFTER_HOURS_ACK, key, ack))
    return out


def crisis_kinds(decision: Decision) -> list[str]:
    """What kind of crisis the decision's crisis rules matched (`shared.events.crisis_kinds_of`);
    a crisis the learned model escalated without any crisis rule is `learned_model`. Only the
    rules' ids are read, never the words they matched."""
    return crisis_kinds_of(hit.rule_id for hit in decision.rules) or [
        CrisisKind.LEARNED_MODEL.value
    ]


def crisis_alert(
    interaction: InteractionReceived, decision: Decision, policy: Policy
) -> NotificationRequested:
    """To the CARE Team, urgent, whatever the hour: where and when, the patron's language and
    the kind of crisis the router saw; never the patron's words or contact."""
    return _command(
        NotificationKind.CRISIS_ALERT,
        key=derived_id(interaction.interaction_id, "crisis-alert"),
        channel=Channel.EMAIL,
        recipient=policy.department("care-team").contact,
        interaction=interaction,
        priority=Priority.URGENT,
        context=CrisisAlertContext(
            conversation_ref=interaction.conversation_id,
            channel=interaction.channel,
            care_report_url=policy.links.get("care_report", ""),
            urgency=Priority.URGENT,
            detected_at=interaction.received_at.isoformat(),
            patron_lang=decision.lang,
            crisis_kinds=crisis_kinds(decision),
        ),
    )


def circulation_email(
    interaction: InteractionReceived, decision: Decision, policy: Policy
) -> NotificationRequested:
    """To the circulation managers: who, which item, and what is still missing."""
    extracted = decision.guidance.extracted
    return _command(
        NotificationKind.CIRCULATION_EMAIL,
        key=derived_id(interaction.interaction_id, "circulation-email"),
        channel=Channel.EMAIL,
        recipient=policy.department(decision.department).contact,
        interaction=interaction,
        priority=decision.priority,
        context=CirculationEmailContext(
            conversation_ref=interaction.conversation_id,
            channel=interaction.channel,
            patron_name=extracted.get("patron_name"),
            tcc_id=extracted.get("tcc_id"),
            item=extracted.get("item"),
            question=interaction.text,
            patron_contact=interaction.patron.contact,
            contact_unverified=interaction.patron.unverified,
            missing_fields=list(decision.guidance.missing_fields),
            follow_up=bool(decision.rules) and decision.rules[0].rule_id == CIRCULATION_FOLLOW_UP,
        ),
    )


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
    """The survey macro for a closed email or SMS ticket (chats get none, nor a ticket closed
    unanswered); once per ticket."""
    if closed.channel is Channel.CHAT or not closed.patron_contact or not closed.survey:
        return None
    return NotificationRequested(
        idempotency_key=derived_id(closed.conversation_id, "survey"),
        kind=NotificationKind.SURVEY,
        channel=closed.channel,
        recipient=closed.patron_contact,
        conversation_id=closed.conversation_id,
        priority=Priority.NORMAL,
        # the notifier adds its survey link; the closer says which language it goes out in
        context=SurveyContext(
            lang=closed.lang or "en",
            in_reply_to=closed.in_reply_to,
            references=closed.references,
            subject=closed.subject,
        ).model_dump(mode="json"),
        requested_at=datetime.now(UTC),
    )
