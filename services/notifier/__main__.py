"""`python -m services.notifier` runs the notifier; refused settings exit 2 naming their
variables."""

from services.notifier.app import main
from services.notifier.settings import NotifierSettings
from shared.service import start

start("notifier", main, NotifierSettings)
