"""Network drivers: one module per mode, each behind the contract in base.py."""
