"""The one input of "route this message without Kafka": POST /explain, the router's `explain`
command (JSON lines) and `refdesk policy explain` all read an ExplainRequest, so a field added
here reaches all three and a received_at without an offset means desk time in each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.router.policy.decision import DecisionInput
from services.router.policy.engine import Policy
from shared.clock import utcnow
from shared.events import Channel, PatronRole, within_range


def _this_century(value: datetime) -> datetime:
    """A time of the years 2000 to 2099, as events carry (a naive one checked as if UTC)."""
    within_range(value if value.tzinfo else value.replace(tzinfo=UTC))
    return value


class ExplainRequest(BaseModel):
    """One message to decide, with the presence to decide it under."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"channel": "chat", "text": "How do I cite a government report in APA 7?"}]
        }
    )

    channel: Channel
    text: str = Field(min_length=1, max_length=20_000)
    subject: str | None = Field(None, max_length=1_000, description="an email's subject line")
    patron_role: PatronRole = PatronRole.UNKNOWN
    received_at: Annotated[datetime, AfterValidator(_this_century)] | None = Field(
        None, description="ISO 8601; without an offset it is desk time; absent: now"
    )
    online: list[str] | None = Field(
        None,
        description="departments with staff Online; absent: all of them, at any hour (`[]`: "
        "nobody, as after hours before anyone signs in)",
    )
    crisis_conversation: bool = Field(
        False,
        description="the message follows up a conversation where a crisis was escalated (HELP, "
        "INFO or AYUDA alone is then routed as a message, not answered as a keyword)",
    )
    circulation_emailed: bool = Field(
        False,
        description="the message follows up an open conversation the circulation managers were "
        "emailed about (one naming a patron, TCC ID or item goes to them again)",
    )

    def to_input(self, policy: Policy) -> tuple[DecisionInput, frozenset[str]]:
        """The engine's input and the Online departments (absent: every department, at any
        hour; the router itself, before it has seen any presence, assumes staff only while
        the desk is open)."""
        at = self.received_at or utcnow()
        if at.tzinfo is None:
            at = at.replace(tzinfo=policy.hours.tz)  # a naive time is read as desk time
        inp = DecisionInput(
            channel=self.channel,
            text=self.text,
            received_at=at,
            patron_role=self.patron_role,
            subject=self.subject,
            crisis_conversation=self.crisis_conversation,
            circulation_emailed=self.circulation_emailed,
        )
        everyone = frozenset(d.id for d in policy.doc.departments)
        return inp, (frozenset(self.online) if self.online is not None else everyone)
