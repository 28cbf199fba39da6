"""Twilio signature verification against twilio-python's own vectors, and SMS parsing."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData, UploadFile
from twilio.request_validator import RequestValidator

from services.ingest.providers.errors import InvalidField, InvalidSignature, MissingSignature
from services.ingest.providers.twilio import (
    compute_twilio_signature,
    parse_twilio_sms,
    signature_algorithm,
    signing_secret,
    verify_twilio_signature,
)

TOKEN = "12345678901234567890123456789012"
URL = "https://refdesk.example.edu/ingest/sms?campus=nw"
SMS = {
    "ToCountry": "US",
    "ToState": "TX",
    "SmsMessageSid": "SM0123456789abcdef0123456789abcdef",
    "NumMedia": "0",
    "ToCity": "FORT WORTH",
    "FromZip": "76102",
    "SmsSid": "SM0123456789abcdef0123456789abcdef",
    "FromState": "TX",
    "SmsStatus": "received",
    "FromCity": "FORT WORTH",
    "Body": "Is the NW library open Saturday?",
    "FromCountry": "US",
    "To": "+18175150000",
    "MessagingServiceSid": "MG0123456789abcdef0123456789abcdef",
    "ToZip": "76102",
    "NumSegments": "1",
    "MessageSid": "SM0123456789abcdef0123456789abcdef",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "From": "+18175155555",
    "ApiVersion": "2010-04-01",
}


def test_twilio_vector_verifies() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, SMS)
    verify_twilio_signature(auth_token=TOKEN, url=URL, params=SMS, signature=signature)
    assert compute_twilio_signature(token=TOKEN, url=URL, params=SMS) == signature


def test_multi_valued_params_match_twilio() -> None:
    pairs: list[tuple[str, str | UploadFile]] = [
        ("To", "+18175150000"),
        ("Tag", "b"),
        ("Tag", "a"),
        ("Tag", "b"),
        ("Body", "hi"),
    ]
    form = FormData(pairs)
    signature = RequestValidator(TOKEN).compute_signature(URL, form)  # uses FormData.getlist
    for params in (form, pairs, {"To": "+18175150000", "Tag": ["b", "a", "b"], "Body": "hi"}):
        verify_twilio_signature(auth_token=TOKEN, url=URL, params=params, signature=signature)


@pytest.mark.parametrize(
    ("signed_url", "request_url"),
    [
        ("https://refdesk.example.edu:443/ingest/sms", "https://refdesk.example.edu/ingest/sms"),
        ("https://refdesk.example.edu/ingest/sms", "https://refdesk.example.edu:443/ingest/sms"),
        ("http://refdesk.example.edu:80/sms?x=1", "http://refdesk.example.edu/sms?x=1"),
    ],
)
def test_url_with_or_without_port(signed_url: str, request_url: str) -> None:
    signature = RequestValidator(TOKEN).compute_signature(signed_url, SMS)
    assert RequestValidator(TOKEN).validate(request_url, SMS, signature)
    verify_twilio_signature(auth_token=TOKEN, url=request_url, params=SMS, signature=signature)


def test_sha256_shared_key_vector() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, SMS, "HMAC_SHA256")
    algorithm = signature_algorithm("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256")
    verify_twilio_signature(
        auth_token=TOKEN, url=URL, params=SMS, signature=signature, algorithm=algorithm
    )
    assert signature_algorithm(None) == "HMAC_SHA1"


@pytest.mark.parametrize(
    ("token", "url", "params"),
    [
        (TOKEN, URL, {**SMS, "Body": "Is the NW library open Sunday?"}),
        (TOKEN, URL.replace("campus=nw", "campus=se"), SMS),
        (TOKEN, URL.replace("https://", "http://"), SMS),
        (TOKEN[:-1] + "3", URL, SMS),
        (TOKEN, URL, {**SMS, "Extra": ""}),
    ],
)
def test_tampering_fails(token: str, url: str, params: dict[str, str]) -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, SMS)
    with pytest.raises(InvalidSignature) as caught:
        verify_twilio_signature(auth_token=token, url=url, params=params, signature=signature)
    assert caught.value.status == 403
    assert caught.value.field == "X-Twilio-Signature"


@pytest.mark.parametrize("signature", [None, ""])
def test_missing_signature(signature: str | None) -> None:
    with pytest.raises(MissingSignature) as caught:
        verify_twilio_signature(auth_token=TOKEN, url=URL, params=SMS, signature=signature)
    assert caught.value.status == 401


@pytest.mark.parametrize("signature", ["é" * 28, "not base64 at all", "AAAA"])
def test_garbage_signature_is_invalid_not_a_crash(signature: str) -> None:
    with pytest.raises(InvalidSignature):
        verify_twilio_signature(auth_token=TOKEN, url=URL, params=SMS, signature=signature)


def test_parse_sms() -> None:
    sms = parse_twilio_sms(SMS)
    assert sms.message_sid == "SM0123456789abcdef0123456789abcdef"
    assert sms.account_sid == "AC0123456789abcdef0123456789abcdef"
    assert sms.from_e164 == "+18175155555"
    assert sms.to == "+18175150000"
    assert sms.body == "Is the NW library open Saturday?"
    assert (sms.num_media, sms.media_urls) == (0, ())
    assert (sms.from_city, sms.from_state) == ("FORT WORTH", "TX")


def test_parse_mms_media() -> None:
    params = {
        **SMS,
        "MessageSid": "MM0123456789abcdef0123456789abcdef",
        "NumMedia": "2",
        "Body": "",
        "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
        "MediaContentType1": "application/pdf",
    }
    sms = parse_twilio_sms(FormData(list(params.items())))
    assert sms.num_media == 2
    assert sms.media_urls[1].endswith("/ME2")
    assert sms.media_types == ("image/jpeg", "application/pdf")
    assert sms.body == ""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"MessageSid": None, "SmsMessageSid": None}, "MessageSid"),
        ({"MessageSid": "SM123"}, "MessageSid"),
        ({"From": None}, "From"),
        ({"From": " "}, "From"),
        ({"From": "+1555"}, "From"),
        ({"From": "TCC LIBRARY ALERTS"}, "From"),
        ({"From": "<script>"}, "From"),
        ({"To": " "}, "To"),
        ({"NumMedia": "many"}, "NumMedia"),
        ({"NumMedia": "11"}, "NumMedia"),
        ({"NumMedia": "²"}, "NumMedia"),  # a digit to str.isdigit(), not to int(): was a 500
        ({"NumMedia": "\u0661"}, "NumMedia"),  # an Arabic-Indic one
        ({"NumMedia": "1"}, "MediaUrl0"),
        ({"NumMedia": "1", "MediaUrl0": "http://insecure.example/x"}, "MediaUrl0"),
    ],
)
def test_parse_sms_names_the_bad_field(change: dict[str, str | None], field: str) -> None:
    params = {k: v for k, v in {**SMS, **change}.items() if v is not None}
    with pytest.raises(InvalidField) as caught:
        parse_twilio_sms(params)
    assert caught.value.field == field
    assert caught.value.status == 422
    assert "+1817" not in str(caught.value)  # values are student data: never echoed


@pytest.mark.parametrize(
    ("sender", "contact"),
    [
        ("+18175155555", "+18175155555"),
        # E.164 numbers phonenumbers does not call valid: the old Mexican mobile format, a
        # UK drama range, an unassigned NANP code. Twilio's carrier delivered them.
        ("+5215512345678", "+5215512345678"),
        ("+447700900123", "+447700900123"),
        ("+19999999999", "+19999999999"),
        ("89361", "89361"),  # a short code
        ("TCCALERT", "TCCALERT"),  # an alphanumeric sender ID
        ("whatsapp:+18175155555", "whatsapp:+18175155555"),
    ],
)
def test_parse_sms_accepts_every_twilio_sender(sender: str, contact: str) -> None:
    assert parse_twilio_sms({**SMS, "From": sender}).from_e164 == contact


def test_parse_sms_falls_back_to_sms_message_sid() -> None:
    params = {k: v for k, v in SMS.items() if k != "MessageSid"}
    assert parse_twilio_sms(params).message_sid == SMS["SmsMessageSid"]


def test_without_the_settings_header_the_auth_token_signs_with_sha1() -> None:
    assert signing_secret(None, auth_token=TOKEN, shared_key="sk") == (TOKEN, "HMAC_SHA1")
    assert signing_secret(" ", auth_token=TOKEN, shared_key="sk") == (TOKEN, "HMAC_SHA1")


def test_the_settings_header_means_the_shared_key_and_its_algorithm() -> None:
    header = "key=webhooks_sharedkey_01,algorithm=HMAC_SHA256"
    assert signing_secret(header, auth_token=TOKEN, shared_key="sk") == ("sk", "HMAC_SHA256")
    key, algorithm = signing_secret(header, auth_token=TOKEN, shared_key="sk")
    signature = RequestValidator("sk").compute_signature(URL, SMS, algorithm="HMAC_SHA256")
    verify_twilio_signature(
        auth_token=key, url=URL, params=SMS, signature=signature, algorithm=algorithm
    )


def test_the_settings_header_without_a_configured_shared_key_is_refused() -> None:
    with pytest.raises(InvalidSignature) as caught:
        signing_secret("key=k,algorithm=HMAC_SHA256", auth_token=TOKEN, shared_key=None)
    assert caught.value.field == "X-Twilio-Webhooks-Signature-Settings"
