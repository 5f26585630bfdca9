"""Everything needed to run and test catalog-updater on one machine without Azure.

Not deployed (see .funcignore): Citrix API simulator, Key Vault emulator, local durable host,
local functions host and the demo runner.
"""
