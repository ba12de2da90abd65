"""Port isolation on a real Linux bridge (issue 14, item 3), with stand-in guests.

Plug (vifplug) makes the Linux bridge of three ``bridge`` VIFs (``create_bridge``). There is no
QEMU here, so what libvirt does when a guest starts is done by :func:`start_like_libvirt` from
the ``<interface>`` vifplug rendered: a veth named as ``<target dev>`` (the TAP's stand-in), its
host end enslaved to ``<source bridge>`` and, when the XML says ``<port isolated='yes'/>``, made
an isolated bridge port (the kernel flag libvirt sets: IFLA_BRPORT_ISOLATED); its other end in
a guest namespace of its own with the VIF's MAC and an address in 198.51.100.0/24.

- two isolated guests do not reach each other; each reaches the non-isolated one (and it them);
- vifplug's readiness of the started guests (``wait --started``) reads the flag from the kernel:
  an isolated VIF whose port is not isolated is not ready, and says why.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.fixtures import Netns
from tests.functional.test_traffic import ping_from
from vifplug.driver import GenericVIFDriver
from vifplug.host import Host
from vifplug.loading import load_vifs
from vifplug.model import BridgeVif

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = [pytest.mark.root]


def bridge_vif(bridge: str, *, isolated: bool) -> BridgeVif:
    """examples/bridge-isolated.json with a fresh id and MAC on ``bridge`` (made by plug)."""
    data: dict[str, Any] = json.loads((EXAMPLES / "bridge-isolated.json").read_text())
    data["id"] = str(uuid.uuid4())
    data["mac"] = "fa:16:3e:" + ":".join(uuid.uuid4().hex[i:i + 2] for i in (0, 2, 4))
    data["network"] = {"name": "red", "bridge": bridge, "create_bridge": True}
    data["isolated"] = isolated
    (vif,) = load_vifs(data)
    assert isinstance(vif, BridgeVif)
    return vif


class Guests:
    """Stand-in guests started from rendered ``<interface>`` XML; removed on exit."""

    def __init__(self, netns: Netns, stack: contextlib.ExitStack) -> None:
        self.netns = netns
        self.stack = stack
        self.addresses: dict[str, str] = {}
        self.namespaces: dict[str, Netns] = {}

    def start_like_libvirt(self, vif: BridgeVif, iface: etree._Element, address: str) -> None:
        """What libvirt does with ``iface`` when the guest starts (see the module doc)."""
        source, target = iface.find("source"), iface.find("target")
        assert source is not None
        assert target is not None
        host, bridge = target.get("dev") or "", source.get("bridge") or ""
        guest = self.stack.enter_context(Netns())
        self.stack.callback(self.netns.delete_link, host)
        self.netns.ip("link", "add", "name", host, "type", "veth", "peer", "name", "g-" + host[3:])
        self.netns.ip("link", "set", "dev", "g-" + host[3:], "netns", guest.name)
        self.netns.ip("link", "set", "dev", host, "master", bridge)
        port = iface.find("port")
        if port is not None and port.get("isolated") == "yes":
            self.netns.ip("link", "set", "dev", host, "type", "bridge_slave", "isolated", "on")
        self.netns.ip("link", "set", "dev", host, "up")
        guest.ip("link", "set", "dev", "g-" + host[3:], "name", "eth0", "address", vif.mac)
        guest.ip("address", "add", f"{address}/24", "dev", "eth0")
        guest.ip("link", "set", "dev", "eth0", "up")
        self.addresses[vif.id] = address
        self.namespaces[vif.id] = guest

    def ping(self, source: BridgeVif, destination: BridgeVif, count: int = 3) -> int:
        return ping_from(self.namespaces[source.id], self.addresses[destination.id], count)


@contextlib.contextmanager
def plugged(netns: Netns, vifs: list[BridgeVif], tmp_path: Path) -> Iterator[tuple[Host, Guests]]:
    bridge = vifs[0].network.bridge
    with Host(netns=netns.name, lock_dir=tmp_path / "locks") as host:
        try:
            with contextlib.ExitStack() as stack:
                GenericVIFDriver().plug_many(vifs, host)
                yield host, Guests(netns, stack)
        finally:
            netns.ip("link", "delete", "dev", bridge, check=False)  # plug made it; unplug keeps it


def test_isolated_guests_reach_the_others_but_not_each_other(netns: Netns,
                                                             tmp_path: Path) -> None:
    bridge = "vd" + uuid.uuid4().hex[:8]
    first, second = (bridge_vif(bridge, isolated=True) for _ in range(2))
    peer = bridge_vif(bridge, isolated=False)
    driver = GenericVIFDriver(libvirt_version="6.1.0")
    with plugged(netns, [first, second, peer], tmp_path) as (host, guests):
        link = netns.link(bridge)
        assert link is not None
        assert link["linkinfo"]["info_kind"] == "bridge"  # plug made it
        for number, vif in enumerate((first, second, peer), 10):
            guests.start_like_libvirt(vif, driver.interface_xml(vif), f"198.51.100.{number}")
        for vif in (first, second, peer):  # the kernel's view, as ip shows it
            shown = netns.link(vif.tap_name)
            assert shown is not None
            assert shown["linkinfo"]["info_slave_data"]["isolated"] is vif.isolated
        states = driver.wait([first, second, peer], host, started=True, timeout=10)
        assert [state.details[vif.tap_name]["link"].get("isolated")
                for state, vif in zip(states, (first, second, peer), strict=True)] == [
                    True, True, None]  # None: not asked (the peer is not isolated)

        assert guests.ping(first, second) == 0
        assert guests.ping(second, first) == 0
        assert guests.ping(first, peer) == 3
        assert guests.ping(second, peer) == 3
        assert guests.ping(peer, first) == 3
        assert guests.ping(peer, second) == 3


def test_readiness_sees_a_port_that_is_not_isolated(netns: Netns, tmp_path: Path) -> None:
    """libvirt older than 6.1.0 would not have set the flag (vifplug refuses to render for it):
    a started guest whose TAP is not isolated is not ready, and the reason says so."""
    bridge = "vd" + uuid.uuid4().hex[:8]
    isolated = bridge_vif(bridge, isolated=True)
    driver = GenericVIFDriver()
    with plugged(netns, [isolated], tmp_path) as (host, guests):
        as_if_ignored = driver.interface_xml(isolated)
        port = as_if_ignored.find("port")
        assert port is not None
        as_if_ignored.remove(port)
        guests.start_like_libvirt(isolated, as_if_ignored, "198.51.100.20")
        [state] = driver.readiness([isolated], host, started=True)
        assert state.reasons == (
            f"{isolated.tap_name} is not an isolated port of {bridge} (libvirt isolates it "
            "from <port isolated='yes'/> when it starts the guest)",)
        netns.ip("link", "set", "dev", isolated.tap_name, "type", "bridge_slave", "isolated",
                 "on")
        assert driver.readiness([isolated], host, started=True)[0].ready
