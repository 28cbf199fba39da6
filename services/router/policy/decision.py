"""What the engine takes (DecisionInput) and what it returns (Decision)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Action, Channel, PatronRole, Priority, RuleHit, StaffGuidance


@dataclass(frozen=True, slots=True)
class DecisionInput:
    """One patron message as the router sees it (text and names are student data)."""

    channel: Channel
    text: str
    received_at: datetime
    patron_role: PatronRole = PatronRole.UNKNOWN
    subject: str | None = None
    department_hint: str | None = None
    campus_hint: str | None = None
    crisis_conversation: bool = False
    """the message follows up a conversation where a crisis was escalated: a text of a help
    word alone (HELP, INFO, AYUDA) is routed as a message of it, not answered as a keyword"""
    circulation_emailed: bool = False
    """the message follows up a conversation the circulation managers were emailed about: one
    that names a patron, TCC ID or item goes to them too (a second email)"""
    patron_name: str | None = None
    """the name the channel gave with the message (an email's From, a chat platform's
    patron): the circulation managers' email takes it when the message names nobody"""
    decided_at: datetime | None = None
    """when it is decided (None: when it was received): what the patron is told is read then,
    so an email that says it was sent last night ("opens tomorrow") or a backlog decided after
    the opening is not told of a day or a closure already past"""

    @property
    def moment(self) -> datetime:
        """The moment the patron's texts speak from: the decision's, never before receipt."""
        if self.decided_at is None:
            return self.received_at
        return max(self.received_at, self.decided_at)

    def __post_init__(self) -> None:
        """Refuse a naive timestamp: desk hours need to know the instant."""
        if self.received_at.tzinfo is None or self.received_at.utcoffset() is None:
            raise ValueError("received_at must be timezone-aware")


class Decision(BaseModel):
    """Where a message goes, how urgently, and what the patron and staff are told."""

    model_config = ConfigDict(frozen=True)

    action: Action
    department: str
    priority: Priority
    overnight: bool
    rules: list[RuleHit] = Field(default_factory=list)
    handoff_text: str | None = None
    guidance: StaffGuidance = Field(default_factory=StaffGuidance)
    fallback: str | None = None
    after_hours_ack: str | None = None
    keyword_reply: str | None = None
    sms_keyword: str | None = Field(
        None, description="the keyword the SMS consisted of (upper case): decided as one only"
    )
    sms_consent: Literal["opt_out", "opt_in", "resume"] | None = Field(
        None,
        description="the keyword is a carrier opt-out (STOP) or opt-in (START); resume: the "
        "text (YES) opts the number back in if its latest change was an opt-out",
    )
    policy_version: str
    lang: str = Field("en", description="ISO 639-1 language the patron's texts are chosen in")
    safety_review: bool = Field(
        False, description="not escalated, but the learned net saw possible crisis: read now"
    )
    risk_score: float | None = Field(None, description="the learned net's crisis risk, 0-1")
    net: str | None = Field(None, description="the net that escalated or flagged: rules | model")
    model_version: str | None = None
    model_route: str | None = Field(
        None, description="the learned net's most probable non-crisis route (action/department)"
    )
    model_confidence: float | None = None
    quotes_refdesk: bool = Field(
        False,
        description="the message quoted refdesk's own sentences, taken out before it was "
        "decided (`routing.decide`): a new conversation that does is a machine's",
    )
