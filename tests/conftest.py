"""Session fixtures: libvirt's RelaxNG schema and its test:///default driver (see helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import DOMAIN_RNG, DomainChecker, unavailable
from lxml import etree

# netns, ovs, br_int, libvirtd, conn, host, scratch: real components for the functional and
# integration suites.
pytest_plugins = ["tests.fixtures.plugin"]


@pytest.fixture(scope="session")
def domain_rng() -> etree.RelaxNG:
    if not DOMAIN_RNG.exists():
        unavailable(f"{DOMAIN_RNG} is missing (apt-get install libvirt-daemon)")
    return etree.RelaxNG(file=str(DOMAIN_RNG))


@pytest.fixture(scope="session")
def test_conn() -> Iterator[Any]:
    try:
        import libvirt
    except ImportError:
        unavailable("libvirt-python is not installed (pip install '.[libvirt]')")
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def libvirt_check(domain_rng: etree.RelaxNG, test_conn: Any) -> DomainChecker:
    return DomainChecker(domain_rng, test_conn)
