"""A small DFApp for the HTTP and Event Grid starters with durable clients."""
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    instance_id = await client.start_new(
        "greet", instance_id=req.params.get("id"), client_input={"name": req.route_params["name"]}
    )
    return client.create_check_status_response(req, instance_id)


@app.route(route="status/{instanceId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def http_status(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    status = await client.get_status(req.route_params["instanceId"])
    if not status:
        return func.HttpResponse('{"error": "not found"}', status_code=404)
    body = {"runtimeStatus": status.runtime_status.value, "output": status.output}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.event_grid_trigger(arg_name="event")
@app.durable_client_input(client_name="client")
async def event_start(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    await client.start_new(
        "greet", instance_id=f"evt-{event.id}", client_input={"name": event.subject}
    )


@app.orchestration_trigger(context_name="context")
def greet(context: df.DurableOrchestrationContext) -> Any:
    data = context.get_input()
    greeting = yield context.call_activity("say_hello", data["name"])
    return {"greeting": greeting}


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}"
