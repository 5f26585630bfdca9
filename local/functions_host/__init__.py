"""Local functions host: a loopback stand-in for ``func start`` (HTTP routes + Event Grid webhook).

    from local.functions_host import FunctionsHost
    host = FunctionsHost(app, durable_host=durable)   # app: func.FunctionApp / df.DFApp
    base = host.start()                                # http://127.0.0.1:<port>
    ...
    host.stop()

:func:`index_functions` / :func:`load_function` index an app the way the Python worker does
(used by the indexing test and safe to call next to the durable host's own indexing).
"""

from __future__ import annotations

from local.functions_host._eventgrid import EventGridPayloadError, decode_event, parse_events
from local.functions_host._host import DurableHostLike, FunctionsHost
from local.functions_host._indexing import (
    LoadedFunction,
    ParamInfo,
    WorkerLoadError,
    get_converter,
    index_functions,
    load_function,
)
from local.functions_host._routes import RouteTemplate, RouteTemplateError

__all__ = [
    "DurableHostLike",
    "EventGridPayloadError",
    "FunctionsHost",
    "LoadedFunction",
    "ParamInfo",
    "RouteTemplate",
    "RouteTemplateError",
    "WorkerLoadError",
    "decode_event",
    "get_converter",
    "index_functions",
    "load_function",
    "parse_events",
]
