"""The router's own view of who is Online, built from the compacted refdesk.presence topic."""

from __future__ import annotations

from shared.events import PresenceChanged, StaffStatus


class PresenceView:
    """Latest status per staff member; the departments with someone Online."""

    def __init__(self) -> None:
        self._staff: dict[str, PresenceChanged] = {}
        self.seen_any = False

    def apply(self, change: PresenceChanged) -> None:
        """Fold one presence event in (later changes win; replays are harmless)."""
        self.seen_any = True
        current = self._staff.get(change.staff_id)
        if current is None or change.changed_at >= current.changed_at:
            self._staff[change.staff_id] = change

    def online_departments(self) -> frozenset[str]:
        """Department ids with at least one staff member Online."""
        online = (p for p in self._staff.values() if p.status is StaffStatus.ONLINE)
        return frozenset(dept for p in online for dept in p.departments)
