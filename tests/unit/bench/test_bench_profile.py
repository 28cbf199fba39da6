"""bench.profile: each py-spy sample counts for the library nearest the top of its stack."""

from __future__ import annotations

from bench.profile import OTHER, category, counts, shares

LOOP = "_run_module_as_main (<frozen runpy>:198);Runner.run (asyncio/runners.py:118)"


def stack(*frames: str) -> list[str]:
    return [*LOOP.split(";"), *frames]


def test_standard_library_frames_count_for_the_library_that_called_them() -> None:
    write = stack(
        "Guard.batch (shared/consumer.py:120)",
        "AIOKafkaConnection.send (aiokafka/conn.py:450)",
        "_SelectorSocketTransport.write (asyncio/selector_events.py:1080)",
    )
    assert category(write) == "Kafka client"


def test_the_router_decision_is_apart_from_the_rest_of_the_service() -> None:
    decide = stack(
        "dispatch (services/router/handlers.py:80)",
        "Policy.decide (services/router/policy/engine.py:200)",
        "re.Pattern.search (re/__init__.py:10)",
    )
    plan = stack("dispatch (services/router/handlers.py:80)")
    assert category(decide) == "router's decision"
    assert category(plan) == "refdesk's own code"


def test_an_absolute_path_is_read_too() -> None:
    frames = stack("execute (/opt/venv/lib/python3.11/site-packages/sqlalchemy/engine/base.py:9)")
    assert category(frames) == "SQLAlchemy"


def test_a_stack_of_the_standard_library_alone() -> None:
    assert category(stack("BaseEventLoop._run_once (asyncio/base_events.py:1900)")) == OTHER


def test_the_loop_uvicorn_started_is_not_the_http_stack() -> None:
    started = [
        "serve (shared/service.py:79)",
        "Server.run (uvicorn/server.py:86)",
        "asyncio_run (uvicorn/_compat.py:30)",
        "Runner.run (asyncio/runners.py:118)",
    ]
    assert category([*started, "StreamReader.feed_data (asyncio/streams.py:505)"]) == OTHER
    assert category(started) == OTHER
    request = [*started, "RequestResponseCycle.run_asgi (uvicorn/protocols/http/h11.py:400)"]
    assert category(request) == "HTTP stack"


def test_shares_weigh_each_stack_by_its_count_largest_first() -> None:
    raw = "\n".join(
        [
            ";".join(stack("SMTP.sendmail (aiosmtplib/smtp.py:1400)")) + " 30",
            ";".join(stack("render (jinja2/environment.py:1300)")) + " 10",
            ";".join(stack("SMTP.sendmail (aiosmtplib/smtp.py:1401)")) + " 30",
            "py-spy: a line that is not a stack",
            "",
        ]
    )
    sampled = counts(raw)
    assert sampled == {"SMTP client": 60, "templates": 10}
    found = shares(sampled)
    assert list(found) == ["SMTP client", "templates"]
    assert found["SMTP client"] == 60 / 70
    assert found["templates"] == 10 / 70


def test_nothing_sampled_is_no_shares() -> None:
    assert counts("") == {}
    assert shares(counts("")) == {}
