"""Liveness and metrics: `/healthz` (database reachable, job counts) and `/metrics` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ghsync import __version__
from ghsync.entrypoints.api.deps import container_of
from ghsync.entrypoints.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(request: Request) -> Response:
    container = container_of(request)
    try:
        with container.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        jobs = container.queue.counts()
        body = Health(status="ok", database="ok", version=__version__, jobs=jobs)
        return JSONResponse(body.model_dump(), status_code=200)
    except SQLAlchemyError as exc:
        body = Health(
            status="degraded", database=f"unreachable: {type(exc).__name__}", version=__version__, jobs={}
        )
        return JSONResponse(body.model_dump(), status_code=503)


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
