"""The desk's macro file (conversations/macros.py): read again when it changes, the last good
version kept when an edit breaks it, and what staff see for departments the file does not
name."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from services.status.conversations.macros import DEFAULT_FILE, MacroBook, first_name, load
from services.status.errors import NotFound

EXTRA = """
  - id: library_hours_today
    label: Hours today
    text: "We're open until {closing_time} today."
"""


@pytest.fixture
def book_file(tmp_path: Path) -> Path:
    """A copy of the shipped macros.yaml staff can edit."""
    path = tmp_path / "macros.yaml"
    shutil.copy(DEFAULT_FILE, path)
    return path


def touch_later(path: Path) -> None:
    """Move the file's modification time on (an edit within the same clock tick counts)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_an_edit_is_read_without_a_restart(book_file: Path) -> None:
    """A macro appended to the file is there on the next read."""
    book = MacroBook(book_file)
    with pytest.raises(NotFound, match="no macro 'library_hours_today'"):
        book.macro("library_hours_today")
    book_file.write_text(book_file.read_text("utf-8") + EXTRA, "utf-8")
    touch_later(book_file)
    macro = book.macro("library_hours_today")
    assert macro.label == "Hours today"
    assert macro.variables("sms") == ["closing_time"]


def test_a_broken_edit_keeps_the_last_good_file(book_file: Path) -> None:
    """A file that no longer validates: the book keeps what it had; a book that never read a
    good file refuses, naming the file."""
    book = MacroBook(book_file)
    before = book.data()
    book_file.write_text("links: {}\ndepartments: {}\nmacros: [{id: NOT AN ID}]\n", "utf-8")
    touch_later(book_file)
    assert book.data() is before
    with pytest.raises(ValueError, match=r"^macros\.yaml: "):
        MacroBook(book_file).data()


def test_macro_ids_must_be_unique(book_file: Path) -> None:
    """Two macros under one id are refused at load."""
    text = book_file.read_text("utf-8")
    book_file.write_text(text + EXTRA + EXTRA, "utf-8")
    with pytest.raises(ValueError, match="macro ids must be unique"):
        load(book_file)


def test_a_department_the_file_does_not_know(book_file: Path) -> None:
    """Its id stands for its name, and the hand-off names it; known ones come from the file."""
    book = MacroBook(book_file)
    assert book.department_name("campus-tr") == "Trinity River Campus Library"
    assert book.department_name("campus-moon") == "campus-moon"
    assert book.handoff("campus-moon") == (
        "Someone from campus-moon will join this conversation to help you."
    )
    assert book.handoff("tutoring").startswith("I'm transferring you to Tutoring.")
    assert "care-team" in book.departments()


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("Ana Gomez", "Ana"),
        ("  José  Luis ", "José"),
        ("O'Brien", "O'Brien"),
        ("2223334", None),
        ("   ", None),
        (None, None),
        ("_x", None),
    ],
)
def test_first_name(name: str | None, first: str | None) -> None:
    """The first word when it looks like a name (letters first, no digits or markup)."""
    assert first_name(name) == first


@pytest.mark.parametrize(
    ("department", "channel", "staffed", "expected"),
    [
        (
            "campus-tr",
            "chat",
            True,
            "I'm transferring you to the Trinity River Campus Library. "
            "A librarian there will join in a moment.",
        ),
        (
            "campus-tr",
            "chat",
            False,
            "I've passed your question to the Trinity River Campus Library. "
            "A librarian there will reply in this chat as soon as they can.",
        ),
        (
            "campus-tr",
            "email",
            False,
            "I've passed your question to the Trinity River Campus Library. "
            "A librarian there will reply by email as soon as they can.",
        ),
        (
            "campus-tr",
            "email",
            True,
            "I've passed your question to the Trinity River Campus Library. "
            "A librarian there will reply by email as soon as they can.",
        ),
        (
            "tutoring",
            "sms",
            True,
            "I've passed your question to Tutoring. Someone from Tutoring will reply "
            "by text message to help you set up an appointment.",
        ),
        (
            "campus-moon",
            "email",
            True,
            "I've passed your question to campus-moon. Someone there will reply by email "
            "as soon as they can.",
        ),
    ],
)
def test_the_handoff_matches_the_channel_and_who_is_online(
    department: str, channel: str, staffed: bool, expected: str
) -> None:
    assert MacroBook().handoff(department, channel=channel, staffed=staffed) == expected


@pytest.mark.parametrize("department", sorted(MacroBook().departments()))
@pytest.mark.parametrize(("channel", "staffed"), [("email", True), ("sms", True), ("chat", False)])
def test_no_ticket_handoff_promises_someone_joins(
    department: str, channel: str, staffed: bool
) -> None:
    text = MacroBook().handoff(department, channel=channel, staffed=staffed)
    assert "join" not in text and "{" not in text


@pytest.mark.parametrize("department", sorted(MacroBook().departments()))
@pytest.mark.parametrize(("channel", "staffed"), [("email", True), ("sms", True), ("chat", False)])
def test_a_spanish_speaking_patrons_ticket_handoff_is_spanish_and_promises_no_one_joining(
    department: str, channel: str, staffed: bool
) -> None:
    """A librarian-shift probe's Spanish chat was handed off in English."""
    text = MacroBook().handoff(department, channel=channel, staffed=staffed, lang="es")
    assert text != MacroBook().handoff(department, channel=channel, staffed=staffed)
    assert "unirá" not in text and "{" not in text


def test_the_spanish_handoff_says_how_the_answer_comes() -> None:
    book = MacroBook()
    assert book.handoff("writing-center", channel="sms", staffed=False, lang="es") == (
        "Pasé su pregunta al Writing Center. Alguien del Writing Center le responderá por "
        "mensaje de texto para ayudarle con sus citas."
    )
    assert "se unirá en un momento" in book.handoff("tutoring", channel="chat", lang="es")


@pytest.mark.parametrize("macro", [m for m in MacroBook().data().macros if m.audience == "patron"])
@pytest.mark.parametrize("channel", ["chat", "sms", "email"])
def test_every_patron_macro_has_spanish_with_the_same_variables(macro: Any, channel: str) -> None:
    """Every macro a Spanish-speaking patron may be sent reads in Spanish, and needs what the
    English needs (a variable only one of them uses would be refused for one language only)."""
    assert macro.es is not None, macro.id
    spanish, english = macro.for_channel(channel, "es"), macro.for_channel(channel)
    assert spanish != english
    assert sorted(macro.variables(channel, "es")) == sorted(macro.variables(channel))


def test_the_care_report_link_cannot_be_edited_away(book_file: Path) -> None:
    """Every crisis re-escalation email links the CARE Team's form from this file: an edit that
    drops it is refused at load (the last good file is kept)."""
    text = book_file.read_text()
    book_file.write_text(text.replace("  care_report_url:", "  old_care_report_url:"))
    with pytest.raises(ValueError, match="care_report_url is required"):
        load(book_file)


@pytest.mark.parametrize("lang", [None, "es"])
@pytest.mark.parametrize("channel", ["sms", "email"])
def test_a_handoff_macro_on_a_ticket_promises_no_one_joining_the_conversation(
    lang: str | None, channel: str
) -> None:
    """A shift probe's email ticket got "se unirá a esta conversación": on a text or an email
    the hand-off macros say how the answer comes, in English and Spanish."""
    macros = {m.id: m for m in load(DEFAULT_FILE).macros}
    for macro_id in ("handoff_writing_center", "handoff_tutoring", "handoff_nw_circulation"):
        text = macros[macro_id].for_channel(channel, lang)
        assert "join" not in text and "se unirá" not in text, text
        assert (
            ("text you" in text or "escribirá" in text)
            if channel == "sms"
            else ("email" in text or "correo" in text)
        ), text
