"""The Bicep sets every app setting the code reads, with the code's defaults, and no secret."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.config import SETTING_NAMES, Settings

INFRA = Path(__file__).resolve().parents[2] / "infra"
FUNCTION_BICEP = INFRA / "app" / "function.bicep"
Parse = Callable[[Path], dict[str, Any]]

# Settings whose values come from parameters or other resources, and where they must come from.
WIRED = {
    "AZURE_CLIENT_ID": "identityClientId",
    "KEY_VAULT_URL": "keyVaultUri",
    "CITRIX_CUSTOMER_ID": "citrixCustomerId",
    "CITRIX_API_BASE": "citrixApiBase",
    "CITRIX_SITE_ID": "citrixSiteId",
    "EVENT_ROUTES": "eventRoutes",
}
HOST_SETTING = re.compile(r"^(AzureWebJobsStorage__\w+|APPLICATIONINSIGHTS_\w+)$")


def app_settings(parsed: dict[str, Any]) -> dict[str, Any]:
    """The site's appSettings: a for-loop over union(...) of variables, resolved to one dict."""
    site_config = parsed["resources"]["site"]["config"]["properties"]["siteConfig"]
    loop = site_config["appSettings"]
    source = loop["loop_type"]["detail"]["object_name"]
    names = re.findall(r"'arg_\d+': '(\w+)'", source)
    assert names, f"appSettings must loop over items(union(<variables>)), got {source}"
    settings: dict[str, Any] = {}
    for name in names:
        block = parsed["variables"][name]["value"]
        assert isinstance(block, dict)
        overlap = set(block) & set(settings)
        assert not overlap, f"settings set twice: {overlap}"
        settings.update(block)
    return settings


def module_param(parsed: dict[str, Any], module: str, param: str) -> Any:
    return parsed["modules"][module]["config"]["params"][param]


def accessor_path(node: Any) -> str:
    """`a.b.c` from pycep's nested property_accessor form."""
    if isinstance(node, str):
        return node
    operands = node["operator"]["operands"]
    return f"{accessor_path(operands['operand_1'])}.{accessor_path(operands['operand_2'])}"


def test_every_setting_the_code_reads_is_set(parse_bicep: Parse):
    """Each name in shared.config.SETTING_NAMES is an app setting in function.bicep."""
    names = set(app_settings(parse_bicep(FUNCTION_BICEP)))
    missing = sorted(set(SETTING_NAMES) - names)
    assert not missing, f"Bicep does not set {missing}"


def test_no_unknown_app_settings(parse_bicep: Parse):
    """Every app setting is read by the code or is a Functions host setting (no typos)."""
    names = set(app_settings(parse_bicep(FUNCTION_BICEP)))
    unknown = sorted(n for n in names - set(SETTING_NAMES) if not HOST_SETTING.match(n))
    assert not unknown


def test_wired_settings_come_from_parameters(parse_bicep: Parse):
    """AZURE_CLIENT_ID, KEY_VAULT_URL, customer id, API base, site and routes are parameters."""
    parsed = parse_bicep(FUNCTION_BICEP)
    settings = app_settings(parsed)
    for name, param in WIRED.items():
        assert settings[name] == param, name
        assert param in parsed["parameters"], param


def test_main_wires_identity_client_id_and_vault_uri(parse_bicep: Parse):
    """main.bicep passes the identity's clientId and the vault URI into the function module."""
    main = parse_bicep(INFRA / "main.bicep")
    assert accessor_path(module_param(main, "functionApp", "identityClientId")) == (
        "identity.outputs.clientId"
    )
    assert accessor_path(module_param(main, "functionApp", "keyVaultUri")) == (
        "keyVault.outputs.uri"
    )
    assert module_param(main, "functionApp", "citrixCustomerId") == "citrixCustomerId"
    assert module_param(main, "functionApp", "citrixApiBase") == "citrixApiBase"
    identity = parse_bicep(INFRA / "core" / "identity.bicep")
    assert accessor_path(identity["outputs"]["clientId"]["value"]) == (
        "identity.properties.clientId"
    )
    vault = parse_bicep(INFRA / "core" / "keyvault.bicep")
    assert accessor_path(vault["outputs"]["uri"]["value"]) == "vault.properties.vaultUri"


def test_literal_settings_equal_the_code_defaults(parse_bicep: Parse):
    """Settings.from_env on the Bicep values (params at their defaults) equals Settings()."""
    parsed = parse_bicep(FUNCTION_BICEP)
    main = parse_bicep(INFRA / "main.bicep")
    env = {k: v for k, v in app_settings(parsed).items() if k in SETTING_NAMES and k not in WIRED}
    assert all(isinstance(v, str) for v in env.values()), "app setting values must be strings"
    routes = json.loads((INFRA / "routes.json").read_text())
    env.update(
        {
            "CITRIX_API_BASE": main["parameters"]["citrixApiBase"]["default"],
            "CITRIX_SITE_ID": main["parameters"]["citrixSiteId"]["default"],
            "EVENT_ROUTES": json.dumps(routes),
            "KEY_VAULT_URL": "https://kv-test.vault.azure.net/",
            "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
            "CITRIX_CUSTOMER_ID": "customer",
        }
    )
    from_bicep = Settings.from_env(env)
    expected = dataclasses.replace(
        Settings(),
        key_vault_url="https://kv-test.vault.azure.net",
        azure_client_id="00000000-0000-0000-0000-000000000001",
        citrix_customer_id="customer",
    )
    assert from_bicep == expected
    assert from_bicep.problems == ()


def test_secrets_live_only_in_key_vault(parse_bicep: Parse):
    """Secret settings hold secret NAMES; no keys, connection strings or secure params anywhere."""
    settings = app_settings(parse_bicep(FUNCTION_BICEP))
    assert settings["CITRIX_CLIENT_ID_SECRET_NAME"] == "citrix-client-id"
    assert settings["CITRIX_CLIENT_SECRET_SECRET_NAME"] == "citrix-client-secret"
    assert "AzureWebJobsStorage" not in settings  # no connection string, identity only
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    for service in ("blob", "queue", "table"):
        assert f"AzureWebJobsStorage__{service}ServiceUri" in settings
    for path in INFRA.rglob("*.bicep"):
        text = path.read_text()
        for forbidden in ("listKeys(", "listSecrets(", "AccountKey=", "@secure()", "SharedAccess"):
            assert forbidden not in text, f"{path.name} contains {forbidden}"
