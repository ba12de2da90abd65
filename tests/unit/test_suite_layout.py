"""The test suites share one module namespace (pytest imports test files by basename from the
rootdir, no packages): two files with one basename in different suites break collection of the
whole run. Caught here, in the unit suite, before the root-only suites run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_basename_is_unique_across_suites() -> None:
    names = Counter(path.name for path in TESTS.glob("*/test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
