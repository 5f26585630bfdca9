"""Find the orchestrators and activities of a Functions app the way the Python worker indexes it."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

logger = logging.getLogger(__name__)

__all__ = ["ActivityFailure", "FunctionRegistry", "app_functions"]

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"


def app_functions(app: Any) -> list[Any]:
    """``app.get_functions()`` that may be called more than once per app object.

    azure-functions 1.26 remembers the names it has validated on the app and raises "does not
    have a unique function name" on a second call; the local hosts (durable and functions) each
    need the list, so the memo is cleared for this call and restored afterwards. Name uniqueness
    is still validated.
    """
    if not hasattr(app, "functions_bindings"):
        return list(app.get_functions())
    remembered = app.functions_bindings
    app.functions_bindings = None
    try:
        return list(app.get_functions())
    finally:
        # Leave the app as we found it, so a later plain get_functions() still works.
        app.functions_bindings = remembered


class ActivityFailure(Exception):
    """An activity invocation failed; carries the TaskFailed ``Reason`` and ``Details``."""

    def __init__(self, reason: str, details: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class Activity:
    """One registered activity: its user function and the name of its trigger parameter."""

    name: str
    user_function: Callable[..., Any]
    arg_name: str

    def invoke(self, input_text: str | None) -> str:
        """Run the activity like the Python worker does; returns the ``df_dumps`` result text.

        Input is decoded with the worker's ``ActivityTriggerConverter`` (``df_loads``, raw string
        when it is not JSON); the result is encoded with ``df_dumps``. Coroutine functions are
        awaited on a private event loop. Exceptions become :class:`ActivityFailure` with the
        extension's ``Activity function '<name>' failed: <message>`` reason.
        """
        try:
            if input_text is None:
                argument: Any = None
            else:
                datum = meta.Datum(type="json", value=input_text)
                argument = ActivityTriggerConverter.decode(datum, trigger_metadata=None)
            result = self.user_function(**{self.arg_name: argument})
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
            encoded = ActivityTriggerConverter.encode(result, expected_type=None)
            return str(encoded.value)
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            details = json.dumps({"Message": message, "ExceptionType": type(exc).__name__})
            raise ActivityFailure(
                f"Activity function '{self.name}' failed: {message}", details
            ) from exc


async def _await(awaitable: Any) -> Any:
    return await awaitable


@dataclass
class FunctionRegistry:
    """Orchestrator entry points and activities, by registered function name."""

    orchestrators: dict[str, Callable[[str], str]]
    activities: dict[str, Activity]

    @classmethod
    def from_app(cls, app: Any) -> FunctionRegistry:
        orchestrators: dict[str, Callable[[str], str]] = {}
        activities: dict[str, Activity] = {}
        for function in app_functions(app):
            trigger = function.get_trigger()
            if trigger is None:
                continue
            name = str(function.get_function_name())
            if trigger.type == ORCHESTRATION_TRIGGER:
                orchestrators[name] = function.get_user_function()
            elif trigger.type == ACTIVITY_TRIGGER:
                activities[name] = Activity(name, function.get_user_function(), str(trigger.name))
        logger.debug(
            "indexed %d orchestrators and %d activities", len(orchestrators), len(activities)
        )
        return cls(orchestrators, activities)
