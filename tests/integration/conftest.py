"""The integration suite's fixtures come from tests/fixtures/plugin.py (see tests/conftest.py)."""
