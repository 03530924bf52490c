"""One flat route table: every route of the app is matched directly, none through FastAPI's
included-router nodes, which it walks on every request (pesan.routing)."""

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from pesan import errors
from pesan.app import create_app
from pesan.config import Settings
from pesan.deps import CurrentUser
from pesan.routing import include_flat


def test_the_app_has_no_included_router_nodes(tmp_path) -> None:
    app = create_app(Settings(data_dir=tmp_path), check_schema=False)
    nodes = [r for r in app.routes if hasattr(r, "original_router")]
    assert nodes == []
    paths = {getattr(r, "path", "") for r in app.routes}
    assert "/api/v1/conversations/{conversation_id}/messages" in paths
    assert "/api/v1/bookings" in paths


def test_a_flattened_route_keeps_prefix_tags_responses_and_its_own_settings() -> None:
    feature = APIRouter(prefix="/things", tags=["things"])

    @feature.post("/{thing_id}", status_code=202, responses={404: {"description": "gone"}})
    async def touch(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    app = FastAPI()
    include_flat(app.router, feature, prefix="/api", responses={503: {"description": "down"}})
    operation = app.openapi()["paths"]["/api/things/{thing_id}"]["post"]
    assert operation["tags"] == ["things"]
    assert {"202", "404", "503"} <= set(operation["responses"])
    answer = TestClient(app).post("/api/things/t1")
    assert answer.status_code == 202 and answer.json() == {"id": "t1"}


def test_a_router_that_includes_another_is_refused() -> None:
    outer, inner = APIRouter(), APIRouter()

    @inner.get("/x")
    async def x() -> None:
        return None

    outer.include_router(inner)
    with pytest.raises(TypeError, match="includes another router"):
        include_flat(APIRouter(), outer)


def test_the_signed_in_caller_is_one_dependency_published_as_the_bearer_scheme() -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/mine")
    async def mine(caller: CurrentUser) -> None:
        return None

    document = app.openapi()
    assert list(document["components"]["securitySchemes"]) == ["HTTPBearer"]
    assert document["paths"]["/mine"]["get"]["security"] == [{"HTTPBearer": []}]
    route = next(r for r in app.routes if getattr(r, "path", "") == "/mine")
    assert len(route.dependant.dependencies) == 1
    refused = TestClient(app).get("/mine")
    assert refused.status_code == 401 and refused.json()["code"] == "not_authenticated"
