"""Error hierarchy, the single requests-exception translator, and id validation."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
import requests
import requests.exceptions
import urllib3.exceptions

from shared.citrix import (
    CitrixError,
    CitrixInvalidIdError,
    CitrixOutcomeUnknownError,
    CitrixRequestError,
    CitrixResponseError,
    translate_requests_exception,
    validate_id,
)
from shared.citrix.errors import (
    CitrixAuthError,
    CitrixBadRequestError,
    CitrixNotFoundError,
    CitrixPermissionError,
    CitrixRateLimitError,
    CitrixServerError,
    http_error_class,
)

# Expected category for every exception class requests exports, for a GET and for a POST.
# A new class in a future requests version makes test_every_requests_exception_is_mapped fail.
EXPECTED = {
    "RequestException": ("connection", "outcome_unknown"),
    "RequestsWarning": ("connection", "connection"),
    "FileModeWarning": ("connection", "connection"),
    "RequestsDependencyWarning": ("connection", "connection"),
    "SSLError": ("connection", "connection"),
    "ProxyError": ("connection", "connection"),
    "ConnectTimeout": ("connection", "connection"),
    "ReadTimeout": ("connection", "outcome_unknown"),
    "Timeout": ("connection", "outcome_unknown"),
    "ConnectionError": ("connection", "outcome_unknown"),
    "JSONDecodeError": ("protocol", "outcome_unknown"),
    "CompatJSONDecodeError": ("protocol", "outcome_unknown"),
    "InvalidJSONError": ("connection", "connection"),
    "URLRequired": ("connection", "connection"),
    "MissingSchema": ("connection", "connection"),
    "InvalidSchema": ("connection", "connection"),
    "InvalidURL": ("connection", "connection"),
    "InvalidProxyURL": ("connection", "connection"),
    "InvalidHeader": ("connection", "connection"),
    "ChunkedEncodingError": ("connection", "outcome_unknown"),
    "ContentDecodingError": ("connection", "outcome_unknown"),
    "TooManyRedirects": ("protocol", "outcome_unknown"),
    "HTTPError": ("protocol", "outcome_unknown"),
    "RetryError": ("connection", "outcome_unknown"),
    "StreamConsumedError": ("connection", "outcome_unknown"),
    "UnrewindableBodyError": ("connection", "outcome_unknown"),
    "BaseHTTPError": ("connection", "outcome_unknown"),
}


def _exception_classes() -> dict[str, type[BaseException]]:
    return {
        name: cls
        for name, cls in inspect.getmembers(requests.exceptions, inspect.isclass)
        if issubclass(cls, BaseException)
    }


def _instance(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, json.JSONDecodeError):
        return cls("Expecting value", "<html>", 0)
    return cls("simulated")


def test_every_requests_exception_is_mapped():
    """Every exception class in requests.exceptions maps to the expected CitrixError category."""
    classes = _exception_classes()
    assert set(classes) == set(EXPECTED), "update EXPECTED for new/removed requests exceptions"
    for name, cls in classes.items():
        for method, idempotent, expected in (
            ("GET", True, EXPECTED[name][0]),
            ("POST", False, EXPECTED[name][1]),
        ):
            error = translate_requests_exception(
                _instance(cls),
                method=method,
                url="https://api-us.cloud.com/catalogservice/c/s/catalogs?x=1",
                transaction_id="tid-1",
                idempotent=idempotent,
            )
            assert isinstance(error, CitrixError), name
            assert error.category == expected, (name, method, error.category)
            assert error.transaction_id == "tid-1"
            assert "x=1" not in error.message


def test_refused_connection_is_retryable_even_for_post():
    """A refused connection proves nothing was sent, so a POST may be repeated."""
    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    wrapped = urllib3.exceptions.MaxRetryError(None, "/x", reason)  # type: ignore[arg-type]
    error = translate_requests_exception(
        requests.ConnectionError(wrapped),
        method="POST",
        url="http://127.0.0.1:1/x",
        transaction_id=None,
        idempotent=False,
    )
    assert isinstance(error, CitrixRequestError) and error.retryable


def test_connection_reset_after_send_is_outcome_unknown_for_post():
    """A connection that died after the POST was written means the outcome is unknown."""
    reset = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
    error = translate_requests_exception(
        requests.ConnectionError(reset),
        method="POST",
        url="http://127.0.0.1:1/x",
        transaction_id=None,
        idempotent=False,
    )
    assert isinstance(error, CitrixOutcomeUnknownError) and not error.retryable


def test_translation_lives_in_one_place():
    """No module of shared/citrix except http.py catches requests/urllib3 exceptions."""
    package = Path(__file__).resolve().parents[2] / "shared" / "citrix"
    offenders = []
    for path in package.glob("*.py"):
        if path.name == "http.py":
            continue
        for line in path.read_text().splitlines():
            if re.search(r"except\b.*(requests|urllib3|RequestException|OSError)", line):
                offenders.append(f"{path.name}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, CitrixBadRequestError),
        (401, CitrixAuthError),
        (403, CitrixPermissionError),
        (404, CitrixNotFoundError),
        (409, CitrixBadRequestError),
        (422, CitrixBadRequestError),
        (429, CitrixRateLimitError),
        (500, CitrixServerError),
        (503, CitrixServerError),
    ],
)
def test_http_status_classes(status, cls):
    """Each HTTP status maps to its documented exception class and category."""
    assert http_error_class(status) is cls


def test_to_dict_is_json_safe_and_complete():
    """to_dict has exactly the contract keys (plus errorType for HTTP errors) and is JSON."""
    error = CitrixRateLimitError(
        "slow down", status=429, error_type="common/rateLimitExceeded", transaction_id="t"
    )
    data = error.to_dict()
    assert data == {
        "category": "rate_limited",
        "message": "slow down",
        "retryable": True,
        "status": 429,
        "transactionId": "t",
        "errorType": "common/rateLimitExceeded",
    }
    json.dumps(data)
    assert CitrixResponseError("x").to_dict()["category"] == "protocol"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a/b",
        "a?b",
        "a#b",
        "a\\b",
        "..",
        "a..b",
        ".",
        "a%2Fb",
        "%2e%2e",
        "a b",
        "a\nb",
        "a\x00b",
        "a\x7fb",
        "caf\u00e9",
        "x" * 201,
        None,
        42,
    ],
)
def test_unsafe_ids_are_refused(bad):
    """Ids that could change a URL path are refused with category invalid_input."""
    with pytest.raises(CitrixInvalidIdError) as info:
        validate_id(bad, "catalog id")
    assert info.value.category == "invalid_input"
    assert "catalog id" in info.value.message
    assert "\n" not in info.value.message and "\x00" not in info.value.message


@pytest.mark.parametrize(
    "good", ["0c9a7e52-3f4b-4d8e-a1c6-7b2d9e4f5a10", "img-v2", "root", "a.b_c~d"]
)
def test_safe_ids_pass(good):
    """GUIDs and simple ids are accepted unchanged."""
    assert validate_id(good) == good
