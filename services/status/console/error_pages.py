"""What a librarian's browser sees when a console page cannot be shown: a page in the console's
look (or, for one conversation, a message in its pane) with the right status code. Clients
that ask for JSON keep the problem+json the app's handlers give (shared/http.py, api.py)."""

from __future__ import annotations

from dataclasses import dataclass

from services.status.conversations.policy import TakenFromDesk
from services.status.errors import StatusError

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
JSON_TYPES = frozenset({"application/json", "application/problem+json"})


@dataclass(frozen=True)
class Trouble:
    """An error as the page says it: a short title and one plain sentence."""

    title: str
    sentence: str


PAGE_NOT_FOUND = Trouble(
    "Page not found",
    "There is no page at this address in the desk console. The link may be wrong or out of date.",
)
SERVER_TROUBLE = Trouble(
    "This page could not be shown",
    "Something went wrong on the desk's side, not in anything you did. Try again in a moment; "
    "if it keeps happening, tell the desk's administrator the time it happened.",
)
UNAVAILABLE_TROUBLE = Trouble(
    "The desk console is not available right now",
    "It cannot reach its database or message broker. Try again in a minute: patrons' messages "
    "are kept meanwhile and appear in the queue when it is back.",
)
CONVERSATION_TROUBLE = {
    404: Trouble(
        "This conversation could not be found",
        "It may have been closed and removed, or the link is wrong.",
    ),
    403: Trouble(
        "This conversation cannot be opened",
        "It belongs to a department you do not staff. A colleague there or a supervisor can "
        "open it.",
    ),
}
CONVERSATION_OTHER = Trouble(
    "This conversation cannot be opened",
    "Something stopped it from opening. Try again in a moment, or pick it from the queue.",
)


def _quality(params: str) -> float:
    """The q of one Accept entry's parameters ("q=0.8"), 1 when absent or unreadable."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 1.0
    return 1.0


def wants_html(accept: str | None) -> bool:
    """Whether an Accept header asks for a page: text/html named, and preferred over every
    JSON type named (a browser's navigation). Wildcards decide nothing, so a client that
    names no type, or */*, keeps getting JSON."""
    best_html = best_json = 0.0
    for entry in (accept or "").split(","):
        media, _, params = entry.partition(";")
        media = media.strip().lower()
        if media in HTML_TYPES:
            best_html = max(best_html, _quality(params))
        elif media in JSON_TYPES or media.endswith("+json"):
            best_json = max(best_json, _quality(params))
    return best_html > best_json


def conversation_trouble(exc: StatusError) -> Trouble:
    """Why a conversation cannot be shown, in the pane's words (its status code picks them;
    a ticket a colleague took from the desk says so, with their name)."""
    if isinstance(exc, TakenFromDesk):
        who = exc.name[:1].upper() + exc.name[1:]
        return Trouble(
            f"{who} took this conversation",
            "It is a ticket of a department you do not staff, shown at the desk only while "
            "nobody had claimed it, so it has left your queue.",
        )
    return CONVERSATION_TROUBLE.get(exc.status, CONVERSATION_OTHER)
