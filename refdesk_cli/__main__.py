"""`python -m refdesk_cli` is the `refdesk` command."""

from refdesk_cli.main import app

app(prog_name="refdesk")
