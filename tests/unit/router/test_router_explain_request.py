"""ExplainRequest: the one input of POST /explain, `python -m services.router explain` and
`refdesk policy explain`: the same fields, the same reading of time, errors naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from refdesk_cli.explain import explain as refdesk_explain
from services.router.cli import InputError, _input
from services.router.explain import ExplainRequest
from services.router.policy import Policy


def test_a_time_without_offset_is_desk_time_and_none_is_now(policy: Policy) -> None:
    naive = ExplainRequest(channel="sms", text="hours?", received_at=datetime(2026, 1, 6, 10, 0))
    inp, online = naive.to_input(policy)
    assert inp.received_at.tzinfo == policy.hours.tz
    assert online == {d.id for d in policy.doc.departments}
    now, _ = ExplainRequest(channel="chat", text="hi").to_input(policy)
    assert abs((now.received_at - datetime.now(UTC)).total_seconds()) < 60


def test_online_departments_and_the_subject_reach_the_engine(policy: Policy) -> None:
    request = ExplainRequest(
        channel="email", text="renew?", subject="Renewal", online=["reference"]
    )
    inp, online = request.to_input(policy)
    assert (inp.subject, online) == ("Renewal", frozenset({"reference"}))


def test_without_online_every_department_is_online_at_any_hour(policy: Policy) -> None:
    """As the contract says ("absent: all"): after hours a renewal was explained with "nobody
    Online in nw-circulation" (an outside audit); `[]` is how to ask for nobody."""
    night = {"channel": "sms", "text": "can i renew my book", "at": "2026-01-06T23:30:00"}
    everyone = refdesk_explain(**night, rules_only=True)
    nobody = refdesk_explain(**night, online=[], rules_only=True)
    assert everyone["department"] == nobody["department"] == "nw-circulation"
    assert everyone["fallback"] is None
    assert nobody["fallback"] == "ticket: nobody Online in nw-circulation"


def test_the_router_cli_names_the_bad_field(policy: Policy) -> None:
    with pytest.raises(InputError) as refused:
        _input({"channel": "fax", "text": "hi"}, policy)
    assert refused.value.field == "channel"
    with pytest.raises(InputError) as refused:
        _input({"channel": "sms", "text": "hi", "received_at": "yesterday"}, policy)
    assert refused.value.field == "received_at"
    # POST /explain answered 500 on this: the desk-hours arithmetic overflowed
    for far in ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59", "1999-12-31T23:59:59Z"):
        with pytest.raises(InputError) as refused:
            _input({"channel": "sms", "text": "hi", "received_at": far}, policy)
        assert refused.value.field == "received_at"


def test_refdesk_policy_explain_names_the_option() -> None:
    with pytest.raises(ValueError, match="--channel"):
        refdesk_explain("hi", channel="fax")
    with pytest.raises(ValueError, match="--at"):
        refdesk_explain("hi", at="not a time")
    decided = refdesk_explain("can i renew my book", channel="sms", at="2026-01-06T10:00")
    assert decided["action"] == "transfer"


def test_explain_decides_a_follow_up_as_the_router_does(policy: Policy) -> None:
    """The router tells the engine what it remembers of the conversation; explain takes the
    same two facts, so it shows the second circulation email and HELP in a crisis."""
    details = {"channel": "sms", "text": "my name is Dana Whitfield and my id is 7654321"}
    alone = policy.decide(ExplainRequest(**details).to_input(policy)[0])
    assert alone.action.value != "email_circulation"
    inp, _ = ExplainRequest(**details, circulation_emailed=True).to_input(policy)
    followed = policy.decide(inp)
    assert (followed.action.value, followed.department) == (
        "email_circulation",
        "circulation-managers",
    )
    assert followed.guidance.extracted == {"patron_name": "Dana Whitfield", "tcc_id": "7654321"}
    assert followed.guidance.missing_fields == ["item"]
    help_alone = policy.decide(ExplainRequest(channel="sms", text="HELP").to_input(policy)[0])
    assert help_alone.sms_keyword == "HELP"
    inp, _ = ExplainRequest(channel="sms", text="HELP", crisis_conversation=True).to_input(policy)
    assert policy.decide(inp).sms_keyword is None
    inp, _ = ExplainRequest(channel="sms", text="STOP", crisis_conversation=True).to_input(policy)
    assert policy.decide(inp).sms_consent == "opt_out"
