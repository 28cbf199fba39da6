"""The `refdesk` command line."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="refdesk: the virtual reference desk's event-driven back end", no_args_is_help=True
)
policy_app = typer.Typer(
    help="The router's routing policy, locally (no Kafka).", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")

DEFAULT_URLS = {
    "ingest": "http://127.0.0.1:8081",
    "router": "http://127.0.0.1:8082",
    "notifier": "http://127.0.0.1:8083",
    "status": "http://127.0.0.1:8084",
    "publisher": "http://127.0.0.1:8085",
}

RunDir = Annotated[Path, typer.Option(help="folder for data, logs, mail and outboxes")]
Kafka = Annotated[str, typer.Option(envvar="REFDESK_KAFKA_BOOTSTRAP", help="Kafka bootstrap")]
IngestUrl = Annotated[str, typer.Option("--ingest", help="ingest's base URL")]
RouterUrl = Annotated[str, typer.Option("--router", help="router's base URL")]
NotifierUrl = Annotated[str, typer.Option("--notifier", help="notifier's base URL")]
StatusUrl = Annotated[str, typer.Option("--status", help="status service's base URL")]
PublisherUrl = Annotated[str, typer.Option("--publisher", help="publisher's base URL")]


def _console() -> Console:
    return Console(width=None if os.isatty(1) else 160)


@app.command()
def up(run_dir: RunDir = Path("run")) -> None:
    """Start Kafka, the mail sink and the five services (what `make run` runs)."""
    from refdesk_cli.up import up as _up

    _up(run_dir)


@app.command()
def version() -> None:
    """Print refdesk's version."""
    from importlib.metadata import version as _v

    typer.echo(_v("refdesk"))


@app.command()
def status(
    ingest: IngestUrl = DEFAULT_URLS["ingest"],
    router: RouterUrl = DEFAULT_URLS["router"],
    notifier: NotifierUrl = DEFAULT_URLS["notifier"],
    status_url: StatusUrl = DEFAULT_URLS["status"],
    publisher: PublisherUrl = DEFAULT_URLS["publisher"],
) -> None:
    """Readiness and consumer lag of each service, and staff Online per department."""
    from refdesk_cli.status_cmd import collect

    urls = {
        "ingest": ingest,
        "router": router,
        "notifier": notifier,
        "status": status_url,
        "publisher": publisher,
    }
    services, board = collect(urls)
    console = _console()
    health = Table(
        "service",
        "url",
        "ready",
        "checks",
        "consumer lag (topic/group: messages)",
        title="services",
    )
    for s in services:
        ready = "down" if s.ready is None else ("ready" if s.ready else "NOT READY")
        checks = ", ".join(f"{k}={'ok' if v else 'FAIL'}" for k, v in s.checks.items()) or "-"
        lag = ", ".join(f"{t}/{g}: {v:g}" for (t, g), v in sorted(s.lag.items())) or "-"
        health.add_row(s.name, s.url, ready, s.error or checks, lag)
    console.print(health)
    if board is None:
        console.print("availability: the status service did not answer")
    else:
        staffed = Table("department", "staffed", "Online", title="staff Online")
        for d in board:
            staffed.add_row(d["department"], "yes" if d["staffed"] else "no", str(d["online"]))
        console.print(staffed)
    if any(s.ready is not True for s in services):
        raise typer.Exit(1)


@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="e.g. refdesk.routing")],
    kafka: Kafka = "127.0.0.1:9092",
    from_beginning: Annotated[bool, typer.Option("--from-beginning")] = False,
    limit: Annotated[int | None, typer.Option(help="stop after this many events")] = None,
    idle_timeout: Annotated[
        float | None, typer.Option(help="stop after this many seconds without an event")
    ] = None,
    show_student_data: Annotated[
        bool, typer.Option("--show-student-data", help="print names, contacts and text unmasked")
    ] = False,
) -> None:
    """Pretty-print a topic's events (student data masked) until Ctrl-C."""
    from refdesk_cli.tail import run

    try:
        run(
            kafka,
            topic,
            from_beginning=from_beginning,
            limit=limit,
            idle_timeout=idle_timeout,
            show_student_data=show_student_data,
            out=typer.echo,
        )
    except KeyboardInterrupt:
        pass


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    ingest: IngestUrl = DEFAULT_URLS["ingest"],
) -> None:
    """Send a JSONL file of webhooks through ingest, signed with the REFDESK_* secrets."""
    from rich.progress import Progress

    from refdesk_cli.replay import read_items
    from refdesk_cli.replay import replay as _replay
    from refdesk_cli.webhooks import InvalidItem, Secrets

    try:
        items = read_items(file)
    except InvalidItem as exc:
        typer.echo(f"{file}: {exc}", err=True)
        raise typer.Exit(2) from None
    with Progress(console=_console(), transient=False) as progress:
        task = progress.add_task("replaying", total=len(items))
        result = _replay(
            items,
            ingest_url=ingest,
            secrets=Secrets.from_env(),
            advance=lambda: progress.advance(task),
        )
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(result.statuses.items()))
    typer.echo(f"sent {result.sent} of {len(items)} ({codes or 'none'})")
    for error in result.errors:
        typer.echo(error, err=True)
    if result.errors:
        raise typer.Exit(1)


@policy_app.command("explain")
def policy_explain(
    text: Annotated[str, typer.Argument(help="the patron's message")],
    channel: Annotated[str, typer.Option(help="chat, sms or email")] = "chat",
    role: Annotated[str, typer.Option(help="student, faculty or unknown")] = "unknown",
    at: Annotated[
        str | None, typer.Option(help="when it arrived (ISO 8601; naive = desk time); default now")
    ] = None,
    online: Annotated[
        list[str] | None, typer.Option(help="a department with staff Online (repeat); default: all")
    ] = None,
    policy: Annotated[Path | None, typer.Option(help="policy file; default: the router's")] = None,
    model: Annotated[
        Path | None, typer.Option(help="learned net (.npz); default: the router's")
    ] = None,
    rules_only: Annotated[bool, typer.Option(help="decide without the learned net")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the decision as JSON")] = False,
) -> None:
    """How the router would route one message (rules and learned net), and why."""
    from refdesk_cli.explain import explain

    try:
        decision = explain(
            text,
            channel=channel,
            role=role,
            at=at,
            online=online,
            policy=policy,
            model=model,
            rules_only=rules_only,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(decision, indent=2, ensure_ascii=False))
        return
    console = _console()
    table = Table("field", "value", title="decision", show_header=False)
    for key in (
        "action",
        "department",
        "priority",
        "overnight",
        "fallback",
        "lang",
        "safety_review",
        "risk_score",
        "net",
        "model_version",
        "policy_version",
    ):
        table.add_row(key, str(decision.get(key)))
    table.add_row(
        "rules",
        "; ".join(
            f"{r['rule_id']} ({', '.join(r.get('matched') or [])})"
            for r in decision.get("rules", [])
        ),
    )
    table.add_row("hand-off", str(decision.get("handoff_text") or "-"))
    guidance = decision.get("guidance") or {}
    table.add_row("staff guidance", str(guidance.get("summary") or "-"))
    if guidance.get("missing_fields"):
        table.add_row("missing", ", ".join(guidance["missing_fields"]))
    console.print(table)


@app.command()
def demo(
    ingest: IngestUrl = DEFAULT_URLS["ingest"],
    status_url: StatusUrl = DEFAULT_URLS["status"],
    kafka: Kafka = "127.0.0.1:9092",
    run_dir: RunDir = Path("run"),
    mail_dir: Annotated[
        Path | None, typer.Option(help="where the mail sink keeps messages; default RUN_DIR/mail")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for every outcome")] = 90.0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the outcomes to this JSON file")
    ] = None,
) -> None:
    """Replay a realistic shift against the running stack and show what happened to each."""
    from refdesk_cli.demo import HEADERS, as_json, console_links, rows, run
    from refdesk_cli.webhooks import Secrets

    steps = asyncio.run(
        run(
            urls={"ingest": ingest, "status": status_url},
            bootstrap=kafka,
            mail_dir=mail_dir or run_dir / "mail",
            outbox_dir=run_dir / "outbox",
            secrets=Secrets.from_env(),
            wait_s=timeout,
        )
    )
    table = Table(*HEADERS, title=f"refdesk demo shift, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    for row in rows(steps):
        table.add_row(*row)
    _console().print(table)
    typer.echo("In the console (sign in at /dashboard):")
    for label, url in console_links(steps, status_url):
        typer.echo(f"  {label}: {url}")
    for step in steps:
        if step.detail:
            typer.echo(f"{step.label}: HTTP {step.status} {step.detail}", err=True)
    if json_out is not None:
        json_out.write_text(json.dumps(as_json(steps), indent=2, default=str))
    if not all(s.ok for s in steps):
        raise typer.Exit(1)


@app.command()
def asyncapi(
    check: Annotated[
        bool, typer.Option("--check", help="fail if docs/asyncapi/ differs from the code")
    ] = False,
) -> None:
    """Write docs/asyncapi/<service>.yaml from the services' subscribers."""
    from refdesk_cli.asyncapi import stale, write

    if check:
        differ = stale()
        if differ:
            typer.echo(f"stale: {', '.join(differ)}; run `refdesk asyncapi`", err=True)
            raise typer.Exit(1)
        typer.echo("docs/asyncapi is current")
        return
    for path in write():
        typer.echo(f"wrote {path}")
