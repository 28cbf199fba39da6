"""Baseline (A): the ingest stack's FastAPI + uvicorn setup with an SMS endpoint that only parses.

Same framework, same server configuration (shared.service.serve: one worker, uvloop and
httptools when installed, no access log) and the same form parsing as ingest's /webhooks/sms;
no signature check, no database, no broker. Run: python -m bench.bare_app PORT
"""

from __future__ import annotations

import sys

from fastapi import FastAPI, Request, Response

from shared.service import serve
from shared.settings import CommonSettings


def create_app() -> FastAPI:
    """An app whose SMS endpoint parses the form and answers 202."""
    app = FastAPI(title="bench bare ingest")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/webhooks/sms", status_code=202)
    async def sms(request: Request) -> Response:
        form = await request.form()
        _ = [(k, str(v)) for k, v in form.multi_items()]
        return Response(status_code=202)

    return app


def main() -> None:
    """Serve on the given port until SIGTERM."""
    serve(create_app(), CommonSettings(), port=int(sys.argv[1]))


if __name__ == "__main__":
    main()
