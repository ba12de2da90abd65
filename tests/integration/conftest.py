"""pytest fixtures over tests/fixtures: a netns, a private OVS and a private libvirtd per session.

Missing root or programs skip with the reason, except when VIFPLUG_REQUIRE_LIBVIRT=1 (CI,
tests/run-all.sh), where they fail. Whatever a fixture started is stopped even when tests fail,
and the session ends by checking nothing of ours is left (namespaces, daemons).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import pytest

try:
    import tests.fixtures  # noqa: F401 - `python -m pytest` from the checkout finds it
except ModuleNotFoundError:  # plain `pytest`: put the checkout on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fixtures import Netns, PrivateLibvirtd, PrivateOvs, Unavailable, leaks
from tests.fixtures.vm import VmHost

REQUIRE_LIBVIRT = os.environ.get("VIFPLUG_REQUIRE_LIBVIRT") == "1"

_T = TypeVar("_T")


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail when the run must prove libvirt (CI)."""
    if REQUIRE_LIBVIRT:
        pytest.fail(f"{reason} (VIFPLUG_REQUIRE_LIBVIRT=1: tests/run-all.sh installs it)",
                    pytrace=False)
    pytest.skip(reason)


def entered(manager: AbstractContextManager[_T]) -> Iterator[_T]:
    """Enter ``manager`` (an Unavailable becomes a skip, or a failure in CI), yield it, exit."""
    try:
        value = manager.__enter__()
    except Unavailable as error:
        unavailable(str(error))
    try:
        yield value
    finally:
        manager.__exit__(None, None, None)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def _no_leaks() -> Iterator[None]:
    """Set up first, so torn down last: after every fixture below has cleaned up.

    Meanwhile SIGTERM (a CI timeout, `kill`) interrupts like Ctrl-C does, so the fixtures still
    stop their daemons and delete their namespaces instead of dying with them running."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
    left = leaks()
    if left:
        pytest.fail(f"left behind after the session: {', '.join(left)}", pytrace=False)


@pytest.fixture(scope="session")
def netns() -> Iterator[Netns]:
    yield from entered(Netns())


@pytest.fixture(scope="session")
def ovs(netns: Netns) -> Iterator[PrivateOvs]:
    yield from entered(PrivateOvs(netns))


@pytest.fixture(scope="session")
def br_int(ovs: PrivateOvs) -> str:
    ovs.add_bridge("br-int")
    return "br-int"


@pytest.fixture(scope="session")
def libvirtd(netns: Netns, ovs: PrivateOvs) -> Iterator[PrivateLibvirtd]:
    yield from entered(PrivateLibvirtd(netns, ovs))


@pytest.fixture(scope="session")
def conn(libvirtd: PrivateLibvirtd) -> Iterator[Any]:
    import libvirt

    connection = libvirt.open(libvirtd.uri)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def host(libvirtd: PrivateLibvirtd, conn: Any, br_int: str) -> VmHost:
    """The private "host" to start domains on (KVM when /dev/kvm works, else TCG)."""
    return VmHost(libvirtd, conn, br_int)


@pytest.fixture
def scratch(netns: Netns) -> Iterator[list[str]]:
    """Append the names of devices a test creates in ``netns``: deleted after the test."""
    with netns.scratch() as names:
        yield names
