"""Department ids have one source, the routing policy: the status service's departments (its
availability API, transfer targets and hand-off macros in macros.yaml) are exactly the
policy's, in the policy's order. A department added to or renamed in the policy fails here
until status's macros follow (services never import each other; this test reads both files).
"""

from __future__ import annotations

import yaml

from services.router.policy import default_policy_path
from services.status.conversations.macros import DEFAULT_FILE, load


def test_status_departments_are_the_policys() -> None:
    policy = yaml.safe_load(default_policy_path().read_text("utf-8"))
    policy_ids = [d["id"] for d in policy["departments"]]
    assert list(load(DEFAULT_FILE).departments) == policy_ids
