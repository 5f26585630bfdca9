"""Frozen views of Catalog Service answers, read from camelCase or PascalCase JSON.

Field look-up is case-insensitive, so ``imageId`` (2019+ camelCase) and ``ImageId`` (2017
PascalCase) both work. ``to_dict()`` always produces camelCase, JSON-safe dicts for durable
boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from shared.citrix.errors import CitrixResponseError

__all__ = ["Catalog", "Image", "UpdateSubmission", "items_of"]


def _lower_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in data.items()}


def _text(data: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = data.get(name.lower())
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _number(data: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = data.get(name.lower())
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                continue
            if math.isfinite(number):
                return int(number)
    return None


def _flag(data: Mapping[str, Any], *names: str) -> bool:
    for name in names:
        value = data.get(name.lower())
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
            return value.strip().lower() == "true"
    return False


def _require_mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise CitrixResponseError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _warnings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    out: list[str] = []
    for item in value:
        if isinstance(item, str) and item:
            out.append(item)
        elif isinstance(item, Mapping):
            lowered = _lower_keys(item)
            kind = _text(lowered, "type")
            message = _text(lowered, "warningMessage", "message")
            if kind and message:
                out.append(f"{kind}: {message}")
            elif kind or message:
                out.append(kind or message or "")
    return tuple(out)


def items_of(body: object, *aliases: str) -> list[Mapping[str, Any]]:
    """The list inside a Citrix list envelope (``items``, or a legacy alias such as
    ``catalogs`` / ``overviews`` / ``sites``, any letter case), or a bare JSON list."""
    if isinstance(body, list):
        raw: object = body
    else:
        mapping = _lower_keys(_require_mapping(body, "list answer"))
        raw = None
        for name in ("items", *aliases):
            if isinstance(mapping.get(name.lower()), list):
                raw = mapping[name.lower()]
                break
        if raw is None:
            raise CitrixResponseError(
                f"list answer has no 'items' array (keys: {', '.join(sorted(mapping)[:10])})"
            )
    assert isinstance(raw, list)
    return [_require_mapping(item, "list item") for item in raw]


@dataclass(frozen=True)
class Catalog:
    """A catalog overview or a catalog status overview (``updateStatus``)."""

    id: str
    name: str
    state: str
    sub_state: str | None = None
    image_id: str | None = None
    template_image_name: str | None = None
    progress: int | None = None
    eta_minutes: int | None = None
    status_message: str | None = None
    transaction_id: str | None = None
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: object, *, catalog_id: str | None = None) -> Catalog:
        """Parse a CatalogOverview / CatalogStatusOverview; ``catalog_id`` fills a missing id."""
        fields = _lower_keys(_require_mapping(data, "catalog"))
        cid = _text(fields, "id", "catalogId") or catalog_id
        state = _text(fields, "state", "catalogState")
        if not cid or not state:
            missing = [n for n, v in (("id", cid), ("state", state)) if not v]
            raise CitrixResponseError(f"catalog answer lacks {' and '.join(missing)}")
        progress = _number(fields, "taskCompletionPercentage", "progress")
        if progress is not None:
            progress = max(0, min(100, progress))
        eta = _number(fields, "estimatedTimeInMinute", "estimatedTimeInMinutes")
        if eta is not None:
            eta = max(0, eta)
        return cls(
            id=cid,
            name=_text(fields, "name", "catalogName") or "",
            state=state,
            sub_state=_text(fields, "subState"),
            image_id=_text(fields, "imageId", "templateId"),
            template_image_name=_text(fields, "templateImageName"),
            progress=progress,
            eta_minutes=eta,
            status_message=_text(fields, "statusMessage"),
            transaction_id=_text(fields, "transactionId"),
            warnings=_warnings(fields.get("warnings")),
        )

    def with_transaction_id(self, transaction_id: str | None) -> Catalog:
        """This catalog, with ``transaction_id`` filled in when the body had none."""
        if self.transaction_id or not transaction_id:
            return self
        return replace(self, transaction_id=transaction_id)

    @property
    def accepts_update(self) -> bool:
        """In a state ``$updateImage`` accepts (Active or InputRequired)."""
        return self.state.strip().lower() in ("active", "inputrequired")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "subState": self.sub_state,
            "imageId": self.image_id,
            "templateImageName": self.template_image_name,
            "progress": self.progress,
            "etaMinutes": self.eta_minutes,
            "statusMessage": self.status_message,
            "transactionId": self.transaction_id,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Image:
    """A master image (TemplateImageOverview / TemplateImageDetails)."""

    id: str
    name: str
    state: str
    sub_state: str | None = None
    citrix_prepared: bool = False
    status_message: str | None = None

    @classmethod
    def from_api(cls, data: object) -> Image:
        fields = _lower_keys(_require_mapping(data, "image"))
        iid = _text(fields, "id", "imageId")
        state = _text(fields, "state")
        if not iid or not state:
            missing = [n for n, v in (("id", iid), ("state", state)) if not v]
            raise CitrixResponseError(f"image answer lacks {' and '.join(missing)}")
        return cls(
            id=iid,
            name=_text(fields, "name") or "",
            state=state,
            sub_state=_text(fields, "subState"),
            citrix_prepared=_flag(fields, "citrixPrepared"),
            status_message=_text(fields, "statusMessage", "status", "errorDetails"),
        )

    @property
    def ready(self) -> bool:
        return self.state.lower() == "ready"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "subState": self.sub_state,
            "citrixPrepared": self.citrix_prepared,
            "statusMessage": self.status_message,
        }


@dataclass(frozen=True)
class UpdateSubmission:
    """What ``$updateImage`` answered: catalog id (body), transaction id, ``location`` URL."""

    catalog_id: str
    transaction_id: str | None
    location: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "catalogId": self.catalog_id,
            "transactionId": self.transaction_id,
            "location": self.location,
        }
