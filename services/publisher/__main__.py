"""`python -m services.publisher` runs the publisher service."""

from services.publisher.app import main

main()
