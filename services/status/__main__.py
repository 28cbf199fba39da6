"""`python -m services.status` runs the status service."""

from services.status.app import main

main()
