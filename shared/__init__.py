"""catalog-updater domain package: Citrix client, secrets, orchestration bodies, triggers' logic."""
