"""Domain errors of the router's policy engine."""

from __future__ import annotations


class PolicyError(Exception):
    """The policy file is broken; the message names the file and the line of the problem."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        """Keep the line (1-based) of the first problem for callers that want it."""
        super().__init__(message)
        self.line = line
