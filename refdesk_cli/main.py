"""The `refdesk` command line."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from refdesk_cli.staff_cmd import Sessions

T = TypeVar("T")

app = typer.Typer(
    help="refdesk: the virtual reference desk's event-driven back end", no_args_is_help=True
)
policy_app = typer.Typer(
    help="The router's routing policy, locally (no Kafka).", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")
staff_app = typer.Typer(
    help="The status service's staff and their bearer tokens, on its database "
    "(REFDESK_DATABASE_URL; default run/status.db).",
    no_args_is_help=True,
)
app.add_typer(staff_app, name="staff")

DEFAULT_URLS = {
    "ingest": "http://127.0.0.1:8081",
    "router": "http://127.0.0.1:8082",
    "notifier": "http://127.0.0.1:8083",
    "status": "http://127.0.0.1:8084",
    "publisher": "http://127.0.0.1:8085",
}

RunDir = Annotated[Path, typer.Option(help="folder for data, logs, mail and outboxes")]
Kafka = Annotated[str, typer.Option(envvar="REFDESK_KAFKA_BOOTSTRAP", help="Kafka bootstrap")]
_URL_HELP = "base URL; default http://127.0.0.1:${}, else {}"
IngestUrl = Annotated[
    str | None,
    typer.Option("--ingest", help="ingest's " + _URL_HELP.format("REFDESK_INGEST_PORT", 8081)),
]
RouterUrl = Annotated[
    str | None,
    typer.Option("--router", help="router's " + _URL_HELP.format("REFDESK_ROUTER_PORT", 8082)),
]
NotifierUrl = Annotated[
    str | None,
    typer.Option(
        "--notifier", help="notifier's " + _URL_HELP.format("REFDESK_NOTIFIER_PORT", 8083)
    ),
]
StatusUrl = Annotated[
    str | None,
    typer.Option("--status", help="status's " + _URL_HELP.format("REFDESK_STATUS_PORT", 8084)),
]
PublisherUrl = Annotated[
    str | None,
    typer.Option(
        "--publisher", help="publisher's " + _URL_HELP.format("REFDESK_PUBLISHER_PORT", 8085)
    ),
]


def service_url(name: str, given: str | None) -> str:
    """The URL an option gave, else 127.0.0.1 on the service's REFDESK_*_PORT (what `refdesk
    up` starts it on), else its default port."""
    if given:
        return given
    from refdesk_cli.stack import configured_ports

    try:
        port = configured_ports()[name]
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return f"http://127.0.0.1:{port}" if port else DEFAULT_URLS[name]


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
    ingest: IngestUrl = None,
    router: RouterUrl = None,
    notifier: NotifierUrl = None,
    status_url: StatusUrl = None,
    publisher: PublisherUrl = None,
) -> None:
    """Readiness and consumer lag of each service, and staff Online per department."""
    from refdesk_cli.status_cmd import collect

    given = {
        "ingest": ingest,
        "router": router,
        "notifier": notifier,
        "status": status_url,
        "publisher": publisher,
    }
    urls = {name: service_url(name, url) for name, url in given.items()}
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
    ingest: IngestUrl = None,
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
            ingest_url=service_url("ingest", ingest),
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
    ingest: IngestUrl = None,
    status_url: StatusUrl = None,
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

    status_url = service_url("status", status_url)
    steps = asyncio.run(
        run(
            urls={"ingest": service_url("ingest", ingest), "status": status_url},
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


StaffId = Annotated[str, typer.Argument(help="the staff member's id, e.g. dkim")]


def _on_status_database(work: Callable[[Sessions], Awaitable[T]]) -> T:
    """Run a `refdesk staff` action; an error becomes a message and exit code 1 (2: input)."""
    from pydantic import ValidationError

    from refdesk_cli.staff_cmd import DatabaseUnusable, on_status_database
    from services.status.errors import StatusError

    try:
        return on_status_database(work)
    except ValidationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (StatusError, DatabaseUnusable) as exc:
        typer.echo(f"error: {getattr(exc, 'detail', '') or exc}", err=True)
        raise typer.Exit(1) from None


@staff_app.command("add")
def staff_add(
    staff_id: StaffId,
    name: Annotated[str, typer.Option(help="display name")],
    email: Annotated[str, typer.Option(help="email address")],
    department: Annotated[
        list[str] | None, typer.Option(help="a department they answer for (repeat)")
    ] = None,
    campus: Annotated[str | None, typer.Option(help="home campus, e.g. campus-se")] = None,
    role: Annotated[str, typer.Option(help="staff, supervisor or admin")] = "staff",
) -> None:
    """Add a staff member (the first admin, say); then `refdesk staff token` gives them a token."""
    from refdesk_cli import staff_cmd
    from services.status.staff import StaffIn

    def work(sessions: Sessions) -> Awaitable[dict[str, Any]]:
        data = StaffIn(
            id=staff_id,
            name=name,
            email=email,
            departments=department or [],
            campus=campus,
            role=role,
        )
        return staff_cmd.add(sessions, data)

    row = _on_status_database(work)
    typer.echo(f"added {row['id']} ({row['role']}; departments: {', '.join(row['departments'])})")


@staff_app.command("list")
def staff_list() -> None:
    """Every staff member: id, name, role, departments, active."""
    from refdesk_cli import staff_cmd

    rows = _on_status_database(staff_cmd.roster)
    table = Table("id", "name", "role", "departments", "active", title="staff")
    for row in rows:
        table.add_row(
            row["id"], row["name"], row["role"], ", ".join(row["departments"]), str(row["active"])
        )
    _console().print(table)


@staff_app.command("token")
def staff_token(
    staff_id: StaffId,
    label: Annotated[str, typer.Option(help="what the token is for (max 64 characters)")] = "cli",
) -> None:
    """Issue a bearer token to an active staff member; the token alone goes to stdout, once."""
    from refdesk_cli import staff_cmd

    token_id, token = _on_status_database(lambda s: staff_cmd.issue(s, staff_id, label))
    typer.echo(
        f"token {token_id} issued to {staff_id}; it is shown once (only its hash is kept); "
        f"revoke it with `refdesk staff revoke {staff_id} {token_id}`",
        err=True,
    )
    typer.echo(token)


@staff_app.command("tokens")
def staff_tokens(staff_id: StaffId) -> None:
    """A staff member's bearer tokens: id, label, issued, revoked (never the secret)."""
    from refdesk_cli import staff_cmd

    rows = _on_status_database(lambda s: staff_cmd.tokens(s, staff_id))
    table = Table("id", "label", "issued", "revoked", title=f"tokens of {staff_id}")
    for row in rows:
        table.add_row(str(row["id"]), row["label"], row["created_at"], row["revoked_at"] or "-")
    _console().print(table)


@staff_app.command("revoke")
def staff_revoke(
    staff_id: StaffId,
    token_id: Annotated[int, typer.Argument(help="the token's id (`refdesk staff tokens`)")],
) -> None:
    """Revoke one token (and the console sessions signed in with it); the others keep working."""
    from refdesk_cli import staff_cmd

    row = _on_status_database(lambda s: staff_cmd.revoke(s, staff_id, token_id))
    typer.echo(f"token {row['id']} of {staff_id} revoked at {row['revoked_at']}")
    if row.get("signed_off") is True:
        typer.echo(f"{staff_id} has no token left: signed off (Offline)")
    elif row.get("signed_off") is False:
        typer.echo(
            f"{staff_id} has no token left: Offline in the status database, but Kafka could "
            "not be reached to tell routing; the status service republishes presence when it "
            "starts (or set them Offline on the console)",
            err=True,
        )


def _zoned(text: str) -> datetime:
    """An operator's time with its zone (BadParameter for one without, or no time at all)."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is no time such as 2026-12-06T14:00:00Z") from None
    if when.tzinfo is None:
        raise typer.BadParameter("give the time with its zone, e.g. 2026-12-06T14:00:00Z")
    return when


@app.command()
def redrive(
    dlq: Annotated[str, typer.Argument(help="a dead-letter topic, e.g. refdesk.interactions.dlq")],
    kafka: Kafka = "127.0.0.1:9092",
    at: Annotated[
        list[str] | None,
        typer.Option(
            "--at", help="the original's PARTITION:OFFSET, as the ERROR log names it (repeat)"
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="only letters that failed at or after this time (with zone)")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="only letters whose reason contains this")
    ] = None,
    execute: Annotated[
        bool, typer.Option("--execute", help="publish them again (default: a dry run)")
    ] = False,
) -> None:
    """Put dead letters back on their topic once their cause is fixed: those this release
    decodes are published again (a consumer that applied one already drops it); the rest stay,
    with the reason. Shows the letters; publishes only with --execute."""
    from refdesk_cli.redrive import RedriveRefused
    from refdesk_cli.redrive import redrive as _redrive

    when = None if since is None else _zoned(since)
    try:
        letters = asyncio.run(
            _redrive(kafka, dlq, at=at or (), since=when, reason=reason, execute=execute)
        )
    except RedriveRefused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    going = sum(item.redrives for item in letters)
    title = f"{dlq}: {len(letters)} chosen, " + (
        f"{going} published again" if execute else f"{going} to redrive (dry run: add --execute)"
    )
    table = Table(
        "dlq offset", "original", "group", "failed at (UTC)", "reason", "redrive", title=title
    )
    for item in letters:
        letter = item.letter
        failed = "-" if letter is None else f"{letter.failed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}"
        table.add_row(
            f"{item.dlq_partition}:{item.dlq_offset}",
            item.origin,
            "-" if letter is None else letter.consumer_group,
            failed,
            "-" if letter is None else letter.reason[:120],
            "yes" if item.redrives else f"no: {item.verdict}",
        )
    _console().print(table)


@app.command("settle-ledger")
def settle_ledger(
    since: Annotated[
        str, typer.Option(help="the notifier's backup time T, with its zone: 2026-12-06T14:00:00Z")
    ],
    database_url: Annotated[
        str,
        typer.Option(
            help="the restored notifier database, e.g. postgresql+asyncpg://...@db/refdesk_notifier"
        ),
    ],
    kafka: Kafka = "127.0.0.1:9092",
    execute: Annotated[
        bool, typer.Option("--execute", help="write the outcomes (default: a dry run)")
    ] = False,
) -> None:
    """After restoring the notifier's database from a backup taken at T, and before rewinding
    its group: write into the send ledger what the broker says was sent or failed after T, so
    the replay sends none of it again. Shows the counts; writes only with --execute."""
    from refdesk_cli.settle import settle_ledger as _settle

    when = _zoned(since)
    settled = asyncio.run(_settle(kafka, database_url, when, execute=execute))
    table = Table(
        "outcomes after T",
        "ledger rows written",
        "outcomes without their command",
        title="send ledger settled" + ("" if execute else " (dry run: nothing written)"),
    )
    table.add_row(str(settled.outcomes), str(settled.written), str(settled.without_command))
    _console().print(table)


@app.command()
def rewind(
    group: Annotated[str, typer.Option(help="the consumer group, e.g. refdesk-status")],
    topic: Annotated[list[str], typer.Option(help="a topic of the group (repeat for more)")],
    to: Annotated[
        str, typer.Option(help="the time, with its zone: 2026-12-06T14:00:00Z (a backup's T)")
    ],
    kafka: Kafka = "127.0.0.1:9092",
    execute: Annotated[
        bool, typer.Option("--execute", help="commit the new offsets (default: a dry run)")
    ] = False,
) -> None:
    """Move a stopped service's consumer group back to a time (after restoring its database):
    each partition to its first record at or after it. Shows the moves; commits them only
    with --execute, and only while no replica of the service runs."""
    from refdesk_cli.rewind import RewindRefused
    from refdesk_cli.rewind import rewind as _rewind

    when = _zoned(to)
    try:
        moves = asyncio.run(_rewind(kafka, group, topic, when, execute=execute))
    except RewindRefused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    title = f"{group} to {when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" + (
        "" if execute else " (dry run: nothing committed; add --execute)"
    )
    table = Table("topic", "partition", "committed", "new offset", title=title)
    for move in moves:
        was = "-" if move.committed is None else str(move.committed)
        table.add_row(move.topic, str(move.partition), was, str(move.target))
    _console().print(table)
