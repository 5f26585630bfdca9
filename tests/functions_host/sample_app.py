"""A small v2 app for the functions host tests: HTTP routes and Event Grid triggers, no durable."""
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

import asyncio
import json
from typing import Any

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

#: Every Event Grid event delivered to ``on_event``/``on_event_fails`` (objects as received).
RECEIVED: list[Any] = []
#: Names of the HTTP functions invoked, in order.
CALLS: list[str] = []


@app.route(route="hello/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    body = {
        "name": req.route_params.get("name"),
        "params": dict(req.params),
        "method": req.method,
        "url": req.url,
        "header": req.headers.get("x-sample"),
        "type": f"{type(req).__module__}.{type(req).__qualname__}",
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="echo", methods=["POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    CALLS.append("echo")
    return func.HttpResponse(
        req.get_body(),
        status_code=201,
        headers={"X-Echo-Length": str(len(req.get_body()))},
        mimetype=req.headers.get("content-type", "application/octet-stream"),
    )


@app.route(route="json", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def parse_json(req: func.HttpRequest) -> func.HttpResponse:
    try:
        doc = req.get_json()
    except ValueError:
        return func.HttpResponse('{"error": "bad json"}', status_code=400)
    return func.HttpResponse(json.dumps({"keys": sorted(doc)}), mimetype="application/json")


@app.route(route="admin/thing", auth_level=func.AuthLevel.ADMIN)
def admin_thing(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin ok")


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("internal detail that must not reach the client")


@app.route(route="text", auth_level=func.AuthLevel.ANONYMOUS)
def text(req: func.HttpRequest) -> str:
    return "plain text"


@app.route(route="nothing", auth_level=func.AuthLevel.ANONYMOUS)
def nothing(req: func.HttpRequest):  # no "-> None": the worker refuses it
    return None


@app.route(route="async/{n:int}", auth_level=func.AuthLevel.ANONYMOUS)
async def async_route(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse(str(int(req.route_params["n"]) * 2))


@app.route(route="async/{word:alpha}", auth_level=func.AuthLevel.ANONYMOUS)
async def async_word(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("word " + req.route_params["word"])


@app.route(route="ctx", auth_level=func.AuthLevel.ANONYMOUS)
def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"function": context.function_name, "id": context.invocation_id})
    )


@app.route(route="cookie", auth_level=func.AuthLevel.ANONYMOUS)
def cookie(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok", headers={"Set-Cookie": "session=abc; Path=/; HttpOnly"})


@app.route(route="files/{*path}", auth_level=func.AuthLevel.ANONYMOUS)
def files(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params.get("path", ""))


@app.route(route="opt/{item?}", auth_level=func.AuthLevel.ANONYMOUS)
def optional(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")


@app.route(route="not-json-able", auth_level=func.AuthLevel.ANONYMOUS)
def returns_dict(req: func.HttpRequest):
    return {"a": 1}  # the worker cannot encode a dict for an http output: 500


@app.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    RECEIVED.append(event)


@app.event_grid_trigger(arg_name="event")
def on_event_fails(event: func.EventGridEvent) -> None:
    RECEIVED.append(event)
    if "fail" in (event.subject or ""):
        raise ValueError("cannot handle this event")
