"""The staff API's OpenAPI document says how to authenticate, what errors come back and what a
body looks like, so a campus app or script can do what the console does; and declaring the
token changed nothing the API answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from status_fakes import bearer

from services.status.api import StatusIn
from services.status.app import create_app
from services.status.conversations.api import CloseIn, ConvertIn, NoteIn, ReplyIn, TransferIn
from services.status.settings import StatusSettings
from services.status.stats.api import TagsIn
from shared.http import PROBLEM

SCHEME = "staffToken"


@pytest.fixture
def document(settings: StatusSettings) -> dict[str, Any]:
    """The OpenAPI document of an app that is never started."""
    return create_app(settings).openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_the_staff_token_is_a_bearer_scheme_saying_how_to_get_one(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"][SCHEME]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "refdesk staff token" in scheme["description"]


def test_signed_in_operations_declare_the_token_and_open_ones_do_not(
    document: dict[str, Any],
) -> None:
    paths = document["paths"]
    online = paths["/supervisor/online"]["get"]
    assert online["security"] == [{SCHEME: []}]
    assert {"401", "403"} <= set(online["responses"])
    assert online["responses"]["401"]["content"][PROBLEM]["schema"]["required"] == [
        "type",
        "title",
        "status",
    ]
    open_paths = {p for _, p, op in _operations(document) if "security" not in op}
    assert open_paths == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/asyncapi.yaml",
        "/availability",
        "/availability/{department}",
        "/dashboard",  # the page and its sign-in form read the session cookie themselves
        "/dashboard/c/{conversation_id}",
        "/dashboard/login",
        "/dashboard/logout",
    }
    for method, path, operation in _operations(document):
        if "security" in operation:
            assert {"401", "403", "422", "503"} <= set(operation["responses"]), (method, path)


def test_a_reply_lists_every_problem_it_can_answer(document: dict[str, Any]) -> None:
    for prefix in ("/conversations", "/queue"):
        path = f"{prefix}/{{conversation_id}}/claim"
        assert {"404", "409", "413"} <= set(document["paths"][path]["post"]["responses"])
    responses = document["paths"]["/conversations/{conversation_id}/replies"]["post"]["responses"]
    for code in ("401", "403", "404", "408", "409", "413", "422", "503"):
        schema = responses[code]["content"][PROBLEM]["schema"]
        assert {"type", "title", "status", "detail", "field"} <= set(schema["properties"]), code
    assert "Retry-After" in responses["503"]["headers"]
    no_json_422 = [
        (m, p)
        for m, p, op in _operations(document)
        if "application/json" in op["responses"].get("422", {}).get("content", {})
    ]
    assert no_json_422 == []  # FastAPI's own 422 body is not what the app answers


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(document)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (ReplyIn, "/conversations/{conversation_id}/replies"),
        (NoteIn, "/conversations/{conversation_id}/notes"),
        (TransferIn, "/conversations/{conversation_id}/transfer"),
        (CloseIn, "/conversations/{conversation_id}/close"),
        (ConvertIn, "/conversations/{conversation_id}/convert-to-email"),
        (StatusIn, "/staff/{staff_id}/status"),
        (TagsIn, "/conversations/{conversation_id}/tags"),
    ],
)
def test_the_staff_actions_bodies_have_examples_the_models_take(
    document: dict[str, Any], model: type[BaseModel], path: str
) -> None:
    operation = next(op for op in document["paths"][path].values() if "requestBody" in op)
    ref = operation["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][model.__name__]
    assert ref.get("$ref") == f"#/components/schemas/{model.__name__}" or model.__name__ in str(ref)
    assert schema["examples"]
    for example in schema["examples"]:
        model.model_validate(example)


@pytest.mark.parametrize(
    "authorization", ["Basic bWdhcmNpYTpkZXY=", "Bearer", "Bearer   ", "Token dev-mgarcia-token"]
)
async def test_an_authorization_that_is_not_a_bearer_token_is_still_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    answer = await client.get("/staff/me", headers={"Authorization": authorization})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["detail"] == "expected a bearer token"


async def test_a_bearer_token_and_a_console_session_still_sign_in(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/staff/me", headers=bearer("mgarcia"))).json()[
        "staff_id"
    ] == "mgarcia"
    signed_in = await client.post(
        "/dashboard/login", data={"staff_id": "mgarcia", "token": "dev-mgarcia-token"}
    )
    assert signed_in.status_code == 303
    me = await client.get("/staff/me")
    assert me.status_code == 200 and me.json()["staff_id"] == "mgarcia"
    unsafe = await client.post("/shift/heartbeat")
    assert unsafe.status_code == 403 and unsafe.headers["content-type"] == PROBLEM
