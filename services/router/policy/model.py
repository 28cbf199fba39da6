"""Pydantic models of the policy file, validated when it is loaded."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.events import Action, Channel, PatronRole

_ID = r"^[a-z0-9][a-z0-9-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DepartmentKind(StrEnum):
    LIVE = "live"
    REFERRAL = "referral"
    EMAIL = "email"
    ESCALATION = "escalation"
    DESK = "desk"


class Interval(_Strict):
    open: time
    close: time

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        """Refuse an interval that closes before it opens."""
        if self.close <= self.open:
            raise ValueError("close must be after open")
        return self


class Hours(_Strict):
    monday: list[Interval] = Field(default_factory=list)
    tuesday: list[Interval] = Field(default_factory=list)
    wednesday: list[Interval] = Field(default_factory=list)
    thursday: list[Interval] = Field(default_factory=list)
    friday: list[Interval] = Field(default_factory=list)
    saturday: list[Interval] = Field(default_factory=list)
    sunday: list[Interval] = Field(default_factory=list)

    def week(self) -> list[list[Interval]]:
        """The intervals per weekday, Monday first (datetime.weekday order)."""
        days = (self.monday, self.tuesday, self.wednesday, self.thursday, self.friday)
        return [sorted(d, key=lambda i: i.open) for d in (*days, self.saturday, self.sunday)]


class HoursException(_Strict):
    """Days the desk keeps other hours than its week's: a holiday, a break, a closure for
    weather (`hours` empty: closed), or longer hours in finals week. Inclusive dates in the
    policy's timezone; they override the weekly hours of those days."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(min_length=1, max_length=80, description="for staff: 'Winter break'")
    first: date = Field(alias="from")
    last: date | None = Field(None, alias="to", description="the last day; absent: one day")
    hours: list[Interval] = Field(default_factory=list, description="empty: closed all day")

    @model_validator(mode="after")
    def _ordered(self) -> HoursException:
        """Refuse a range that ends before it starts, one longer than a year, or hours that
        overlap."""
        end = self.until
        if end < self.first:
            raise ValueError("'to' must not be before 'from'")
        if (end - self.first).days >= 366:
            raise ValueError("an exception covers at most a year; list each one")
        spans = sorted((i.open, i.close) for i in self.hours)
        if any(a[1] > b[0] for a, b in pairwise(spans)):
            raise ValueError("the exception's hours overlap")
        return self

    @property
    def until(self) -> date:
        """The last day the exception covers."""
        return self.last or self.first

    def days(self) -> list[date]:
        """Every day it covers, in order."""
        return [self.first + timedelta(days=k) for k in range((self.until - self.first).days + 1)]


class Settings(_Strict):
    sms_reply_window_hours: int = Field(gt=0)
    crisis_acknowledge_minutes: int = Field(gt=0)
    survey_url: str | None = Field(
        None,
        description="read by no text: the survey link patrons get is the notifier's "
        "REFDESK_SURVEY_URL (kept so that policy files naming it still load; the shipped "
        "policy's value is a placeholder that goes nowhere)",
    )


class Fallback(_Strict):
    mode: Literal["ticket"] = "ticket"
    message: dict[Channel, str]


class Department(_Strict):
    id: str = Field(pattern=_ID)
    name: str
    kind: DepartmentKind
    campus: str | None = None
    contact: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]+$")
    also_from: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]+$")]] = Field(
        default_factory=list,
        description="other addresses the department's own mail comes from (its old address "
        "while a change of `contact` settles, a shared mailbox's members): read as the "
        "department's mail, never answered as a patron's",
    )
    handoff: dict[Channel, str] = Field(default_factory=dict)
    fallback: Fallback | None = None

    @model_validator(mode="after")
    def _complete(self) -> Department:
        """Every non-desk department speaks on all channels; live ones need a fallback."""
        if self.kind is not DepartmentKind.DESK and set(self.handoff) != set(Channel):
            raise ValueError("handoff needs chat, sms and email texts")
        if self.kind is DepartmentKind.LIVE and self.fallback is None:
            raise ValueError("a live department needs a fallback")
        if self.fallback is not None and set(self.fallback.message) != set(Channel):
            raise ValueError("fallback.message needs chat, sms and email texts")
        return self


class TermGroup(_Strict):
    phrases: list[str] = Field(default_factory=list)
    stems: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)

    def is_empty(self) -> bool:
        """True when the group names no term at all."""
        return not (self.phrases or self.stems or self.patterns)


class Cue(TermGroup):
    """Weighted terms of one cue category (e.g. means, farewell, abuse).

    A rule's cue score is the sum, over categories, of the highest weight among that
    category's unmasked hits: one strong cue (weight >= threshold) fires the rule alone,
    weak cues only in combination with a cue of another category.
    """

    category: str = Field(pattern=_ID)
    weight: int = Field(1, ge=1, le=100)


class Conditions(_Strict):
    any_of: TermGroup | None = None
    all_of: list[TermGroup] = Field(default_factory=list)
    none_of: TermGroup | None = None
    cues: list[Cue] = Field(default_factory=list)
    threshold: int = Field(2, ge=1, le=100)
    """cue score at which the rule's text condition holds (also: any_of matched)"""
    negatable: bool = False
    channel: list[Channel] | None = None
    patron_role: list[PatronRole] | None = None
    desk_hours: Literal["open", "closed"] | None = None

    def has_text(self) -> bool:
        """True when the rule needs some words in the message."""
        has_any = bool(self.any_of and not self.any_of.is_empty())
        return has_any or bool(self.all_of) or bool(self.cues)

    def is_unconditional(self) -> bool:
        """True when the rule always fires (a catch-all)."""
        filters = (self.channel, self.patron_role, self.desk_hours)
        return not self.has_text() and all(f is None for f in filters)


class Rule(_Strict):
    id: str = Field(pattern=_ID)
    crisis: bool = False
    corroborate: bool = False
    """a crisis rule on a topic word alone (suicide, overdose, abuse, stalking...): with the
    learned net loaded it escalates only when the net's risk reaches its review threshold
    (services/router/learned/nets.py); without the net it escalates as any crisis rule"""
    keep: bool = False
    """the learned net's suggested route never replaces this rule's (a message it matches whole,
    a greeting or a bare plea, has no content for the net to route by); the net's crisis
    reading still escalates it or flags it for review"""
    action: Action
    department: str
    summary: str | None = None
    conditions: Conditions = Field(default_factory=Conditions)

    @model_validator(mode="after")
    def _crisis_consistent(self) -> Rule:
        """A crisis rule escalates and only a crisis rule escalates."""
        if self.crisis != (self.action is Action.ESCALATE_CRISIS):
            raise ValueError("crisis: true goes with action escalate_crisis, and only with it")
        if self.corroborate and not self.crisis:
            raise ValueError("corroborate: true is for crisis rules only")
        if self.keep and self.crisis:
            raise ValueError("keep: true is for rules that route, not crisis rules")
        return self


class Normalisation(_Strict):
    shorthand: dict[str, str] = Field(default_factory=dict)
    negation_cues: list[str] = Field(default_factory=list)
    negation_window: int = Field(3, ge=0, le=10)
    corrections: list[str] = Field(default_factory=list)


class Extraction(_Strict):
    patron_name: list[str]
    tcc_id: list[str]
    item: list[str]


class Expect(_Strict):
    action: Action
    department: str


class Example(_Strict):
    channel: Channel
    text: str
    patron_role: PatronRole = PatronRole.UNKNOWN
    received_at: datetime | None = None
    online: list[str] | None = None
    expect: Expect


class Translation(_Strict):
    """The patron-facing texts in one more language, chosen by a message's detected language.

    Placeholders are the English texts' ones; department names stay as the policy spells them.
    """

    handoff: dict[str, dict[Channel, str]] = Field(description="department id -> channel -> text")
    fallback: dict[Channel, str] = Field(description="a live department nobody staffs: {name}")
    after_hours_ack: dict[Channel, str]
    sms_keywords: dict[str, str] = Field(default_factory=dict)
    opt_out_phrases: list[str] = Field(
        default_factory=list,
        description="whole texts in this language that ask the desk to stop texting, matched "
        "as the English ones are (sms_carrier_keywords.opt_out_phrases)",
    )
    opt_out_phrase_reply: str | None = Field(
        None,
        description="the confirmation such a text gets (Twilio confirms only its keywords)",
    )

    @field_validator("opt_out_phrases")
    @classmethod
    def _phrases(cls, phrases: list[str]) -> list[str]:
        return _checked_phrases(phrases)


_WORD = r"[A-Z]+"


def _checked_phrases(phrases: list[str]) -> list[str]:
    """Opt-out phrases are written as they are matched (`phrase_key`)."""
    for phrase in phrases:
        if phrase != phrase_key(phrase) or not phrase:
            raise ValueError(
                f"opt-out phrase {phrase!r} must be lower-case words separated by single "
                f"spaces, without punctuation: {phrase_key(phrase)!r}"
            )
    return phrases


class CarrierKeywords(_Strict):
    """The carrier (CTIA) keywords an SMS may consist of, answered as keywords only.

    A text that is one of these words and nothing else (any case, surrounding whitespace and
    trailing punctuation ignored) is decided at `department` without rules, nets, hand-off or
    after-hours acknowledgement. An opt-out word stops every later text to the number (the
    notifier enforces it) until an opt-in word; a help word gets its `sms_keywords` reply.
    A `resume` word (Twilio's YES) is routed as the message it also is, a patron's answer
    to a librarian, and opts the number back in only if its latest change was an opt-out (the
    notifier knows): Twilio resumes texts to a number that texts YES after STOP.
    """

    department: str = Field("reference", description="where keywords are decided: the desk")
    opt_out: list[str] = Field(
        default_factory=lambda: [
            "STOP",
            "STOPALL",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "OPTOUT",
            "REVOKE",
        ]
    )
    opt_in: list[str] = Field(default_factory=lambda: ["START", "UNSTOP"])
    resume: list[str] = Field(
        default_factory=list,
        description="words texted alone that opt a number back in only after an opt-out, and "
        "are otherwise routed as any message (YES answers librarians' questions too)",
    )
    help: list[str] = Field(default_factory=lambda: ["HELP", "INFO"])
    opt_out_phrases: list[str] = Field(
        default_factory=list,
        description="whole texts that ask the desk to stop texting ('stop texting me'): an "
        "opt-out as STOP is, matched in lower case with punctuation and apostrophes ignored",
    )
    opt_out_phrase_reply: str | None = Field(
        None,
        description="the confirmation an opt-out phrase (or a keyword with more words, "
        "'stop please') gets: Twilio confirms and blocks only a text that is its keyword alone",
    )

    @model_validator(mode="after")
    def _words(self) -> CarrierKeywords:
        """One upper-case word each, and no word in two lists."""
        seen: set[str] = set()
        for word in (*self.opt_out, *self.opt_in, *self.resume, *self.help):
            if not re.fullmatch(_WORD, word):
                raise ValueError(f"carrier keyword {word!r} must be one upper-case word")
            if word in seen:
                raise ValueError(f"carrier keyword {word!r} is listed twice")
            seen.add(word)
        _checked_phrases(self.opt_out_phrases)
        if not self.opt_out and self.opt_out_phrases:
            raise ValueError("opt-out phrases need an opt-out keyword to record them as")
        return self


_NOT_A_LETTER = re.compile(r"[^\w\s]+")


def phrase_key(text: str) -> str:
    """A text as opt-out phrases are matched: lower case, accents, apostrophes and punctuation
    dropped, one space between words ("Don't text me!!" -> "dont text me", "más" -> "mas")."""
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(_NOT_A_LETTER.sub("", bare.lower()).split())


class PolicyDoc(_Strict):
    label: str
    timezone: str
    hours: Hours
    hours_exceptions: list[HoursException] = Field(default_factory=list)
    links: dict[str, str]
    settings: Settings
    departments: list[Department]
    normalise: Normalisation = Field(default_factory=Normalisation)
    rules: list[Rule] = Field(min_length=1)
    extract: Extraction
    sms_keywords: dict[str, str] = Field(default_factory=dict)
    sms_carrier_keywords: CarrierKeywords = Field(default_factory=CarrierKeywords)
    after_hours_ack: dict[Channel, str]
    languages: dict[str, Translation] = Field(default_factory=dict)
    examples: list[Example] = Field(default_factory=list)

    @field_validator("links")
    @classmethod
    def _link_names(cls, links: dict[str, str]) -> dict[str, str]:
        """Link names are used as {placeholders}, so they must be identifiers."""
        for name in links:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"link name {name!r} is not a lower-case identifier")
        return links

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, languages: dict[str, Translation]) -> dict[str, Translation]:
        """Translations are keyed by ISO 639-1 code; English is the policy itself."""
        for code in languages:
            if not re.fullmatch(r"[a-z]{2}", code) or code == "en":
                raise ValueError(f"language {code!r} must be an ISO 639-1 code other than en")
        return languages

    @field_validator("sms_keywords")
    @classmethod
    def _keywords(cls, keywords: dict[str, str]) -> dict[str, str]:
        """Keywords are single upper-case words, as patrons text them."""
        for word in keywords:
            if not re.fullmatch(_WORD, word):
                raise ValueError(f"sms keyword {word!r} must be one upper-case word")
        return keywords
