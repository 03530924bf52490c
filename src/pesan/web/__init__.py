"""The web app: server-rendered pages at `/`, calling the same services as the API.

`install(app, settings)` adds the pages, their static files, CSRF protection, HTML error
pages for web paths, and the API docs with Swagger UI served from a package (no CDN).
"""

from importlib.util import find_spec
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Scope, Send

from pesan.config import Settings
from pesan.routing import include_flat
from pesan.web import admin, chats, dashboard, pages
from pesan.web.render import STATIC_DIR
from pesan.web.routing import error_page
from pesan.web.session import CsrfMiddleware, is_web_path, signing_secret

SWAGGER_ASSETS = "/static/swagger-ui"


def swagger_ui_files() -> Path:
    """Swagger UI 5 (OpenAPI 3.1) as the swagger-ui-py package ships it; found without
    importing the package, whose adapters are for other frameworks."""
    spec = find_spec("swagger_ui")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install(app: FastAPI, settings: Settings, api_prefix: str) -> None:
    _install_docs(app, api_prefix)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (pages, chats, dashboard, admin):
        include_flat(app.router, module.router)
    _install_error_pages(app)
    app.add_middleware(CsrfMiddleware, secret=signing_secret(settings), on_failure=_csrf_failed)


def _install_docs(app: FastAPI, api_prefix: str) -> None:
    assets = SWAGGER_ASSETS
    app.mount(assets, StaticFiles(directory=swagger_ui_files()), name="swagger-ui")

    @app.get(f"{api_prefix}/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or f"{api_prefix}/openapi.json",
            title="pesan API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
        )


def _install_error_pages(app: FastAPI) -> None:
    """Unknown web paths get a page; the API's handler (problem+json) stays as it was."""
    api_handler = app.exception_handlers[StarletteHTTPException]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if is_web_path(request.url.path) and exc.status_code in (404, 405):
            return error_page(request, exc.status_code, "not_found")
        response: Response = await api_handler(request, exc)  # type: ignore[misc]
        return response

    app.exception_handlers[StarletteHTTPException] = http_error


async def _csrf_failed(scope: Scope, send: Send, reason: Any) -> None:
    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    response = error_page(Request(scope), 403, "csrf_failed")
    await response(scope, no_body, send)
