"""Every route of the statistics: the reports API, the tag edit and the reports page."""

from __future__ import annotations

from fastapi import APIRouter

from services.status.stats import api, page

router = APIRouter()
router.include_router(api.router)
router.include_router(page.router)
