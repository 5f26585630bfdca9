"""Citrix API credentials from Azure Key Vault, through the real SDK, with no secret leakage.

One code path for Azure and for local runs: ``azure-keyvault-secrets`` ``SecretClient`` with an
``azure-identity`` credential.

* **Identity.** By default ``DefaultAzureCredential``: on Azure it uses the app's managed identity
  (system-assigned, or the user-assigned identity whose client id is in ``AZURE_CLIENT_ID``);
  on a developer machine it falls through to ``az login`` and friends; locally against
  ``local.keyvault_emulator`` it uses the emulator's App Service-style identity endpoint
  (``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``). The app identity needs the
  **Key Vault Secrets User** role on the vault.
* **Caching.** Values are cached per process (one :class:`KeyVaultSecretSource` per worker) for
  ``SECRET_CACHE_TTL_SECONDS``. When Citrix rejects the credentials, the Citrix token provider
  calls :meth:`KeyVaultSecretSource.invalidate`, and the next read goes to the vault (rotation).
* **Errors** are :class:`SecretError` values with a category the orchestration reports:
  ``secret_missing``, ``vault_forbidden``, ``vault_unavailable``, ``vault_throttled``, ``config``.
  429/5xx/connection failures are retried here (the SDK's own retry policy is switched off so
  that every sleep goes through the injected clock), bounded in attempts, per-delay and total
  time, honouring ``Retry-After``.
* **Hygiene.** Nothing read from the vault is logged, returned by :meth:`check`, or put into an
  exception message. azure-core's HTTP logging policy redacts ``Authorization`` (verified in
  ``tests/secrets``); this module never enables ``logging_enable`` (network body tracing).
* **TLS.** Always verified. ``connection_verify`` may name a CA bundle (the emulator's CA).
  Challenge-resource verification (the vault host must end in the challenge's domain,
  ``.vault.azure.net``) is relaxed only when the vault URL host is loopback.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import re
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.secrets import SecretClient

from shared.clock import Clock, SystemClock
from shared.config import (
    ENV_AZURE_CLIENT_ID,
    ENV_CITRIX_CUSTOMER_ID,
    ENV_KEY_VAULT_URL,
    ENV_SECRET_NAME_CLIENT_ID,
    ENV_SECRET_NAME_CLIENT_SECRET,
    ENV_SECRET_NAME_CUSTOMER_ID,
    Settings,
)
from shared.credentials import ClientCredentials

__all__ = ["KeyVaultSecretSource", "SecretCategory", "SecretError", "is_loopback_url"]

logger = logging.getLogger(__name__)

SecretCategory = Literal[
    "secret_missing", "vault_forbidden", "vault_unavailable", "vault_throttled", "config"
]
_RETRYABLE: frozenset[str] = frozenset({"vault_unavailable", "vault_throttled"})
_ROLE = '"Key Vault Secrets User"'
_SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
# Text of identity failures that mean "a user-assigned identity exists but none was named":
# IMDS says "Multiple user assigned identities exist, please specify the clientId ...";
# App Service/Functions answers "Unable to load the proper Managed Identity."
_USER_ASSIGNED_MARKERS = (
    "multiple user assigned identities",
    "unable to load the proper managed identity",
    "identity not found",
    "specify the clientid",
)
_REDACTED = "***"
_T = TypeVar("_T")


class SecretError(Exception):
    """A Key Vault read that did not produce a value. ``message`` is actionable and never
    contains a secret value; ``category`` is what the orchestration reports."""

    def __init__(
        self,
        category: SecretCategory,
        message: str,
        *,
        retryable: bool | None = None,
        secret_name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.category: SecretCategory = category
        self.message = message
        self.retryable = category in _RETRYABLE if retryable is None else retryable
        self.secret_name = secret_name

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape that crosses the activity boundary."""
        return {"category": self.category, "message": self.message, "retryable": self.retryable}

    def __repr__(self) -> str:
        return f"SecretError({self.category!r}, {self.message!r})"


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is loopback (127.0.0.0/8, ::1, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_retry_after(headers: Any, now: float) -> float | None:
    """Seconds to wait from ``retry-after-ms``/``x-ms-retry-after-ms``/``Retry-After``."""
    if headers is None:
        return None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        raw = headers.get(name)
        if raw:
            try:
                return max(0.0, float(raw) / 1000.0)
            except ValueError:
                pass
    raw = headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class KeyVaultSecretSource:
    """Reads the Citrix API client (id + secret) and optionally the customer id from Key Vault.

    Thread-safe; create one per worker process and share it (the cache lives on the instance).
    ``get_citrix_credentials`` is the ``credentials`` callable of ``CitrixTokenProvider`` and
    ``invalidate`` its ``on_credentials_rejected`` hook.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        credential: TokenCredential | None = None,
        clock: Clock | None = None,
        connection_verify: bool | str = True,
        secret_client_factory: Callable[..., SecretClient] | None = None,
        max_attempts: int = 4,
        max_delay_seconds: float = 30.0,
        retry_budget_seconds: float = 60.0,
    ) -> None:
        if connection_verify is False:
            raise ValueError("TLS verification cannot be disabled; pass a CA bundle path instead")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._settings = settings
        self._credential = credential
        self._clock: Clock = clock or SystemClock()
        self._connection_verify = connection_verify
        self._factory: Callable[..., SecretClient] = secret_client_factory or SecretClient
        self._max_attempts = max_attempts
        self._max_delay = max_delay_seconds
        self._budget = retry_budget_seconds
        self._client: SecretClient | None = None
        self._owned_credential: Any = None  # the DefaultAzureCredential made here, if any
        self._client_lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._generation = 0
        self._credentials: tuple[ClientCredentials, float] | None = None
        self._customer_id: tuple[str, float] | None = None
        self._known_values: set[str] = set()

    # -- public API ------------------------------------------------------------------------------

    @property
    def vault_url(self) -> str:
        return self._settings.key_vault_url

    def get_citrix_credentials(self) -> ClientCredentials:
        """The Citrix API client, from the cache while fresh, else from the vault.

        Raises :class:`SecretError` (never anything else for an expected failure)."""
        cached = self._fresh(self._credentials)
        if cached is not None:
            return cached
        with self._fetch_lock:
            cached = self._fresh(self._credentials)
            if cached is not None:
                return cached
            with self._state_lock:
                generation = self._generation
            client_id = self._read(
                self._settings.secret_name_client_id, ENV_SECRET_NAME_CLIENT_ID
            ).strip()
            secret = self._read(
                self._settings.secret_name_client_secret, ENV_SECRET_NAME_CLIENT_SECRET
            ).strip()
            credentials = ClientCredentials(client_id=client_id, secret=secret)
            with self._state_lock:
                self._remember(client_id, secret)
                if generation == self._generation:
                    self._credentials = (credentials, self._clock.time())
            logger.info(
                "Citrix API credentials read from Key Vault %s (secrets %s, %s)",
                self.vault_url,
                self._settings.secret_name_client_id,
                self._settings.secret_name_client_secret,
            )
            return credentials

    def get_customer_id(self) -> str:
        """``CITRIX_CUSTOMER_ID``, else the secret named by ``CITRIX_CUSTOMER_ID_SECRET_NAME``."""
        if self._settings.citrix_customer_id:
            return self._settings.citrix_customer_id
        name = self._settings.secret_name_customer_id
        if not name:
            raise SecretError(
                "config",
                self._with_problems(
                    f"The Citrix customer id is not configured: set {ENV_CITRIX_CUSTOMER_ID} "
                    f"or {ENV_SECRET_NAME_CUSTOMER_ID} (the name of a Key Vault secret "
                    "holding it)."
                ),
            )
        cached = self._fresh(self._customer_id)
        if cached is not None:
            return cached
        with self._fetch_lock:
            cached = self._fresh(self._customer_id)
            if cached is not None:
                return cached
            with self._state_lock:
                generation = self._generation
            value = self._read(name, ENV_SECRET_NAME_CUSTOMER_ID).strip()
            with self._state_lock:
                if generation == self._generation:
                    self._customer_id = (value, self._clock.time())
            return value

    def invalidate(self) -> None:
        """Drop the cache: the next read goes to the vault (called when Citrix rejects the
        credentials, e.g. after a rotation)."""
        with self._state_lock:
            self._generation += 1
            self._credentials = None
            self._customer_id = None
        logger.info("Key Vault secret cache invalidated; the next read goes to the vault")

    def check(self) -> dict[str, Any]:
        """Health view: can the app identity read each configured secret? One attempt per secret
        (no backoff), no cache use, never a value."""
        names = [self._settings.secret_name_client_id, self._settings.secret_name_client_secret]
        if not self._settings.citrix_customer_id and self._settings.secret_name_customer_id:
            names.append(self._settings.secret_name_customer_id)
        result: dict[str, Any] = {
            "ok": False,
            "vault": self.vault_url,
            "identity": self._identity_description(),
            "secrets": dict.fromkeys(names, "not checked"),
        }
        problems = self._reference_problems()
        if problems:
            result["problems"] = problems
        status_by_category = {
            "secret_missing": "missing",
            "vault_forbidden": "forbidden",
            "vault_throttled": "throttled",
            "vault_unavailable": "unavailable",
            "config": "error",
        }
        first_error: SecretError | None = None
        for name in names:
            try:
                value = self._read(name, None, attempts=1)
            except SecretError as exc:
                result["secrets"][name] = (
                    "empty" if "is empty" in exc.message else status_by_category[exc.category]
                )
                first_error = first_error or exc
                if exc.category in ("config", "vault_unavailable"):
                    break  # the other secrets would fail the same way
                continue
            with self._state_lock:
                self._remember(value.strip())
            result["secrets"][name] = "present"
        result["ok"] = first_error is None
        if first_error is not None:
            result["error"] = first_error.to_dict()
        return result

    def redact(self, text: str) -> str:
        """``text`` with every value this source has read replaced by ``***`` (a safety net for
        messages built from foreign exceptions)."""
        with self._state_lock:
            values = sorted(self._known_values, key=len, reverse=True)
        for value in values:
            text = text.replace(value, _REDACTED)
        return text

    def close(self) -> None:
        """Close the SecretClient's connections (and the default credential's)."""
        with self._client_lock:
            client, self._client = self._client, None
            owned, self._owned_credential = self._owned_credential, None
        if client is not None:
            client.close()
        if owned is not None:
            owned.close()

    # -- internals -------------------------------------------------------------------------------

    def _fresh(self, entry: tuple[_T, float] | None) -> _T | None:
        ttl = self._settings.secret_cache_ttl_seconds
        with self._state_lock:
            if entry is None or ttl <= 0:
                return None
            value, fetched_at = entry
            return value if self._clock.time() - fetched_at < ttl else None

    def _remember(self, *values: str) -> None:
        # Short values (an empty string, "a") would make redaction destroy normal text.
        self._known_values.update(v for v in values if len(v) >= 4)

    def _reference_problems(self) -> list[str]:
        return [p for p in self._settings.problems if "Key Vault reference" in p]

    def _with_problems(self, message: str) -> str:
        problems = self._reference_problems()
        if problems:
            message += " Also: " + "; ".join(problems) + "."
        return message

    def _identity_description(self) -> str:
        if self._credential is not None:
            return "injected credential"
        if self._settings.azure_client_id:
            return f"user-assigned managed identity ({ENV_AZURE_CLIENT_ID} is set)"
        return "DefaultAzureCredential (system-assigned managed identity or developer sign-in)"

    def _get_client(self) -> SecretClient:
        with self._client_lock:
            if self._client is not None:
                return self._client
            url = self._settings.key_vault_url
            if not url:
                raise SecretError(
                    "config",
                    self._with_problems(
                        f"{ENV_KEY_VAULT_URL} is not set: set it to the vault URL "
                        "(https://<vault-name>.vault.azure.net) so the Citrix credentials "
                        "can be read."
                    ),
                )
            parts = urlsplit(url)
            if parts.scheme != "https" or not parts.hostname:
                raise SecretError(
                    "config",
                    f"{ENV_KEY_VAULT_URL} must be an https:// URL such as "
                    f"https://<vault-name>.vault.azure.net, got {url!r}.",
                )
            credential = self._credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                # managed_identity_client_id=None explicitly means system-assigned.
                credential = self._owned_credential = DefaultAzureCredential(
                    managed_identity_client_id=self._settings.azure_client_id or None
                )
            self._client = self._factory(
                url,
                credential,
                verify_challenge_resource=not is_loopback_url(url),
                connection_verify=self._connection_verify,
                retry_total=0,  # retries happen in _read, sleeping through the injected clock
                connection_timeout=10,
                read_timeout=30,
            )
            return self._client

    def _read(self, name: str, setting: str | None, *, attempts: int | None = None) -> str:
        """One secret value, with bounded retries of throttling and outages."""
        if not _SECRET_NAME.match(name):
            where = f" (from {setting})" if setting else ""
            raise SecretError(
                "config",
                f"Secret name {name!r}{where} is not a valid Key Vault secret name "
                "(1-127 characters: letters, digits and '-').",
                secret_name=name,
            )
        client = self._get_client()
        limit = attempts or self._max_attempts
        slept = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                secret = client.get_secret(name)
            except Exception as exc:  # every failure becomes a SecretError
                error, delay = self._translate(exc, name, attempt)
            else:
                value = secret.value
                if not value:
                    raise SecretError(
                        "secret_missing",
                        self._with_problems(
                            f"Secret {name!r} in Key Vault {self.vault_url} is empty: set its "
                            "value (az keyvault secret set)."
                        ),
                        secret_name=name,
                    )
                logger.debug("read secret %s from %s (attempt %d)", name, self.vault_url, attempt)
                return value
            if not error.retryable or attempt >= limit:
                raise self._final(error, attempt) from None
            if delay is None:
                delay = min(self._max_delay, 2.0 ** (attempt - 1))
            if delay > self._max_delay or slept + delay > self._budget:
                raise self._final(error, attempt, wait=delay) from None
            logger.info(
                "Key Vault %s: %s reading %s; retry %d/%d in %.1f s",
                self.vault_url,
                error.category,
                name,
                attempt,
                limit - 1,
                delay,
            )
            self._clock.sleep(delay)
            slept += delay

    def _final(self, error: SecretError, attempts: int, wait: float | None = None) -> SecretError:
        if not error.retryable:
            return error
        suffix = f" Gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
        if wait is not None:
            suffix += f" (the next wait, {wait:g} s, is beyond the retry bound)"
        return SecretError(
            error.category, error.message + suffix + ".", secret_name=error.secret_name
        )

    def _translate(
        self, exc: Exception, name: str, attempt: int
    ) -> tuple[SecretError, float | None]:
        """Map an SDK exception to a SecretError plus the server-requested delay, if any."""
        vault = self.vault_url
        if isinstance(exc, SecretError):
            return exc, None
        if isinstance(exc, ResourceNotFoundError):
            return SecretError(
                "secret_missing",
                self._with_problems(
                    f"Secret {name!r} was not found in Key Vault {vault}: create it "
                    f"(az keyvault secret set --vault-name <vault> --name {name} --file <file>) "
                    "or point the secret-name setting at the right secret."
                ),
                secret_name=name,
            ), None
        if isinstance(exc, HttpResponseError) and exc.status_code is not None:
            status = exc.status_code
            headers = getattr(exc.response, "headers", None)
            detail = self._service_detail(exc)
            if status == 403:
                return self._forbidden(name, detail), None
            if status == 401:
                return SecretError(
                    "vault_forbidden",
                    self._with_problems(
                        f"Key Vault {vault} rejected the app identity's token (401) reading "
                        f"{name!r}: check that the vault is in the identity's tenant"
                        + self._identity_hint()
                        + "."
                    ),
                    secret_name=name,
                ), None
            if status == 429:
                return SecretError(
                    "vault_throttled",
                    f"Key Vault {vault} is throttling requests (429) while reading {name!r}.",
                    secret_name=name,
                ), _parse_retry_after(headers, self._clock.time())
            if status >= 500 or status == 408:
                return SecretError(
                    "vault_unavailable",
                    f"Key Vault {vault} answered {status} while reading {name!r}.",
                    secret_name=name,
                ), _parse_retry_after(headers, self._clock.time())
            return SecretError(
                "config",
                f"Key Vault {vault} refused the request for {name!r} with {status}"
                + (f" ({detail})" if detail else "")
                + ".",
                secret_name=name,
            ), None
        if isinstance(exc, HttpResponseError):
            # No HTTP status: the credential failed before any vault request was authorised
            # (ClientAuthenticationError / CredentialUnavailableError).
            return self._identity_error(exc), None
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
                return SecretError(
                    "vault_unavailable",
                    f"TLS certificate verification failed for Key Vault {vault}: the server "
                    "certificate is not trusted (for the local emulator pass its CA bundle as "
                    "connection_verify).",
                    retryable=False,
                ), None
            return SecretError(
                "vault_unavailable",
                f"Key Vault {vault} is unreachable ({type(exc).__name__}): check "
                f"{ENV_KEY_VAULT_URL}, DNS, private endpoint and firewall settings.",
            ), None
        logger.warning("unexpected %s reading secret %s from %s", type(exc).__name__, name, vault)
        return SecretError(
            "vault_unavailable",
            f"Unexpected {type(exc).__name__} reading {name!r} from Key Vault {vault}.",
            retryable=False,
            secret_name=name,
        ), None

    @staticmethod
    def _service_detail(exc: HttpResponseError) -> str:
        error = getattr(exc, "error", None)
        code = getattr(error, "code", None) or ""
        message = getattr(error, "message", None) or ""
        return f"{code}: {message}"[:300] if code or message else ""

    def _identity_hint(self) -> str:
        if self._settings.azure_client_id:
            return (
                f"; the app uses the user-assigned identity named by {ENV_AZURE_CLIENT_ID} "
                "(check it is the identity that holds the role)"
            )
        return (
            f"; if the app uses a user-assigned managed identity, set {ENV_AZURE_CLIENT_ID} "
            "to its client id"
        )

    def _forbidden(self, name: str, detail: str) -> SecretError:
        vault = self.vault_url
        lowered = detail.lower()
        if "disabled secret" in lowered:
            message = (
                f"Secret {name!r} in Key Vault {vault} is disabled: enable it or set a new version."
            )
            return SecretError("secret_missing", self._with_problems(message), secret_name=name)
        if "firewall" in lowered or "network" in lowered:
            message = (
                f"Key Vault {vault} refused the request for {name!r} because of its network "
                "rules (403 ForbiddenByFirewall): allow the app's outbound network or use a "
                "private endpoint."
            )
        else:
            message = (
                f"Key Vault {vault} denied reading secret {name!r} (403 Forbidden): the app "
                f"identity needs the {_ROLE} role on that vault (Azure RBAC)"
                + self._identity_hint()
                + ". Role assignments can take a few minutes to apply."
            )
        return SecretError("vault_forbidden", self._with_problems(message), secret_name=name)

    def _identity_error(self, exc: Exception) -> SecretError:
        flat = " ".join(str(exc).split())
        # azure-identity's text lists what each credential tried (no token, no secret value):
        # logged for the operator, kept out of the SecretError that crosses the activity boundary.
        logger.warning("no token for Key Vault %s: %s", self.vault_url, flat[:1000])
        text = flat.lower()
        vault = self.vault_url
        if any(marker in text for marker in _USER_ASSIGNED_MARKERS):
            if self._settings.azure_client_id:
                message = (
                    f"The managed identity named by {ENV_AZURE_CLIENT_ID} could not get a token "
                    f"for Key Vault {vault}: check that this user-assigned identity is assigned "
                    f"to the Function App and that {ENV_AZURE_CLIENT_ID} holds its client id "
                    "(not its object id)."
                )
            else:
                message = (
                    f"The app could not get a managed identity token for Key Vault {vault}: it "
                    "has a user-assigned managed identity but no system-assigned one, and "
                    f"{ENV_AZURE_CLIENT_ID} is not set. Set the app setting "
                    f"{ENV_AZURE_CLIENT_ID} to the user-assigned identity's client id."
                )
        else:
            message = (
                f"No Azure identity could get a token for Key Vault {vault}: on Azure enable "
                "the Function App's managed identity (or set "
                f"{ENV_AZURE_CLIENT_ID} for a user-assigned one); on a workstation sign in "
                "with 'az login'; with the local emulator set IDENTITY_ENDPOINT and "
                "IDENTITY_HEADER."
            )
        return SecretError("config", self._with_problems(message))
