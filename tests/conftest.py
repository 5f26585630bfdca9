"""Shared pytest fixtures. Tests are imported with importlib mode (the durable wheel ships a
top-level ``tests`` package), so helpers shared between test files live here or in ``local/``."""

from __future__ import annotations
