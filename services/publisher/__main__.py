"""`python -m services.publisher` runs the publisher service; refused settings exit 2 naming
their variables."""

from services.publisher.app import main
from services.publisher.settings import PublisherSettings
from shared.service import start

start("publisher", main, PublisherSettings)
