"""vifplug's own plugging, with real guests: plug → start QEMU on the private libvirtd → destroy
→ unplug, for every connection whose host side vifplug builds (or checks) and QEMU can run here.

Each test plugs with ``GenericVIFDriver(conn=conn).plug(vif, Host(netns, ovsdb))`` and the
domain's UUID as the instance UUID, renders the ``<interface>`` with the same driver, starts a
diskless domain from it, and checks where the guest's TAP really ended up (its bridge or OVS
port, its MTU and flags, the OVS rows' tag and external_ids, the fds QEMU holds). Plugging
again while the guest runs must change nothing (what a compute service does for its running
guests when it restarts). After the domain is destroyed, unplug must leave the host exactly as
it was before plug: every device and every OVSDB row compared (``host_snapshot``).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.fixtures.snapshot import HostSnapshot, host_snapshot
from tests.fixtures.vm import Running, VmHost, qemu_nic, qemu_tun_fds
from vifplug import GenericVIFDriver, Vif, load_vifs, names
from vifplug.host import Host
from vifplug.plan import RequireOvsBridge

pytestmark = [
    pytest.mark.root,
    # The ovs wheel (under ovsdbapp) imports eventlet when it is installed (os-vif brings it):
    # eventlet warns on import and, from an at-fork hook, whenever pyroute2 forks its netns
    # helper (see test_plug_into_netns_forks_no_child).
    pytest.mark.filterwarnings("ignore:\\s*Eventlet is deprecated"),
    pytest.mark.filterwarnings("ignore:Using fork\\(\\) is a bad idea:DeprecationWarning"),
]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def fresh(name: str, *, drop: tuple[str, ...] = (), **changes: Any) -> Vif:
    """examples/<name>.json with a fresh id (and OVS interface_id) and MAC, keys in ``drop``
    removed and top-level keys replaced (dicts merged) by ``changes``."""
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    for key in drop:
        del data[key]
    data["id"] = str(uuid.uuid4())
    tail = uuid.uuid4().hex
    data["mac"] = "fa:16:3e:" + ":".join(tail[i:i + 2] for i in (0, 2, 4))
    if "ovs" in data:
        data["ovs"]["interface_id"] = str(uuid.uuid4())  # unlike the id: proves which is used
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    (vif,) = load_vifs(data)
    return vif


def hybrid() -> Vif:
    # No filter: nwfilter's clean-traffic is not defined on the private libvirtd.
    return fresh("ovs-hybrid", drop=("filter",))


def manual() -> Vif:
    return fresh("ovs-manual")


def virtualport() -> Vif:
    return fresh("ovs-virtualport")


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def driver(conn: Any) -> GenericVIFDriver:
    return GenericVIFDriver(conn=conn)


@pytest.fixture(scope="module")
def lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("locks")


@pytest.fixture(scope="module")
def plug_host(host: VmHost, lock_dir: Path) -> Iterator[Host]:
    """vifplug's view of the libvirtd's host: its netns and its private OVS (native backend)."""
    with Host(netns=host.netns.name, ovsdb=host.ovs.db, lock_dir=lock_dir) as plugged:
        yield plugged


class Cleanup:
    """What a test plugged: unplugged by vifplug after the test, and whatever is still there
    (a failed unplug) deleted by name, so one failure does not leak into the next test."""

    def __init__(self, host: VmHost, driver: GenericVIFDriver, plug_host: Host) -> None:
        self.host, self.driver, self.plug_host = host, driver, plug_host
        self.vifs: list[Vif] = []
        self.devices: list[str] = []

    def add(self, *vifs: Vif) -> None:
        self.vifs += vifs
        for vif in vifs:
            self.devices += [derive(vif.id) for derive in (names.qvb_name, names.qbr_name)]
            self.devices += [vif.host_device or names.tap_name(vif.id)]

    def run(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.unplug_many(self.vifs, self.plug_host)
        for name in self.devices:
            self.host.ovs.vsctl("--if-exists", "del-port", name, check=False)
            if self.host.netns.link(name) is not None:
                self.host.netns.ip("link", "delete", "dev", name, check=False)


@pytest.fixture
def cleanup(host: VmHost, driver: GenericVIFDriver, plug_host: Host) -> Iterator[Cleanup]:
    registry = Cleanup(host, driver, plug_host)
    try:
        yield registry
    finally:
        registry.run()


# --- looking at the host -----------------------------------------------------------------------


def snapshot(host: VmHost) -> HostSnapshot:
    return host_snapshot(host.netns, host.ovs)


def assert_same(after: HostSnapshot, before: HostSnapshot, what: str) -> None:
    assert after == before, f"{what} left the host changed:\n" + "\n".join(before.diff(after))


def links(host: VmHost) -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in host.netns.links()}


def tun_data(link: dict[str, Any]) -> dict[str, Any]:
    info = link["linkinfo"]
    assert info["info_kind"] == "tun", link
    data: dict[str, Any] = info["info_data"]
    return data


def assert_ovs_port(host: VmHost, port: str, vif: Vif, *, instance_uuid: str,
                    uuid_key: str = "vm-uuid") -> None:
    """``port`` is an OVS port of the integration bridge, opened by the switch, with the VIF's
    access tag and identity (``vm-uuid`` where vifplug adds the port, ``vm-id`` for libvirt)."""
    assert vif.ovs is not None
    rows = snapshot(host).ovsdb
    assert port in rows["Bridge"][str(vif.network.bridge)]["ports"]
    assert rows["Port"][port]["tag"] == vif.network.vlan
    assert rows["Port"][port]["trunks"] == []
    ids = rows["Interface"][port]["external_ids"]
    assert ids["iface-id"] == vif.ovs.interface_id
    assert ids["attached-mac"] == vif.mac
    assert ids[uuid_key] == instance_uuid
    assert ids["iface-status"] == "active"
    assert host.ovs.get("Interface", port, "error") == "[]"
    assert int(host.ovs.get("Interface", port, "ofport")) > 0  # the switch really opened it


def assert_running(vm: Running, instance_uuid: str) -> None:
    """The domain runs with the UUID plug was told, and each live ``<interface>`` kept the
    type and target vifplug rendered."""
    import libvirt

    assert vm.dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert vm.dom.UUIDString() == instance_uuid
    assert len(vm.live) == len(vm.rendered)
    for live, rendered in zip(vm.live, vm.rendered, strict=True):
        assert live.get("type") == rendered.get("type")
        assert live.find("mac").get("address") == rendered.find("mac").get("address")
        wanted = rendered.find("target")
        got = live.find("target")
        assert got is not None
        assert wanted is not None
        for name, value in wanted.attrib.items():
            assert got.get(name) == value, etree.tostring(live, encoding="unicode")


# --- per connection: what plug made and where libvirt put the guest's TAP ------------------------


def check_hybrid(host: VmHost, vif: Vif, vm: Running, instance_uuid: str) -> None:
    found = links(host)
    tap, qbr, qvb, qvo = (found.get(name) for name in
                          (vif.tap_name, vif.qbr_name, vif.qvb_name, vif.qvo_name))
    assert tap is not None, f"libvirt did not create {vif.tap_name}"
    assert qbr is not None
    assert qvb is not None
    assert qvo is not None
    assert qbr["linkinfo"]["info_kind"] == "bridge"
    assert qbr["linkinfo"]["info_data"]["forward_delay"] == 0
    assert qbr["linkinfo"]["info_data"]["ageing_time"] == 0
    assert tap["master"] == vif.qbr_name  # the guest's TAP is on its own qbr ...
    assert qvb["master"] == vif.qbr_name  # ... with the veth end ...
    assert (qvb["linkinfo"]["info_kind"], qvo["linkinfo"]["info_kind"]) == ("veth", "veth")
    assert qvb["link"] == vif.qvo_name  # ... whose peer is the OVS port
    assert qvo.get("master") is None  # OVS (userspace) opens it; no kernel master
    assert {tap["mtu"], qbr["mtu"], qvb["mtu"], qvo["mtu"]} == {vif.mtu}
    assert all("UP" in link["flags"] for link in (tap, qbr, qvb, qvo))
    assert vif.tap_name in qemu_tun_fds(vm.pid)
    assert_ovs_port(host, vif.qvo_name, vif, instance_uuid=instance_uuid)
    assert vif.tap_name not in host.ovs.ports(str(vif.network.bridge))
    assert snapshot(host).ovsdb["Interface"][vif.qvo_name]["mtu_request"] == vif.mtu


def after_hybrid(host: VmHost, vif: Vif) -> None:
    """libvirt deleted the TAP it made; the rest is plug's until unplug."""
    found = links(host)
    assert vif.tap_name not in found
    assert found[vif.qvb_name]["master"] == vif.qbr_name
    assert vif.qvo_name in host.ovs.ports(str(vif.network.bridge))


def check_manual(host: VmHost, vif: Vif, vm: Running, instance_uuid: str) -> None:
    tap = host.netns.link(vif.tap_name)
    assert tap is not None
    flags = tun_data(tap)
    queues = vif.queues or 1
    assert (flags["pi"], flags["vnet_hdr"], flags["multi_queue"]) == (False, True, queues > 1)
    assert tap["mtu"] == vif.mtu
    # The TAP plug made is the one QEMU holds, one fd per queue (no other TAP at all).
    assert qemu_tun_fds(vm.pid).count(vif.tap_name) == queues
    assert_ovs_port(host, vif.tap_name, vif, instance_uuid=instance_uuid)
    assert snapshot(host).ovsdb["Interface"][vif.tap_name]["mtu_request"] == vif.mtu
    (nic,) = [nic for nic in qemu_nic(vm.pid) if nic["mac"] == vif.mac]
    assert nic.get("mq", False) is (queues > 1)


def after_manual(host: VmHost, vif: Vif) -> None:
    """managed='no': libvirt leaves the TAP and its OVS port alone."""
    assert host.netns.link(vif.tap_name) is not None
    assert vif.tap_name in host.ovs.ports(str(vif.network.bridge))


def check_virtualport(host: VmHost, vif: Vif, vm: Running, instance_uuid: str) -> None:
    tap = host.netns.link(vif.tap_name)
    assert tap is not None
    assert tap["mtu"] == vif.mtu
    assert vif.tap_name in qemu_tun_fds(vm.pid)
    # libvirt added the port itself (ovs-vsctl), with the <vlan> tag and its own vm-id key.
    assert_ovs_port(host, vif.tap_name, vif, instance_uuid=instance_uuid, uuid_key="vm-id")


def after_virtualport(host: VmHost, vif: Vif) -> None:
    assert host.netns.link(vif.tap_name) is None
    assert vif.tap_name not in host.ovs.ports(str(vif.network.bridge))


CHECKS = {"ovs-hybrid": (check_hybrid, after_hybrid),
          "ovs-manual": (check_manual, after_manual),
          "ovs-virtualport": (check_virtualport, after_virtualport)}


# --- the cycle -----------------------------------------------------------------------------------


def cycle(host: VmHost, driver: GenericVIFDriver, plug_host: Host, cleanup: Cleanup,
          *vifs: Vif) -> None:
    """plug_many → start → checks → plug again (no-op) → destroy → checks → unplug_many →
    the host as before plug."""
    cleanup.add(*vifs)
    instance_uuid = str(uuid.uuid4())
    before = snapshot(host)
    outcome = driver.plug_many(vifs, plug_host, instance_uuid=instance_uuid)
    assert not outcome.already_done or all(
        driver.select(vif).name == "ovs-virtualport" for vif in vifs)

    made = links(host)
    interfaces = [driver.interface_xml(vif) for vif in vifs]
    with host.started(interfaces, uuid=instance_uuid) as vm:
        assert_running(vm, instance_uuid)
        running = links(host)
        for vif in vifs:
            if driver.select(vif).name == "ovs-manual":  # the very TAP plug made, not a new one
                assert running[vif.tap_name]["ifindex"] == made[vif.tap_name]["ifindex"]
        nics = {nic["mac"]: nic for nic in qemu_nic(vm.pid)}
        for vif in vifs:
            CHECKS[driver.select(vif).name][0](host, vif, vm, instance_uuid)
            assert nics[vif.mac]["host_mtu"] == vif.mtu  # the guest is told the same MTU
        during = snapshot(host)
        again = driver.plug_many(vifs, plug_host, instance_uuid=instance_uuid)
        assert again.already_done, f"plug changed a running guest's host side: {again.changed}"
        assert_same(snapshot(host), during, "plugging a plugged VIF again")

    for vif in vifs:
        CHECKS[driver.select(vif).name][1](host, vif)
    driver.unplug_many(vifs, plug_host)
    assert_same(snapshot(host), before, "plug, start, destroy, unplug")
    assert driver.unplug_many(vifs, plug_host).already_done


@pytest.mark.parametrize("make", [hybrid, manual, virtualport],
                         ids=["ovs-hybrid", "ovs-manual", "ovs-virtualport"])
def test_ovs(make: Any, host: VmHost, driver: GenericVIFDriver, plug_host: Host,
             cleanup: Cleanup) -> None:
    vif = make()
    assert (vif.network.bridge, vif.network.vlan, vif.mtu) == (host.br_int, 100, 1450)
    assert driver.select(vif).name == f"ovs-{vif.plug or 'virtualport'}"
    cycle(host, driver, plug_host, cleanup, vif)


def test_ovs_manual_queues(host: VmHost, driver: GenericVIFDriver, plug_host: Host,
                           cleanup: Cleanup) -> None:
    """The example's 4 queues: a multi-queue TAP QEMU opens 4 times, rendered as
    ``<driver queues='4'/>`` (no name='vhost': this kernel has no vhost_net)."""
    vif = manual()
    assert vif.queues == 4
    driver_element = driver.interface_xml(vif).find("driver")
    assert driver_element is not None
    assert driver_element.attrib == {"queues": "4"}
    cleanup.add(vif)
    instance_uuid = str(uuid.uuid4())
    driver.plug(vif, plug_host, instance_uuid=instance_uuid)
    with host.started([driver.interface_xml(vif)], uuid=instance_uuid) as vm:
        assert qemu_tun_fds(vm.pid) == [vif.tap_name] * 4


def test_ovs_virtualport_plug_changes_nothing(host: VmHost, driver: GenericVIFDriver,
                                              plug_host: Host, cleanup: Cleanup) -> None:
    """libvirt adds the port: plug only checks the integration bridge is there."""
    vif = virtualport()
    cleanup.add(vif)
    before = snapshot(host)
    outcome = driver.plug(vif, plug_host)
    assert outcome.changed == []
    assert outcome.unchanged == [RequireOvsBridge(str(vif.network.bridge))]
    assert_same(snapshot(host), before, "plugging a virtualport VIF")


@pytest.fixture(params=["native", "vsctl"])
def either_backend(request: pytest.FixtureRequest, host: VmHost, plug_host: Host,
                   lock_dir: Path) -> Iterator[Host]:
    """The module's (native) Host, or one that writes OVSDB with ovs-vsctl."""
    if request.param == "native":
        yield plug_host
        return
    with Host(netns=host.netns.name, ovsdb=host.ovs.db, ovsdb_backend="vsctl",
              lock_dir=lock_dir) as vsctl_host:
        yield vsctl_host


def test_three_nics_one_batch(host: VmHost, driver: GenericVIFDriver, either_backend: Host,
                              cleanup: Cleanup) -> None:
    """One guest with a hybrid, a manual and a virtualport NIC: one plug_many, one
    unplug_many (with either OVSDB backend)."""
    vifs = (hybrid(), manual(), virtualport())
    assert [driver.select(vif).name for vif in vifs] == list(CHECKS)
    cycle(host, driver, either_backend, cleanup, *vifs)


def test_bridge_created(host: VmHost, driver: GenericVIFDriver, plug_host: Host,
                        cleanup: Cleanup, scratch: list[str]) -> None:
    """create_bridge: plug makes the Linux bridge; libvirt puts the guest's TAP on it. The
    bridge serves the whole network, so unplug keeps it (and only it)."""
    bridge = f"vpbr{uuid.uuid4().hex[:8]}"
    scratch.append(bridge)
    vif = fresh("bridge", mtu=1400, network={"bridge": bridge, "create_bridge": True})
    cleanup.add(vif)
    instance_uuid = str(uuid.uuid4())
    before = snapshot(host)
    assert bridge not in before.links

    outcome = driver.plug(vif, plug_host, instance_uuid=instance_uuid)
    assert not outcome.already_done
    made = links(host)[bridge]
    assert made["linkinfo"]["info_kind"] == "bridge"
    assert made["mtu"] == 1400
    assert "UP" in made["flags"]

    with host.started([driver.interface_xml(vif)], uuid=instance_uuid) as vm:
        assert_running(vm, instance_uuid)
        tap = host.netns.link(vif.tap_name)
        assert tap is not None, f"libvirt did not create {vif.tap_name}"
        tun_data(tap)
        assert tap["master"] == bridge
        assert tap["mtu"] == 1400
        assert vif.tap_name in qemu_tun_fds(vm.pid)
        assert driver.plug(vif, plug_host, instance_uuid=instance_uuid).already_done

    assert host.netns.link(vif.tap_name) is None, "libvirt left its TAP behind"
    driver.unplug(vif, plug_host)
    after = snapshot(host)
    kept = after.links.pop(bridge)
    # The kernel's doing: a bridge without a set address takes its ports' lowest MAC, and
    # zeroes once its last port leaves.
    del kept["address"]
    assert kept == snapshot_of_bridge(made)
    assert_same(after, before, "plug (but for the bridge), start, destroy, unplug")


def snapshot_of_bridge(link: dict[str, Any]) -> dict[str, Any]:
    """The bridge as host_snapshot records it (the same ``ip -j -d`` fields), but its MAC."""
    data = link["linkinfo"]["info_data"]
    return {"kind": "bridge", "master": link.get("master"), "mtu": link["mtu"],
            "up": "UP" in link["flags"], "group": link["group"],
            "forward_delay": data["forward_delay"], "ageing_time": data["ageing_time"],
            "tun": None}


def test_ethernet(host: VmHost, driver: GenericVIFDriver, plug_host: Host,
                  cleanup: Cleanup) -> None:
    """managed='no': QEMU holds exactly the TAP plug made, with the VIF's MTU."""
    vif = fresh("ethernet")
    assert vif.mtu == 9000
    cleanup.add(vif)
    instance_uuid = str(uuid.uuid4())
    before = snapshot(host)

    driver.plug(vif, plug_host, instance_uuid=instance_uuid)
    made = host.netns.link(vif.tap_name)
    assert made is not None
    flags = tun_data(made)
    assert (flags["pi"], flags["vnet_hdr"], flags["multi_queue"]) == (False, True, False)
    assert made["mtu"] == 9000
    assert "UP" in made["flags"]

    with host.started([driver.interface_xml(vif)], uuid=instance_uuid) as vm:
        assert_running(vm, instance_uuid)
        assert qemu_tun_fds(vm.pid) == [vif.tap_name]
        during = host.netns.link(vif.tap_name)
        assert during is not None
        assert during["ifindex"] == made["ifindex"]  # the same device, not a new one
        assert "LOWER_UP" in during["flags"]  # QEMU attached: carrier
        assert driver.plug(vif, plug_host, instance_uuid=instance_uuid).already_done

    assert host.netns.link(vif.tap_name) is not None, "managed='no': libvirt deleted the TAP"
    driver.unplug(vif, plug_host)
    assert_same(snapshot(host), before, "plug, start, destroy, unplug")


# --- no fork: a fork of a process with threads and signal handlers is a hazard -------------------

_forks: list[int] = []
os.register_at_fork(before=lambda: _forks.append(os.getpid()))


def test_plug_into_netns_forks_no_child(host: VmHost, driver: GenericVIFDriver, lock_dir: Path,
                                        cleanup: Cleanup) -> None:
    vif = manual()
    cleanup.add(vif)
    with Host(netns=host.netns.name, ovsdb=host.ovs.db, lock_dir=lock_dir) as fresh_host:
        del _forks[:]
        driver.plug(vif, fresh_host)
        forks = len(_forks)
    assert host.netns.link(vif.tap_name) is not None  # the plug did happen
    assert forks == 0, f"plugging one VIF into netns {host.netns.name} forked {forks} times"
