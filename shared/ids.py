"""Deterministic, Durable-safe instance ids derived from (customer, catalogs, image).

The same update asked twice (a re-delivered event, a pipeline retry) maps to the same instance,
so the starter finds it instead of starting a second ``$updateImage``. Ids carry a readable slug
for the portal and a hash for uniqueness; they never contain ``/ \\ ? #`` or control characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

__all__ = ["instance_id_for", "is_safe_instance_id"]

_SLUG = re.compile(r"[^a-z0-9]+")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")


def _slug(text: str, limit: int = 24) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")[:limit].strip("-") or "x"


def instance_id_for(
    customer_id: str, catalogs: Sequence[str], image: str, *, dry_run: bool = False
) -> str:
    """The instance id for updating ``catalogs`` to ``image`` (case-insensitive, order-free)."""
    names = sorted({c.strip().lower() for c in catalogs})
    key = json.dumps([customer_id.strip().lower(), names, image.strip().lower(), dry_run])
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    what = _slug(names[0]) if len(names) == 1 else f"{len(names)}-catalogs"
    prefix = "dry" if dry_run else "upd"
    return f"{prefix}-{what}-{_slug(image)}-{digest}"


def is_safe_instance_id(value: str) -> bool:
    """True if ``value`` looks like an id this app could have made (used on URL input)."""
    return bool(_SAFE_ID.match(value))
