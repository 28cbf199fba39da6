"""The desk's canonical ids (DOMAIN.md): departments, campuses and why a conversation closed.

What may leave refdesk as an id is checked against these: a value a chat platform sent that
merely looks like an id ("ana-gomez-2223334") is student data, not a department.
"""

from __future__ import annotations

CAMPUSES = frozenset(
    {"campus-ne", "campus-nw", "campus-se", "campus-south", "campus-tr", "campus-connect"}
)
"""The other campuses' libraries (Northeast, Northwest, Southeast, South, Trinity River,
Connect)."""

DEPARTMENTS = frozenset(
    {
        "reference",
        "nw-circulation",
        "circulation-managers",
        "writing-center",
        "tutoring",
        "faculty-support",
        "counseling",
        "care-team",
        *CAMPUSES,
    }
)
"""Every department a conversation can belong to."""

CLOSE_REASONS = frozenset(
    {"closed", "ended", "resolved", "abandoned", "timeout", "expired", "transferred", "missed"}
)
"""Why a chat ended or a ticket closed, as refdesk and chat platforms name it; another value
is not published."""


def canonical(value: str | None, known: frozenset[str]) -> str | None:
    """The value as a known id (trimmed, lower-cased), else None."""
    if value is None:
        return None
    value = value.strip().lower()
    return value if value in known else None
