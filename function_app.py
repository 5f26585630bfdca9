"""Azure Functions entry point: wiring only. Every function here calls into ``shared/``.

HTTP API (function keys): POST/GET /api/updates, GET /api/updates/{instanceId},
POST /api/updates/{instanceId}/cancel, GET /api/health, GET /api/openapi.json.
Event Grid: ``on_image_version_event``. Orchestrators: ``update_orchestrator`` (what triggers
start) and ``catalog_update_orchestrator`` (one per catalog of a multi-catalog update).
Activities: ``prepare_update``, ``submit_update``, ``check_catalog``.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared import api, events, orchestration
from shared.health_api import health_response
from shared.openapi import openapi_document
from shared.runtime import get_settings

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="updates", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_update(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    return await api.start_update_from_http(req, client, get_settings())


@app.route(route="updates", methods=["GET"])
@app.durable_client_input(client_name="client")
async def list_updates(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    return await api.list_updates(client, dict(req.params))


@app.route(route="updates/{instanceId}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def get_update(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    return await api.get_update(client, req.route_params.get("instanceId", ""))


@app.route(route="updates/{instanceId}/cancel", methods=["POST"])
@app.durable_client_input(client_name="client")
async def cancel_update(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    return await api.cancel_update(client, req.route_params.get("instanceId", ""), req)


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    return health_response()


@app.route(route="openapi.json", methods=["GET"])
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return api.json_response(openapi_document())


@app.event_grid_trigger(arg_name="event")
@app.durable_client_input(client_name="client")
async def on_image_version_event(event: func.EventGridEvent, client: Any) -> None:
    await events.handle_event(event, client, get_settings())


@app.orchestration_trigger(context_name="context")
def update_orchestrator(context: df.DurableOrchestrationContext) -> Any:
    return (yield from orchestration.update_orchestrator(context))


@app.orchestration_trigger(context_name="context")
def catalog_update_orchestrator(context: df.DurableOrchestrationContext) -> Any:
    return (yield from orchestration.catalog_update_orchestrator(context))


# Activity parameters are annotated with the bare ``dict``: the Python worker refuses generic
# aliases such as ``dict[str, Any]`` on trigger parameters. ``shared.activities`` is imported
# inside: it pulls in requests and the Key Vault SDK, which the starters never need, so cold
# starts of HTTP and Event Grid triggers stay close to the bare SDK import time.
@app.activity_trigger(input_name="payload")
def prepare_update(payload: dict) -> dict:  # type: ignore[type-arg]
    from shared import activities  # requests + Key Vault SDK: loaded on first activity

    return activities.prepare_update(payload)


@app.activity_trigger(input_name="payload")
def submit_update(payload: dict) -> dict:  # type: ignore[type-arg]
    from shared import activities  # requests + Key Vault SDK: loaded on first activity

    return activities.submit_update(payload)


@app.activity_trigger(input_name="payload")
def check_catalog(payload: dict) -> dict:  # type: ignore[type-arg]
    from shared import activities  # requests + Key Vault SDK: loaded on first activity

    return activities.check_catalog(payload)
