"""`python -m services.ingest` runs ingest; refused settings exit 2 naming their variables."""

from services.ingest.app import main
from services.ingest.settings import IngestSettings
from shared.service import start

start("ingest", main, IngestSettings)
