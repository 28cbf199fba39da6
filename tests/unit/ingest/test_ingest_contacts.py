"""Patron contacts are normalised: phones to E.164, email addresses lower-cased."""

from __future__ import annotations

import pytest

from services.ingest.providers.contacts import normalize_email, normalize_phone, parse_address
from services.ingest.providers.errors import InvalidField


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(817) 515-5555", "+18175155555"),
        ("817.515.5555", "+18175155555"),
        (" +1 817 515 5555 ", "+18175155555"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_normalize_phone(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["+5215512345678", "+447700900123", "+19999999999"])
def test_normalize_phone_keeps_an_e164_number_it_does_not_know(raw: str) -> None:
    assert normalize_phone(f" {raw} ") == raw


def test_normalize_phone_other_default_region() -> None:
    assert normalize_phone("020 7946 0958", default_region="GB") == "+442079460958"


@pytest.mark.parametrize("raw", ["", "555-0100", "TCCALERT", "+1 817 515", "12"])
def test_normalize_phone_rejects(raw: str) -> None:
    with pytest.raises(InvalidField) as caught:
        normalize_phone(raw, field="From")
    assert caught.value.field == "From"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane.Doe@My.TCCD.edu", "jane.doe@my.tccd.edu"),
        ("Jane Doe <Jane.Doe@My.TCCD.edu>", "jane.doe@my.tccd.edu"),
        ('"Doe, Jane" <jdoe+lib@example.org>', "jdoe+lib@example.org"),
        # RFC 5322 quoted local parts, RFC 6531 internationalised addresses, address literals
        ('"john smith"@example.com', '"john smith"@example.com'),
        ('"jsmith"@example.com', "jsmith@example.com"),
        ("jose@m\u00fcnchen.de", "jose@m\u00fcnchen.de"),
        ("JOSE@XN--MNCHEN-3YA.DE", "jose@m\u00fcnchen.de"),
        ("\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a", "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a"),
        ("Ana <ana@[192.0.2.1]>", "ana@[192.0.2.1]"),
    ],
)
def test_normalize_email(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


def test_parse_address_keeps_the_display_name() -> None:
    assert parse_address('"Doe, Jane" <JDoe@Example.org>') == ("Doe, Jane", "jdoe@example.org")
    assert parse_address("jdoe@example.org") == (None, "jdoe@example.org")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "nonsense",
        "jane@",
        "@example.org",
        "jane@localhost",
        "a@b.org, c@d.org",
        "jane@example",
        "jane..doe@example.org",
        "jane@mail_server.example.org",
    ],
)
def test_normalize_email_rejects(raw: str) -> None:
    with pytest.raises(InvalidField) as caught:
        normalize_email(raw, field="sender")
    assert caught.value.field == "sender"
