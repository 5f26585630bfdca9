"""Pure, table-driven mapping from a catalog snapshot to a normalized update status.

Every documented catalog state (CatalogOverallState: PreDeployment, Active, Processing,
InputRequired, Error, Deleting, Unknown, NotFound) has a row in :data:`STATE_TABLE`; anything
else maps to ``unknown``. ``unknown`` never means "poll forever": the caller counts consecutive
unknowns and :func:`shared.polling.decide_unknown` says when to give up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from shared.citrix.models import Catalog
from shared.polling import decide_unknown

__all__ = [
    "IMAGE_UNCHANGED_MESSAGE",
    "STATE_TABLE",
    "STATUSES",
    "UpdateStatus",
    "decide_unknown",
    "map_catalog_status",
]

Status = Literal["running", "succeeded", "failed", "unknown"]
STATUSES: tuple[Status, ...] = ("running", "succeeded", "failed", "unknown")

IMAGE_UNCHANGED_MESSAGE = "update not visible yet / image unchanged"

# state (lower case) -> (normalized status, default message when Citrix gives none)
STATE_TABLE: dict[str, tuple[Status, str]] = {
    "predeployment": ("running", "the catalog is being prepared"),
    "processing": ("running", "the catalog is being updated"),
    "active": ("succeeded", "the catalog is active"),
    "inputrequired": ("succeeded", "the catalog is ready and waits for input (users or apps)"),
    "error": ("failed", "the catalog reported an error"),
    "deleting": ("failed", "the catalog is being deleted"),
    "unknown": ("unknown", "Citrix cannot determine the catalog state"),
    "notfound": ("unknown", "Citrix reports the catalog as not found"),
}


@dataclass(frozen=True)
class UpdateStatus:
    """Normalized status of a catalog image update, JSON-safe via :meth:`to_dict`."""

    status: Status
    state: str
    sub_state: str | None
    progress: int | None
    eta_minutes: int | None
    message: str

    @property
    def terminal(self) -> bool:
        return self.status in ("succeeded", "failed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "state": self.state,
            "subState": self.sub_state,
            "progress": self.progress,
            "etaMinutes": self.eta_minutes,
            "message": self.message,
        }


def _same_id(left: str | None, right: str | None) -> bool:
    return left is not None and right is not None and left.strip().lower() == right.strip().lower()


def map_catalog_status(catalog: Catalog, *, target_image_id: str | None = None) -> UpdateStatus:
    """Normalize ``catalog``. With ``target_image_id``, Active/InputRequired only count as
    ``succeeded`` once the catalog's image is that image (else ``unknown``: not visible yet)."""
    row = STATE_TABLE.get(catalog.state.strip().lower())
    if row is None:
        status: Status = "unknown"
        message = f"undocumented catalog state {catalog.state!r}"
        if catalog.status_message:
            message += f": {catalog.status_message}"
    else:
        status, default_message = row
        message = catalog.status_message or default_message
        if status == "succeeded" and target_image_id is not None:
            if not _same_id(catalog.image_id, target_image_id):
                status = "unknown"
                message = IMAGE_UNCHANGED_MESSAGE
        elif status == "failed" and catalog.state.strip().lower() == "error":
            cause = catalog.status_message or default_message
            message = f"{catalog.sub_state}: {cause}" if catalog.sub_state else cause
        elif status == "running":
            parts = [catalog.status_message or default_message]
            if catalog.progress is not None:
                parts.append(f"{catalog.progress}% done")
            if catalog.eta_minutes is not None:
                parts.append(f"about {catalog.eta_minutes} min left")
            message = ", ".join(parts)
    progress = catalog.progress
    if status == "succeeded":
        progress = 100
    return UpdateStatus(
        status=status,
        state=catalog.state,
        sub_state=catalog.sub_state,
        progress=progress,
        eta_minutes=catalog.eta_minutes if status == "running" else None,
        message=message,
    )
