"""The Citrix API client credential, as read from Key Vault. Its repr never shows the secret."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ClientCredentials"]


@dataclass(frozen=True)
class ClientCredentials:
    """A Citrix Cloud API client (id + secret). ``secret`` is excluded from repr and equality
    output so it cannot reach a log line or an exception message by accident."""

    client_id: str
    secret: str = field(repr=False)

    def __str__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, secret=***)"
