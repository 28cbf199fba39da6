"""Ingest's admin API: the blocklist, behind REFDESK_ADMIN_TOKEN (one bearer check)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, Field

from services.ingest.openapi import problems
from services.ingest.providers.contacts import normalize_email, normalize_phone
from services.ingest.settings import IngestSettings
from services.ingest.store import IngestStore
from shared.http import Problem, require_bearer


class BlockRequest(BaseModel):
    reason: str | None = Field(None, max_length=255)


def build_admin_router(store: IngestStore, settings: IngestSettings) -> APIRouter:
    """PUT and DELETE /admin/blocklist/{contact}: a phone number or email address. The token
    is checked before the body is read (a dependency of the router): without it the answer is
    401 whatever the body."""

    def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        require_bearer(authorization, settings.admin_token)

    router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(admin)])

    @router.put("/blocklist/{contact}", status_code=204, responses=problems(400, 401, 413, 422))
    async def block(contact: str, req: BlockRequest) -> None:
        await store.block(_contact(contact), reason=req.reason, added_by="admin")

    @router.delete("/blocklist/{contact}", status_code=204, responses=problems(401, 404, 422))
    async def unblock(contact: str) -> None:
        if not await store.unblock(_contact(contact)):
            raise Problem(404, "Not found", "not on the blocklist", field="contact")

    return router


def _contact(raw: str) -> str:
    """The contact in its normal form; 422 naming `contact`, as ingest's other refused fields."""
    try:
        return normalize_email(raw) if "@" in raw else normalize_phone(raw)
    except Exception:
        detail = "not a phone number or email address"
        raise Problem(422, "Invalid field", detail, field="contact") from None
