"""Fixtures for the infra tests: the repository root and parsed Bicep files (pycep-parser)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def parse_bicep() -> Callable[[Path], dict[str, Any]]:
    """Parse a Bicep file into pycep's JSON form (one parser, cached per path)."""
    parser = BicepParser(cache=True)  # lark caches the compiled grammar in the temp dir
    parsed: dict[Path, dict[str, Any]] = {}

    def parse(path: Path) -> dict[str, Any]:
        if path not in parsed:
            parsed[path] = dict(parser.parse(file_path=path))
        return parsed[path]

    return parse
