"""examples/scripts/update-catalog.sh against a fake catalog-updater API on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "scripts" / "update-catalog.sh"
KEY = "fake-function-key-7f3a"
Reply = tuple[int, dict[str, Any] | None, dict[str, str]]


@dataclass
class FakeApi:
    """Scripted answers for POST /api/updates and GET /api/updates/{id}; records requests."""

    post: Reply = (
        202,
        {
            "instanceId": "cu-abc",
            # A foreign host: the script must poll its own base URL, not this.
            "statusUrl": "http://203.0.113.9/api/updates/cu-abc",
            "duplicate": False,
        },
        {"Retry-After": "7"},
    )
    polls: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


def running(progress: int, retry_after: str = "3") -> Reply:
    body: dict[str, Any] = {"instanceId": "cu-abc", "runtimeStatus": "Running", "outcome": None}
    body |= {"phase": "monitoring", "state": "Processing", "progress": progress, "error": None}
    return 200, body, {"Retry-After": retry_after}


def finished(outcome: str, error: dict[str, str] | None = None) -> Reply:
    body: dict[str, Any] = {"instanceId": "cu-abc", "runtimeStatus": "Completed"}
    body |= {"outcome": outcome, "phase": "done", "progress": 100, "error": error}
    body["results"] = [
        {"catalog": {"ref": "Win11 Pool", "name": "Win11 Pool"}, "outcome": outcome, "error": error}
    ]
    return 200, body, {}


@pytest.fixture
def api() -> Iterator[FakeApi]:
    """A fake API server on 127.0.0.1 (ephemeral port), stopped after the test."""
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, reply: Reply) -> None:
            status, body, headers = reply
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            fake.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "key": self.headers.get("x-functions-key"),
                    "body": json.loads(raw) if raw else None,
                }
            )

        def do_POST(self) -> None:
            self._record()
            self._answer(fake.post if self.path == "/api/updates" else (404, None, {}))

        def do_GET(self) -> None:
            self._record()
            if self.path == "/api/updates/cu-abc" and fake.polls:
                self._answer(fake.polls.pop(0))
            else:
                self._answer((404, {"error": {"reason": "no such update"}}, {}))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake_sleep(tmp_path: Path) -> Path:
    """A `sleep` on PATH that records its argument instead of sleeping (no wall time spent)."""
    assert shutil.which("curl") and shutil.which("jq"), "the script needs curl and jq"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sleep = bin_dir / "sleep"
    sleep.write_text(f'#!/bin/sh\necho "$1" >> "{tmp_path}/sleeps"\n')
    sleep.chmod(0o755)
    return tmp_path


def run(args: list[str], tmp: Path, url: str | None, key: str | None = KEY):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_UPDATER_")}
    env["PATH"] = f"{tmp / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if url is not None:
        env["CATALOG_UPDATER_URL"] = url
    if key is not None:
        env["CATALOG_UPDATER_KEY"] = key
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60
    )


def sleeps(tmp: Path) -> list[int]:
    path = tmp / "sleeps"
    return [int(s) for s in path.read_text().split()] if path.exists() else []


def test_success_posts_the_body_polls_own_host_and_honours_retry_after(api, fake_sleep):
    """Exit 0 on succeeded; body and key sent; polls its own base URL after each Retry-After."""
    api.polls = [running(10), running(60, "4"), finished("succeeded")]
    args = ["--catalog", "Win11 Pool", "--image", "img-1", "--vda-update-delay", "-1"]
    result = run(args, fake_sleep, api.url)
    assert result.returncode == 0, result.stderr
    post = api.requests[0]
    assert post["body"] == {"catalog": "Win11 Pool", "image": "img-1", "vdaUpdateDelay": -1}
    assert all(r["key"] == KEY for r in api.requests)
    assert [r["path"] for r in api.requests[1:]] == ["/api/updates/cu-abc"] * 3
    assert sleeps(fake_sleep) == [7, 3, 4]
    assert "succeeded" in result.stdout and "10%" in result.stdout
    assert "  Win11 Pool: succeeded" in result.stdout  # the catalog by name, not as raw JSON
    assert KEY not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        ("already_current", 0),
        ("failed", 1),
        ("timed_out", 1),
        ("cancelled", 1),
        ("rejected", 1),
    ],
)
def test_terminal_outcomes_map_to_exit_codes(api, fake_sleep, outcome, code):
    """already_current exits 0; failed, timed_out, cancelled and rejected exit 1 with details."""
    error = None if code == 0 else {"category": "citrix_error", "message": "catalog went Error"}
    api.polls = [finished(outcome, error)]
    result = run(["--catalog", "c1", "--image", "i1"], fake_sleep, api.url)
    assert result.returncode == code
    if code:
        assert "citrix_error: catalog went Error" in result.stderr


def test_several_catalogs_dry_run_and_force_shape_the_body(api, fake_sleep):
    """Repeated --catalog becomes `catalogs`; --dry-run and --force are sent as booleans."""
    api.polls = [finished("succeeded")]
    args = ["--catalog", "a", "--catalog", "b", "--image", "i", "--dry-run", "--force"]
    assert run(args, fake_sleep, api.url).returncode == 0
    assert api.requests[0]["body"] == {
        "catalogs": ["a", "b"],
        "image": "i",
        "dryRun": True,
        "force": True,
    }


def test_body_file_is_posted_as_is(api, fake_sleep, tmp_path):
    """--body FILE sends that JSON object unchanged."""
    body = {"catalog": "c", "image": "i", "warningTitle": "Restart"}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    api.polls = [finished("succeeded")]
    assert run(["--body", str(path)], fake_sleep, api.url).returncode == 0
    assert api.requests[0]["body"] == body


def test_transient_poll_errors_are_retried(api, fake_sleep):
    """A 503 and a 404 while polling are retried; the final outcome decides the exit code."""
    api.polls = [
        (503, {"error": {"reason": "busy"}}, {"Retry-After": "2"}),
        (404, None, {}),
        finished("succeeded"),
    ]
    result = run(["--catalog", "c", "--image", "i"], fake_sleep, api.url)
    assert result.returncode == 0, result.stderr
    assert sleeps(fake_sleep)[:2] == [7, 2]


def test_retry_after_is_capped_by_max_interval(api, fake_sleep):
    """A Retry-After longer than --max-interval waits only --max-interval seconds."""
    api.post = (api.post[0], api.post[1], {"Retry-After": "3600"})
    api.polls = [finished("succeeded")]
    result = run(["--catalog", "c", "--image", "i", "--max-interval", "5"], fake_sleep, api.url)
    assert result.returncode == 0
    assert sleeps(fake_sleep) == [5]


def test_rejected_request_exits_1_with_the_reason(api, fake_sleep):
    """POST 400 is a rejected request: exit 1 and the field and reason are shown."""
    api.post = (400, {"error": {"field": "image", "reason": "is required"}}, {})
    result = run(["--catalog", "c", "--image", "i"], fake_sleep, api.url)
    assert result.returncode == 1
    assert "image: is required" in result.stderr


def test_wrong_key_exits_2(api, fake_sleep):
    """POST 401 is a configuration error: exit 2 with a hint about the key."""
    api.post = (401, None, {})
    result = run(["--catalog", "c", "--image", "i"], fake_sleep, api.url)
    assert result.returncode == 2
    assert "function key" in result.stderr


def test_unreachable_host_exits_2(fake_sleep):
    """Nothing listening on the port is a transport error: exit 2."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(["--catalog", "c", "--image", "i"], fake_sleep, f"http://127.0.0.1:{port}")
    assert result.returncode == 2
    assert "cannot reach" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--image", "i"],
        ["--catalog", "c"],
        ["--catalog", "c", "--image", "i", "--bogus"],
        ["--catalog", "c", "--image", "i", "--vda-update-delay", "soon"],
    ],
)
def test_usage_errors_exit_2(api, fake_sleep, args):
    """Missing or unknown arguments exit 2 before any request is sent."""
    result = run(args, fake_sleep, api.url)
    assert result.returncode == 2
    assert api.requests == []


def test_missing_url_and_plain_http_exit_2(fake_sleep):
    """No URL, or http:// to a non-local host, exits 2 (keys only travel over HTTPS)."""
    assert run(["--catalog", "c", "--image", "i"], fake_sleep, None).returncode == 2
    plain = run(["--catalog", "c", "--image", "i"], fake_sleep, "http://example.com")
    assert plain.returncode == 2
    assert "https://" in plain.stderr


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost.example.invalid",
        "http://127.0.0.1.example.invalid:80",
        "http://localhostx",
    ],
)
def test_plain_http_to_a_host_that_only_starts_like_localhost_exits_2(fake_sleep, url):
    """The loopback exception matches the whole host, so the key never goes over plain HTTP
    to a name that merely begins with 'localhost' or '127.0.0.1'."""
    result = run(["--catalog", "c", "--image", "i"], fake_sleep, url)
    assert result.returncode == 2
    assert "https://" in result.stderr


def test_cancelled_outcome_names_the_reason_once(api, fake_sleep):
    """When the error category repeats the outcome it is not printed twice."""
    api.polls = [finished("cancelled", {"category": "cancelled", "message": "monitoring stopped"})]
    result = run(["--catalog", "c1", "--image", "i1"], fake_sleep, api.url)
    assert result.returncode == 1
    assert "update-catalog: cancelled: monitoring stopped" in result.stderr
    assert "cancelled: cancelled" not in result.stderr


def test_running_multi_catalog_update_prints_each_catalog(api, fake_sleep):
    """While several catalogs run, the progress line names each one with its state and %."""
    code, body, headers = running(10)
    assert body is not None
    body["catalogUpdates"] = [
        {"catalog": "Pool A", "phase": "monitoring", "state": "Processing", "progress": 40},
        {"catalog": "Pool B", "phase": "preparing", "state": None, "progress": None},
    ]
    api.polls = [(code, body, headers), finished("succeeded")]
    result = run(
        ["--catalog", "Pool A", "--catalog", "Pool B", "--image", "i"], fake_sleep, api.url
    )
    assert result.returncode == 0, result.stderr
    assert "; Pool A: monitoring, Processing, 40%; Pool B: preparing" in result.stdout
