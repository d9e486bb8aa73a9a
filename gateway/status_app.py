"""The operator status API: is the exchange up, and how far behind is each projection.

``GET /api/v1/health`` answers 200 once every part has started; ``GET /api/v1/status``
shows the engine's sequence and journal head, the ledger's cursor and lag, the last
reconciliation, market-data progress, the oracle's latest accepted prices (labelled
SIMULATED when they come from the embedded publisher) and each background task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from gateway.exchange_service import ExchangeService
from gateway.settings import ServiceSettings


def service(request: Request) -> ExchangeService:
    return request.app.state.service


Service = Annotated[ExchangeService, Depends(service)]


def create_app(
    settings: ServiceSettings, on_start: Callable[[ExchangeService], None] | None = None
) -> FastAPI:
    """The app that runs the service for its lifespan; ``on_start`` adds tasks to the started
    service (the composition root's: demo traffic)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = ExchangeService(settings)
        app.state.service = svc
        await svc.start()
        if on_start is not None:
            on_start(svc)
        try:
            yield
        finally:
            await svc.stop()

    app = FastAPI(title="CX", version="0.1.0", lifespan=lifespan)

    @app.get("/api/v1/health")
    async def health(svc: Service) -> dict[str, Any]:
        return {"status": "ok", "last_seq": svc.engine.last_seq}

    @app.get("/api/v1/status")
    async def status(svc: Service) -> dict[str, Any]:
        return svc.status()

    return app
