"""`refdesk replay` against a stand-in ingest on loopback: each item is posted in order, a 503
is retried after its Retry-After, and what could not be sent is named by its line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from refdesk_cli import replay as replay_module
from refdesk_cli.kafka_local import free_port
from refdesk_cli.main import app
from refdesk_cli.replay import read_items, replay
from refdesk_cli.webhooks import InvalidItem, Secrets

SECRETS = Secrets(
    twilio_auth_token="unit-twilio",
    mailgun_signing_key="unit-mailgun",
    webhook_secret="whsec_dW5pdC13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5",
    public_base_url="https://desk.example.edu",
)
SMS = {"kind": "sms", "from": "+18175550123", "body": "can i renew my book"}
EMAIL = {"kind": "email", "from": "Ana <ana@my.tccd.edu>", "subject": "Lost", "text": "lost it"}


@dataclass
class Ingest:
    """What the stand-in received, and the answers it gives in turn (then 200)."""

    url: str = ""
    answers: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    received: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    """A threaded HTTP server on a loopback port the OS picks."""
    state = Ingest()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append((self.path, body))
            code, headers, text = state.answers.pop(0) if state.answers else (200, {}, "ok")
            raw = text.encode()
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_items_are_posted_in_order_and_answers_counted(ingest: Ingest) -> None:
    """Two sent (one refused with 400, named with its body), one invalid item not sent;
    progress advances once per item."""
    ingest.answers = [(200, {}, "<Response/>"), (400, {}, "bad signature")]
    steps: list[int] = []
    items = [(1, SMS), (2, EMAIL), (4, {"kind": "fax", "body": "hi"})]
    result = replay(items, ingest_url=ingest.url, secrets=SECRETS, advance=lambda: steps.append(1))
    assert [path for path, _ in ingest.received] == ["/webhooks/sms", "/webhooks/email"]
    assert b"can+i+renew+my+book" in ingest.received[0][1]
    assert result.sent == 2 and dict(result.statuses) == {200: 1, 400: 1}
    assert result.errors == [
        "line 2: HTTP 400 bad signature",
        "line 4: kind: must be one of sms, email, chat, not 'fax'",
    ]
    assert len(steps) == 3


def test_a_503_is_retried_with_the_same_request(ingest: Ingest) -> None:
    """The broker was away twice: the same signed request is posted again, then accepted."""
    ingest.answers = [(503, {"Retry-After": "0"}, "busy"), (503, {"Retry-After": "0"}, "busy")]
    result = replay([(1, SMS)], ingest_url=ingest.url, secrets=SECRETS)
    assert result.sent == 1 and dict(result.statuses) == {200: 1} and result.errors == []
    assert len(ingest.received) == 3 and len({body for _, body in ingest.received}) == 1


def test_503_every_time_gives_up_after_the_retries(ingest: Ingest) -> None:
    """After MAX_503_RETRIES attempts the last 503 is the answer, counted and named."""
    busy = (503, {"Retry-After": "0"}, "broker unavailable")
    ingest.answers = [busy] * (replay_module.MAX_503_RETRIES + 1)
    result = replay([(7, SMS)], ingest_url=ingest.url, secrets=SECRETS)
    assert len(ingest.received) == replay_module.MAX_503_RETRIES
    assert dict(result.statuses) == {503: 1}
    assert result.errors == ["line 7: HTTP 503 broker unavailable"]


def test_ingest_down_is_an_error_per_item() -> None:
    """Nothing listening: each item is named with the connection error, none counted sent."""
    url = f"http://127.0.0.1:{free_port()}"
    result = replay([(1, SMS), (2, SMS)], ingest_url=url, secrets=SECRETS, timeout=2.0)
    assert result.sent == 0
    assert result.errors == ["line 1: ConnectError", "line 2: ConnectError"]


def test_read_items_skips_blanks_and_comments_and_refuses_non_objects(tmp_path: Path) -> None:
    """Line numbers are the file's; a JSON value that is not an object is refused."""
    path = tmp_path / "items.jsonl"
    path.write_text(f"# a shift\n\n{json.dumps(SMS)}\n{json.dumps(EMAIL)}\n")
    assert read_items(path) == [(3, SMS), (4, EMAIL)]
    path.write_text(f"{json.dumps(SMS)}\n[1, 2]\n")
    with pytest.raises(InvalidItem, match="line 2: each line must be a JSON object"):
        read_items(path)


def test_the_command_reports_what_it_sent(
    ingest: Ingest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`refdesk replay FILE --ingest URL`: a summary line, exit 0 when all were accepted."""
    monkeypatch.delenv("REFDESK_ENV", raising=False)
    path = tmp_path / "shift.jsonl"
    path.write_text(f"{json.dumps(SMS)}\n{json.dumps(EMAIL)}\n")
    result = CliRunner().invoke(app, ["replay", str(path), "--ingest", ingest.url])
    assert result.exit_code == 0, result.output
    assert "sent 2 of 2 (200: 2)" in result.stdout
    assert len(ingest.received) == 2


def test_the_command_fails_naming_the_refused_line(
    ingest: Ingest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused item: the summary, the line on stderr, exit 1."""
    monkeypatch.delenv("REFDESK_ENV", raising=False)
    ingest.answers = [(200, {}, "ok"), (422, {}, "no body")]
    path = tmp_path / "shift.jsonl"
    path.write_text(f"{json.dumps(SMS)}\n{json.dumps(SMS)}\n")
    result = CliRunner().invoke(app, ["replay", str(path), "--ingest", ingest.url])
    assert result.exit_code == 1
    assert "sent 2 of 2 (200: 1, 422: 1)" in result.stdout
    assert "line 2: HTTP 422 no body" in result.stderr
