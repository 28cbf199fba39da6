"""The console's pages and fragments over HTTP (no browser): desk order, what each staff member
may see and do, the crisis gate, search, the fragments live updates fetch; and the view
helpers (desk time, sizes, filters)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import console_scenes as scene
import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import QueryParams
from status_fakes import T0, arrive, batch, given, patron_writes

from services.status.console import views
from services.status.conversations.search import contact_key, contact_keys
from shared.events import Attachment, Channel, NotificationKind, NotificationRequested

CSRF = {"X-Requested-With": "refdesk"}


async def sign_in(client: httpx.AsyncClient, staff_id: str = "mgarcia") -> None:
    answer = await client.post(
        "/dashboard/login", data={"staff_id": staff_id, "token": f"dev-{staff_id}-token"}
    )
    assert answer.status_code == 303


def order(page: str) -> list[str]:
    ids = []
    for part in page.split('<tr data-conversation-id="')[1:]:
        ids.append(part[: part.index('"')])
    return ids


async def test_the_queue_is_in_desk_order_with_previews_and_no_emoji(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.morning(sessions)
    await sign_in(client)
    page = (await client.get("/dashboard")).text
    assert order(page) == [
        scene.CRISIS,
        scene.REVIEW,
        scene.EMAIL,
        scene.SMS,
        scene.CHAT,
        scene.CITE,
    ]
    assert "Possible crisis — read now" in page and "10 h 14 min" in page
    assert scene.EMAIL_SUBJECT in page and "I checked out a laptop" in page
    assert "Yesterday 10:46 PM" in page  # desk time, America/Chicago
    assert not any(ord(ch) >= 0x1F000 for ch in page)


async def test_filters_and_search_narrow_the_queue(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.morning(sessions)
    await sign_in(client)
    # the open crisis and the possible one stay on top of every filtered queue and search
    kept = [scene.CRISIS, scene.REVIEW]
    sms = (await client.get("/dashboard/fragments/queue?channel=sms")).text
    assert order(sms) == [*kept, scene.SMS]
    night = (await client.get("/dashboard?overnight=1")).text
    assert order(night) == [*kept, scene.EMAIL] and 'name="overnight" value="1" checked' in night
    assert "1 open (filtered), and 2 crises or possible crises shown whatever the filters" in night
    found = (await client.get("/dashboard/fragments/queue?q=laptop")).text
    assert order(found) == [*kept, scene.EMAIL] and "1 conversation found" in found
    by_phone = (await client.get("/dashboard/fragments/queue?contact=%2B18175550142")).text
    assert set(order(by_phone)) == {*kept, scene.SMS, "sms-rooms"}  # closed ones too
    as_said = (await client.get("/dashboard/fragments/queue?contact=817-555-0142")).text
    assert set(order(as_said)) == {*kept, scene.SMS, "sms-rooms"}
    last_week = (await client.get("/dashboard/fragments/queue?from=2025-02-25&to=2025-02-26")).text
    assert order(last_week) == [*kept, "sms-rooms"]
    today = (await client.get("/dashboard/fragments/queue?from=2025-03-04&q=print")).text
    assert order(today) == [*kept, scene.SMS]
    none = (await client.get("/dashboard/fragments/queue?q=zzzz")).text
    assert order(none) == kept and "Nothing matches" in none
    assert (
        "0 conversations found, and 2 crises or possible crises shown whatever the search" in none
    )
    # the API narrows exactly unless asked to keep them
    api = (await client.get("/conversations?channel=email")).json()["items"]
    assert [item["conversation_id"] for item in api] == [scene.EMAIL]
    closed = (await client.get("/conversations?state=closed&pin_crises=true")).json()["items"]
    assert [item["conversation_id"] for item in closed] == [*kept, "sms-rooms"]
    pinned = (await client.get("/conversations?channel=email&pin_crises=true")).json()["items"]
    assert [(i["conversation_id"], i["pinned"]) for i in pinned] == [
        (scene.CRISIS, True),
        (scene.REVIEW, True),
        (scene.EMAIL, False),
    ]
    # a crisis someone acknowledged is being handled: it no longer sits above every search
    lokafor = {"Authorization": "Bearer dev-lokafor-token"}
    assert (
        await client.post(f"/conversations/{scene.CRISIS}/acknowledge", headers=lokafor)
    ).status_code == 200
    pinned = (await client.get("/conversations?channel=email&pin_crises=true")).json()["items"]
    assert [i["conversation_id"] for i in pinned] == [scene.REVIEW, scene.EMAIL]


async def test_a_crisis_outside_the_filters_still_gets_its_live_row(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.crisis(sessions)
    await sign_in(client)
    row = await client.get(f"/dashboard/fragments/row/{scene.CRISIS}?channel=email&mine=1")
    assert row.status_code == 200 and "Shown whatever the filters" in row.text
    assert 'data-pinned="1"' in row.text


async def test_a_crisis_shows_resources_and_only_acknowledge_until_acknowledged(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.crisis(sessions)
    await sign_in(client)
    pane = (await client.get(f"/dashboard/fragments/conversation/{scene.CRISIS}")).text
    assert 'data-action="acknowledge"' in pane and "cm.maxient.com" in pane and "988" in pane
    for locked in ('data-action="claim"', 'data-dialog="', 'id="composer"', 'id="note-form"'):
        assert locked not in pane
    done = await client.post(f"/conversations/{scene.CRISIS}/acknowledge", headers=CSRF)
    assert done.status_code == 200
    pane = (await client.get(f"/dashboard/fragments/conversation/{scene.CRISIS}")).text
    assert "Crisis acknowledged by Maria Garcia" in pane and 'id="composer"' in pane
    assert 'data-dialog="transfer-dialog"' in pane and "cm.maxient.com" in pane


async def test_staff_who_cannot_acknowledge_are_told_who_can(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await arrive(
        sessions, "crisis-wc", channel=Channel.CHAT, department="writing-center", crisis=True
    )
    await sign_in(client, "rpatel")
    pane = (await client.get("/dashboard/fragments/conversation/crisis-wc")).text
    assert 'data-action="acknowledge"' not in pane and "Only reference or CARE Team" in pane


async def test_what_a_staff_member_may_not_see_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await arrive(sessions, "nw-1", channel=Channel.CHAT, department="nw-circulation")
    await sign_in(client, "rpatel")
    assert (await client.get("/dashboard/fragments/conversation/nw-1")).status_code == 403
    assert (await client.get("/dashboard/fragments/row/nw-1")).status_code == 204
    page = (await client.get("/dashboard/c/nw-1")).text
    assert "cannot be opened" in page and "nw-1" not in order(page)
    client.cookies.clear()
    assert (await client.get("/dashboard/fragments/queue")).status_code == 401


async def test_claimed_by_someone_else_offers_a_note_not_a_reply(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.chats(sessions)
    await sign_in(client, "jnguyen")
    assert (
        await client.post(f"/conversations/{scene.CHAT}/claim", headers=CSRF)
    ).status_code == 200
    client.cookies.clear()
    await sign_in(client)
    pane = (await client.get(f"/dashboard/fragments/conversation/{scene.CHAT}")).text
    assert 'id="composer"' not in pane and 'id="note-form"' in pane
    assert "James Nguyen has claimed this conversation" in pane


async def test_row_fragment_follows_the_filters_and_state(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.sms(sessions)
    await sign_in(client)
    row = await client.get(f"/dashboard/fragments/row/{scene.SMS}")
    assert row.status_code == 200 and 'data-sort="4|' in row.text and "icon-sms" in row.text
    filtered = await client.get(f"/dashboard/fragments/row/{scene.SMS}?channel=email")
    assert filtered.status_code == 204
    assert (await client.get("/dashboard/fragments/row/sms-rooms")).status_code == 204  # closed
    searched = await client.get("/dashboard/fragments/row/sms-rooms?q=rooms")
    assert searched.status_code == 200 and "Closed" in searched.text


async def test_a_text_is_headed_by_the_number_as_people_write_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.sms(sessions)
    await sign_in(client)
    pane = (await client.get(f"/dashboard/fragments/conversation/{scene.SMS}")).text
    assert (
        '<span class="patron"><a href="tel:+18175550142" title="Call (817) 555-0142">'
        "(817) 555-0142</a></span>"
    ) in pane


@pytest.mark.parametrize(
    ("contact", "tel"),
    [
        ("+18175550142", "+18175550142"),
        ("+10005550142", None),  # E.164 in form, but no such number
        ("pat@my.tccd.edu", None),
        ("+1 817", None),
        (None, None),
    ],
)
def test_only_a_stored_phone_number_is_dialable(contact: str | None, tel: str | None) -> None:
    assert views.dialable(contact) == tel


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        ("+18175550142", "(817) 555-0142"),
        ("+442079460958", "+44 20 7946 0958"),
        ("+1555", "+1555"),  # not a valid number: as it is
        ("whatsapp:+18175550122", "(817) 555-0122 (WhatsApp)"),
        ("whatsapp:+1555", "whatsapp:+1555"),
        ("pat@my.tccd.edu", "pat@my.tccd.edu"),
        (None, None),
    ],
)
def test_contacts_read_as_people_write_them(contact: str | None, expected: str | None) -> None:
    assert views.readable_contact(contact) == expected


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("817-555-0142", "+18175550142"),
        (" (817) 555 0142 ", "+18175550142"),
        ("+1 817.555.0142", "+18175550142"),
        ("+44 20 7946 0958", "+442079460958"),
        ("Pat@My.TCCD.edu", "pat@my.tccd.edu"),
        ("0142", "0142"),  # not a number: searched as typed
    ],
)
def test_a_contact_is_searched_however_it_was_typed(typed: str, key: str) -> None:
    assert contact_key(typed) == key


def test_a_number_is_also_searched_as_a_whatsapp_sender() -> None:
    """A WhatsApp sender, stored as `whatsapp:+1...`, was found by no way of typing its number
    (an outside probe)."""
    for typed in (
        "(817) 555-0122",
        "+18175550122",
        "whatsapp:+18175550122",
        "WhatsApp:+1 817 555 0122",
    ):
        assert "whatsapp:+18175550122" in contact_keys(typed)
    assert contact_keys("pat@my.tccd.edu") == ("pat@my.tccd.edu",)
    assert views.dialable("whatsapp:+18175550122") == "+18175550122"
    assert views.dialable("pat@my.tccd.edu") is None


async def test_a_whatsapp_sender_is_found_by_its_number_and_shown_as_one(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from status_fakes import bearer

    from shared.events import InteractionReceived, Patron

    await given(
        sessions,
        InteractionReceived(
            interaction_id="i-wa",
            conversation_id="sms-wa",
            channel=Channel.SMS,
            provider="twilio",
            provider_message_id="SM" + "c" * 32,
            patron=Patron(contact="whatsapp:+18175550122"),
            text="do you have the nursing textbook on reserve?",
            received_at=T0,
        ),
    )
    for typed in ("(817) 555-0122", "8175550122", "whatsapp:+18175550122"):
        found = await client.get(
            "/conversations", params={"contact": typed, "state": "all"}, headers=bearer("mgarcia")
        )
        assert found.status_code == 200, found.text
        ids = {row["conversation_id"] for row in found.json()["items"]}
        assert ids == {"sms-wa"}, (typed, ids)
    await sign_in(client)
    page = (await client.get("/dashboard/fragments/conversation/sms-wa")).text
    assert '<a href="tel:+18175550122"' in page and "(817) 555-0122 (WhatsApp)" in page


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2025, 3, 4, 15, 14, tzinfo=UTC), "Today 9:14 AM"),
        (datetime(2025, 3, 3, 22, 2, tzinfo=UTC), "Yesterday 4:02 PM"),
        (datetime(2025, 3, 1, 22, 2, tzinfo=UTC), "Sat 4:02 PM"),
        (datetime(2025, 1, 20, 22, 2, tzinfo=UTC), "Jan 20, 4:02 PM"),
        (datetime(2024, 12, 31, 23, 59, tzinfo=UTC), "Dec 31, 2024, 5:59 PM"),
        (datetime(2025, 3, 4, 5, 30, tzinfo=UTC), "Yesterday 11:30 PM"),  # UTC's today
    ],
)
def test_times_read_in_desk_time(at: datetime, expected: str) -> None:
    assert views.desk_time(at, T0) == expected


def test_a_printed_time_names_its_zone_so_the_repeated_november_hour_reads_in_order() -> None:
    """The records page's times are read on paper, any day: with the zone, 1:50 AM CDT is
    before 1:05 AM CST (without it, an outside review read them out of order)."""
    first = views.dated_time(datetime(2026, 11, 1, 6, 50, tzinfo=UTC))
    second = views.dated_time(datetime(2026, 11, 1, 7, 5, tzinfo=UTC))
    assert (first, second) == ("Nov 1, 2026, 1:50 AM CDT", "Nov 1, 2026, 1:05 AM CST")


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, "0 bytes"), (1, "1 byte"), (812, "812 bytes"), (2048, "2.0 KB"), (48213, "47 KB")],
)
def test_file_sizes_read_as_people_say_them(size: int, expected: str) -> None:
    assert views.file_size(size) == expected


def test_unknown_filter_values_are_ignored() -> None:
    flt = views.parse_filters(QueryParams("channel=fax&from=yesterday&mine=1&q=%20%20"))
    assert flt == views.Filters(mine=True)
    assert not flt.searching and flt.narrowed


def test_a_range_typed_backwards_means_the_same_days_and_the_calendars_ends_are_ignored() -> None:
    backwards = views.parse_filters(QueryParams("from=2025-03-04&to=2025-03-01"))
    assert (backwards.date_from, backwards.date_to) == (date(2025, 3, 1), date(2025, 3, 4))
    edges = views.parse_filters(QueryParams("from=0001-01-01&to=9999-12-31"))
    assert (edges.date_from, edges.date_to) == (None, None)


async def test_whos_online_names_departments_as_the_desk_says_them(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client, "tbrooks")
    state = (await client.get("/dashboard/state")).json()
    assert "NW Circulation" in state["online"] and "nw-circulation" not in state["online"]
    page = (await client.get("/dashboard")).text
    assert "<strong>NW Circulation</strong>:" in page


async def test_a_photo_sent_without_words_reads_as_a_photo(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    photo = Attachment(name="photo 1.jpg", size=None, content_type="image/jpeg")
    await scene._apply(
        sessions,
        scene.message(
            "sms-photo", Channel.SMS, "", minutes_ago=3, contact="+18175550177", attachments=[photo]
        ),
        scene.routed("sms-photo", Channel.SMS, minutes_ago=3),
    )
    await sign_in(client)
    queue = (await client.get("/dashboard")).text
    assert "Sent photo 1.jpg" in queue
    pane = (await client.get("/dashboard/fragments/conversation/sms-photo")).text
    assert "photo 1.jpg" in pane and "()" not in pane
    assert "once it is sent" not in pane and "No text came" not in pane


async def test_a_text_shows_whether_the_carrier_delivered_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.texts_reported(sessions)
    await sign_in(client)
    pane = (await client.get(f"/dashboard/fragments/conversation/{scene.TEXTS}")).text
    lines = [part for part in pane.split('<li class="line ')[1:] if 'data-line-id="reply-' in part]
    delivered, undelivered = lines
    assert 'class="delivery delivery-delivered"><svg class="icon icon-check"' in delivered
    assert "Delivered</span>" in delivered and "Not delivered" not in delivered
    assert "state-undelivered" in undelivered and 'class="icon icon-alert"' in undelivered
    assert "Not delivered: filtered by the carrier</span>" in undelivered
    assert not any(ord(ch) >= 0x1F000 for ch in pane)


async def test_the_composer_offers_no_staff_only_macro(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await arrive(sessions, "chat-macros", channel=Channel.CHAT)
    await sign_in(client)
    pane = (await client.get("/dashboard/fragments/conversation/chat-macros")).text
    assert 'value="crisis_resources"' in pane  # the patron's macros are listed
    assert 'value="care_report"' not in pane and "CARE Team report link" not in pane


async def test_the_transfer_handoff_matches_the_channel_and_who_is_online(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await arrive(sessions, "chat-tr", channel=Channel.CHAT)
    await arrive(sessions, "email-tr", channel=Channel.EMAIL)
    await sign_in(client)  # mgarcia
    assert (await client.post("/shift/login", headers={**CSRF})).status_code in (200, 204)
    await sign_in(client, "jnguyen")  # reference and campus-ne: Online
    assert (await client.post("/shift/login", headers={**CSRF})).status_code in (200, 204)
    chat = (await client.get("/dashboard/fragments/conversation/chat-tr")).text
    email = (await client.get("/dashboard/fragments/conversation/email-tr")).text
    # a live chat to a department with someone Online: they join
    assert 'data-handoff="I&#39;m transferring you to the Northeast Campus Library.' in chat
    # nobody at Trinity River: a chat is told it will be answered, and the option says so
    assert (
        'data-handoff="I&#39;ve passed your question to the Trinity River Campus Library. '
        'A librarian there will reply in this chat as soon as they can."'
    ) in chat
    assert "Trinity River Campus Library (nobody Online)" in chat
    # an email ticket never hears that someone joins, whoever is Online
    assert "join in a moment" not in email
    assert "A librarian there will reply by email as soon as they can." in email


async def test_the_composer_says_when_the_number_has_opted_out_of_texts(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A librarian typed replies to a number that had texted STOP and saw each one fail."""
    await scene.sms(sessions)
    await sign_in(client)

    async def pane() -> str:
        return (await client.get(f"/dashboard/fragments/conversation/{scene.SMS}")).text

    assert 'id="opted-out"' not in await pane()
    for n, kind in enumerate((NotificationKind.SMS_OPT_OUT, NotificationKind.SMS_OPT_IN) * 2):
        consent = NotificationRequested(
            idempotency_key=f"consent-{n}",
            kind=kind,
            channel=Channel.SMS,
            recipient="+18175550142",
            conversation_id=scene.SMS,
            context={"keyword": "STOP" if kind is NotificationKind.SMS_OPT_OUT else "START"},
            requested_at=T0 + timedelta(minutes=n),
        )
        await given(sessions, consent)
        shown = await pane()
        assert ('id="opted-out"' in shown) is (kind is NotificationKind.SMS_OPT_OUT)
        assert 'id="composer"' in shown  # warned, not locked: the patron may text START
        if kind is NotificationKind.SMS_OPT_OUT:
            # the warning names the words the timeline names (it had said "START or YES")
            warning = re.search(r'id="opted-out"[^>]*>(.*?)</p>', shown, re.S)
            assert warning and "texts START, YES or INICIO," in warning.group(1)
            assert "until it texts START, YES or INICIO" in shown
    await given(
        sessions,
        consent.model_copy(
            update={
                "idempotency_key": "consent-stop-again",
                "kind": NotificationKind.SMS_OPT_OUT,
                "requested_at": T0 + timedelta(minutes=9),
            }
        ),
    )
    assert "This number replied STOP" in await pane()


def consent_command(
    key: str, cid: str, kind: NotificationKind, keyword: str, at: datetime
) -> BaseModel:
    """The router's opt-out or opt-in command for the scene's number (YES: conditional)."""
    return NotificationRequested(
        idempotency_key=key,
        kind=kind,
        channel=Channel.SMS,
        recipient="+18175550142",
        conversation_id=cid,
        context={"keyword": keyword, "if_opted_out": keyword == "YES"},
        requested_at=at,
    )


async def test_yes_after_stop_clears_the_warning_and_a_yes_before_says_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Twilio resumes texts to a number that texts YES after STOP, and so does the notifier;
    a "yes" in answer to a librarian's question is no news to write in the transcript."""
    await scene.sms(sessions)
    await sign_in(client)

    async def pane() -> str:
        return (await client.get(f"/dashboard/fragments/conversation/{scene.SMS}")).text

    def consent(key: str, kind: NotificationKind, keyword: str, minute: int) -> BaseModel:
        return consent_command(key, scene.SMS, kind, keyword, T0 + timedelta(minutes=minute))

    await given(sessions, consent("yes-1", NotificationKind.SMS_OPT_IN, "YES", 1))
    assert "opted back in" not in await pane()
    await given(sessions, consent("stop-1", NotificationKind.SMS_OPT_OUT, "STOP", 2))
    assert 'id="opted-out"' in await pane()
    await given(sessions, consent("yes-2", NotificationKind.SMS_OPT_IN, "YES", 3))
    shown = await pane()
    assert 'id="opted-out"' not in shown
    assert "The patron&#39;s number opted back in to texts (YES)" in shown
    # a STOP and a YES in one poll batch: the YES reads the batch's own STOP
    await batch(
        sessions,
        [
            ("ev-stop-2", consent("stop-2", NotificationKind.SMS_OPT_OUT, "STOP", 4)),
            ("ev-yes-3", consent("yes-3", NotificationKind.SMS_OPT_IN, "YES", 5)),
        ],
    )
    shown = await pane()
    assert 'id="opted-out"' not in shown and shown.count("opted back in to texts (YES)") == 2


async def test_a_stop_in_one_conversation_holds_for_the_numbers_others(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The number texted STOP in an earlier conversation: a librarian answering its new one
    saw no warning, and the reply failed; its YES there was not written down."""
    await scene.sms(sessions)  # the same number's closed thread "sms-rooms", and a new one
    await sign_in(client)

    async def pane() -> str:
        return (await client.get(f"/dashboard/fragments/conversation/{scene.SMS}")).text

    def consent(key: str, cid: str, kind: NotificationKind, keyword: str) -> BaseModel:
        at = T0 - timedelta(minutes=30 if cid == "sms-rooms" else 1)
        return consent_command(key, cid, kind, keyword, at)

    await given(sessions, consent("stop-old", "sms-rooms", NotificationKind.SMS_OPT_OUT, "STOP"))
    assert 'id="opted-out"' in await pane()
    await given(sessions, consent("yes-new", scene.SMS, NotificationKind.SMS_OPT_IN, "YES"))
    shown = await pane()
    assert 'id="opted-out"' not in shown and "opted back in to texts (YES)" in shown


async def test_a_search_from_after_to_says_it_was_swapped(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A range typed backwards is searched as the same days, and now says so above the queue
    (an outside probe took the unchanged rows for a search that had not run)."""
    await scene.morning(sessions)
    await sign_in(client)
    got = await client.get("/dashboard?from=2026-12-07&to=2026-12-05")
    assert got.status_code == 200
    assert "came after the To date 2026-12-05: the search ran from the earlier" in got.text


async def test_a_text_thread_turned_email_is_still_found_by_its_number(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Once staff turned a text thread into an email ticket, a search by the patron's number
    found nothing of it and its view no longer listed the number's earlier conversations."""
    from status_fakes import bearer

    from shared.events import ConversationConverted

    await arrive(sessions, "s-before", channel=Channel.SMS, minutes_ago=90)
    await arrive(sessions, "s-now", channel=Channel.SMS, minutes_ago=5)
    email = "ana.gomez@my.tccd.edu"
    claimed = await client.post("/conversations/s-now/claim", headers=bearer("mgarcia"))
    assert claimed.status_code == 200, claimed.text
    done = await client.post(
        "/conversations/s-now/convert-to-email", json={"email": email}, headers=bearer("mgarcia")
    )
    assert done.status_code == 200, done.text
    # the consumer applies the same event again (another replica, a replay): the number stays
    await given(
        sessions,
        ConversationConverted(conversation_id="s-now", staff_id="mgarcia", email=email, at=T0),
    )
    for typed in ("(817) 555-0199", email):
        found = await client.get(
            "/conversations", params={"contact": typed}, headers=bearer("mgarcia")
        )
        ids = {row["conversation_id"] for row in found.json()["items"]}
        assert "s-now" in ids, (typed, ids)
    view = (await client.get("/conversations/s-now", headers=bearer("mgarcia"))).json()
    assert view["patron"] == {"name": None, "contact": email, "texted_from": "+18175550199"}
    assert [row["conversation_id"] for row in view["earlier"]] == ["s-before"]
    await sign_in(client)
    page = (await client.get("/dashboard/fragments/conversation/s-now")).text
    assert '<dt>Texted from</dt><dd><a href="tel:+18175550199">(817) 555-0199</a>' in page


async def test_a_chat_contact_typed_by_the_visitor_links_no_other_conversation(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A chat visitor typed another patron's address into the chat form and the console listed
    that patron's email conversations beside the chat, with previews (an outside review): a
    chat's contact is unverified, so it links nothing, either way."""
    from status_fakes import bearer

    email = "pat@example.edu"
    await arrive(sessions, "e-real", channel=Channel.EMAIL, minutes_ago=90)
    await arrive(sessions, "e-again", channel=Channel.EMAIL, minutes_ago=30)
    await given(sessions, patron_writes("c-typed", channel=Channel.CHAT, contact=email))
    chat_view = (await client.get("/conversations/c-typed", headers=bearer("mgarcia"))).json()
    assert chat_view["patron"]["contact"] == email and chat_view["earlier"] == []
    email_view = (await client.get("/conversations/e-again", headers=bearer("mgarcia"))).json()
    assert [row["conversation_id"] for row in email_view["earlier"]] == ["e-real"]


def test_what_ingest_did_not_keep_is_said_in_words_and_texted_files_are_named_not_kept() -> None:
    """A 1,700-character text showed "sms-body-beyond-1600-characters.txt (100 bytes)", a file
    nobody could open; MMS photos were listed with no word that they cannot be seen."""
    base = {"author": "patron", "direction": "in", "at": T0.isoformat(), "text": "long..."}
    cut = views.line_view(
        {
            **base,
            "channel": "sms",
            "attachments": [{"name": "sms-body-beyond-1600-characters.txt", "size": 100}],
        },
        names={},
        now=T0,
    )
    assert cut["attachments"] == [] and not cut["files_not_kept"]
    assert (
        cut["cut"]
        == "This text was longer than 1,600 characters: the last 100 characters were not kept."
    )
    mail = views.line_view(
        {
            **base,
            "channel": "email",
            "attachments": [
                {"name": "email-text-beyond-100000-characters.txt", "size": 120000},
                {"name": "syllabus.pdf", "size": 48213},
            ],
        },
        names={},
        now=T0,
    )
    assert mail["cut"].startswith("This email was longer than 100,000 characters")
    assert [a["name"] for a in mail["attachments"]] == ["syllabus.pdf"]
    assert not mail["files_not_kept"]  # an email's files: named the same, no texting note
    photo = views.line_view(
        {**base, "channel": "sms", "attachments": [{"name": "photo 1.jpg", "size": 0}]},
        names={},
        now=T0,
    )
    assert photo["files_not_kept"] and photo["cut"] is None
    chat = views.line_view(
        {
            **base,
            "channel": "chat",
            "attachments": [{"name": "chat-text-beyond-10000-characters.txt", "size": 4000}],
        },
        names={},
        now=T0,
    )
    assert chat["cut"] == (
        "This chat message was longer than 10,000 characters: "
        "the last 4,000 characters were not kept."
    )


def test_a_reply_long_queued_says_refdesk_keeps_trying_not_queued() -> None:
    """During a relay outage the notifier retries a reply for up to two days; the line read
    "Queued" all that time, and a librarian could not tell a stuck reply from one about to go.
    Three minutes on it says it is not sent yet, since when, and not to send it again."""
    reply = {
        "author": "mgarcia",
        "kind": "staff_reply",
        "direction": "out",
        "channel": "email",
        "at": T0.isoformat(),
        "text": "Here is the link",
        "delivery": {"state": "queued"},
    }
    fresh = views.line_view(reply, names={"mgarcia": "M. Garcia"}, now=T0 + timedelta(minutes=2))
    assert (fresh["delivery_state"], fresh["delivery_label"]) == ("queued", "Queued")
    stuck = views.line_view(reply, names={"mgarcia": "M. Garcia"}, now=T0 + timedelta(minutes=9))
    assert (stuck["delivery_state"], stuck["delivery_label"]) == ("retrying", "Not sent yet")
    since = views.desk_time(T0, T0).removeprefix("Today ")
    assert stuck["delivery_reason"] == (
        f"refdesk has tried since {since} and sends it once the mail relay accepts it;"
        " do not send it again"
    )
    text = {**reply, "channel": "sms", "delivery": {"state": "sent"}}
    sent = views.line_view(text, names={"mgarcia": "M. Garcia"}, now=T0 + timedelta(hours=3))
    assert sent["delivery_label"] == "Sent"  # only what is still queued
    patron = {**reply, "direction": "in", "author": "patron", "delivery": {"state": "queued"}}
    assert views.line_view(patron, names={}, now=T0 + timedelta(hours=1))["delivery_state"] == (
        "queued"
    )


async def test_a_text_from_a_service_says_so_where_staff_would_reply(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A short code's or sender ID's text (published bulk): no reply reaches it."""
    await arrive(sessions, "sms-alert", channel=Channel.SMS, contact="TCCALERT", bulk=True)
    await arrive(sessions, "sms-person", channel=Channel.SMS)
    await sign_in(client)
    pane = (await client.get("/dashboard/fragments/conversation/sms-alert")).text
    assert "a service, not a person" in pane and 'id="service-sender"' in pane
    assert "went to many" not in pane  # the email wording
    person = (await client.get("/dashboard/fragments/conversation/sms-person")).text
    assert 'id="service-sender"' not in person and "a service, not a person" not in person
