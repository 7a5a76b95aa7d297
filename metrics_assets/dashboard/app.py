"""The dashboard server (FastAPI): four read-only pages and the offspot box's KPI API.

    /                      index: the pages and the KPI API roots
    /offspot?box=&kind=    the four KPIs by D/W/M/Y, per box and for the fleet
    /storage               bytes per owner over time, this month's GB-days, live vs snapshot
    /probes?product=&window=   most/least viewed, rank changes, daily views around releases
    /events                events per service and type per day, lag distribution, metrics per day
    /offspot/api/..., /offspot/boxes/{box_id}/api/..., /offspot/fleet/api/...
                           the box's KPI API (see kpi_api.py)
    /static/plotly.min.js  the charting library, from the installed plotly wheel

Bearer token: when one is given (``METRICS_API_TOKEN``, the query API's variable), every
request needs ``Authorization: Bearer <token>``, or the cookie that opening any page once with
``?token=<token>`` sets (so a browser can be let in). Without a token the server only starts
on a loopback address and outside production (see ``metrics-assets dashboard``).

CORS: ``OFFSPOT_API_ALLOWED_ORIGINS`` (see :func:`allowed_origins`) lets a box dashboard served
from another origin call the KPI API, as the box's own ``ALLOWED_ORIGINS`` does.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Annotated
from urllib.parse import urlencode

from fastapi import FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.middleware.base import BaseHTTPMiddleware

from metrics_assets import settings
from metrics_assets.dashboard import kpi_api, pages
from metrics_assets.resources.warehouse import Warehouse

TOKEN_COOKIE = "metrics_dashboard_token"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@lru_cache(maxsize=1)
def plotly_js() -> bytes:
    """plotly.min.js as shipped in the installed plotly wheel."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


def allowed_origins() -> list[str]:
    """``OFFSPOT_API_ALLOWED_ORIGINS``: origins (``|``-separated, as the box's own
    ``ALLOWED_ORIGINS``) whose pages may call the dashboard from a browser, e.g. a box
    dashboard served elsewhere; none by default (same origin only)."""
    value = settings.current().offspot_api_allowed_origins
    return [o.strip() for o in value.split("|") if o.strip()] if value else []


def token_required(host: str, token: str | None) -> None:
    """Refuse to serve without a token where others could reach the server."""
    if token:
        return
    if settings.deployment() == settings.PRODUCTION or host not in LOOPBACK:
        raise settings.ConfigurationError(
            f"METRICS_API_TOKEN is not set: the dashboard serves {host} "
            f"({settings.deployment()} deployment) only with a bearer token. Set it, e.g. "
            "`export METRICS_API_TOKEN=$(openssl rand -hex 24)`, or bind 127.0.0.1 locally."
        )


class _BearerToken(BaseHTTPMiddleware):
    def __init__(self, app, token: str):
        super().__init__(app)
        self.token = token.encode()

    def _ok(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.token)

    async def dispatch(self, request: Request, call_next):
        header = request.headers.get("authorization", "")
        bearer = header[7:] if header.lower().startswith("bearer ") else None
        if self._ok(bearer) or self._ok(request.cookies.get(TOKEN_COOKIE)):
            return await call_next(request)
        query_token = request.query_params.get("token")
        if query_token is not None and self._ok(query_token):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + ("?" + urlencode(rest) if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(
                TOKEN_COOKIE, query_token, httponly=True, samesite="strict", secure=request.url.scheme == "https"
            )
            return response
        return JSONResponse(
            {"detail": "missing or wrong bearer token (Authorization: Bearer <METRICS_API_TOKEN>)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )


def create_app(warehouse: Warehouse | None = None, token: str | None = None) -> FastAPI:
    """The dashboard app over ``warehouse`` (default: ``METRICS_WAREHOUSE_URL``'s)."""
    warehouse = warehouse or Warehouse(url=settings.warehouse_url())
    app = FastAPI(
        title="metrics_assets dashboards",
        version="1",
        description="Read-only dashboards per domain, and the offspot box's KPI API.",
    )
    app.state.warehouse = warehouse
    if token:
        app.add_middleware(_BearerToken, token=token)
    origins = allowed_origins()
    if origins:  # added last, so it is outermost and answers preflights before the token check
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_credentials=False, allow_methods=["GET"], allow_headers=["*"]
        )
    for prefix, kind in kpi_api.KPI_API_ROOTS:
        app.include_router(kpi_api.kpi_router(kind), prefix=prefix)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly() -> Response:
        return Response(
            plotly_js(), media_type="application/javascript", headers={"Cache-Control": "public, max-age=86400"}
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return pages.index_page()

    @app.get("/offspot", response_class=HTMLResponse, include_in_schema=False)
    def offspot(box: str | None = None, kind: Annotated[str, Query(pattern=kpi_api.AGG_KIND_PATTERN)] = "D") -> str:
        return pages.offspot_page(warehouse, box, kind)

    @app.get("/storage", response_class=HTMLResponse, include_in_schema=False)
    def storage() -> str:
        return pages.storage_page(warehouse)

    @app.get("/probes", response_class=HTMLResponse, include_in_schema=False)
    def probes(product: str | None = None, window: int | None = None) -> str:
        return pages.probes_page(warehouse, product, window)

    @app.get("/events", response_class=HTMLResponse, include_in_schema=False)
    def events() -> str:
        return pages.events_page(warehouse)

    return app


def serve(host: str = "127.0.0.1", port: int = 8050) -> None:
    import uvicorn

    token = settings.current().metrics_api_token
    token_required(host, token)
    uvicorn.run(create_app(token=token), host=host, port=port, log_level="info")
