"""The desk's canned texts (macros.yaml) and the department names and hand-off texts staff
transfers use: data, validated at load, read again when the file changes."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.status.errors import InvalidInput, NotFound

DEFAULT_FILE = Path(__file__).resolve().parent / "macros.yaml"
CHANNELS = ("chat", "sms", "email")


REPLY_BY = {"chat": "in this chat", "sms": "by text message", "email": "by email"}
"""How a department answers a ticket on each channel: fills a ticket hand-off's {reply_by}."""


REPLY_BY_ES = {"chat": "en este chat", "sms": "por mensaje de texto", "email": "por correo"}
"""{reply_by} in Spanish."""


class HandoffText(BaseModel):
    """A department's hand-off in another language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    handoff: str
    ticket: str | None = None


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    handoff: str
    """What a patron in a live chat reads when someone in the department is Online."""
    ticket: str | None = None
    """What the patron reads when nobody joins now (an email or SMS ticket, or a chat sent to a
    department nobody staffs now); `{reply_by}` becomes "by email", "by text message" or "in
    this chat". Unset: `handoff`, for a department whose hand-off promises no one joining."""
    es: HandoffText | None = None
    """The same in Spanish, for a patron who writes in Spanish (unset: the English)."""


class MacroText(BaseModel):
    """A macro's text in another language (per channel as in English)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    chat: str | None = None
    sms: str | None = None
    email: str | None = None


CHANNEL_NAMES = {"chat": "chat", "sms": "text messages", "email": "email"}


class Macro(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    text: str
    channels: tuple[str, ...] = CHANNELS
    audience: Literal["patron", "staff"] = "patron"
    """`staff`: a text for staff only (an internal link), never offered to or sent to a patron."""
    chat: str | None = None
    sms: str | None = None
    email: str | None = None
    es: MacroText | None = None
    """The macro in Spanish, inserted for a patron who writes in Spanish."""

    def for_channel(self, channel: str, lang: str | None = None) -> str:
        """The macro's text on this channel, in the patron's language when the file has it."""
        texts: Macro | MacroText = self.es if lang == "es" and self.es is not None else self
        override: str | None = getattr(texts, channel, None) if channel in CHANNELS else None
        return override or texts.text

    def variables(self, channel: str, lang: str | None = None) -> list[str]:
        """The {variables} the channel's text needs."""
        text = self.for_channel(channel, lang)
        return [name for _, name, _, _ in string.Formatter().parse(text) if name]


REQUIRED_LINKS = ("care_report_url",)
"""Links the service itself uses, not only macros: the CARE Team's incident report form is in
every crisis re-escalation email."""


class MacroFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    links: dict[str, str]
    departments: dict[str, Department]
    macros: list[Macro]

    @model_validator(mode="after")
    def _has_required_links(self) -> MacroFile:
        missing = [name for name in REQUIRED_LINKS if not self.links.get(name)]
        if missing:
            raise ValueError(f"links: {', '.join(missing)} is required")
        return self


@dataclass
class MacroBook:
    """The loaded file, reloaded when its modification time changes."""

    path: Path = DEFAULT_FILE
    _mtime: float = -1.0
    _data: MacroFile | None = None

    def data(self) -> MacroFile:
        """The current file's content (the last good one if an edit broke it)."""
        mtime = self.path.stat().st_mtime
        if self._data is None or mtime != self._mtime:
            try:
                self._data = load(self.path)
            except ValueError:
                if self._data is None:
                    raise
            self._mtime = mtime
        return self._data

    def macro(self, macro_id: str) -> Macro:
        """One macro by id; NotFound otherwise."""
        for macro in self.data().macros:
            if macro.id == macro_id:
                return macro
        raise NotFound(f"no macro {macro_id!r}")

    def patron_macro(self, macro_id: str, channel: str | None = None) -> Macro:
        """One macro a reply to the patron may use (on `channel`, when given): NotFound, or
        InvalidInput if staff-only or written for other channels (a chat's "Thanks for
        chatting" had gone out as an email)."""
        macro = self.macro(macro_id)
        if macro.audience != "patron":
            raise InvalidInput(
                f"the {macro.label!r} macro is for staff only: it is never sent to the patron"
            )
        if channel is not None and channel not in macro.channels:
            places = " and ".join(CHANNEL_NAMES.get(c, c) for c in macro.channels)
            raise InvalidInput(
                f"the {macro.label!r} macro is written for {places}: this conversation is "
                f"{CHANNEL_NAMES.get(channel, channel)}"
            )
        return macro

    def patron_macros(self, channel: str) -> list[Macro]:
        """The macros the composer offers on this channel (staff-only ones are not offered)."""
        return [m for m in self.data().macros if m.audience == "patron" and channel in m.channels]

    def department_name(self, department: str) -> str:
        """A department's display name (its id if the file does not know it)."""
        found = self.data().departments.get(department)
        return found.name if found else department

    def handoff(
        self,
        department: str,
        *,
        channel: str = "chat",
        staffed: bool = True,
        lang: str | None = None,
    ) -> str:
        """The warm hand-off text staff start from when transferring to a department: that
        someone joins only for a chat with someone in the department Online, else the ticket
        wording for the conversation's channel; in Spanish for a Spanish-speaking patron when
        the file has it."""
        found = self.data().departments.get(department)
        if found is None:
            found = Department(
                name=department,
                handoff=f"Someone from {department} will join this conversation to help you.",
                ticket=f"I've passed your question to {department}. Someone there will reply "
                "{reply_by} as soon as they can.",
            )
        texts: Department | HandoffText = found
        reply_by = REPLY_BY
        if lang == "es" and found.es is not None:
            texts, reply_by = found.es, REPLY_BY_ES
        if channel == "chat" and staffed:
            return texts.handoff
        text = texts.ticket or texts.handoff
        return text.replace("{reply_by}", reply_by.get(channel, reply_by["email"]))

    def departments(self) -> dict[str, Department]:
        """Every department staff may transfer to."""
        return self.data().departments


def load(path: Path) -> MacroFile:
    """Read and validate the file; ValueError names what is wrong."""
    try:
        raw: Any = yaml.safe_load(path.read_text("utf-8"))
        data = MacroFile.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"{path.name}: {exc}") from exc
    ids = [m.id for m in data.macros]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path.name}: macro ids must be unique")
    return data


def first_name(name: str | None) -> str | None:
    """The first word of a name the patron gave, if it looks like one."""
    if not name:
        return None
    word = name.strip().split()[0] if name.strip() else ""
    return word if re.fullmatch(r"[^\W\d_][\w'\u2019-]{0,40}", word) else None


def fill(text: str, values: dict[str, str | None]) -> str:
    """Fill a macro's variables; InvalidInput names any this conversation cannot fill."""
    needed = [name for _, name, _, _ in string.Formatter().parse(text) if name]
    missing = sorted({name for name in needed if not values.get(name)})
    if missing:
        raise InvalidInput(
            "macro needs " + ", ".join(missing) + ", which this conversation does not have"
        )
    return text.format_map({name: values[name] for name in needed})
