"""Domain errors of the status service; routes map them to problem+json (see api.py)."""

from __future__ import annotations


class StatusError(Exception):
    """Base: `status` is the HTTP status a route answers with, `title` its short title."""

    status: int = 400
    title: str = "Bad request"

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(detail or self.title)


class Unauthenticated(StatusError):
    status = 401
    title = "Not signed in"


class Forbidden(StatusError):
    status = 403
    title = "Not allowed"


class NotFound(StatusError):
    status = 404
    title = "Not found"


class Conflict(StatusError):
    status = 409
    title = "Conflict"


class Unavailable(StatusError):
    status = 503
    title = "Service unavailable"


class InvalidInput(StatusError):
    status = 422
    title = "Invalid request"
