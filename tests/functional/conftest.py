"""Function-scoped helpers for the plug/unplug tests (the session's netns and private OVS come
from tests/fixtures/plugin.py).

- ``new_vif(example, **changes)``: an example VIF with a fresh id (so fresh device names), MAC and
  interface id; ``changes`` are merged into its JSON (``None`` removes a key).
- ``make_host(backend)``: a vifplug ``Host`` on the session netns and private OVS, closed after
  the test, with its locks in the test's tmp dir.
- ``leftovers``: names of devices, OVS ports and OVS bridges a test may create; removed after the
  test with ``ip``/``ovs-vsctl`` (never through vifplug, so a vifplug bug cannot leak them).
- ``env``: all of the above and the session's netns, OVS and br-int, in one argument.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import Netns, PrivateOvs
from tests.fixtures.snapshot import HostSnapshot, host_snapshot
from vifplug import names
from vifplug.host import Host
from vifplug.loading import vifs_from_data
from vifplug.model import Vif

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _merge(data: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        elif isinstance(value, dict) and isinstance(data.get(key), dict):
            _merge(data[key], value)
        else:
            data[key] = value


def example_data(example: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / example).read_text())
    vif_id = str(uuid.uuid4())
    data["id"] = vif_id
    data["mac"] = "fa:16:3e:" + ":".join(vif_id[i:i + 2] for i in (0, 2, 4))
    if "ovs" in data:
        data["ovs"]["interface_id"] = vif_id
    _merge(data, changes)
    return data


class Leftovers:
    """What to remove after a test, whatever happened in it."""

    def __init__(self) -> None:
        self.links: list[str] = []
        self.ports: list[str] = []
        self.bridges: list[str] = []

    def vif(self, vif: Vif) -> Vif:
        """Every device and OVS port name a plug of ``vif`` could create."""
        made = [derive(vif.id) for derive in (names.tap_name, names.qbr_name, names.qvb_name,
                                               names.qvo_name, names.vhu_name)]
        made += [vif.host_device] if vif.host_device is not None else []
        self.links += made
        self.ports += made
        return vif


@pytest.fixture
def leftovers(netns: Netns, ovs: PrivateOvs) -> Iterator[Leftovers]:
    found = Leftovers()
    yield found
    for port in found.ports:
        ovs.vsctl("--if-exists", "del-port", port, check=False)
    for bridge in found.bridges:
        ovs.vsctl("--if-exists", "del-br", bridge, check=False)
    for name in found.links:
        netns.delete_link(name)


@pytest.fixture
def new_vif(leftovers: Leftovers) -> Callable[..., Vif]:
    """``new_vif("ovs-hybrid.json", mtu=None, network={"vlan": 7})`` → a fresh VIF."""

    def make(example: str, **changes: Any) -> Vif:
        data = example_data(example, **changes)
        return leftovers.vif(vifs_from_data(data, source=example)[0])

    return make


@pytest.fixture
def make_host(netns: Netns, ovs: PrivateOvs, tmp_path: Path) -> Iterator[Callable[[str], Host]]:
    hosts: list[Host] = []

    def make(backend: str = "native") -> Host:
        host = Host(netns=netns.name, ovsdb=ovs.db, ovsdb_backend=backend,  # type: ignore[arg-type]
                    lock_dir=tmp_path / "locks")
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()


@pytest.fixture(params=["native", "vsctl"])
def ovsdb_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@dataclass(frozen=True)
class Env:
    """One test's view of the session's real host: its netns, private OVS (with br-int), and
    the helpers above."""

    netns: Netns
    ovs: PrivateOvs
    br_int: str
    vif: Callable[..., Vif]
    host: Callable[[str], Host]
    leftovers: Leftovers

    def snapshot(self) -> HostSnapshot:
        return host_snapshot(self.netns, self.ovs)


@pytest.fixture
def env(ovs: PrivateOvs, br_int: str, new_vif: Callable[..., Vif],
        make_host: Callable[[str], Host], leftovers: Leftovers) -> Env:
    return Env(ovs.netns, ovs, br_int, new_vif, make_host, leftovers)
