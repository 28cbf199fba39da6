"""Hot reload: keep serving the last good policy, swap in a new one only when it loads."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from services.router.metrics import POLICY_REFUSED

from .engine import Policy
from .errors import PolicyError
from .loader import load_policy

log = logging.getLogger(__name__)


class PolicyHolder:
    """Holds the current Policy; reload() on SIGHUP, or run watch() as a task."""

    def __init__(self, path: Path, policy: Policy | None = None) -> None:
        """Load the file now (raising PolicyError if broken) unless a policy is given."""
        self.path = Path(path)
        self._policy = policy if policy is not None else load_policy(self.path)
        self._mtime = self._stat()
        self._refused = False

    @property
    def current(self) -> Policy:
        """The policy to decide with; replaced atomically by reload()."""
        return self._policy

    def _stat(self) -> float | None:
        """The file's mtime, or None when it cannot be read."""
        try:
            return self.path.stat().st_mtime_ns / 1e9
        except OSError:
            return None

    def reload(self) -> bool:
        """Load the file again; on error keep the old policy, log a WARNING, raise the
        refdesk_router_policy_refused gauge until a reload succeeds, and return False."""
        self._mtime = self._stat()
        try:
            policy = load_policy(self.path)
        except PolicyError as exc:
            # the error names policy lines and rule ids only, never patron text
            log.warning("policy reload refused, still serving %s: %s", self._policy.version, exc)
            self._refused = True
            POLICY_REFUSED.set(1)
            return False
        except Exception as exc:  # a fault of the loader's own must not stop reloading
            log.warning(
                "policy reload failed, still serving %s: %s",
                self._policy.version,
                type(exc).__name__,
            )
            self._refused = True
            POLICY_REFUSED.set(1)
            return False
        if policy.version != self._policy.version:
            log.info("policy reloaded: %s -> %s", self._policy.version, policy.version)
        elif self._refused:  # the last word in the log was a refusal: say it is over
            log.warning("policy file loads again, serving %s", policy.version)
        self._refused = False
        POLICY_REFUSED.set(0)
        self._policy = policy
        return True

    async def watch(self, interval: float = 2.0) -> None:
        """Reload when the file's mtime changes; run via asyncio.create_task, cancel to stop.
        A file that cannot be read (moved away, a mount gone) is said once and raises the
        refused gauge until it is back: the router had served its last policy in silence."""
        while True:
            await asyncio.sleep(interval)
            mtime = self._stat()
            if mtime is None:
                if self._mtime is not None:
                    log.warning(
                        "policy file cannot be read, still serving %s: %s",
                        self._policy.version,
                        self.path,
                    )
                    POLICY_REFUSED.set(1)
                    self._refused = True
                    self._mtime = None
            elif mtime != self._mtime:
                self.reload()
