"""host.json, .funcignore and azure.yaml carry what Azure and the local durable host rely on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_host() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "host.json").read_text())
    return data


def test_host_json_bundle_and_version():
    """Functions 2.0 schema with extension bundle [4.*, 5.0.0) (Durable >= 2.7 for identities)."""
    host = load_host()
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }


def test_host_json_durable_settings():
    """Valid task hub name, NonRunningStates de-duplication, small Citrix-friendly concurrency."""
    durable = load_host()["extensions"]["durableTask"]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", durable["hubName"])
    assert durable["overridableExistingInstanceStates"] == "NonRunningStates"
    assert 1 <= durable["maxConcurrentActivityFunctions"] <= 10
    assert 1 <= durable["maxConcurrentOrchestratorFunctions"] <= 10


def test_host_json_logging_keeps_structured_logs():
    """Function logs at Information; sampling never drops requests or the workbook's traces."""
    logging = load_host()["logging"]
    assert logging["logLevel"]["Function"] == "Information"
    assert logging["logLevel"]["Host.Results"] == "Information"
    sampling = logging["applicationInsights"]["samplingSettings"]
    excluded = set(sampling["excludedTypes"].split(";"))
    assert {"Request", "Trace"} <= excluded


def test_funcignore_keeps_dev_only_folders_out_of_the_package():
    """local/, tests/, bench/, infra/ and secrets files are not deployed; app code is."""
    lines = {line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()}
    assert {"local/", "tests/", "bench/", "infra/", ".venv/", "local.settings.json"} <= lines
    assert not {"shared/", "function_app.py", "host.json", "requirements.txt"} & lines


def test_azure_yaml_deploys_the_root_as_a_python_function_with_a_postdeploy_hook():
    """azd deploys the repo root (host: function, python) and runs scripts/postdeploy.*."""
    text = (ROOT / "azure.yaml").read_text()
    service = r"services:\n  api:\n    project: \.\n    language: python\n    host: function"
    assert re.search(service, text)
    assert "run: ./scripts/postdeploy.sh" in text
    assert "run: ./scripts/postdeploy.ps1" in text
    assert (ROOT / "scripts" / "postdeploy.sh").is_file()
    assert (ROOT / "scripts" / "postdeploy.ps1").is_file()


def test_postdeploy_uses_only_outputs_main_bicep_exports():
    """Every AZURE_* value the hooks read is an output of infra/main.bicep."""
    outputs = set(re.findall(r"^output (\w+) ", (ROOT / "infra" / "main.bicep").read_text(), re.M))
    for name in ("postdeploy.sh", "postdeploy.ps1"):
        text = (ROOT / "scripts" / name).read_text()
        used = set(re.findall(r"\b(AZURE_\w+)", text)) - {"AZURE_SUBSCRIPTION_ID"}
        assert used <= outputs, f"{name}: {sorted(used - outputs)}"
        assert "GALLERY_RESOURCE_GROUP" in outputs


def test_deploy_guide_route_example_and_default_routes_are_valid():
    """The EVENT_ROUTES example in docs/deploy.md and infra/routes.json pass the app's parser."""
    from shared.events import parse_routes

    text = (ROOT / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    assert blocks, "docs/deploy.md has no ```json route example"
    routes = parse_routes(json.loads(blocks[0]))
    assert routes[0].catalogs == ("Win11 Pool", "Win11 Pool DR")
    assert parse_routes(json.loads((ROOT / "infra" / "routes.json").read_text())) == []
