"""Local functions host: HTTP routes over real loopback HTTP, translated like the Python worker."""

from __future__ import annotations

import json
import logging
import socket
from types import ModuleType
from urllib.parse import quote

import azure.functions as func
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.functions_host import FunctionsHost, RouteTemplateError

FUNCTION_KEY = "test-function-key"
MASTER_KEY = "test-master-key"


def _url(functions_host: FunctionsHost) -> str:
    assert functions_host.base_url is not None
    return functions_host.base_url


def test_request_reaches_function_as_real_http_request(host: FunctionsHost) -> None:
    """Route params, query (repeats joined), headers, method and URL reach a real HttpRequest."""
    base = _url(host)
    response = requests.get(
        f"{base}/api/hello/World%20x?a=1&a=2&b=", headers={"X-Sample": "yes"}, timeout=10
    )
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "azure.functions.http.HttpRequest"
    assert body["name"] == "World x"
    assert body["params"] == {"a": "1,2", "b": ""}
    assert body["header"] == "yes"
    assert body["method"] == "GET"
    assert body["url"] == f"{base}/api/hello/World%20x?a=1&a=2&b="
    assert response.headers["Content-Type"] == "application/json"


def test_response_status_headers_mimetype_and_body_are_written_back(host: FunctionsHost) -> None:
    """The function's HttpResponse status, headers, mimetype and bytes reach the client as-is."""
    payload = bytes(range(256))
    response = requests.post(
        f"{_url(host)}/api/echo",
        data=payload,
        headers={"x-functions-key": FUNCTION_KEY, "Content-Type": "application/x-test"},
        timeout=10,
    )
    assert response.status_code == 201
    assert response.content == payload
    assert response.headers["X-Echo-Length"] == "256"
    assert response.headers["Content-Type"] == "application/x-test"


def test_unknown_route_is_404_json_and_wrong_method_is_405(host: FunctionsHost) -> None:
    """An unknown path answers 404 JSON; a known route with the wrong method answers 405 + Allow."""
    missing = requests.get(f"{_url(host)}/api/nowhere", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["status"] == 404
    outside = requests.get(f"{_url(host)}/elsewhere", timeout=10)
    assert outside.status_code == 404
    wrong = requests.delete(f"{_url(host)}/api/echo?code={FUNCTION_KEY}", timeout=10)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST, PUT"
    assert "DELETE" in wrong.json()["error"]


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({}, "", 401),
        ({"x-functions-key": "wrong"}, "", 401),
        ({}, "?code=wrong", 401),
        ({"x-functions-key": FUNCTION_KEY}, "", 201),
        ({}, f"?code={FUNCTION_KEY}", 201),
        ({"x-functions-key": MASTER_KEY}, "", 201),
    ],
)
def test_function_level_route_requires_a_key(
    host: FunctionsHost, sample: ModuleType, headers: dict[str, str], query: str, expected: int
) -> None:
    """Function-level routes need the function/master key (header or code=), else 401, not run."""
    response = requests.post(
        f"{_url(host)}/api/echo{query}", data=b"x", headers=headers, timeout=10
    )
    assert response.status_code == expected
    invoked = ["echo"] if expected == 201 else []
    assert invoked == sample.CALLS


def test_admin_route_needs_the_master_key_and_anonymous_needs_none(host: FunctionsHost) -> None:
    """Admin level refuses the function key, accepts the master key; anonymous needs no key."""
    url = f"{_url(host)}/api/admin/thing"
    assert (
        requests.get(url, headers={"x-functions-key": FUNCTION_KEY}, timeout=10).status_code == 401
    )
    ok = requests.get(url, headers={"x-functions-key": MASTER_KEY}, timeout=10)
    assert (ok.status_code, ok.text) == (200, "admin ok")
    assert requests.get(f"{_url(host)}/api/text", timeout=10).status_code == 200


def test_generated_keys_are_random_and_used(sample: ModuleType) -> None:
    """Without a given key the host generates a long random one and enforces it."""
    first, second = FunctionsHost(sample.app), FunctionsHost(sample.app)
    assert first.function_key != second.function_key
    assert len(first.function_key) >= 32
    status, _, _ = first.invoke_http("POST", "/api/echo", body=b"x")
    assert status == 401
    status, _, _ = first.invoke_http(
        "POST", "/api/echo", body=b"x", headers={"x-functions-key": first.function_key}
    )
    assert status == 201


def test_function_exception_is_500_generic_and_logged(
    host: FunctionsHost, caplog: pytest.LogCaptureFixture
) -> None:
    """A function exception gives a generic 500 JSON body; the traceback goes to the log only."""
    with caplog.at_level(logging.INFO, logger="local.functions_host"):
        response = requests.get(f"{_url(host)}/api/boom", timeout=10)
    assert response.status_code == 500
    assert response.json() == {"error": "the function failed; see the host log", "status": 500}
    assert "internal detail" not in response.text
    assert "Traceback" not in response.text
    assert "internal detail that must not reach the client" in caplog.text
    assert "Executed 'Functions.boom' (Failed" in caplog.text


def test_return_values_str_none_and_unencodable(host: FunctionsHost) -> None:
    """A str return is 200 text/plain, None is 204, a dict (not encodable for http) is 500."""
    text = requests.get(f"{_url(host)}/api/text", timeout=10)
    assert (text.status_code, text.text) == (200, "plain text")
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
    nothing = requests.get(f"{_url(host)}/api/nothing", timeout=10)
    assert (nothing.status_code, nothing.content) == (204, b"")
    assert requests.get(f"{_url(host)}/api/not-json-able", timeout=10).status_code == 500


def test_async_functions_and_route_constraints(host: FunctionsHost) -> None:
    """Async functions are awaited; {n:int} and {word:alpha} routes are chosen by constraint."""
    assert requests.get(f"{_url(host)}/api/async/21", timeout=10).text == "42"
    assert requests.get(f"{_url(host)}/api/async/-4", timeout=10).text == "-8"
    assert requests.get(f"{_url(host)}/api/async/abc", timeout=10).text == "word abc"
    assert requests.get(f"{_url(host)}/api/async/a1", timeout=10).status_code == 404


def test_catch_all_and_optional_route_parameters(host: FunctionsHost) -> None:
    """{*path} captures the decoded rest of the path; {item?} may be absent."""
    assert requests.get(f"{_url(host)}/api/files/a/b%2Fc.txt", timeout=10).text == "a/b/c.txt"
    assert requests.get(f"{_url(host)}/api/opt", timeout=10).json() == {}
    assert requests.get(f"{_url(host)}/api/OPT/x/", timeout=10).json() == {"item": "x"}


def test_context_parameter_gets_function_name_and_invocation_id(host: FunctionsHost) -> None:
    """A function declaring ``context`` gets one per invocation, with its name and a fresh id."""
    first = requests.get(f"{_url(host)}/api/ctx", timeout=10).json()
    second = requests.get(f"{_url(host)}/api/ctx", timeout=10).json()
    assert first["function"] == "with_context"
    assert first["id"] != second["id"]


def test_set_cookie_header_is_sent(host: FunctionsHost) -> None:
    """Set-Cookie headers set by the function reach the client (the worker passes cookies)."""
    response = requests.get(f"{_url(host)}/api/cookie", timeout=10)
    assert response.cookies.get("session") == "abc"


def test_body_over_the_limit_is_413_and_not_invoked(
    host: FunctionsHost, sample: ModuleType
) -> None:
    """A Content-Length or chunked body over max_body_bytes gets 413; the function never runs."""
    url = f"{_url(host)}/api/echo"
    headers = {"x-functions-key": FUNCTION_KEY}
    big = requests.post(url, data=b"x" * 4097, headers=headers, timeout=10)
    assert big.status_code == 413
    assert "4096" in big.json()["error"]
    chunked = requests.post(url, data=iter([b"x" * 3000, b"y" * 3000]), headers=headers, timeout=10)
    assert chunked.status_code == 413
    assert sample.CALLS == []
    small = requests.post(url, data=iter([b"ab", b"cd"]), headers=headers, timeout=10)
    assert (small.status_code, small.content) == (201, b"abcd")
    exact = requests.post(url, data=b"z" * 4096, headers=headers, timeout=10)
    assert exact.status_code == 201
    status, _, _ = host.invoke_http("POST", "/api/echo", body=b"x" * 4097, headers=headers)
    assert status == 413
    assert sample.CALLS == ["echo", "echo"]


def test_invoke_http_matches_the_server(host: FunctionsHost) -> None:
    """invoke_http runs the same code path as the socket server (same status, headers, body)."""
    status, headers, body = host.invoke_http(
        "GET", "/api/hello/abc?x=1", headers={"Host": _url(host).removeprefix("http://")}
    )
    served = requests.get(f"{_url(host)}/api/hello/abc?x=1", timeout=10)
    assert status == served.status_code == 200
    assert json.loads(body) == served.json()
    assert headers["Content-Type"] == served.headers["Content-Type"]
    status, _, body = host.invoke_http("GET", "/api/hello/abc", params={"x": "2"})
    assert json.loads(body)["params"] == {"x": "2"}


def test_keys_never_appear_in_logs(host: FunctionsHost, caplog: pytest.LogCaptureFixture) -> None:
    """Requests carrying the key in code= or a header never put it into the host's log records."""
    with caplog.at_level(logging.DEBUG, logger="local"):
        requests.post(f"{_url(host)}/api/echo?code={FUNCTION_KEY}", data=b"x", timeout=10)
        requests.get(f"{_url(host)}/api/boom?code={FUNCTION_KEY}", timeout=10)
        requests.post(host.eventgrid_url("on_event"), data=b"not json", timeout=10)
        with socket.create_connection(("127.0.0.1", int(_url(host).rsplit(":", 1)[1]))) as s:
            s.sendall(f"GARBAGE /api/x?code={FUNCTION_KEY} extra HTTP/1.1\r\n\r\n".encode())
            s.recv(1024)
    ours = [r for r in caplog.records if r.name.startswith("local.")]
    assert any("GARBAGE" in r.getMessage() for r in ours)
    text = "\n".join(logging.Formatter().format(r) for r in ours)
    assert FUNCTION_KEY not in text


def test_keep_alive_connections_do_not_block_stop(sample: ModuleType) -> None:
    """stop() closes idle keep-alive connections, so no handler thread outlives the host."""
    functions_host = FunctionsHost(sample.app)
    base = functions_host.start()
    with requests.Session() as session:
        assert session.get(f"{base}/api/text", timeout=10).status_code == 200
        assert session.get(f"{base}/api/text", timeout=10).status_code == 200
        functions_host.stop()
        functions_host.stop()  # idempotent
        with pytest.raises(requests.ConnectionError):
            session.get(f"{base}/api/text", timeout=10)


def test_start_is_idempotent_and_eventgrid_url_needs_a_started_host(sample: ModuleType) -> None:
    """start() twice returns the same URL; eventgrid_url before start is an error."""
    functions_host = FunctionsHost(sample.app, function_key="k")
    with pytest.raises(RuntimeError):
        functions_host.eventgrid_url("on_event")
    try:
        base = functions_host.start()
        assert functions_host.start() == base
        assert functions_host.eventgrid_url("on_event") == (
            f"{base}/runtime/webhooks/eventgrid?functionName=on_event&code=k"
        )
    finally:
        functions_host.stop()


def test_colliding_routes_unknown_constraints_and_bindings_are_refused() -> None:
    """Two functions on one route+method, an unknown constraint or unsupported binding: refused."""
    twins = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @twins.route(route="same/{a}", methods=["GET"])  # type: ignore[untyped-decorator]
    def first(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("1")

    @twins.route(route="Same/{b}", methods=["GET", "POST"])  # type: ignore[untyped-decorator]
    def second(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("2")

    with pytest.raises(ValueError, match="both serve route"):
        FunctionsHost(twins)

    odd = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @odd.route(route="x/{a:banana}")  # type: ignore[untyped-decorator]
    def third(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("3")

    with pytest.raises(RouteTemplateError, match="banana"):
        FunctionsHost(odd)

    queued = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @queued.route(route="q")  # type: ignore[untyped-decorator]
    @queued.queue_output(arg_name="msg", queue_name="q", connection="C")  # type: ignore[untyped-decorator]
    def fourth(req: func.HttpRequest, msg: func.Out[str]) -> func.HttpResponse:
        return func.HttpResponse("4")

    with pytest.raises(ValueError, match="queue"):
        FunctionsHost(queued)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).filter(
        lambda s: s.strip() == s and s not in (".", "..")
    )
)
def test_route_parameter_round_trips_any_text(sample: ModuleType, name: str) -> None:
    """Any percent-encoded text in {name} reaches the function decoded and unchanged."""
    functions_host = FunctionsHost(sample.app)
    status, _, body = functions_host.invoke_http("GET", "/api/hello/" + quote(name, safe=""))
    assert status == 200
    assert json.loads(body)["name"] == name
