"""ASP.NET-style route templates as the Functions host uses them for HTTP triggers.

Supported: literal segments (matched case-insensitively), ``{name}``, optional ``{name?}``,
defaults ``{name=value}``, catch-all ``{*name}`` / ``{**name}`` (last segment only), complex
segments such as ``{name}.{ext}``, and the inline constraints ``int``, ``long``, ``bool``,
``guid``, ``alpha``, ``double``/``float``/``decimal``, ``datetime``, ``minlength(n)``,
``maxlength(n)``, ``length(n)``/``length(a,b)``, ``min(n)``, ``max(n)``, ``range(a,b)`` and
``regex(...)``. An unknown constraint is refused when the host starts, as the real host does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

__all__ = ["RouteTemplate", "RouteTemplateError"]

_PARAM = re.compile(r"\{([^{}]*)\}")
_GUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)


class RouteTemplateError(ValueError):
    """A route template the Functions host would refuse."""


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_int(value: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", value) is not None


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _constraint(spec: str, template: str) -> Callable[[str], bool]:
    m = re.fullmatch(r"([A-Za-z]+)(?:\((.*)\))?", spec, flags=re.DOTALL)
    if m is None:
        raise RouteTemplateError(f"route {template!r}: malformed constraint {spec!r}")
    kind, arg = m.group(1).lower(), m.group(2)
    simple: dict[str, Callable[[str], bool]] = {
        "int": lambda v: _is_int(v) and -(2**31) <= int(v) < 2**31,
        "long": lambda v: _is_int(v) and -(2**63) <= int(v) < 2**63,
        "bool": lambda v: v.lower() in ("true", "false"),
        "guid": lambda v: _GUID.match(v) is not None,
        "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
        "double": _is_number,
        "float": _is_number,
        "decimal": _is_number,
        "datetime": _is_datetime,
    }
    if kind in simple and arg is None:
        return simple[kind]
    if arg is None:
        raise RouteTemplateError(
            f"route {template!r}: the constraint reference {kind!r} could not be resolved"
        )
    if kind == "regex":
        try:
            pattern = re.compile(arg, flags=re.IGNORECASE)
        except re.error as exc:
            raise RouteTemplateError(f"route {template!r}: bad regex constraint: {exc}") from exc
        return lambda v: pattern.search(v) is not None
    try:
        nums = [int(x) for x in arg.split(",")]
    except ValueError as exc:
        raise RouteTemplateError(f"route {template!r}: bad constraint argument {spec!r}") from exc
    if kind == "minlength" and len(nums) == 1:
        return lambda v: len(v) >= nums[0]
    if kind == "maxlength" and len(nums) == 1:
        return lambda v: len(v) <= nums[0]
    if kind == "length" and len(nums) == 1:
        return lambda v: len(v) == nums[0]
    if kind == "length" and len(nums) == 2:
        return lambda v: nums[0] <= len(v) <= nums[1]
    if kind == "min" and len(nums) == 1:
        return lambda v: _is_int(v) and int(v) >= nums[0]
    if kind == "max" and len(nums) == 1:
        return lambda v: _is_int(v) and int(v) <= nums[0]
    if kind == "range" and len(nums) == 2:
        return lambda v: _is_int(v) and nums[0] <= int(v) <= nums[1]
    raise RouteTemplateError(
        f"route {template!r}: the constraint reference {kind!r} could not be resolved"
    )


@dataclass(frozen=True)
class _Param:
    name: str
    optional: bool
    default: str | None
    catch_all: bool
    constraints: tuple[Callable[[str], bool], ...]
    constraint_text: str


class RouteTemplate:
    """One compiled route template; :meth:`match` returns the route parameters or ``None``."""

    def __init__(self, template: str) -> None:
        self.template = template
        text = template.strip().strip("/")
        self._params: dict[str, _Param] = {}
        pattern = "^"
        segments = text.split("/") if text else []
        shape: list[str] = []
        for index, segment in enumerate(segments):
            if not segment:
                raise RouteTemplateError(f"route {template!r}: empty segment")
            last = index == len(segments) - 1
            seg_regex, seg_shape, optional_segment = self._compile_segment(segment, last)
            shape.append(seg_shape)
            body = "/" + seg_regex
            pattern += f"(?:{body})?" if optional_segment else body
        pattern += "/?$"
        self._regex = re.compile(pattern, flags=re.IGNORECASE | re.DOTALL)
        #: Template with parameter names erased (constraints kept): equal shapes collide.
        self.shape = "/".join(shape).lower()
        literal = sum(1 for s in shape if "{" not in s)
        catch_all = any(p.catch_all for p in self._params.values())
        # Higher sorts first: more literal segments, fewer parameters, no catch-all.
        self.precedence = (not catch_all, literal, -len(self._params))

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self._params)

    def _compile_segment(self, segment: str, last: bool) -> tuple[str, str, bool]:
        parts: list[str] = []
        shape_parts: list[str] = []
        pos = 0
        params_here: list[_Param] = []
        for m in _PARAM.finditer(segment):
            literal = segment[pos : m.start()]
            if "{" in literal or "}" in literal:
                raise RouteTemplateError(f"route {self.template!r}: unbalanced braces")
            parts.append(re.escape(literal))
            shape_parts.append(literal)
            param = self._parse_param(m.group(1))
            if param.catch_all and not (last and len(segment) == m.end() - m.start()):
                raise RouteTemplateError(
                    f"route {self.template!r}: a catch-all parameter must be the whole last segment"
                )
            params_here.append(param)
            group = f"p{len(self._params)}"
            self._params[group] = param
            parts.append(
                f"(?P<{group}>.*)" if param.catch_all else f"(?P<{group}>[^/]+)"
            )  # greedy: ASP.NET matches complex segments right to left
            star = "*" if param.catch_all else ""
            shape_parts.append(f"{{{star}{param.constraint_text}}}")
            pos = m.end()
        tail = segment[pos:]
        if "{" in tail or "}" in tail:
            raise RouteTemplateError(f"route {self.template!r}: unbalanced braces")
        parts.append(re.escape(tail))
        shape_parts.append(tail)
        optional_segment = (
            len(params_here) == 1
            and len(segment) == len(segment.strip())
            and segment.startswith("{")
            and segment.endswith("}")
            and (
                params_here[0].optional
                or params_here[0].default is not None
                or params_here[0].catch_all
            )
        )
        if any(p.optional for p in params_here) and not optional_segment:
            raise RouteTemplateError(
                f"route {self.template!r}: an optional parameter must be a whole segment"
            )
        return "".join(parts), "".join(shape_parts), optional_segment

    def _parse_param(self, spec: str) -> _Param:
        catch_all = spec.startswith("*")
        spec = spec.lstrip("*")
        default: str | None = None
        if "=" in spec:
            spec, default = spec.split("=", 1)
        optional = spec.endswith("?")
        spec = spec.rstrip("?")
        name, *constraint_specs = spec.split(":")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise RouteTemplateError(f"route {self.template!r}: bad parameter name {name!r}")
        if name.lower() in (p.name.lower() for p in self._params.values()):
            raise RouteTemplateError(f"route {self.template!r}: parameter {name!r} repeated")
        constraints = tuple(_constraint(c, self.template) for c in constraint_specs)
        text = ":".join(c.lower() for c in constraint_specs)
        return _Param(name, optional, default, catch_all, constraints, text)

    def match(self, path: str) -> dict[str, str] | None:
        """Match a raw (still percent-encoded) path below the route prefix, e.g. ``/updates/x``."""
        m = self._regex.match(path if path.startswith("/") or not path else "/" + path)
        if m is None:
            return None
        values: dict[str, str] = {}
        for group, param in self._params.items():
            raw = m.group(group)
            if raw is None or raw == "":
                if param.default is not None:
                    values[param.name] = param.default
                continue
            value = unquote(raw)
            if not all(check(value) for check in param.constraints):
                return None
            values[param.name] = value
        return values

    def __repr__(self) -> str:
        return f"RouteTemplate({self.template!r})"
