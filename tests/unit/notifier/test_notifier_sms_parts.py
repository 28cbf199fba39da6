"""Splitting an SMS text over Twilio's 1,600-character body limit, one case per rule."""

from __future__ import annotations

import pytest

from services.notifier.segments import GSM7_EXTENSION, is_gsm7
from services.notifier.sms_parts import SMS_BODY_LIMIT, body_size, next_part, split

ENGLISH = " ".join(
    f"Item {i} is due back at the NW campus library on Friday; renew it online." for i in range(60)
)
SPANISH = " ".join(f"Señora García, su libro número {i} está en la biblioteca." for i in range(90))
EMOJI = "Gracias 😀 por escribirnos. " * 150
BRACKETS = "Use [brackets] and {braces} or ~tildes~ here. " * 80


def readings(part: str) -> dict[str, int]:
    """Every way Twilio might count a body against its limit."""
    septets = sum(2 if ch in GSM7_EXTENSION else 1 for ch in part) if is_gsm7(part) else 0
    return {
        "characters": len(part),
        "utf-16 units": len(part.encode("utf-16-le")) // 2,
        "gsm-7 septets": septets,
        "utf-8 bytes": len(part.encode("utf-8")),
    }


@pytest.mark.parametrize("text", [ENGLISH, SPANISH, EMOJI, BRACKETS])
def test_every_part_is_within_the_limit_however_it_is_counted(text: str) -> None:
    parts = split(text)
    assert len(parts) > 1
    for part in parts:
        assert max(readings(part).values()) <= SMS_BODY_LIMIT == 1600
        assert part == part.strip() and part
    assert " ".join(parts) == text.strip()  # nothing lost, nothing doubled


def test_a_text_within_the_limit_is_one_part() -> None:
    assert split("x" * 1600) == ["x" * 1600]
    assert len(split("x" * 1601)) == 2
    assert split("  Your book is ready.\n") == ["Your book is ready."]


def test_english_fills_its_parts() -> None:
    first = split(ENGLISH)[0]
    assert len(first) > 1500 and first.endswith("online.")


def test_a_part_ends_at_a_paragraph_break_before_a_sentence_end() -> None:
    text = "A" * 1000 + ". Second sentence.\n\nNew paragraph " + "b " * 400
    first, rest = split(text)[:2]
    assert first.endswith("Second sentence.") and rest.startswith("New paragraph")


def test_a_part_ends_at_a_sentence_end_before_a_space() -> None:
    text = ("word " * 250) + "End of it. " + ("more " * 200)
    assert split(text)[0].endswith("End of it.")


def test_a_break_early_in_the_part_is_passed_over_for_a_later_one() -> None:
    text = "Hi.\n\n" + "word " * 500
    first = split(text)[0]
    assert len(first) > 1500 and first.startswith("Hi.\n\nword")


def test_a_text_without_spaces_is_cut_where_the_budget_ends() -> None:
    url = "https://example.edu/" + "a" * 3000
    parts = split(url)
    assert [len(p) for p in parts] == [1600, 1420] and "".join(parts) == url


def test_the_next_part_is_the_same_from_a_recorded_start() -> None:
    """What the ledger keeps (where the next part starts) is enough to resume the same split."""
    parts, start = [], 0
    while start < len(SPANISH):
        body, start = next_part(SPANISH, start)
        parts.append(body)
    assert parts == split(SPANISH)


def test_a_smaller_budget_gives_smaller_parts() -> None:
    parts = split(ENGLISH, 800)
    assert all(body_size(p) <= 800 for p in parts) and " ".join(parts) == ENGLISH
