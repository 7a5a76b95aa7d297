"""The REST API of ad hoc lake queries (FastAPI), started by ``metrics-query serve``.

    POST /v0/data_hist/query              {query, retention_minutes}                -> {query_id}
    GET  /v0/data_hist/status/{query_id}                                            -> status (+ error when FAILED)
    POST /v0/data_hist/next               {query_id, paging_token, results_per_page} -> rows + next_paging_token
    DELETE /v0/data_hist/query/{query_id}                                           -> status (CANCELLED)

Every request needs ``Authorization: Bearer $METRICS_API_TOKEN``. Every error is a 4xx with a
JSON body ``{"error": <code>, "detail": <what was wrong>}``: ``invalid_query`` (400, with the
validation ``reason``), ``invalid_request`` / ``page_size_too_large`` / ``invalid_paging_token``
(400), ``unauthorized`` (401), ``unknown_query_id`` (404), ``query_not_finished`` /
``query_failed`` / ``query_cancelled`` / ``query_already_final`` (409), ``result_expired``
(410), ``body_too_large`` (413), ``invalid_request`` (422: a body that does not match the
document: wrong types are refused, never coerced, ``true`` is not 1 and ``"60"`` is not 60;
unknown fields are refused), ``headers_too_large`` (431), ``method_not_allowed`` (405, with
``Allow``). The OpenAPI document at ``/openapi.json`` (and ``/docs``) states exactly what the
server accepts.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from metrics_assets.queries import config, store
from metrics_assets.queries.client import QueryClient
from metrics_assets.queries.validation import MAX_SQL_LENGTH
from metrics_assets.resources.warehouse import Warehouse

_BEARER = HTTPBearer(auto_error=False, description="METRICS_API_TOKEN")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


def _whole_number(value: Any) -> Any:
    """JSON Schema's ``integer``: 60 and 60.0, never ``true`` nor ``"60"``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number (not a string, not a boolean)")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


class SubmitRequest(_Strict):
    query: str = Field(
        description="One SELECT over events_v0 / events_v1 (Trino SQL).",
        min_length=1,
        max_length=MAX_SQL_LENGTH,
        examples=["SELECT servicename, count(*) AS n FROM events_v0 GROUP BY servicename"],
    )
    retention_minutes: WholeNumber = Field(
        default=config.DEFAULT_RETENTION_MINUTES,
        ge=1,
        le=config.MAX_RETENTION_MINUTES,
        description="How long the result is kept after the query finishes (at most 7 days).",
    )


class SubmitResponse(BaseModel):
    query_id: str


class Column(BaseModel):
    name: str
    type: str = Field(
        description="The engine's type; floats say '(NaN and Infinity as null)': non-finite values come back as null."
    )


class StatusResponse(BaseModel):
    query_id: str
    status: Literal["QUEUED", "RUNNING", "FINISHED", "FAILED", "CANCELLED", "EXPIRED"]
    sql: str = Field(description="The SQL as it runs (with the LIMIT applied).")
    retention_minutes: int
    submitted_at: str
    started_at: str | None = None
    finished_at: str | None = None
    row_count: int | None = None
    bytes_scanned: int | None = None
    error: str | None = Field(
        default=None,
        description="Why it FAILED (the engine's error, a timeout, too many rows, its run ended) or was CANCELLED.",
    )
    expires_at: str | None = None
    columns: list[Column] | None = None


class NextRequest(_Strict):
    query_id: str = Field(max_length=100)
    paging_token: str | None = Field(
        default=None, max_length=200, description="From the previous page; none for the first."
    )
    results_per_page: WholeNumber = Field(default=config.DEFAULT_RESULTS_PER_PAGE, ge=1, le=config.MAX_RESULTS_PER_PAGE)


class NextResponse(BaseModel):
    query_id: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    row_count: int | None
    next_paging_token: str | None = Field(description="None on the last page.")


class ErrorBody(BaseModel):
    error: str
    detail: str
    query_id: str | None = None
    reason: str | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 405, 409, 410, 413, 422, 431)
}


def _error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"error": code, "detail": detail, **{k: v for k, v in extra.items() if v is not None}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(status_code=status, content=body, headers=headers)


def create_app(token: str | None = None, warehouse: Warehouse | None = None) -> FastAPI:
    """The app. ``token`` defaults to ``METRICS_API_TOKEN`` and must be set (ConfigurationError
    otherwise); ``warehouse`` to the one of ``METRICS_WAREHOUSE_URL``."""
    token = config.check_token(token) if token is not None else config.api_token()
    client = QueryClient(warehouse)
    app = FastAPI(
        title="metrics_assets historical queries",
        version="0",
        description="Ad hoc SQL over the event lake: submit, poll the status, fetch pages.",
    )

    def authorized(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), token.encode()):
            raise _Unauthorized()

    @app.exception_handler(_Unauthorized)
    def _unauthorized(_request: Request, _exc: _Unauthorized) -> JSONResponse:
        return _error(401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <METRICS_API_TOKEN>)")

    @app.exception_handler(store.QueryError)
    def _query_error(_request: Request, exc: store.QueryError) -> JSONResponse:
        return _error(exc.http_status, exc.code, str(exc), query_id=exc.query_id, reason=getattr(exc, "reason", None))

    @app.exception_handler(RequestValidationError)
    def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            if where == "query" and err.get("type") in ("string_too_long", "string_too_short"):
                long = err.get("type") == "string_too_long"
                return _error(
                    400,
                    "invalid_query",
                    f"the query is longer than {MAX_SQL_LENGTH:,} characters" if long else "the query is empty",
                    reason="too_long" if long else "empty",
                )
            problems.append(f"{where}: {err.get('msg')}")
            if where.endswith("results_per_page") and err.get("type") == "less_than_equal":
                return _error(
                    400, "page_size_too_large", f"results_per_page must be at most {config.MAX_RESULTS_PER_PAGE}"
                )
        return _error(422, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = _error(exc.status_code, code, str(exc.detail))
        for name, value in (exc.headers or {}).items():  # Allow on 405
            response.headers[name] = value
        return response

    @app.exception_handler(RecursionError)
    def _recursion(_request: Request, _exc: RecursionError) -> JSONResponse:
        return _error(400, "invalid_request", "the request is nested too deeply")

    links = {
        "status": {"operationId": "query_status", "parameters": {"query_id": "$response.body#/query_id"}},
        "next": {"operationId": "next_page", "requestBody": {"query_id": "$response.body#/query_id"}},
    }

    @app.post(
        "/v0/data_hist/query",
        response_model=SubmitResponse,
        responses={**_ERRORS, 200: {"description": "Queued", "links": links}},
        dependencies=[Depends(authorized)],
        summary="Submit a query",
        operation_id="submit_query",
    )
    def submit(body: SubmitRequest) -> SubmitResponse:
        return SubmitResponse(query_id=client.submit(body.query, body.retention_minutes))

    @app.get(
        "/v0/data_hist/status/{query_id}",
        response_model=StatusResponse,
        responses=_ERRORS,
        dependencies=[Depends(authorized)],
        summary="Status of a query (with its error when FAILED)",
        operation_id="query_status",
    )
    def status(query_id: str) -> dict[str, Any]:
        return client.status(query_id).to_json()

    @app.post(
        "/v0/data_hist/next",
        response_model=NextResponse,
        responses=_ERRORS,
        dependencies=[Depends(authorized)],
        summary="The next page of a finished query's rows",
        operation_id="next_page",
    )
    def next_page(body: NextRequest) -> dict[str, Any]:
        return client.next(body.query_id, body.paging_token, body.results_per_page)

    @app.delete(
        "/v0/data_hist/query/{query_id}",
        response_model=StatusResponse,
        responses=_ERRORS,
        dependencies=[Depends(authorized)],
        summary="Cancel a QUEUED or RUNNING query (CANCELLED)",
        operation_id="cancel_query",
    )
    def cancel(query_id: str) -> dict[str, Any]:
        return client.cancel(query_id).to_json()

    app.add_middleware(_Limits)
    return app


class _Unauthorized(Exception):
    pass


MAX_BODY_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024


class _Limits:
    """ASGI middleware: a body over ``MAX_BODY_BYTES`` is answered 413 and headers over
    ``MAX_HEADER_BYTES`` 431, both as the API's JSON error, before any route runs. The body is
    counted as it streams, so a chunked body without Content-Length is capped too."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers") or []
        if sum(len(k) + len(v) + 4 for k, v in headers) > MAX_HEADER_BYTES:
            return await _send_error(
                send, 431, "headers_too_large", f"request headers are larger than {MAX_HEADER_BYTES:,} bytes"
            )
        declared = next((v for k, v in headers if k.lower() == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return await _send_error(send, 413, "body_too_large", f"the body is larger than {MAX_BODY_BYTES:,} bytes")
        seen = 0
        chunks = []
        more = True
        while more:  # read the body first (at most MAX_BODY_BYTES), then replay it to the app
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message]), send)
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                return await _send_error(
                    send, 413, "body_too_large", f"the body is larger than {MAX_BODY_BYTES:,} bytes"
                )
            chunks.append(message)
            more = message.get("more_body", False)
        return await self.app(scope, _replay(chunks, receive), send)


def _replay(messages, then=None):
    queue = list(messages)

    async def receive():
        if queue:
            return queue.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _send_error(send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
