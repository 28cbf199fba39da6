"""`refdesk staff` from the operator's shell, on the status database (an outside probe,
finding 1: production had no way to its first admin token): add the first admin, issue a
token printed once and stored as its hash only, list and revoke tokens one by one; unknown
and inactive staff are refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from refdesk_cli.main import app
from services.status.auth import actor_for_token, hash_token
from services.status.models import Presence, Staff, StaffToken, TranscriptAccess
from shared.clock import utcnow
from shared.db import create_engine, migrate, session_factory

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty, migrated status database, named by REFDESK_DATABASE_URL as in production."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'status.db'}"

    async def migrated() -> None:
        engine = create_engine(url)
        await migrate(engine, "status")
        await engine.dispose()

    asyncio.run(migrated())
    monkeypatch.setenv("REFDESK_DATABASE_URL", url)
    monkeypatch.delenv("REFDESK_ENV", raising=False)
    return url


def on(url: str, query: str, token: str | None = None) -> list[object]:
    """Rows of the database: staff ids, token hashes, or the actor a token signs in as."""

    async def read() -> list[object]:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                if query == "staff":
                    return list((await session.execute(select(Staff.id))).scalars())
                if query == "hashes":
                    return list((await session.execute(select(StaffToken.token_hash))).scalars())
                if query == "audit":
                    found = await session.execute(
                        select(
                            TranscriptAccess.staff_id,
                            TranscriptAccess.action,
                            TranscriptAccess.detail,
                        ).order_by(TranscriptAccess.id)
                    )
                    return [tuple(row) for row in found.all()]
                assert token is not None
                return [await actor_for_token(session=session, token=token)]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def add_admin() -> None:
    result = runner.invoke(
        app,
        [
            "staff",
            "add",
            "ehart",
            "--name",
            "Eve Hart",
            "--email",
            "eve.hart@tccd.edu",
            "--department",
            "reference",
            "--role",
            "admin",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "added ehart (admin" in result.stdout


def test_the_first_admin_and_their_token(database: str) -> None:
    add_admin()
    assert on(database, "staff") == ["ehart"]
    issued = runner.invoke(app, ["staff", "token", "ehart", "--label", "first admin"])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()  # the token alone on stdout, for $(refdesk staff token ...)
    assert len(token) >= 32 and "\n" not in token
    assert "shown once" in issued.stderr and token not in issued.stderr
    assert on(database, "hashes") == [hash_token(token)]  # only its hash is kept
    actor = on(database, "actor", token)[0]
    assert getattr(actor, "id", None) == "ehart" and getattr(actor, "role", None) == "admin"


def test_tokens_are_listed_without_secret_and_revoked_one_by_one(database: str) -> None:
    add_admin()
    first = runner.invoke(app, ["staff", "token", "ehart", "--label", "laptop"]).stdout.strip()
    second = runner.invoke(app, ["staff", "token", "ehart", "--label", "desk"]).stdout.strip()
    listed = runner.invoke(app, ["staff", "tokens", "ehart"])
    assert listed.exit_code == 0, listed.output
    assert "laptop" in listed.stdout and "desk" in listed.stdout
    assert first not in listed.stdout and hash_token(first) not in listed.stdout
    revoked = runner.invoke(app, ["staff", "revoke", "ehart", "1"])
    assert revoked.exit_code == 0, revoked.output
    assert "token 1 of ehart revoked" in revoked.stdout
    with pytest.raises(Exception, match="revoked"):
        on(database, "actor", first)
    assert getattr(on(database, "actor", second)[0], "id", None) == "ehart"
    assert runner.invoke(app, ["staff", "revoke", "someone", "2"]).exit_code == 1
    # the operator's changes are in the access log too (the console's and the API's were)
    assert on(database, "audit") == [
        ("refdesk-cli", "staff-add", "ehart"),
        ("refdesk-cli", "token-issue", "ehart token 1"),
        ("refdesk-cli", "token-issue", "ehart token 2"),
        ("refdesk-cli", "token-revoke", "ehart token 1"),
    ]
    assert first not in str(on(database, "audit"))


def test_unknown_and_inactive_staff_get_no_token(database: str) -> None:
    unknown = runner.invoke(app, ["staff", "token", "nobody"])
    assert unknown.exit_code == 1 and "no such staff member" in unknown.stderr
    add_admin()

    async def deactivate() -> None:
        engine = create_engine(database)
        async with session_factory(engine)() as session:
            await session.execute(update(Staff).where(Staff.id == "ehart").values(active=False))
            await session.commit()
        await engine.dispose()

    asyncio.run(deactivate())
    inactive = runner.invoke(app, ["staff", "token", "ehart"])
    assert inactive.exit_code == 1 and "inactive" in inactive.stderr
    assert on(database, "hashes") == []


def test_add_refuses_what_the_admin_api_refuses(database: str) -> None:
    base = ["staff", "add", "bwu", "--name", "Bo Wu", "--email", "bo.wu@tccd.edu"]
    misspelt = runner.invoke(app, [*base, "--department", "refrence"])
    assert misspelt.exit_code == 1 and "unknown refrence" in misspelt.stderr
    assert runner.invoke(app, [*base, "--role", "root"]).exit_code == 2
    assert runner.invoke(app, [*base]).exit_code == 0
    again = runner.invoke(app, [*base])
    assert again.exit_code == 1 and "exists" in again.stderr
    listed = runner.invoke(app, ["staff", "list"])
    assert "bwu" in listed.stdout and "Bo Wu" in listed.stdout


def test_a_database_that_is_not_migrated_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFDESK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(app, ["staff", "token", "dkim"])
    assert result.exit_code == 1
    assert "is it migrated?" in result.stderr and "Traceback" not in result.output


def test_revoking_the_last_token_signs_them_off(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`refdesk staff revoke` of someone's last token left them Online: routing and the
    availability API went on counting an empty desk. Kafka unreachable here: the database
    says Offline, and the command says what is left to do."""
    from refdesk_cli.kafka_local import free_port

    monkeypatch.setenv("REFDESK_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    add_admin()
    runner.invoke(app, ["staff", "token", "ehart", "--label", "laptop"])

    async def online() -> None:
        engine = create_engine(database)
        try:
            async with session_factory(engine)() as session:
                session.add(
                    Presence(staff_id="ehart", status="Online", since=utcnow(), changed_by="ehart")
                )
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(online())  # signed in at the desk
    revoked = runner.invoke(app, ["staff", "revoke", "ehart", "1"])
    assert revoked.exit_code == 0, revoked.output
    assert "has no token left" in revoked.stderr and "republishes presence" in revoked.stderr

    async def presence() -> str | None:
        engine = create_engine(database)
        try:
            async with session_factory(engine)() as session:
                row = await session.get(Presence, "ehart")
                return row.status if row else None
        finally:
            await engine.dispose()

    assert asyncio.run(presence()) == "Offline"
