"""Index function_app.py as the Azure Functions Python worker does; anything it would reject fails.

The worker calls ``app.get_functions()``, sends every function's ``get_raw_bindings()`` (the
function.json the host reads) and loads each function with ``Registry.add_indexed_function``
(reproduced by :func:`local.functions_host.load_function`). On top of that the host needs exactly
one trigger per function, case-insensitively unique names, valid binding directions and types,
and unambiguous HTTP routes; the Durable SDK needs ``async def`` client functions and generator
orchestrators. The checks are generic: they validate whatever ``function_app.py`` contains, and
deliberately broken apps below prove that each check can fail.
"""
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

import importlib
import inspect
import json
import re
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.functions import meta

from local.functions_host import (
    RouteTemplate,
    WorkerLoadError,
    get_converter,
    index_functions,
    load_function,
)

REPO = Path(__file__).resolve().parents[2]
#: Binding types the extension bundle 4.x serves through the worker's generic binding.
BUNDLE_GENERIC_TYPES = {"table", "signalR", "signalRConnectionInfo", "sendGrid", "twilioSms"}
_ALL_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"})
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")
_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _route_prefix() -> str:
    host_json = REPO / "host.json"
    if host_json.exists():
        http = json.loads(host_json.read_text()).get("extensions", {}).get("http", {})
        return str(http.get("routePrefix", "api"))
    return "api"


def _is_trigger(binding_type: str) -> bool:
    converter = meta.get_binding_registry().get(binding_type)
    if converter is not None:
        return bool(converter.has_trigger_support())
    return binding_type.endswith("Trigger")


def _binding_problems(name: str, raw: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for binding in raw:
        btype, bname, direction = binding.get("type"), binding.get("name"), binding.get("direction")
        if not isinstance(btype, str) or not btype:
            problems.append(f"{name}: binding without a type: {binding}")
            continue
        known = meta.get_binding_registry().get(btype) is not None
        if not known and btype not in BUNDLE_GENERIC_TYPES:
            problems.append(f"{name}: binding type {btype!r} is not served by any known extension")
        if not isinstance(bname, str) or not (bname == "$return" or _ARG.match(bname)):
            problems.append(f"{name}: invalid binding name {bname!r}")
        elif bname.lower() in seen:
            problems.append(f"{name}: binding name {bname!r} is used twice")
        else:
            seen.add(bname.lower())
        if direction not in ("IN", "OUT"):
            problems.append(f"{name}: binding {bname!r} has direction {direction!r} (IN/OUT only)")
        if _is_trigger(btype) and direction != "IN":
            problems.append(f"{name}: trigger {bname!r} must have direction IN")
        if bname == "$return" and direction != "OUT":
            problems.append(f"{name}: $return must have direction OUT")
    return problems


def indexing_problems(app: Any) -> list[str]:
    """Everything the Functions host / Python worker / Durable SDK would reject in ``app``."""
    try:
        functions = index_functions(app)
    except Exception as exc:  # get_functions() itself refuses the app
        return [f"app.get_functions() failed: {exc}"]
    problems: list[str] = []
    names: dict[str, str] = {}
    routes: list[tuple[str, RouteTemplate, frozenset[str]]] = []
    prefix = _route_prefix()
    for function in functions:
        name = str(function.get_function_name())
        if not _NAME.match(name):
            problems.append(f"{name!r}: not a valid Functions host function name")
        if name.lower() in names:
            problems.append(
                f"{name}: same name as {names[name.lower()]} (names are case-insensitive)"
            )
        names[name.lower()] = name
        raw = [json.loads(b) for b in function.get_raw_bindings()]
        document = json.loads(function.get_function_json())
        if document.get("bindings") != raw or document.get("scriptFile") != "function_app.py":
            problems.append(f"{name}: function.json disagrees with the raw bindings")
        triggers = [b for b in raw if isinstance(b.get("type"), str) and _is_trigger(b["type"])]
        if len(triggers) != 1:
            problems.append(f"{name}: has {len(triggers)} triggers, needs exactly one")
        trigger = function.get_trigger()
        if triggers and (trigger.type, trigger.name) != (triggers[0]["type"], triggers[0]["name"]):
            problems.append(f"{name}: get_trigger() is not the trigger binding")
        problems.extend(_binding_problems(name, raw))
        try:
            load_function(function)
        except WorkerLoadError as exc:
            problems.append(str(exc))
        user_function = function.get_user_function()
        if any(b.get("type") == "durableClient" for b in raw):
            original = getattr(user_function, "client_function", user_function)
            if not inspect.iscoroutinefunction(original):
                problems.append(f"{name}: a durable client function must be 'async def'")
        if trigger.type == "orchestrationTrigger":
            generator = getattr(user_function, "orchestrator_function", None)
            if not inspect.isgeneratorfunction(generator):
                problems.append(f"{name}: an orchestrator must be a generator function (yield)")
        if trigger.type == "httpTrigger":
            spec = triggers[0] if triggers else {}
            if str(spec.get("authLevel", "")).lower() not in ("anonymous", "function", "admin"):
                problems.append(f"{name}: invalid authLevel {spec.get('authLevel')!r}")
            methods = spec.get("methods") or sorted(_ALL_METHODS)
            try:
                template = RouteTemplate(f"{prefix}/{spec.get('route') or name}")
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                continue
            routes.append((name, template, frozenset(str(m).upper() for m in methods)))
    for i, (first, template, methods) in enumerate(routes):
        for second, other, other_methods in routes[i + 1 :]:
            if template.shape == other.shape and methods & other_methods:
                problems.append(
                    f"{first} and {second} both serve {template.template!r} for "
                    f"{sorted(methods & other_methods)}"
                )
    return problems


def test_function_app_indexes_like_the_python_worker() -> None:
    """function_app.py has no function the Functions host or Python worker would refuse to load."""
    module = importlib.import_module("function_app")
    assert isinstance(module.app, func.FunctionApp | df.DFApp)
    assert indexing_problems(module.app) == []


def test_function_app_bindings_are_ones_the_local_hosts_can_serve() -> None:
    """Every trigger in function_app.py is served locally (HTTP/Event Grid here, durable in B)."""
    module = importlib.import_module("function_app")
    served = {"httpTrigger", "eventGridTrigger", "orchestrationTrigger", "activityTrigger"}
    for function in index_functions(module.app):
        assert function.get_trigger().type in served, function.get_function_name()
        for raw in function.get_raw_bindings():
            assert get_converter(json.loads(raw)["type"]) is not None


def _duplicate_names() -> Any:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.function_name("same")
    @app.route(route="a")
    def a(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("a")

    @app.function_name("same")
    @app.route(route="b")
    def b(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("b")

    return app


def _names_differing_in_case() -> Any:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.function_name("Start")
    @app.route(route="a")
    def a(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("a")

    @app.function_name("start")
    @app.route(route="b")
    def b(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("b")

    return app


def _duplicate_route() -> Any:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="updates/{id}", methods=["GET"])
    def a(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("a")

    @app.route(route="Updates/{instanceId}")
    def b(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("b")

    return app


def _sync_durable_client() -> Any:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="start")
    @app.durable_client_input(client_name="client")
    def start(req: func.HttpRequest, client: Any) -> func.HttpResponse:
        return func.HttpResponse("x")

    return app


def _orchestrator_without_yield() -> Any:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.orchestration_trigger(context_name="context")
    def orch(context: df.DurableOrchestrationContext) -> Any:
        return "no yield"

    return app


def _generic_activity_annotation() -> Any:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.activity_trigger(input_name="payload")
    def act(payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    return app


def _parameter_mismatch() -> Any:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.event_grid_trigger(arg_name="event")
    def on_event(evt: func.EventGridEvent) -> None:
        return None

    return app


def _no_trigger() -> Any:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.durable_client_input(client_name="client")
    async def lonely(client: Any) -> None:
        return None

    return app


def _bad_route_and_unknown_binding() -> Any:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="x/{id:banana}")
    @app.generic_input_binding(arg_name="thing", type="madeUpBinding")
    def a(req: func.HttpRequest, thing: str) -> func.HttpResponse:
        return func.HttpResponse("a")

    return app


def _http_returning_none() -> Any:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="x")
    def a(req: func.HttpRequest) -> None:
        return None

    return app


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (_duplicate_names, "does not have a unique function name"),
        (_names_differing_in_case, "names are case-insensitive"),
        (_duplicate_route, "both serve"),
        (_sync_durable_client, "must be 'async def'"),
        (_orchestrator_without_yield, "must be a generator function"),
        (_generic_activity_annotation, "invalid non-type annotation dict[str, typing.Any]"),
        (_parameter_mismatch, "declared in Python but not in function.json"),
        (_no_trigger, "does not have a trigger"),
        (_bad_route_and_unknown_binding, "'banana' could not be resolved"),
        (_bad_route_and_unknown_binding, "'madeUpBinding' is not served"),
        (_http_returning_none, 'Python return annotation "NoneType" does not match'),
    ],
)
def test_broken_apps_are_caught(build: Any, expected: str) -> None:
    """Each deliberately broken app is reported with a message naming the mistake."""
    problems = indexing_problems(build())
    assert any(expected in p for p in problems), problems


def test_a_correct_app_reports_nothing(load_app: Any) -> None:
    """The checks pass on small apps that follow every rule (no false alarms)."""
    assert indexing_problems(load_app("durable_sample_app.py").app) == []
    assert indexing_problems(load_app("sample_app.py").app) == []
