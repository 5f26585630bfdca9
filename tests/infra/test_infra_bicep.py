"""Every Bicep file parses, modules resolve, the security baseline holds, and checkov passes."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

INFRA = Path(__file__).resolve().parents[2] / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
Parse = Callable[[Path], dict[str, Any]]


def _props(parsed: dict[str, Any], resource: str) -> dict[str, Any]:
    props: dict[str, Any] = parsed["resources"][resource]["config"]["properties"]
    return props


def test_infra_has_the_expected_bicep_files():
    """The deployment consists of main.bicep, its modules and the Event Grid template."""
    names = {p.relative_to(INFRA).as_posix() for p in BICEP_FILES}
    assert {
        "main.bicep",
        "app/function.bicep",
        "app/rbac.bicep",
        "core/storage.bicep",
        "core/keyvault.bicep",
        "core/monitoring.bicep",
        "monitoring/observability.bicep",
        "eventgrid/main.bicep",
    } <= names


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path: Path, parse_bicep: Parse):
    """pycep-parser accepts the file and finds at least one resource, module or output."""
    parsed = parse_bicep(path)
    assert parsed.get("resources") or parsed.get("modules") or parsed.get("outputs")


def test_every_module_and_loaded_file_exists(parse_bicep: Parse):
    """Module paths and loadTextContent/loadJsonContent files referenced by Bicep exist."""
    missing = []
    for path in BICEP_FILES:
        for name, module in (parse_bicep(path).get("modules") or {}).items():
            target = path.parent / module["detail"]["path"]
            if not target.is_file():
                missing.append(f"{path.name}: module {name} -> {target}")
        text = path.read_text()
        for ref in re.findall(r"load(?:Text|Json)Content\('([^']+)'\)", text):
            if not (path.parent / ref).is_file():
                missing.append(f"{path.name}: {ref}")
    assert not missing


def test_parameters_file_matches_the_template(parse_bicep: Parse):
    """main.parameters.json (what azd passes) names only parameters main.bicep declares, with
    the declared types, and gives every parameter that has no default; an empty EVENT_ROUTES
    leaves the routes to infra/routes.json."""
    declared = parse_bicep(INFRA / "main.bicep")["parameters"]
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(given) <= set(declared), sorted(set(given) - set(declared))
    required = {name for name, spec in declared.items() if spec.get("default") is None}
    assert required <= set(given), sorted(required - set(given))
    for name, entry in given.items():
        value = entry["value"]
        if declared[name]["type"] == "string":
            assert isinstance(value, str), name
        if isinstance(value, str) and "${" in value:
            assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", value), f"{name}: {value}"
    assert given["eventRoutesJson"]["value"] == "${EVENT_ROUTES=}"
    assert declared["eventRoutesJson"]["default"] == ""
    assert "loadJsonContent('routes.json')" in (INFRA / "main.bicep").read_text()


def test_storage_accepts_only_entra_identities(parse_bicep: Parse):
    """Storage: shared keys off, no anonymous blobs, TLS 1.2, HTTPS only, queues and tables."""
    parsed = parse_bicep(INFRA / "core" / "storage.bicep")
    props = _props(parsed, "storage")
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    types = {r["type"] for r in parsed["resources"].values()}
    assert "Microsoft.Storage/storageAccounts/queueServices" in types
    assert "Microsoft.Storage/storageAccounts/tableServices" in types


def test_key_vault_uses_rbac_soft_delete_and_purge_protection(parse_bicep: Parse):
    """Key Vault: RBAC authorization, soft delete and purge protection enabled."""
    props = _props(parse_bicep(INFRA / "core" / "keyvault.bicep"), "vault")
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True


def test_monitoring_has_local_auth_off(parse_bicep: Parse):
    """Application Insights and Log Analytics accept only Entra-authenticated telemetry."""
    parsed = parse_bicep(INFRA / "core" / "monitoring.bicep")
    assert _props(parsed, "applicationInsights")["DisableLocalAuth"] is True
    assert _props(parsed, "logAnalytics")["features"]["disableLocalAuth"] is True


def test_function_app_is_flex_consumption_python_311_with_user_identity(parse_bicep: Parse):
    """The app runs on FC1 with Python 3.11, HTTPS only, FTPS off and a user-assigned identity."""
    parsed = parse_bicep(INFRA / "app" / "function.bicep")
    plan = parsed["resources"]["plan"]["config"]
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    site = parsed["resources"]["site"]["config"]
    assert site["identity"]["type"] == "UserAssigned"
    props = site["properties"]
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["ftpsState"] == "Disabled"
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert props["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    auth = props["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert auth["type"] == "UserAssignedIdentity"


ROLE_IDS = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "acdd72a7-3d55-4a66-b4a2-2c1b5f6a8ad9": "Reader",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
}


def test_role_ids_carry_the_role_name_and_assignments_are_idempotent():
    """Each role GUID sits next to a comment naming its role; assignment names use guid()."""
    seen = set()
    for path in BICEP_FILES:
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            for role_id, role_name in ROLE_IDS.items():
                if role_id in line:
                    seen.add(role_id)
                    above = lines[index - 1] if index else ""
                    assert role_name in above, f"{path.name}:{index + 1} needs '// {role_name}'"
        text = "\n".join(lines)
        for block in re.findall(
            r"'Microsoft\.Authorization/roleAssignments@[^']+' = [^{]*\{\n\s*name: ([^\n]+)", text
        ):
            assert block.startswith("guid("), f"{path.name}: role assignment name {block}"
    assert "4633458b-17de-408a-b874-0445c86b69e6" in seen  # Key Vault Secrets User is granted


def test_event_grid_subscription_filters_image_version_writes(parse_bicep: Parse):
    """The subscription targets on_image_version_event, filtered on write success of versions."""
    parsed = parse_bicep(INFRA / "eventgrid" / "main.bicep")
    assert parsed["parameters"]["functionName"]["default"] == "on_image_version_event"
    props = _props(parsed, "eventSubscription")
    event_filter = props["filter"]
    assert event_filter["includedEventTypes"] == ["Microsoft.Resources.ResourceWriteSuccess"]
    assert event_filter["advancedFilters"][0]["key"] == "data.operationName"
    assert event_filter["advancedFilters"][0]["values"] == [
        "Microsoft.Compute/galleries/images/versions/write"
    ]
    assert "maxDeliveryAttempts" in props["retryPolicy"]
    text = (INFRA / "eventgrid" / "main.bicep").read_text()
    assert "/versions/'" in text  # subject prefix reaches down to image versions


ROOT = INFRA.parent
# checkov lives in its own venv (make test builds .venv-checkov from requirements-checkov.txt):
# current releases pin packaging<24, which pytest 9 cannot share a venv with.
CHECKOV = Path(os.environ.get("CHECKOV_BIN", ROOT / ".venv-checkov" / "bin" / "checkov"))


def _run_checkov() -> dict[str, Any]:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(INFRA),
            "--framework",
            "bicep",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    start = result.stdout.find("{")
    assert start >= 0, f"checkov printed no JSON (rc={result.returncode}): {result.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(result.stdout[start:])
    return report


def test_checkov_finds_no_failed_check_and_every_skip_is_justified():
    """checkov (framework bicep) on infra/: no failure, no parse error, each skip has a reason."""
    assert CHECKOV.exists(), f"no checkov at {CHECKOV}: make test builds .venv-checkov"
    report = _run_checkov()
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} {c['file_path']}"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, failed
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 15  # it really scanned the templates
    for check in report["results"].get("skipped_checks", []):
        comment = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(comment.strip()) >= 20, f"{check['check_id']} skipped without a real reason"


def test_every_checkov_skip_comment_names_a_check_and_a_reason():
    """Each `checkov:skip=` in the Bicep names a check id and gives a sentence of justification."""
    skips = []
    for path in BICEP_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" in line:
                match = re.search(r"//\s*checkov:skip=(CKV2?_AZURE_\d+):(.{20,})$", line)
                assert match, f"{path.name}:{number}: {line.strip()}"
                skips.append(match.group(1))
