"""Standard Webhooks signatures verify with the reference library; filters match as documented."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.publisher.subscriptions import check_secret, matches, new_secret, signing_secrets
from services.publisher.tables import Subscription
from shared.webhooks import signed_headers

PAYLOAD = json.dumps({"id": "e1", "type": "t", "data": {"department": "reference"}})


def test_a_signed_delivery_verifies() -> None:
    secret = new_secret()
    headers = signed_headers(
        secrets=[secret], msg_id="msg_1", payload=PAYLOAD, now=datetime.now(UTC), user_agent="t"
    )
    assert Webhook(secret).verify(PAYLOAD, headers)["id"] == "e1"
    assert headers["webhook-signature"].startswith("v1,")


@pytest.mark.parametrize("tamper", ["body", "secret", "id"])
def test_tampering_fails_verification(tamper: str) -> None:
    secret = new_secret()
    headers = signed_headers(
        secrets=[secret], msg_id="msg_1", payload=PAYLOAD, now=datetime.now(UTC), user_agent="t"
    )
    body, key = PAYLOAD, secret
    if tamper == "body":
        body = PAYLOAD.replace("reference", "tutoring")
    elif tamper == "secret":
        key = new_secret()
    else:
        headers["webhook-id"] = "msg_2"
    with pytest.raises(WebhookVerificationError):
        Webhook(key).verify(body, headers)


def test_secrets_are_checked() -> None:
    assert check_secret(new_secret()).startswith("whsec_")
    for bad in ("nope", "whsec_", "whsec_c2hvcnQ="):
        with pytest.raises(Exception, match="secret"):
            check_secret(bad)


def sub(**kw: Any) -> Subscription:
    values: dict[str, Any] = {"event_types": [], "campuses": [], "departments": [], "active": True}
    values.update(kw)
    return Subscription(**values)


ROUTED = "edu.tccd.refdesk.public.conversation.routed.v1"
CLOSED = "edu.tccd.refdesk.public.conversation.closed.v1"


@pytest.mark.parametrize(
    ("subscription", "event_type", "data", "wanted"),
    [
        (sub(), CLOSED, {}, True),
        (sub(active=False), CLOSED, {}, False),
        (sub(event_types=[ROUTED]), CLOSED, {}, False),
        (sub(event_types=[ROUTED]), ROUTED, {"department": "tutoring"}, True),
        (sub(departments=["tutoring"]), ROUTED, {"department": "tutoring"}, True),
        (sub(departments=["tutoring"]), ROUTED, {"department": "reference"}, False),
        (sub(departments=["tutoring"]), CLOSED, {}, False),
        (sub(departments=["tutoring"]), "x", {"department_hint": "tutoring"}, True),
        (sub(campuses=["campus-nw"]), "x", {"campus_hint": "campus-nw"}, True),
        (sub(campuses=["campus-nw"]), ROUTED, {"department": "campus-nw"}, True),
        (sub(campuses=["campus-nw"]), ROUTED, {"department": "reference"}, False),
    ],
)
def test_subscription_filters(
    subscription: Subscription, event_type: str, data: dict[str, Any], wanted: bool
) -> None:
    assert matches(subscription, event_type, data) is wanted


def test_while_a_secret_is_rotated_a_delivery_verifies_with_either() -> None:
    old, new = new_secret(), new_secret()
    now = datetime.now(UTC)
    headers = signed_headers(
        secrets=[new, old], msg_id="msg_1", payload=PAYLOAD, now=now, user_agent="t"
    )
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(PAYLOAD, headers)["id"] == "e1"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(PAYLOAD, headers)


def test_the_previous_secret_signs_until_its_grace_ends() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    rotated = sub(secret="whsec_new", previous_secret="whsec_old")
    rotated.previous_secret_until = now + timedelta(hours=1)
    assert signing_secrets(rotated, now) == ("whsec_new", "whsec_old")
    assert signing_secrets(rotated, now + timedelta(hours=1)) == ("whsec_new",)
    assert signing_secrets(sub(secret="whsec_only"), now) == ("whsec_only",)
