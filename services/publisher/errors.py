"""Domain errors of the publisher; routes map them to problem+json."""

from __future__ import annotations


class PublisherError(Exception):
    """Base: `status` is the HTTP status a route answers with, `title` its short title."""

    status: int = 400
    title: str = "Bad request"

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(detail or self.title)


class Unauthenticated(PublisherError):
    status = 401
    title = "Not signed in"


class NotFound(PublisherError):
    status = 404
    title = "Not found"


class InvalidInput(PublisherError):
    status = 422
    title = "Invalid request"
