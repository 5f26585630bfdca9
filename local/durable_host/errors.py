"""Errors of the local durable host's management API, each mapped to the extension's HTTP code."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

__all__ = [
    "DurableHostError",
    "InstanceGoneError",
    "InstanceNotFoundError",
    "InvalidArgumentError",
    "NotTerminalError",
    "OrchestrationAlreadyExistsError",
]


class DurableHostError(Exception):
    """Base class; ``status_code`` is what the extension's HTTP API answers."""

    status_code = 500


class InstanceNotFoundError(DurableHostError, KeyError):
    """No instance with that id (HTTP 404)."""

    status_code = 404

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "instance not found"


class InstanceGoneError(DurableHostError):
    """The instance already reached a terminal state (HTTP 410)."""

    status_code = 410


class NotTerminalError(DurableHostError):
    """Only terminal instances can be purged (HTTP 412)."""

    status_code = 412


class OrchestrationAlreadyExistsError(DurableHostError):
    """``overridableExistingInstanceStates: NonRunningStates`` refused a start (HTTP 409)."""

    status_code = 409


class InvalidArgumentError(DurableHostError, ValueError):
    """Unknown orchestrator, bad instance id, bad JSON (HTTP 400)."""

    status_code = 400
