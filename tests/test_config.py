"""Settings: defaults, validation and problem detection."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings, resolve_api_base


def test_defaults_are_safe():
    """With nothing set, VDAs are never force-rebooted and the US region is used."""
    settings = Settings.from_env({})
    assert settings.default_vda_update_delay == -1
    assert settings.citrix_api_base == "https://api-us.cloud.com"
    assert any("KEY_VAULT_URL" in p for p in settings.problems)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("eu", "https://api-eu.cloud.com"),
        ("JP", "https://api.citrixcloud.jp"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ],
)
def test_region_presets_and_urls(value, expected):
    """Region presets resolve to their hosts and loopback URLs pass through."""
    assert resolve_api_base(value) == expected


def test_plain_http_to_a_remote_host_is_refused():
    """A non-TLS remote API base would send the bearer token in clear text."""
    with pytest.raises(ConfigError, match="CITRIX_API_BASE"):
        resolve_api_base("http://api.example.com")


def test_bad_integer_names_the_setting():
    """A malformed number names the setting in the error."""
    with pytest.raises(ConfigError, match="POLL_MIN_INTERVAL_SECONDS"):
        Settings.from_env({"POLL_MIN_INTERVAL_SECONDS": "soon"})


def test_unresolved_key_vault_reference_is_reported_by_name():
    """A literal @Microsoft.KeyVault(...) left in a setting is reported by the setting's name."""
    settings = Settings.from_env(
        {"CITRIX_CUSTOMER_ID": "@Microsoft.KeyVault(VaultName=v;SecretName=s)"}
    )
    assert any(p.startswith("CITRIX_CUSTOMER_ID holds an unresolved") for p in settings.problems)


def test_loopback_lookalike_host_is_refused():
    """http://localhost.example.com is not loopback and must not pass as the simulator."""
    with pytest.raises(ConfigError):
        resolve_api_base("http://localhost.example.com")


@pytest.mark.parametrize("value", ["fast", "nan", "-1", "1e9"])
def test_pacing_rate_must_be_a_sane_number(value):
    """CITRIX_MAX_REQUESTS_PER_SECOND takes fractions but refuses junk, NaN and out-of-range."""
    assert (
        Settings.from_env({"CITRIX_MAX_REQUESTS_PER_SECOND": "0.5"}).max_requests_per_second == 0.5
    )
    with pytest.raises(ConfigError, match="CITRIX_MAX_REQUESTS_PER_SECOND"):
        Settings.from_env({"CITRIX_MAX_REQUESTS_PER_SECOND": value})
