"""Reply splitting, HTML flattening and the ticket tag."""

from __future__ import annotations

import pytest

from services.ingest.providers.text import (
    TICKET_TAG_FORMAT,
    format_ticket_tag,
    html_to_text,
    is_reply,
    split_reply,
    ticket_tag,
)

GMAIL = """Thanks! Can I renew it one more time?

On Mon, Jan 6, 2025 at 9:12 AM TCC Libraries Ask Us <askus@tccd.edu>
wrote:

> Hi Jane, your book is due January 20.
>
> > earlier quote
"""

OUTLOOK = """I still have the laptop charger, where do I return it?

Jane Doe
Student, NW Campus

________________________________
From: TCC Libraries Ask Us <askus@tccd.edu>
Sent: Monday, January 6, 2025 9:12 AM
To: Doe, Jane <jane.doe@my.tccd.edu>
Subject: RE: [refdesk #c-42] Equipment loan

Hi Jane, equipment is due in 3 days.
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GMAIL, "Thanks! Can I renew it one more time?"),
        (
            OUTLOOK,
            "I still have the laptop charger, where do I return it?"
            "\n\nJane Doe\nStudent, NW Campus",
        ),
        ("Yes please.\r\n\r\n-----Original Message-----\r\nFrom: Ask Us\r\nold", "Yes please."),
        ("Got it\n\nSent from my iPhone", "Got it"),
        ("Got it\n\nGet Outlook for Android", "Got it"),
        ("Where is APA help?\n\n-- \nJane Doe\nPhi Theta Kappa", "Where is APA help?"),
        ("Where is APA help?\n--\nJane", "Where is APA help?"),
        (
            "Gracias\n\nEl lun, 6 ene 2025 a las 9:12, Ask Us (<askus@tccd.edu>) escribió:\n> hola",
            "Gracias",
        ),
        # German and Portuguese clients (an outside probe's German attribution was kept)
        (
            "Danke!\n\nAm Mo., 30. Nov. 2026 um 10:01 Uhr schrieb Ask Desk <askdesk@tccd.edu>:"
            "\n> alt",
            "Danke!",
        ),
        (
            "Obrigado\n\nEm seg., 30 de nov. de 2026, Ask Desk <a@tccd.edu> escreveu:\n> x",
            "Obrigado",
        ),
        ("From: Jane\nthe rest", "From: Jane\nthe rest"),
        ("no history at all", "no history at all"),
    ],
)
def test_split_reply(text: str, expected: str) -> None:
    assert split_reply(text) == expected


def test_split_reply_keeps_a_bottom_posted_answer() -> None:
    text = (
        "On Mon, Jan 6, 2025 Ask Us <askus@tccd.edu> wrote:\n> Which campus?\n\nNorthwest, thanks."
    )
    assert split_reply(text) == "Northwest, thanks."


def test_split_reply_outlook_header_block_without_rule() -> None:
    text = "See below.\n\nFrom: Ask Us <askus@tccd.edu>\nSent: Monday\nSubject: RE: hours\n\nold"
    assert split_reply(text) == "See below."


GMAIL_FORWARD = """FYI see below, can you help my student?

Sent from my iPhone

---------- Forwarded message ---------
From: Student X <sx@my.tccd.edu>
Date: Mon, Jan 6, 2025 at 9:12 AM
Subject: JSTOR

I can't access JSTOR from home.
"""

OUTLOOK_FORWARD = """
________________________________
From: Student X <sx@my.tccd.edu>
Sent: Monday, January 6, 2025 9:12 AM
To: Prof Y <py@tccd.edu>
Subject: JSTOR

I can't access JSTOR from home.
"""


@pytest.mark.parametrize(
    ("text", "subject", "kept"),
    [
        (GMAIL_FORWARD, "Fwd: JSTOR", "FYI see below, can you help my student?"),
        (GMAIL_FORWARD, "JSTOR", "I can't access JSTOR from home."),  # the marker says it
        (OUTLOOK_FORWARD, "FW: JSTOR", "I can't access JSTOR from home."),
        ("Mira\n\nInicio del mensaje reenviado:\n\nDe: A\nno puedo entrar", None, "no puedo"),
        ("Ok\n\n---------- Mensaje reenviado ---------\nDe: A\nno puedo entrar", "RV: x", "no "),
        ("Hola\n\nBegin forwarded message:\n\n> From: A\n> I am not safe at home", None, "> I am"),
    ],
)
def test_a_forward_keeps_the_message_it_forwards(text: str, subject: str | None, kept: str) -> None:
    """An instructor forwarding a student's email: the forwarded message is the question (an
    outside probe's forwards reached the desk as "FYI see below" alone, or empty)."""
    got = split_reply(text, subject=subject)
    assert kept in got
    assert "Sent from my iPhone" not in got


def test_a_reply_still_loses_its_history() -> None:
    """Only a forward keeps what follows its marker: a reply's Outlook block is history."""
    assert split_reply(OUTLOOK, subject="RE: [refdesk #c-42] Equipment loan") == (
        "I still have the laptop charger, where do I return it?\n\nJane Doe\nStudent, NW Campus"
    )
    # a reply that is nothing but a quoted block: nothing can be told apart as the answer, so
    # nothing is thrown away (the answer may be inside it: below, a crisis written there)
    assert split_reply(OUTLOOK_FORWARD, subject="JSTOR") == OUTLOOK_FORWARD.strip()


# An outside patron-safety review: each of these lost the crisis at ingest (the console said
# "No text came with this message", or kept only the question above a signature or a footer).
LOST_CRISES = [
    # bottom-posted under an Outlook block
    (
        "-----Original Message-----\nFrom: TCC Library <askus@tccd.edu>\nSent: Monday\n"
        "Subject: We received your question\n\nThe desk is closed now.\n\n"
        "my ex is outside my apartment with a knife and says he will kill me",
        True,
        "he will kill me",
    ),
    # a P.S. after the signature of an email that answers nothing
    (
        "How do I cite a YouTube video in APA 7?\n\n-- \nJane Doe\nNE Campus\n\n"
        "P.S. I am planning to kill myself after finals, I have the pills.",
        False,
        "planning to kill myself",
    ),
    # typed after a phone's footer
    (
        "what time do you open monday\nSent from my iPhone\n"
        "also I want to die, I am going to jump off the parking garage tonight",
        False,
        "I want to die",
    ),
]


@pytest.mark.parametrize(("text", "reply", "crisis"), LOST_CRISES)
def test_what_the_patron_wrote_after_history_a_signature_or_a_footer_is_kept(
    text: str, reply: bool, crisis: str
) -> None:
    kept = split_reply(text, reply=reply)
    assert crisis in kept
    assert "Sent from my iPhone" not in kept and "Jane Doe" not in kept


def test_an_html_reply_written_below_gmails_quote_is_kept() -> None:
    html = (
        '<div dir="ltr"><br></div><div class="gmail_quote"><div class="gmail_attr">On Mon, '
        "Dec 7, 2026 at 1:02 AM TCC Library &lt;askus@tccd.edu&gt; wrote:<br></div>"
        "<blockquote>The desk is closed now.</blockquote></div>"
        "<div>I am going to kill myself tonight</div>"
    )
    text = html_to_text(html, reply=True)
    assert split_reply(text) == "I am going to kill myself tonight"
    # above the quote, as usual: the quote is history
    above = "<div>Thanks!</div>" + html.replace("<div>I am going to kill myself tonight</div>", "")
    assert split_reply(html_to_text(above, reply=True)) == "Thanks!"


def test_an_html_forward_keeps_the_forwarded_message() -> None:
    html = (
        "<div>Please help this student</div>"
        '<div class="gmail_quote"><div class="gmail_attr">---------- Forwarded message ---------'
        "<br>From: Student X</div><blockquote>I can't access JSTOR</blockquote></div>"
    )
    assert "I can't access JSTOR" in html_to_text(html, subject="Fwd: JSTOR")
    assert "I can't access JSTOR" in html_to_text(html)  # the marker says it
    assert html_to_text(html.replace("Forwarded message", "x")) == "Please help this student"


def test_html_to_text() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body>"
        "<div>Hello&nbsp;there,</div><p>Do you have <b>APA</b> guides?<br>Thanks &amp; bye</p>"
        "<script>alert(1)</script>"
        '<div class="gmail_quote">On Mon wrote:<blockquote>old text</blockquote></div>'
        "</body></html>"
    )
    assert html_to_text(html) == "Hello there,\n\nDo you have APA guides?\nThanks & bye"


def test_html_blockquote_is_dropped() -> None:
    assert html_to_text("<p>New</p><blockquote><p>Old</p></blockquote><p>After</p>") == (
        "New\n\nAfter"
    )


def test_ticket_tag_round_trip() -> None:
    tag = format_ticket_tag("7f1c2a4e-5d7b-4f0e-9a61-3b8d2c7e9f10")
    assert tag == TICKET_TAG_FORMAT.format(conversation_id="7f1c2a4e-5d7b-4f0e-9a61-3b8d2c7e9f10")
    assert ticket_tag(f"RE: Re: {tag} Lost book") == "7f1c2a4e-5d7b-4f0e-9a61-3b8d2c7e9f10"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: [REFDESK #c-42] Lost book", "c-42"),
        ("Re: [refdesk # c-42 ] Lost book", "c-42"),
        ("Fwd: [refdesk #c-1] and [refdesk #c-2]", "c-1"),
        ("Lost book", None),
        ("[refdesk #] nothing", None),
        (None, None),
    ],
)
def test_ticket_tag(subject: str | None, expected: str | None) -> None:
    assert ticket_tag(subject) == expected


@pytest.mark.parametrize("conversation_id", ["", "has space", "a]b", "-leading", "x" * 129])
def test_format_ticket_tag_refuses_ids_that_would_not_parse_back(conversation_id: str) -> None:
    with pytest.raises(ValueError, match="ticket tag"):
        format_ticket_tag(conversation_id)


# An outside probe's new emails (no In-Reply-To, no "Re:"): each lost what the patron wrote.
NEW_EMAILS = [
    (
        "Question 1: can I print in color at NE?\n--\n"
        "Question 2: how late is the Trinity River library open on Thursday?"
    ),
    (
        "My professor sent this, can you help me find these?\n\nFrom: Dr. Alvarez\n"
        "Subject: Reading list\n1. The Omnivore's Dilemma\n2. Silent Spring"
    ),
    "I need the book with this call number:\n> QA76.73 .P98\nIs it checked out?",
    "On the assignment sheet my professor wrote:\nFind five peer-reviewed sources.",
    "El profesor escribió:\nUsen tres fuentes primarias.",
]


@pytest.mark.parametrize("text", NEW_EMAILS)
def test_an_email_that_answers_nothing_keeps_everything_its_patron_wrote(text: str) -> None:
    assert split_reply(text, reply=False) == text


def test_a_reply_still_trims_what_a_new_email_keeps() -> None:
    """The same lines in a reply are quoted history, as before."""
    assert (
        split_reply(NEW_EMAILS[2]) == "I need the book with this call number:\nIs it checked out?"
    )
    assert split_reply(NEW_EMAILS[3]) == "Find five peer-reviewed sources."


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        # bare dashes before a few short lines: a signature from a client that trims the space
        (
            "Where is APA help?\n--\nJane Doe\nStudent, NW Campus\n817-555-0123",
            "Where is APA help?",
        ),
        # before a question, or a long paragraph, they are the patron's own separator
        ("Is the NE library open?\n--\nAnd SE?", "Is the NE library open?\n--\nAnd SE?"),
        # RFC 3676's "-- " is a signature whatever follows
        ("Where is APA help?\n-- \nIs this my signature?", "Where is APA help?"),
    ],
)
def test_bare_dashes_end_the_text_only_before_a_signature(text: str, kept: str) -> None:
    assert split_reply(text, reply=False) == kept
    assert split_reply(text) == kept


@pytest.mark.parametrize(
    ("subject", "answers", "reply"),
    [
        ("Re: Lost book", False, True),
        ("AW: Buch", False, True),
        ("RE[2]: laptop", False, True),
        ("Lost book", True, True),  # In-Reply-To or References
        ("Lost book", False, False),
        ("Regarding my fine", False, False),
        (None, False, False),
    ],
)
def test_what_makes_an_email_a_reply(subject: str | None, answers: bool, reply: bool) -> None:
    assert is_reply(subject, answers=answers) is reply


def test_an_html_email_that_answers_nothing_keeps_its_blockquote() -> None:
    """A patron's own quote, set off by their client; a reply's blockquote is history, and a
    client's reply container ends even a new email (it is that client's quoted history)."""
    html = "<p>I need this call number:</p><blockquote>QA76.73 .P98</blockquote><p>Is it out?</p>"
    assert html_to_text(html, reply=False) == "I need this call number:\n\nQA76.73 .P98\nIs it out?"
    assert html_to_text(html) == "I need this call number:\n\nIs it out?"
    container = '<p>Hi</p><div class="gmail_quote">On Monday Ask Us wrote: old</div>'
    assert html_to_text(container, reply=False) == "Hi"


def test_an_html_only_email_keeps_link_addresses_table_cells_and_image_words() -> None:
    """A patron's link to the article they could not open read "See this screenshot link."
    with the address gone, and a table's "Due | Friday" read "DueFriday" (an outside probe)."""
    html = (
        '<p>See <a href="https://example.org/screenshot">this screenshot link</a>.</p>'
        "<table><tr><td>Course</td><td>HIST 1301</td></tr>"
        "<tr><th>Due</th><td>Friday</td></tr></table>"
        '<p><img src="cid:1" alt="error  message"> at '
        '<a href="https://tccd.edu/x">https://tccd.edu/x</a>, '
        '<a href="mailto:ana@my.tccd.edu">write me</a></p>'
    )
    text = html_to_text(html, reply=False)
    assert "See this screenshot link (https://example.org/screenshot)." in text
    assert "Course | HIST 1301" in text and "Due | Friday" in text
    assert "[image: error message] at https://tccd.edu/x," in text  # no address said twice
    assert "write me" in text and "mailto:" not in text
    # a link inside the quoted history stays cut with it
    quoted = '<p>Thanks</p><div class="gmail_quote"><a href="https://old.example">old</a></div>'
    assert "old.example" not in html_to_text(quoted)


@pytest.mark.parametrize(
    "block",
    [
        "Von: TCC Library Ask Desk <askdesk@tccd.edu>\nGesendet: Sonntag, 6. Dezember 2026\n"
        "An: Ana <ana@example.de>\nBetreff: AW: Study rooms",
        "De : TCC Library <askdesk@tccd.edu>\nEnvoyé : dimanche 6 décembre 2026\n"
        "À : Ana\nObjet : RE: Study rooms",
        "Da: TCC Library <askdesk@tccd.edu>\nInviato: domenica 6 dicembre 2026\n"
        "A: Ana\nOggetto: R: Study rooms",
        "De: TCC Library <askdesk@tccd.edu>\nEnviada em: domingo, 6 de dezembro de 2026\n"
        "Para: Ana\nAssunto: RE: Study rooms",
    ],
)
def test_outlook_header_blocks_in_other_languages_end_the_reply(block: str) -> None:
    """A German Outlook reply carried the desk's own acknowledgement into the patron's message
    and the queue's preview (an outside probe)."""
    text = f"Groups of four, tomorrow afternoon please.\n\n{block}\n\nThanks for your message!"
    assert split_reply(text, subject="RE: Study rooms") == (
        "Groups of four, tomorrow afternoon please."
    )
