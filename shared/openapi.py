"""The OpenAPI 3 description of the HTTP API, served at ``GET /api/openapi.json``.

Built from the same tables the code uses (``ROUTES`` here, ``REQUEST_FIELDS`` in api.py); a
test checks that every route and field in it exists in ``function_app.py`` and vice versa.
"""

from __future__ import annotations

from typing import Any

from shared.api import (
    MAX_CATALOGS,
    MAX_DEADLINE_MINUTES,
    MAX_DELAY_MINUTES,
    MAX_NAME,
    MAX_WARNING_MESSAGE,
    MAX_WARNING_TITLE,
    REQUEST_FIELDS,
)

__all__ = ["ROUTES", "openapi_document"]

# (method, route under /api) for every HTTP function in function_app.py.
ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "updates"),
    ("GET", "updates"),
    ("GET", "updates/{instanceId}"),
    ("POST", "updates/{instanceId}/cancel"),
    ("GET", "health"),
    ("GET", "openapi.json"),
)

# What the validator accepts: after trimming surrounding whitespace, at least one character and
# none of the validator's forbidden characters (control characters, bidirectional marks), written
# as regex escapes. Lone surrogates, which the validator also refuses, are left out: they are not
# Unicode scalar values, so regex engines (and UTF-8) cannot express them.
_BAD = "\\x00-\\x1f\\x7f-\\x9f\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"
_TEXT_PATTERN = f"^\\s*[^\\s{_BAD}](?:[^{_BAD}]*[^\\s{_BAD}])?\\s*$"
_NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": _TEXT_PATTERN}

_FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "catalog": _NAME,
    "catalogs": {"type": "array", "items": _NAME, "minItems": 1, "maxItems": MAX_CATALOGS},
    "image": _NAME,
    "vdaUpdateDelay": {"type": "integer", "minimum": -1, "maximum": MAX_DELAY_MINUTES},
    # null means "not given" for these three (the validator accepts it).
    "citrixPrepared": {"type": ["boolean", "null"]},
    "warningTitle": {
        "type": ["string", "null"],
        "minLength": 1,
        "maxLength": MAX_WARNING_TITLE,
        "pattern": _TEXT_PATTERN,
    },
    "warningMessage": {
        "type": ["string", "null"],
        "minLength": 1,
        "maxLength": MAX_WARNING_MESSAGE,
        "pattern": _TEXT_PATTERN,
    },
    "deadlineMinutes": {"type": "integer", "minimum": 1, "maximum": MAX_DEADLINE_MINUTES},
    "dryRun": {"type": "boolean"},
    "force": {"type": "boolean"},
}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["reason"],
            "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
        }
    },
}

_STATUS = {
    "type": "object",
    "required": ["instanceId", "runtimeStatus", "outcome", "results"],
    "properties": {
        "instanceId": {"type": "string"},
        "runtimeStatus": {"type": "string"},
        "outcome": {
            "type": ["string", "null"],
            "enum": [
                "succeeded",
                "already_current",
                "failed",
                "timed_out",
                "cancelled",
                "rejected",
                None,
            ],
        },
        "phase": {"type": ["string", "null"]},
        "message": {"type": ["string", "null"]},
        "progress": {"type": ["integer", "null"]},
        "error": {
            "type": ["object", "null"],
            "properties": {"category": {"type": "string"}, "message": {"type": "string"}},
        },
        "results": {"type": "array", "items": {"type": "object"}},
        "catalogUpdates": {
            "type": "array",
            "description": "While a multi-catalog update runs: the live status of each started "
            "per-catalog update (phase, state, progress, next check)",
            "items": {"type": "object"},
        },
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document for the HTTP API."""
    properties = {
        name: {**_FIELD_SCHEMAS[name], "description": REQUEST_FIELDS[name][1]}
        for name in REQUEST_FIELDS
    }
    request_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["image"],
        "properties": properties,
        "oneOf": [{"required": ["catalog"]}, {"required": ["catalogs"]}],
    }
    instance_param = {
        "name": "instanceId",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"},
    }
    unauthorized = {"description": "Missing or wrong function key."}
    paths: dict[str, Any] = {
        "/api/updates": {
            "post": {
                "operationId": "startUpdate",
                "summary": "Update one or more catalogs to an image (or find the running update).",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": request_schema}},
                },
                "responses": {
                    "202": _json(
                        {
                            "type": "object",
                            "required": ["instanceId", "statusUrl", "duplicate"],
                            "properties": {
                                "instanceId": {"type": "string"},
                                "statusUrl": {"type": "string"},
                                "cancelUrl": {"type": "string"},
                                "duplicate": {"type": "boolean"},
                            },
                        },
                        "Started, or the same update is already running or done.",
                    ),
                    "400": _json(_ERROR, "Invalid request: the field and the reason."),
                    "401": unauthorized,
                    "409": _json(
                        _ERROR,
                        "The same update is already running with other options (the field "
                        "names the first that differs), or `force` was asked for a running one.",
                    ),
                    "413": _json(_ERROR, "Body too large."),
                    "503": _json(_ERROR, "The Durable runtime could not start the update."),
                },
            },
            "get": {
                "operationId": "listUpdates",
                "summary": "Recent and running updates.",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["all", "running", "completed", "succeeded", "failed"],
                        },
                    },
                    {
                        "name": "top",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "updates": {"type": "array", "items": _STATUS},
                                "count": {"type": "integer"},
                            },
                        },
                        "Updates, newest first.",
                    ),
                    "400": _json(_ERROR, "Invalid filter."),
                    "401": unauthorized,
                },
            },
        },
        "/api/updates/{instanceId}": {
            "get": {
                "operationId": "getUpdate",
                "summary": "Status of one update in plain words.",
                "parameters": [instance_param],
                "responses": {
                    "200": _json(_STATUS, "The update's status."),
                    "400": _json(_ERROR, "Invalid id."),
                    "401": unauthorized,
                    "404": _json(_ERROR, "No such update."),
                },
            }
        },
        "/api/updates/{instanceId}/cancel": {
            "post": {
                "operationId": "cancelUpdate",
                "summary": "Stop monitoring an update (Citrix cannot cancel the update itself).",
                "parameters": [instance_param],
                "responses": {
                    "202": _json({"type": "object"}, "Cancel requested."),
                    "400": _json(_ERROR, "Invalid id."),
                    "401": unauthorized,
                    "404": _json(_ERROR, "No such update."),
                    "409": _json(_ERROR, "The update already ended."),
                },
            }
        },
        "/api/health": {
            "get": {
                "operationId": "health",
                "summary": "Configuration, Key Vault access and Citrix token exchange.",
                "responses": {
                    "200": _json({"type": "object"}, "Healthy."),
                    "401": unauthorized,
                    "503": _json({"type": "object"}, "Unhealthy: what is wrong, no secret values."),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": _json({"type": "object"}, "OpenAPI document."),
                    "401": unauthorized,
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "catalog-updater",
            "version": "1.0.0",
            "description": "Updates Citrix machine catalogs to a new master image and watches "
            "each update to its end.",
        },
        "components": {
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"}
            }
        },
        "security": [{"functionKey": []}],
        "paths": paths,
    }
