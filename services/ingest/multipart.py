"""A multipart body must end: Starlette's parser drops a last part whose body never ends.

RFC 2046 section 5.1.1 ends a multipart body with the close delimiter `--<boundary>--`. A body
cut short (a truncated upload, a client that never wrote it) parses without an error in
Starlette, minus its unfinished last part, so a Mailgun post missing its closing boundary
looked like one without its signature fields (401) rather than the broken body it is (400).
"""

from __future__ import annotations

from email.message import Message as MimeHeader

from starlette.types import Message, Receive


def boundary_of(content_type: str) -> bytes | None:
    """The `boundary` parameter of a multipart Content-Type, if it has one."""
    header = MimeHeader()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    return boundary.encode("latin-1") if isinstance(boundary, str) and boundary else None


class CloseDelimiter:
    """An ASGI `receive` that passes the body through and notes whether its close delimiter
    went by (`seen`), looking across chunk edges."""

    def __init__(self, receive: Receive, boundary: bytes) -> None:
        self._receive = receive
        self._marker = b"--" + boundary + b"--"
        self._tail = b""
        self.seen = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and not self.seen:
            window = self._tail + message.get("body", b"")
            self.seen = self._marker in window
            self._tail = window[-(len(self._marker) - 1) :]
        return message
