"""People's text without the characters that only do harm (shared.text)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.events import InteractionReceived, StaffNoteAdded
from shared.text import printable


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("a book \x00 about history", "a book  about history"),
        ("line one\r\nline two\tend", "line one\r\nline two\tend"),  # line breaks and tabs stay
        ("\x1b[31mred\x1b[0m \x07bell \x7f\x85\x9f", "[31mred[0m bell "),
        ("pay to \u202eevil\u202c.exe and \u2066x\u2069", "pay to evil.exe and x"),
        (
            "👩\u200d💻 ok \u200b zero width",
            "👩\u200d💻 ok \u200b zero width",
        ),  # emoji joiners stay
        ("¿dónde está el libro? مكتبة", "¿dónde está el libro? مكتبة"),
        ("a\ud800b \udfff", "ab "),  # lone surrogates: no UTF-8 encodes them
    ],
)
def test_printable_drops_controls_and_overrides_only(raw: str, kept: str) -> None:
    assert printable(raw) == kept


def test_an_event_read_off_the_topic_with_a_nul_is_cleaned() -> None:
    """An event already on a topic with a NUL in it (PostgreSQL stores none) is read clean."""
    raw = {
        "interaction_id": "i-1",
        "conversation_id": "email-1",
        "channel": "email",
        "provider": "mailgun",
        "provider_message_id": "m1@example.edu",
        "patron": {"contact": "pat@example.edu", "name": "Pat\u0000 \u202eLee"},
        "text": "I need help finding a book \u0000 about history",
        "subject": "help\u0000",
        "received_at": "2026-12-01T15:00:00Z",
    }
    event = InteractionReceived.model_validate_json(json.dumps(raw))
    assert (event.text, event.subject, event.patron.name) == (
        "I need help finding a book  about history",
        "help",
        "Pat Lee",
    )


def test_a_note_of_control_characters_only_is_refused_as_empty() -> None:
    with pytest.raises(ValidationError):
        StaffNoteAdded(
            note_id="n",
            conversation_id="c",
            staff_id="s",
            text="\x00\x1b",
            at="2026-12-01T15:00:00Z",
        )


def test_stacks_of_combining_marks_are_cut_to_three_and_real_accents_kept() -> None:
    """ "Zalgo" text stacked dozens of marks on a letter: it drew over the console's other lines
    and one letter filled a queue preview (an outside review). Vietnamese stacks two."""
    import unicodedata

    from shared.text import without_mark_stacks

    zalgo = "h" + "\u0336\u0334\u0335\u0337\u0321\u0300" * 10 + "elp"
    assert without_mark_stacks(zalgo) == "h\u0336\u0334\u0335elp"
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Ánh, Tiếng Việt")  # e + two marks
    for kept in (decomposed, "café", "plain ascii", "e\u0301\u0302\u0303"):
        assert without_mark_stacks(kept) is kept
