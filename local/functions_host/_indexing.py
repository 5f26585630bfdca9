"""Index a v2-model app the way the Azure Functions Python worker does.

The worker indexes ``function_app.py`` by calling ``app.get_functions()`` and then, for every
function, ``Registry.add_indexed_function``: it matches the Python signature against the
declared bindings, checks every annotation with the binding's converter from the
``azure.functions`` registry (``str``/``bytes`` parameters use the worker's generic binding) and
records whether the function is async, needs a ``context`` and has a return binding.
:func:`load_function` reproduces those rules, so a function that the real worker would refuse to
load fails here first, with the worker's wording.
"""

from __future__ import annotations

import inspect
import json
import logging
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.functions import meta
from azure.functions._thirdparty import typing_inspect
from azure.functions.decorators.core import BindingDirection

__all__ = [
    "GenericBinding",
    "LoadedFunction",
    "ParamInfo",
    "WorkerLoadError",
    "get_converter",
    "index_functions",
    "load_function",
]

logger = logging.getLogger(__name__)


class WorkerLoadError(RuntimeError):
    """The Python worker would refuse to load this function (same message shape)."""

    def __init__(self, function_name: str, msg: str) -> None:
        super().__init__(f"cannot load the {function_name} function: {msg}")
        self.function_name = function_name


class GenericBinding:
    """The worker's fallback converter for binding types that azure.functions does not know,
    and for parameters annotated ``str``/``bytes`` (e.g. the durable client binding string)."""

    @classmethod
    def has_trigger_support(cls) -> bool:
        return False

    @classmethod
    def has_implicit_output(cls) -> bool:
        return False

    @classmethod
    def check_input_type_annotation(cls, pytype: type) -> bool:
        return issubclass(pytype, (str, bytes))

    @classmethod
    def check_output_type_annotation(cls, pytype: type) -> bool:
        return issubclass(pytype, (str, bytes, bytearray))

    @classmethod
    def decode(cls, data: meta.Datum, *, trigger_metadata: Any) -> Any:
        if data.type in ("string", "bytes", "json"):
            return data.value
        if data.type is None:
            return None
        raise ValueError(
            f"unexpected type of data received for the 'generic' binding: {data.type!r}"
        )

    @classmethod
    def encode(cls, obj: Any, *, expected_type: type | None) -> meta.Datum:
        if isinstance(obj, str):
            return meta.Datum(type="string", value=obj)
        if isinstance(obj, (bytes, bytearray)):
            return meta.Datum(type="bytes", value=bytes(obj))
        raise NotImplementedError


def get_converter(binding_type: str) -> Any:
    """The converter class the worker would use for ``binding_type`` (generic if unknown)."""
    converter = meta.get_binding_registry().get(binding_type)
    return converter if converter is not None else GenericBinding


@dataclass(frozen=True)
class ParamInfo:
    """One bound parameter: its declared binding type and the converter binding actually used."""

    binding_type: str
    converter_binding: str
    pytype: Any


@dataclass(frozen=True)
class LoadedFunction:
    """What the worker records for one indexed function (its ``FunctionInfo``)."""

    name: str
    function: Any  # azure.functions.decorators.function_app.Function
    func: Callable[..., Any]
    trigger_type: str
    trigger_name: str
    is_async: bool
    requires_context: bool
    has_return: bool
    return_binding: str | None
    return_pytype: Any
    input_types: dict[str, ParamInfo] = field(default_factory=dict)
    output_types: dict[str, ParamInfo] = field(default_factory=dict)
    raw_bindings: tuple[dict[str, Any], ...] = ()

    def bindings_of_type(self, binding_type: str) -> list[dict[str, Any]]:
        """Raw binding dicts (as sent to the host) whose ``type`` is ``binding_type``."""
        return [b for b in self.raw_bindings if b.get("type") == binding_type]

    @property
    def trigger(self) -> dict[str, Any]:
        """The raw trigger binding dict."""
        for b in self.raw_bindings:
            if b.get("type") == self.trigger_type and b.get("name") == self.trigger_name:
                return b
        raise LookupError(self.name)  # pragma: no cover - get_functions guarantees it


def index_functions(app: Any) -> list[Any]:
    """``app.get_functions()``, safe to call more than once on the same app object.

    ``FunctionRegister.get_functions`` remembers every name it has seen in
    ``app.functions_bindings`` and raises "does not have a unique function name" on a second
    call, so the durable host and the functions host could not both index one app. The
    attribute is cleared for this call (uniqueness inside the call is still checked) and then
    restored, leaving the app exactly as another indexer expects it.
    """
    saved = getattr(app, "functions_bindings", None)
    app.functions_bindings = None
    try:
        return list(app.get_functions())
    finally:
        app.functions_bindings = saved


def has_implicit_output(binding_type: str) -> bool:
    """Whether the binding returns its value without ``$return`` (orchestration/activity...)."""
    check = getattr(get_converter(binding_type), "has_implicit_output", None)
    return bool(check()) if check is not None else False


def _direction(binding: Any) -> int:
    return int(binding.direction)


def _is_out_annotation(param_anno: Any) -> bool:
    if typing_inspect.is_generic_type(param_anno):
        origin = typing_inspect.get_origin(param_anno)
        if origin is not None:
            return isinstance(origin, type) and origin.__name__ == "Out"
    return isinstance(param_anno, type) and param_anno.__name__ == "Out"


def load_function(function: Any) -> LoadedFunction:
    """Validate ``function`` like the worker's ``Registry.add_indexed_function`` and describe it.

    Raises :class:`WorkerLoadError` where the worker would.
    """
    func = function.get_user_function()
    name = function.get_function_name()
    trigger = function.get_trigger()
    if trigger is None:  # get_functions() already refuses this; keep the message anyway
        raise WorkerLoadError(name, "it has no trigger")
    try:
        sig = inspect.signature(func)
        annotations = typing.get_type_hints(func)
    except Exception as exc:  # NameError for unresolvable string annotations, like the worker
        raise WorkerLoadError(name, f"its annotations cannot be resolved: {exc}") from exc
    params = dict(sig.parameters)

    bound_params: dict[str, Any] = {}
    has_explicit_return = False
    has_implicit_return = False
    return_binding: str | None = None
    explicit_return_set = False
    for binding in function.get_bindings():
        direction = _direction(binding)
        if direction == BindingDirection.INOUT.value:
            raise WorkerLoadError(name, '"inout" bindings are not supported')
        if binding.name == "$return" and direction != BindingDirection.OUT.value:
            raise WorkerLoadError(name, '"$return" binding must have direction set to "out"')
        implicit = has_implicit_output(binding.type)
        if binding.name == "$return":
            has_explicit_return = True
        elif implicit:
            has_implicit_return = True
            bound_params[binding.name] = binding
        else:
            bound_params[binding.name] = binding
        if not explicit_return_set:
            if binding.name == "$return":
                return_binding = binding.type
                explicit_return_set = True
            elif implicit:
                return_binding = binding.type

    requires_context = False
    if "context" in params and "context" not in bound_params:
        requires_context = True
        params.pop("context")
        if "context" in annotations:
            ctx_anno = annotations["context"]
            if not isinstance(ctx_anno, type) or ctx_anno.__name__ != "Context":
                raise WorkerLoadError(
                    name,
                    'the "context" parameter is expected to be of type '
                    f"azure.functions.Context, got {ctx_anno!r}",
                )

    extra_py = set(params) - set(bound_params)
    if extra_py:
        raise WorkerLoadError(
            name,
            "the following parameters are declared in Python but not in function.json: "
            f"{extra_py!r}",
        )
    extra_json = set(bound_params) - set(params)
    if extra_json:
        raise WorkerLoadError(
            name,
            "the following parameters are declared in function.json but not in Python: "
            f"{extra_json!r}",
        )

    input_types: dict[str, ParamInfo] = {}
    output_types: dict[str, ParamInfo] = {}
    for param in params.values():
        binding = bound_params[param.name]
        has_anno = param.name in annotations
        anno = annotations.get(param.name)
        is_param_out = has_anno and _is_out_annotation(anno)
        is_binding_out = _direction(binding) == BindingDirection.OUT.value
        py_type: Any = anno
        if is_param_out:
            args = typing_inspect.get_args(anno)
            if len(args) != 1:
                raise WorkerLoadError(
                    name, f"binding {param.name} has invalid Out annotation {anno!r}"
                )
            py_type = args[0]
        if (
            has_anno
            and not isinstance(py_type, type)
            and not typing_inspect.is_generic_type(py_type)
        ):
            raise WorkerLoadError(
                name, f"binding {param.name} has invalid non-type annotation {anno!r}"
            )
        if is_binding_out and has_anno and not is_param_out:
            raise WorkerLoadError(
                name,
                f'binding {param.name} is declared to have the "out" direction, but its '
                "annotation in Python is not a subclass of azure.functions.Out",
            )
        if not is_binding_out and is_param_out:
            raise WorkerLoadError(
                name,
                f'binding {param.name} is declared to have the "in" direction in '
                "function.json, but its annotation is azure.functions.Out in Python",
            )
        converter_binding = binding.type
        if has_anno and py_type in (str, bytes) and not has_implicit_output(binding.type):
            converter_binding = "generic"
        if has_anno:
            converter = (
                GenericBinding if converter_binding == "generic" else get_converter(binding.type)
            )
            checks = (
                converter.check_output_type_annotation(py_type)
                if is_param_out
                else converter.check_input_type_annotation(py_type)
            )
            if not checks:
                type_name = getattr(py_type, "__name__", repr(py_type))
                raise WorkerLoadError(
                    name,
                    f'type of {param.name} binding in function.json "{binding.type}" does not '
                    f'match its Python annotation "{type_name}"',
                )
        info = ParamInfo(binding.type, converter_binding, py_type)
        if is_binding_out:
            output_types[param.name] = info
        else:
            input_types[param.name] = info

    return_pytype: Any = None
    if has_explicit_return and "return" in annotations:
        return_anno = annotations["return"]
        if typing_inspect.is_generic_type(return_anno) and _is_out_annotation(return_anno):
            raise WorkerLoadError(name, "return annotation should not be azure.functions.Out")
        return_pytype = return_anno
        if not isinstance(return_pytype, type):
            raise WorkerLoadError(name, f"has invalid non-type return annotation {return_pytype!r}")
        assert return_binding is not None
        if not get_converter(return_binding).check_output_type_annotation(return_pytype):
            raise WorkerLoadError(
                name,
                f'Python return annotation "{return_pytype.__name__}" does not match binding '
                f'type "{return_binding}"',
            )
    if has_implicit_return and "return" in annotations:
        return_pytype = annotations["return"]

    raw = tuple(json.loads(b) for b in function.get_raw_bindings())
    return LoadedFunction(
        name=name,
        function=function,
        func=func,
        trigger_type=trigger.type,
        trigger_name=trigger.name,
        is_async=inspect.iscoroutinefunction(func),
        requires_context=requires_context,
        has_return=has_explicit_return or has_implicit_return,
        return_binding=return_binding,
        return_pytype=return_pytype,
        input_types=input_types,
        output_types=output_types,
        raw_bindings=raw,
    )
