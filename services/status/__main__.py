"""`python -m services.status` runs the status service; refused settings exit 2 naming their
variables."""

from services.status.app import main
from services.status.settings import StatusSettings
from services.status.staff import RosterError
from shared.service import start

start("status", main, StatusSettings, loaded={RosterError: "seed_file"})
