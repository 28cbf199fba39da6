"""The KRaft cluster id given to Kafka's storage tool on the command line."""

from __future__ import annotations

import base64
import uuid

from refdesk_cli import kafka_local


def test_cluster_id_never_starts_with_a_dash(monkeypatch) -> None:
    # A UUID whose base64url form starts with "-" (0xf8...), then an ordinary one.
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))
    plain = uuid.UUID(int=7)
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    draws = iter([dashed, plain])
    monkeypatch.setattr(kafka_local.uuid, "uuid4", lambda: next(draws))
    cid = kafka_local._cluster_id()
    assert cid == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
    assert len(cid) == 22


def test_cluster_ids_are_22_base64url_characters() -> None:
    for _ in range(500):
        cid = kafka_local._cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert uuid.UUID(bytes=base64.urlsafe_b64decode(cid + "=="))
