"""Worker-style indexing: repeatable index_functions; load_function applies the worker's rules."""
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from local.functions_host import WorkerLoadError, index_functions, load_function


def _only(app: Any) -> Any:
    (function,) = index_functions(app)
    return function


def test_index_functions_can_run_repeatedly_next_to_get_functions(sample: ModuleType) -> None:
    """index_functions works any number of times and leaves a plain get_functions() call working."""
    first = [f.get_function_name() for f in index_functions(sample.app)]
    second = [f.get_function_name() for f in index_functions(sample.app)]
    assert first == second
    assert "hello" in first
    assert [f.get_function_name() for f in sample.app.get_functions()] == first
    assert [f.get_function_name() for f in index_functions(sample.app)] == first


def test_durable_functions_load_like_the_worker(load_app: Any) -> None:
    """Orchestrator, activity and async durable-client starters of a DFApp pass worker checks."""
    module = load_app("durable_sample_app.py")
    loaded = {f.get_function_name(): load_function(f) for f in index_functions(module.app)}
    assert loaded["greet"].trigger_type == "orchestrationTrigger"
    assert loaded["greet"].has_return
    assert loaded["say_hello"].return_binding == "activityTrigger"
    starter = loaded["http_start"]
    assert starter.is_async
    assert starter.input_types["client"].converter_binding == "generic"
    assert starter.input_types["req"].converter_binding == "httpTrigger"
    assert starter.return_binding == "http"
    assert [b["type"] for b in starter.bindings_of_type("durableClient")] == ["durableClient"]


def test_python_parameter_missing_from_bindings_is_refused() -> None:
    """A Python parameter with no binding fails with the worker's message."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="x")
    def extra(req: func.HttpRequest, other: str) -> func.HttpResponse:
        return func.HttpResponse("x")

    with pytest.raises(WorkerLoadError, match=r"declared in Python but not in function\.json"):
        load_function(_only(app))


def test_binding_missing_from_python_parameters_is_refused() -> None:
    """A binding whose name is not a Python parameter fails (a client binding without its arg)."""
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="x")
    @app.durable_client_input(client_name="client")
    async def no_client(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("x")

    with pytest.raises(WorkerLoadError, match=r"declared in function\.json but not in Python"):
        load_function(_only(app))


@pytest.mark.parametrize("bad", ["annotation", "return_none", "context"])
def test_wrong_annotations_are_refused(bad: str) -> None:
    """Annotations the binding's converter rejects (param, return, context) fail to load."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    if bad == "annotation":

        @app.route(route="x")
        def f1(req: int) -> func.HttpResponse:
            return func.HttpResponse("x")

    elif bad == "return_none":

        @app.route(route="x")
        def f2(req: func.HttpRequest) -> None:
            return None

    else:

        @app.route(route="x")
        def f3(req: func.HttpRequest, context: str) -> func.HttpResponse:
            return func.HttpResponse("x")

    with pytest.raises(WorkerLoadError, match="cannot load the f"):
        load_function(_only(app))


def test_durable_client_function_shape_is_reported() -> None:
    """A sync durable-client function still loads (the SDK wraps it) but its original is visible."""
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="x")
    @app.durable_client_input(client_name="client")
    def sync_starter(req: func.HttpRequest, client: Any) -> func.HttpResponse:
        return func.HttpResponse("x")

    loaded = load_function(_only(app))
    assert loaded.is_async  # the middleware is async ...
    user_function: Any = loaded.func
    assert not inspect.iscoroutinefunction(user_function.client_function)  # ... the user's is not
