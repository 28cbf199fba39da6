"""The `refdesk` command line."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="refdesk: the virtual reference desk's event-driven back end", no_args_is_help=True)


@app.command()
def up(run_dir: Path = typer.Option(Path("run"), help="folder for data, logs, mail and outboxes")) -> None:
    """Start Kafka, the mail sink and the four services (what `make run` runs)."""
    from refdesk_cli.up import up as _up

    _up(run_dir)


@app.command()
def version() -> None:
    """Print refdesk's version."""
    from importlib.metadata import version as _v

    typer.echo(_v("refdesk"))
