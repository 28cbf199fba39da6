"""What a librarian's browser sees when the console cannot show what was asked (HTTP, no
browser): a conversation that cannot be opened, an address no page has, a sign-in form the
route refuses, a search parameter it cannot read; the timeline's routing line in words. API
clients keep their problem+json answers unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import console_scenes as scene
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import QueryParams
from status_fakes import T0, arrive

from services.status.app import create_app
from services.status.auth import COOKIE
from services.status.console import pages, timeline, views
from services.status.console.error_pages import wants_html
from services.status.conversations.macros import MacroBook
from services.status.errors import Conflict, Unavailable
from services.status.resources import Resources
from shared.events import Action, Channel, Priority, RoutingDecided, RuleHit

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON_CLIENTS = [{}, {"Accept": "application/json"}, {"Accept": "application/problem+json"}]
PROBLEM = "application/problem+json"
NOT_FOUND = {"type": "about:blank", "title": "Not Found", "status": 404}
ROUTED = "chat-routed"


async def sign_in(client: httpx.AsyncClient, staff_id: str = "mgarcia") -> None:
    answer = await client.post(
        "/dashboard/login", data={"staff_id": staff_id, "token": f"dev-{staff_id}-token"}
    )
    assert answer.status_code == 303


async def routed_by(
    sessions: async_sessionmaker[AsyncSession],
    rules: list[str],
    *,
    net: str | None = None,
    safety_review: bool = False,
    crisis: bool = True,
) -> None:
    """Given a chat the router routed by these rules."""
    await scene._apply(
        sessions,
        scene.message(ROUTED, Channel.CHAT, "help", minutes_ago=3, contact="chat-visitor-9"),
        RoutingDecided(
            decision_id=f"r-{ROUTED}",
            interaction_id=f"i-{ROUTED}-3",
            conversation_id=ROUTED,
            channel=Channel.CHAT,
            department="care-team" if crisis else "reference",
            action=Action.ESCALATE_CRISIS if crisis else Action.ANSWER,
            priority=Priority.URGENT if crisis else Priority.NORMAL,
            overnight=False,
            safety_review=safety_review,
            net=net,
            rules=[RuleHit(rule_id=r) for r in rules],
            policy_version="2025.03",
            decided_at=T0 - timedelta(minutes=3) + timedelta(seconds=1),
        ),
    )


# ---- a conversation that cannot be opened ---------------------------------------------


async def test_an_unknown_conversation_is_a_404_console_that_says_so_in_words(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.chats(sessions)
    await sign_in(client)
    answer = await client.get("/dashboard/c/nonexistent?channel=chat", headers=BROWSER)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert 'id="queue-pane"' in page and scene.CHAT in page  # the console, queue and all
    assert "This conversation could not be found" in page
    assert "It may have been closed and removed, or the link is wrong." in page
    assert 'href="/dashboard?channel=chat">Back to the queue</a>' in page
    assert "no such conversation" not in page  # nothing raw
    assert 'data-open-id=""' in page  # nothing open for the script to refresh
    # an API client asking for the same page gets the same page: it is a page
    assert (await client.get("/dashboard/c/nonexistent")).status_code == 404


async def test_a_conversation_of_another_department_is_a_403_console_that_says_why(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await arrive(sessions, "nw-1", channel=Channel.CHAT, department="nw-circulation")
    await sign_in(client, "rpatel")
    answer = await client.get("/dashboard/c/nw-1", headers=BROWSER)
    assert answer.status_code == 403
    assert "This conversation cannot be opened" in answer.text
    assert "It belongs to a department you do not staff." in answer.text
    assert "this conversation belongs to" not in answer.text  # the API's lowercase detail


async def test_the_scripts_conversation_fragment_explains_in_html_and_api_clients_get_json(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await sign_in(client)
    url = "/dashboard/fragments/conversation/nonexistent"
    pane = await client.get(url, headers={"Accept": "text/html"})  # as console.js asks
    assert pane.status_code == 404 and pane.headers["content-type"].startswith("text/html")
    assert "<h2" in pane.text and "This conversation could not be found" in pane.text
    for headers in JSON_CLIENTS:
        answer = await client.get(url, headers=headers)
        assert answer.status_code == 404 and answer.headers["content-type"] == PROBLEM
        assert answer.json()["detail"] == "no such conversation"


# ---- an address no page has -----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/dashboard/nonexistent", "/dashboard/c/..%2F..", "/dashboard/reports/nope"]
)
async def test_a_browser_at_an_address_no_page_has_gets_the_consoles_404_page(
    client: httpx.AsyncClient, path: str
) -> None:
    answer = await client.get(path, headers=BROWSER)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert "<title>Page not found · Reference desk · TCC Libraries</title>" in page
    assert '<link rel="stylesheet" href="/static/status/console.css">' in page
    assert "There is no page at this address in the desk console." in page
    assert 'href="/dashboard">Back to the desk console</a>' in page
    assert "about:blank" not in page


@pytest.mark.parametrize("headers", JSON_CLIENTS)
@pytest.mark.parametrize(
    "path", ["/dashboard/nonexistent", "/dashboard/c/..%2F..", "/dashboard/reports/nope"]
)
async def test_api_clients_keep_the_problem_json_404(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    answer = await client.get(path, headers=headers)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM and answer.json() == NOT_FOUND


async def test_paths_outside_the_console_and_other_methods_keep_problem_json(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/nonexistent", "/conversations/nonexistent/nope"):
        answer = await client.get(path, headers=BROWSER)
        assert answer.status_code == 404 and answer.headers["content-type"] == PROBLEM
    posted = await client.post("/dashboard/nonexistent", headers=BROWSER)
    assert posted.status_code == 404 and posted.json() == NOT_FOUND
    for headers in JSON_CLIENTS:
        answer = await client.delete("/dashboard/login", headers=headers)
        assert answer.status_code == 405 and answer.headers["content-type"] == PROBLEM


async def test_a_browser_at_the_forms_addresses_or_a_trailing_slash_reaches_the_console(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/dashboard/login", "/dashboard/logout"):
        answer = await client.get(path, headers=BROWSER)
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
    slash = await client.get("/dashboard/", headers=BROWSER)
    assert slash.status_code == 307 and slash.headers["location"] == "/dashboard"
    # a security probe: the redirect named the Host header's host (through a proxy or cache
    # that passes any Host, a way to send librarians elsewhere)
    for path, where in (
        ("/dashboard/c/abc/?x=1", "/dashboard/c/abc?x=1"),
        ("/dashboard//", "/dashboard"),
    ):
        moved = await client.get(path, headers={**BROWSER, "Host": "evil.example"})
        assert moved.status_code == 307 and moved.headers["location"] == where, path
    assert (await client.get("//evil.example/", headers=BROWSER)).status_code == 404


async def test_the_pages_other_routers_serve_under_the_console_still_answer(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client, "lokafor")  # a supervisor
    reports = await client.get("/dashboard/reports", headers=BROWSER)
    assert reports.status_code == 200 and "Page not found" not in reports.text
    assert (await client.get("/dashboard", headers=BROWSER)).status_code == 200
    css = await client.get("/dashboard/reports/reports.css", headers=BROWSER)
    assert css.status_code == 200


async def test_the_pages_answer_head_as_they_answer_get(client: httpx.AsyncClient) -> None:
    """Link checkers and uptime monitors probe pages with HEAD; the pages answered 405."""
    for path in ("/dashboard", "/dashboard/reports"):
        signed_out = await client.head(path, headers=BROWSER)
        assert signed_out.status_code == (await client.get(path, headers=BROWSER)).status_code
        assert signed_out.status_code != 405
    await sign_in(client, "lokafor")  # a supervisor
    for path in ("/dashboard", "/dashboard/reports"):
        got = await client.get(path, headers=BROWSER)
        head = await client.head(path, headers=BROWSER)
        assert head.status_code == got.status_code == 200
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-type"].startswith("text/html")
    # an API route keeps the methods it names
    api_client = {"Accept": "application/json"}
    assert (await client.head("/dashboard/state", headers=api_client)).status_code == 405
    # an address no page has: the same "Page not found" page as GET (it was problem+json)
    missing = await client.head("/dashboard/nothing-here", headers=BROWSER)
    got = await client.get("/dashboard/nothing-here", headers=BROWSER)
    assert missing.status_code == got.status_code == 404
    assert missing.headers["content-type"] == got.headers["content-type"]
    assert got.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (BROWSER["Accept"], True),
        ("text/html", True),
        ("application/xhtml+xml", True),
        (None, False),
        ("*/*", False),
        ("application/json", False),
        ("application/problem+json", False),
        ("text/html, application/json", False),  # a tie keeps the API's answer
        ("application/json;q=0.5, text/html", True),
        ("text/html;q=0", False),
    ],
)
def test_only_a_request_that_prefers_html_is_a_browsers(accept: str | None, html: bool) -> None:
    assert wants_html(accept) is html


# ---- a page that fails on the desk's side ----------------------------------------------


@pytest.fixture
async def unraised(resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a server runs it: an unexpected exception answered, not raised to the client."""
    app = create_app(resources.settings)
    app.state.resources = resources
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as c:
        yield c


def queue_fails_with(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    async def failing(**_: object) -> None:
        raise error

    monkeypatch.setattr(pages, "queue_context", failing)


async def test_a_console_page_that_fails_unexpectedly_is_a_500_page_without_detail(
    unraised: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(unraised)
    queue_fails_with(monkeypatch, RuntimeError("row 7 of patron 555-0100"))
    answer = await unraised.get("/dashboard", headers=BROWSER)
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in answer.headers
    assert "This page could not be shown" in answer.text
    assert 'href="/dashboard"' in answer.text and "555-0100" not in answer.text
    for headers in JSON_CLIENTS:
        answer = await unraised.get("/dashboard", headers=headers)
        assert answer.status_code == 500 and answer.headers["content-type"] == PROBLEM
        assert answer.json() == {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
        }


async def test_a_console_page_without_its_database_says_the_console_is_unavailable(
    unraised: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(unraised)
    queue_fails_with(monkeypatch, Unavailable("the database is unreachable"))
    answer = await unraised.get("/dashboard", headers=BROWSER)
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("text/html")
    assert "The desk console is not available right now" in answer.text
    answer = await unraised.get("/dashboard", headers={"Accept": "application/json"})
    assert answer.status_code == 503 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["detail"] == "the database is unreachable"


async def test_a_domain_error_below_500_keeps_its_problem_json_on_a_page(
    unraised: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(unraised)
    queue_fails_with(monkeypatch, Conflict("already closed"))
    answer = await unraised.get("/dashboard", headers=BROWSER)
    assert answer.status_code == 409 and answer.headers["content-type"] == PROBLEM


# ---- the sign-in form -----------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        {"staff_id": "m" * 65, "token": "dev-mgarcia-token"},
        {"staff_id": "mgarcia", "token": "t" * 201},
    ],
)
async def test_an_over_long_sign_in_shows_the_form_again_with_a_plain_message(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    answer = await client.post("/dashboard/login", data=form, headers=BROWSER)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert 'id="sign-in"' in answer.text
    assert "That staff id or token is longer than any the desk issues." in answer.text
    assert "String should have" not in answer.text
    assert COOKIE not in answer.cookies


async def test_a_sign_in_form_missing_a_field_asks_for_both(client: httpx.AsyncClient) -> None:
    answer = await client.post("/dashboard/login", data={"staff_id": "mgarcia"}, headers=BROWSER)
    assert answer.status_code == 422 and "Enter both your staff id and your token." in answer.text


async def test_api_clients_keep_the_sign_in_forms_problem_json(
    client: httpx.AsyncClient,
) -> None:
    for headers in JSON_CLIENTS:
        answer = await client.post(
            "/dashboard/login", data={"staff_id": "m" * 65, "token": "x"}, headers=headers
        )
        assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
        assert answer.json()["errors"][0]["field"] == "staff_id"


# ---- a search parameter the queue cannot read ------------------------------------------


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        (
            "from=2025-99-99",
            "The From date “2025-99-99” was ignored: it is not a date like 2026-09-14.",
        ),
        (
            "to=0001-01-01",
            "The To date “0001-01-01” was ignored: dates run from 1970-01-01 to 9000-12-31.",
        ),
        ("channel=fax", "The channel “fax” was ignored: the desk has chat, SMS and email."),
    ],
)
async def test_a_parameter_the_queue_ignores_is_said_on_the_console(
    client: httpx.AsyncClient, query: str, sentence: str
) -> None:
    await sign_in(client)
    page = await client.get(f"/dashboard?{query}", headers=BROWSER)
    assert page.status_code == 200
    assert 'id="queue-ignored" role="alert"' in page.text and sentence in page.text
    dates_open = '<details class="more-search" open>' in page.text
    assert dates_open == ("channel" not in query)


async def test_readable_parameters_are_used_and_nothing_is_said(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client)
    page = (await client.get("/dashboard?from=2025-03-01&to=2025-03-04&channel=sms")).text
    assert "was ignored" not in page and 'id="queue-ignored"' not in page
    assert 'value="2025-03-01"' in page


def test_the_filters_name_each_parameter_they_ignored() -> None:
    flt = views.parse_filters(QueryParams("from=yesterday&to=2025-03-04&channel=fax"))
    assert [i.param for i in flt.ignored] == ["channel", "from"]
    assert flt.date_to is not None and flt.channel is None
    long = views.parse_filters(QueryParams("from=" + "9" * 80)).ignored[0].sentence
    assert "“" + "9" * 40 + "…”" in long and "9" * 41 not in long


# ---- the routing line of the timeline -------------------------------------------------


def name(rule_id: str) -> str:
    return timeline.rule_name(rule_id, MacroBook().department_name)


@pytest.mark.parametrize(
    ("rule_id", "words"),
    [
        ("crisis-suicide", "the crisis rule (suicide)"),
        ("crisis-suicide-topic", "the crisis rule (suicide named as a topic)"),
        ("crisis-self-harm", "the crisis rule (self-harm)"),
        ("crisis-signals", "the crisis rule (warning signs)"),
        ("crisis-unsafe", "the crisis rule (feeling unsafe)"),
        ("crisis-abuse-topic", "the crisis rule (abuse named as a topic)"),
        ("learned-crisis", "the learned safety net"),
        ("learned-route", "the learned safety net's suggested route"),
        ("reference-default", "the desk's catch-all rule"),
        ("writing-center", "the Writing Center rule"),
        ("campus-ne", "the Northeast Campus Library rule"),
        ("circulation-loans", "the circulation loans rule"),
    ],
)
def test_each_kind_of_rule_is_named_in_words(rule_id: str, words: str) -> None:
    assert name(rule_id) == words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "Routed to CARE Team (escalate crisis) by rule crisis-suicide, reference-default",
            "Routed to CARE Team (escalate crisis) by the crisis rule (suicide) and the desk's "
            "catch-all rule",
        ),
        (
            "Routed to CARE Team (escalate crisis) by rule learned-crisis — learned safety net",
            "Routed to CARE Team (escalate crisis) by the learned safety net",
        ),
        (
            "Routed to Reference Desk (answer) by rule reference-default — learned safety net"
            " — flagged for safety review",
            "Routed to Reference Desk (answer) by the desk's catch-all rule — flagged for safety"
            " review by the learned safety net",
        ),
        (
            "Routed to Reference Desk (answer) by rule a, b, c",
            "Routed to Reference Desk (answer) by the a rule, the b rule and the c rule",
        ),
    ],
)
def test_a_routing_line_reads_in_words(text: str, words: str) -> None:
    line = timeline.routed_line(text, MacroBook().department_name)
    assert line is not None and line.text == words


def test_other_timeline_lines_are_left_as_they_are() -> None:
    for text in ("Transferred to Writing Center by Maria Garcia", "Routed to Reference Desk"):
        assert timeline.routed_line(text, str) is None


async def test_the_timeline_names_rules_in_words_and_keeps_their_ids_to_look_up(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await routed_by(sessions, ["crisis-suicide", "reference-default"])
    await sign_in(client)
    pane = (await client.get(f"/dashboard/fragments/conversation/{ROUTED}")).text
    event = pane[pane.index('<p class="event">') :]
    event = event[: event.index("</details>")]
    assert (
        'by <span class="rule" title="Policy rule crisis-suicide">the crisis rule (suicide)</span>'
        ' and <span class="rule" title="Policy rule reference-default">the desk\'s catch-all'
        " rule</span>" in event.replace("&#39;", "'")
    )
    assert "by rule" not in pane
    assert "<code>crisis-suicide</code>, <code>reference-default</code>" in event
    # the JSON API keeps the line as the projection wrote it, ids and all
    api = (await client.get(f"/conversations/{ROUTED}")).json()
    routed = next(m for m in api["messages"] if m["kind"] == "routed")
    assert routed["text"] == (
        "Routed to CARE Team (escalate crisis) by rule crisis-suicide, reference-default"
    )


async def test_the_learned_net_is_named_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await routed_by(sessions, ["learned-crisis"], net="model")
    await sign_in(client)
    pane = (await client.get(f"/dashboard/fragments/conversation/{ROUTED}")).text
    assert pane.count("learned safety net") == 1 and "learned-crisis" in pane
