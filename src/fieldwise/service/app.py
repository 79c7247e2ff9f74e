"""``create_app``: the FastAPI application behind ``fieldwise serve``.

Why one route per registered schema (``POST /v1/extract/Invoice``) rather than one route
with a path parameter: each route then has its own response model, so the OpenAPI
document types ``data`` exactly. A hidden catch-all after them answers 404 for unknown
names. Every route declares every error status it can return (``errors.responses``), and
every error, from any layer, has the body ``{"error": {"type", "message", "field"?}}``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as DependsParam
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from .. import __version__
from ..document import Document
from ..exceptions import ConfigurationError, FieldwiseError, register_secret
from ..extractor import Extractor
from ..loop import usage_sink
from ..result import Result, Usage
from ..schema import compile_schema
from . import errors
from .access import AccessLogMiddleware, record_of
from .auth import TOKEN_ENV, AuthMiddleware, TokenGuard, bearer_dependency, clean_token
from .entry import ServiceApp
from .errors import CLIENT_CLOSED, ServiceError, error_json, map_exception
from .health import ReadinessProbe
from .limits import BodyLimitMiddleware, UpstreamLimiter
from .models import (
    MAX_SEED,
    ExtractRequest,
    Health,
    Ready,
    SchemaInfo,
    SchemaList,
    extraction_model,
    render,
)
from .shortcut import JSON_TYPE, ExtractShortcut
from .uploads import OPENAPI_REQUEST_BODY, read_upload

MiB = 1024 * 1024
_UPLOAD_PATH = re.compile(r"/v1/extract/[^/]+/file/?")
#: ``{name}`` of ``GET /v1/schemas/{name}``, for the OpenAPI document
SCHEMA_NAME_PARAMETER = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "title": "Name"},
    "description": "a registered schema's name",
}


def create_app(
    schemas: Sequence[type[BaseModel]] | Mapping[str, type[BaseModel]],
    extractor: Extractor | None = None,
    *,
    token: str | None = None,
    max_body_bytes: int = 1 * MiB,
    max_upload_bytes: int = 20 * MiB,
    max_concurrency: int = 32,
    queue_timeout: float = 10.0,
    request_timeout: float = 120.0,
    ready_ttl: float = 5.0,
    docs: bool = True,
) -> FastAPI:
    """Build the service for ``schemas`` (model classes, or ``{name: class}``).

    ``extractor``: the configured ``Extractor`` (one is made from the environment when
    omitted, and then closed with the app). ``token``: the bearer token clients must send;
    ``None`` reads ``FIELDWISE_SERVICE_TOKEN``, ``""`` turns authentication off; surrounding
    whitespace is dropped, and one no client could send (whitespace or a control character
    inside, or only whitespace) is a ``ConfigurationError``.
    ``max_body_bytes`` caps JSON bodies, ``max_upload_bytes`` file uploads (413 past
    them); ``max_concurrency`` extractions run at once, a request waits at most
    ``queue_timeout`` seconds for a slot (then 429) and an extraction at most
    ``request_timeout`` seconds (then 504). ``docs=False`` serves neither the OpenAPI
    document (``/openapi.json``) nor its pages (``/docs``, ``/redoc``), which are public
    otherwise, token or not; ``app.openapi()`` still builds the document in-process.
    """
    registered = _registry(schemas)
    if token is None:
        token = clean_token(os.environ.get(TOKEN_ENV, ""), TOKEN_ENV)
    else:
        token = clean_token(token, "token=")
    register_secret(token)
    owns_extractor = extractor is None
    active = extractor if extractor is not None else Extractor()
    limiter = UpstreamLimiter(max_concurrency, queue_timeout)
    probe = ReadinessProbe(active, ttl=ready_ttl)
    guard = TokenGuard(token) if token else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owns_extractor:
                await active.aclose()

    app = ServiceApp(
        title="fieldwise",
        version=__version__,
        description="Structured extraction: text or a document in, a validated object out.",
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    _install_error_handlers(app)

    protected: list[DependsParam] = []
    common = [413, 500]
    if guard is not None:
        common.append(401)
        protected = [Depends(bearer_dependency(guard))]

    async def extract(
        scope: Scope,
        name: str,
        data: str | Document,
        instructions: str | None,
        seed: int | None,
    ) -> Response:
        record = record_of(scope)
        if record is not None:
            record.schema = name
        # what the calls cost, told as each ends: a timeout cancels the extraction, and no
        # error is left to carry what its earlier attempts were paid for
        spent: list[Usage] = []
        told = usage_sink.set(spent.append)
        try:
            async with limiter.slot():
                # asyncio's timeout, not anyio's cancel scope: ~1 µs against ~8 here
                deadline = asyncio.timeout(request_timeout)
                try:
                    async with deadline:
                        result: Result[Any] = await active.arun(
                            data, registered[name], instructions=instructions, seed=seed
                        )
                except TimeoutError:
                    if not deadline.expired():
                        raise
                    if record is not None and spent:
                        record.usage = sum(spent[1:], spent[0])
                        record.cost = record.usage.cost
                    raise ServiceError(
                        504, "timeout", f"The extraction took longer than {request_timeout:g} s."
                    ) from None
        except Exception as exc:
            usage = getattr(exc, "usage", None)
            if record is not None and isinstance(usage, Usage):
                record.usage, record.cost = usage, usage.cost
            raise
        finally:
            usage_sink.reset(told)
        if record is not None:
            record.usage, record.cost = result.usage, result.cost
            record.cached, record.attempts = result.cached, result.attempts
        return Response(render(response_models[name], result), media_type="application/json")

    async def extract_valid(scope: Scope, name: str, body: ExtractRequest) -> Response:
        try:
            return await extract(scope, name, body.text, body.instructions, body.seed)
        except (ServiceError, FieldwiseError) as exc:  # as the app's handlers answer them
            return _error_response(scope, map_exception(exc))

    def limit_for(path: str) -> int:
        return max_upload_bytes if _UPLOAD_PATH.fullmatch(path) else max_body_bytes

    # Added innermost first: access log (outermost) → token → size caps → the JSON
    # extraction shortcut → the app. The token before the caps: a client without it is
    # told nothing, not even how large a body may be.
    paths = {f"/v1/extract/{name}": name for name in registered}
    app.add_middleware(ExtractShortcut, paths=paths, extract=extract_valid)
    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    if guard is not None:
        app.add_middleware(AuthMiddleware, guard=guard)
    app.add_middleware(AccessLogMiddleware)

    # Reading a document is CPU work in a thread (a long PDF takes seconds): a few at a
    # time, whatever the number of uploads, so that they cannot starve everything else.
    readers = anyio.CapacityLimiter(min(max_concurrency, max(2, os.cpu_count() or 2)))

    async def load_document(request: Request) -> tuple[Document, str | None, int | None]:
        upload = await read_upload(request)
        seed = _form_seed(upload.fields.get("seed"))
        with anyio.move_on_after(request_timeout) as deadline:
            # Waiting for a reader can be cancelled (past its deadline the request gives up
            # without reading); a read under way cannot: a thread cannot be stopped, and
            # an abandoned one would go on unseen and uncounted while others start.
            document = await anyio.to_thread.run_sync(
                lambda: Document.from_bytes(
                    upload.data, name=upload.filename, media_type=upload.media_type
                ),
                abandon_on_cancel=False,
                limiter=readers,
            )
        # cancel_called, not cancelled_caught: a read that outlasted the deadline ends with
        # nothing left to cancel
        if deadline.cancel_called:
            raise ServiceError(504, "timeout", "Reading the document took too long.")
        return document, upload.fields.get("instructions"), seed

    # -- schemas ---------------------------------------------------------------------------

    infos = {
        name: SchemaInfo.model_validate({"name": name, "schema": compile_schema(model).schema})
        for name, model in registered.items()
    }
    response_models = {name: extraction_model(name, model) for name, model in registered.items()}

    @app.get(
        "/v1/schemas",
        response_model=SchemaList,
        dependencies=protected,
        responses=errors.responses(*common),
        tags=["schemas"],
        summary="The registered schemas and their strict JSON schemas",
    )
    async def list_schemas() -> SchemaList:
        return SchemaList(schemas=list(infos.values()))

    # The name is read from the request, not declared as a parameter: FastAPI declares a
    # 422 of its own (HTTPValidationError) for any route with parameters, and this one
    # never answers 422 (any text is a name: a known one, or a 404).
    @app.get(
        "/v1/schemas/{name}",
        response_model=SchemaInfo,
        dependencies=protected,
        responses=errors.responses(*common, 404),
        tags=["schemas"],
        summary="One registered schema",
        openapi_extra={"parameters": [SCHEMA_NAME_PARAMETER]},
    )
    async def get_schema(request: Request) -> SchemaInfo:
        name: str = request.path_params["name"]
        if name not in infos:
            raise _unknown_schema(name, registered)
        return infos[name]

    # -- extraction, one pair of routes per schema -------------------------------------------

    extract_errors = errors.responses(*common, 400, 415, 422, 429, 502, 504)
    for name, model in registered.items():
        doc = (model.__doc__ or "").strip()
        app.post(
            f"/v1/extract/{name}",
            response_model=response_models[name],
            dependencies=protected,
            responses=extract_errors,
            tags=["extract"],
            operation_id=f"extract_{name}",
            summary=f"Extract a {name} from text",
            description=doc,
        )(_json_route(name, extract))
        app.post(
            f"/v1/extract/{name}/file",
            response_model=response_models[name],
            dependencies=protected,
            responses=extract_errors,
            tags=["extract"],
            operation_id=f"extract_{name}_file",
            summary=f"Extract a {name} from an uploaded document",
            description=doc,
            openapi_extra={"requestBody": OPENAPI_REQUEST_BODY},
        )(_file_route(name, extract, load_document))

    @app.post("/v1/extract/{name}", include_in_schema=False, dependencies=protected)
    @app.post("/v1/extract/{name}/file", include_in_schema=False, dependencies=protected)
    async def unknown_schema(name: str) -> Response:
        raise _unknown_schema(name, registered)

    # -- probes ----------------------------------------------------------------------------

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["probes"],
        summary="Liveness",
        responses=errors.responses(413, 500),
    )
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Ready,
        tags=["probes"],
        summary="Readiness: the model endpoint answers and accepts the key",
        responses=errors.responses(413, 500, 503),
    )
    async def readyz() -> Response:
        problem = await probe.problem()
        if problem is not None:
            return error_json(ServiceError(503, "not_ready", problem))
        return JSONResponse(Ready(status="ready", model=active.model).model_dump())

    app.state.fieldwise_limiter = limiter
    app.state.fieldwise_probe = probe
    return app


Extract = Callable[
    [Scope, str, "str | Document", "str | None", "int | None"], Coroutine[Any, Any, Response]
]
LoadDocument = Callable[[Request], Coroutine[Any, Any, "tuple[Document, str | None, int | None]"]]


def _json_route(name: str, extract: Extract) -> Callable[..., Coroutine[Any, Any, Response]]:
    async def route(body: ExtractRequest, request: Request) -> Response:
        return await extract(request.scope, name, body.text, body.instructions, body.seed)

    route.__name__ = f"extract_{name}"
    return route


def _file_route(
    name: str, extract: Extract, load: LoadDocument
) -> Callable[..., Coroutine[Any, Any, Response]]:
    async def route(request: Request) -> Response:
        record = record_of(request.scope)
        if record is not None:  # logged with its schema when the upload is refused too
            record.schema = name
        document, instructions, seed = await load(request)
        return await extract(request.scope, name, document, instructions, seed)

    route.__name__ = f"extract_{name}_file"
    return route


def _registry(
    schemas: Sequence[type[BaseModel]] | Mapping[str, type[BaseModel]],
) -> dict[str, type[BaseModel]]:
    items = (
        list(schemas.items())
        if isinstance(schemas, Mapping)
        else [(model.__name__, model) for model in schemas]
    )
    registered: dict[str, type[BaseModel]] = {}
    for name, model in items:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ConfigurationError(f"schema {name!r}: {model!r} is not a pydantic model class.")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ConfigurationError(f"schema name {name!r}: use letters, digits, _ and - only.")
        if name in registered and registered[name] is not model:
            raise ConfigurationError(
                f"two schemas are named {name!r}; register them as {{name: class}}."
            )
        registered[name] = model
    if not registered:
        raise ConfigurationError("create_app() needs at least one schema.")
    return registered


def _unknown_schema(name: str, registered: Mapping[str, type[BaseModel]]) -> ServiceError:
    known = ", ".join(sorted(registered))
    return ServiceError(404, "unknown_schema", f"No schema named {name!r}. Registered: {known}.")


def _form_seed(value: str | None) -> int | None:
    """The ``seed`` form field: plain decimal digits (a form carries every value as text)."""
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{1,16}", value) or int(value) > MAX_SEED:
        raise ServiceError(
            422, "validation_error", f"seed: an integer from 0 to {MAX_SEED}", field="seed"
        )
    return int(value)


def _error_response(scope: Scope, error: ServiceError) -> Response:
    record = record_of(scope)
    if record is not None:
        record.error = error.type
    return error_json(error)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error, whichever layer raised it, as ``{"error": {...}}``; one mapping."""

    async def on_service_error(request: Request, exc: Exception) -> Response:
        error = map_exception(exc)
        if error.status == CLIENT_CLOSED:  # FastAPI's 400 for a body it could not finish:
            raise exc  # no answer is sent, and the access log records the 499
        return _error_response(request.scope, error)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        content_type = request.headers.get("content-type", "")
        about_body = any(e.get("loc", ("",))[0] == "body" for e in exc.errors())
        json_expected = not about_body or bool(JSON_TYPE.fullmatch(content_type.strip()))
        return _error_response(
            request.scope,
            errors.validation_error(list(exc.errors()), json_expected=json_expected),
        )

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(FieldwiseError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_service_error)
