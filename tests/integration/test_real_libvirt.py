"""Rendered ``<interface>`` XML really starts: real QEMU domains on a private libvirtd.

Each test renders an example VIF (examples/*.json, names adjusted in a copy only where the host
needs them) with GenericVIFDriver, starts a 64 MiB diskless domain holding that interface on the
private libvirtd, checks the host side libvirt and QEMU built (the TAP or macvtap, its bridge or
OVS port, what QEMU holds open), destroys the domain and checks what is left.

Not started here (ENVIRONMENT.md): 802.1Qbg/Qbh need a VDP switch (a Qbg on a veth loops
libvirtd forever), hostdev (and so a failover pair's transient half) needs an SR-IOV VF and
vdpa a vDPA device (their tests look for one and skip, saying so, when there is none). Those
kinds are checked against libvirt's schema and test:///default driver in tests/unit. A
vhost-user QEMU (QEMU the socket's client) starts against :class:`VhostUserPeer`, a minimal
vhost-user backend: enough for QEMU to set the device up (no guest OS drives it, so no ring is
ever mapped).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import struct
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.fixtures import Netns
from tests.fixtures.vm import Running, VmHost, qemu_nic, qemu_open_paths, qemu_tun_fds
from vifplug import Vif, load_vifs
from vifplug.errors import InvalidVifError

pytestmark = pytest.mark.root

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str, **changes: Any) -> dict[str, Any]:
    """examples/<name>.json as a dict, with top-level keys replaced or (for dicts) merged."""
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def vif_of(data: dict[str, Any]) -> Vif:
    (vif,) = load_vifs(data)
    return vif


# --- XML, compared as trees ---


def contains(live: etree._Element, wanted: etree._Element) -> bool:
    """Whether ``live`` has ``wanted``'s tag, attributes and text, and for each child of
    ``wanted`` a distinct child that contains it (libvirt adds aliases, addresses, defaults)."""
    if live.tag != wanted.tag:
        return False
    if any(live.get(name) != value for name, value in wanted.attrib.items()):
        return False
    if (wanted.text or "").strip() and (live.text or "").strip() != wanted.text.strip():
        return False
    free = [child for child in live if isinstance(child.tag, str)]
    for child in wanted:
        if not isinstance(child.tag, str):
            continue
        match = next((candidate for candidate in free if contains(candidate, child)), None)
        if match is None:
            return False
        free.remove(match)
    return True


def assert_contains(live: etree._Element, wanted: etree._Element) -> None:
    assert contains(live, wanted), (
        f"libvirt's live <interface> lacks what vifplug rendered:\n"
        f"rendered:\n{etree.tostring(wanted, encoding='unicode', pretty_print=True)}"
        f"live:\n{etree.tostring(live, encoding='unicode', pretty_print=True)}"
    )


def assert_started(vm: Running) -> None:
    """The domain runs, and its live XML has every interface as vifplug rendered it."""
    import libvirt

    state, _ = vm.dom.state()
    assert state == libvirt.VIR_DOMAIN_RUNNING
    assert len(vm.live) == len(vm.rendered)
    for live, rendered in zip(vm.live, vm.rendered, strict=True):
        assert_contains(live, rendered)


# --- Linux bridge ---


def test_bridge(host: VmHost, scratch: list[str]) -> None:
    # MTU 1400 rather than the example's 1500: every TAP starts at 1500, proving nothing.
    vif = vif_of(example("bridge", mtu=1400))
    assert vif.network.bridge == "red"
    scratch.append("red")
    host.netns.add_bridge("red")

    with host.running(vif) as vm:
        assert_started(vm)
        tap = host.netns.link(vif.tap_name)
        assert tap is not None, f"libvirt did not create {vif.tap_name}"
        assert tap["linkinfo"]["info_kind"] == "tun"
        assert tap["master"] == "red"
        assert tap["address"] == "fe" + vif.mac[2:]  # libvirt: fe + the guest MAC's tail
        assert tap["mtu"] == 1400
        assert vif.tap_name in qemu_tun_fds(vm.pid)

    assert host.netns.link(vif.tap_name) is None, "libvirt left its TAP behind"


# --- Open vSwitch: libvirt adds the port ---


def _ovs_port_checks(host: VmHost, vif: Vif, vm: Running) -> None:
    assert vif.ovs is not None
    tap = vif.tap_name
    assert tap in host.ovs.ports(host.br_int)
    assert host.ovs.get("Interface", tap, "error") == "[]"
    assert int(host.ovs.get("Interface", tap, "ofport")) > 0  # the switch really opened it
    assert host.ovs.get("Interface", tap, "external_ids:iface-id") == vif.ovs.interface_id
    assert host.ovs.get("Interface", tap, "external_ids:attached-mac") == vif.mac
    assert host.ovs.get("Interface", tap, "external_ids:vm-id") == vm.dom.UUIDString()
    assert host.ovs.get("Interface", tap, "external_ids:iface-status") == "active"


def test_ovs_virtualport(host: VmHost) -> None:
    vif = vif_of(example("ovs-virtualport"))
    assert (vif.network.bridge, vif.network.vlan, vif.mtu) == (host.br_int, 100, 1450)

    with host.running(vif) as vm:
        assert_started(vm)
        _ovs_port_checks(host, vif, vm)
        assert host.ovs.get("Port", vif.tap_name, "tag") == "100"
        tap = host.netns.link(vif.tap_name)
        assert tap is not None
        assert tap["mtu"] == 1450
        assert tap["address"] == "fe" + vif.mac[2:]
        assert vif.tap_name in qemu_tun_fds(vm.pid)

    assert vif.tap_name not in host.ovs.ports(host.br_int), "libvirt left its OVS port behind"
    assert host.netns.link(vif.tap_name) is None


def test_ovs_virtualport_trunk(host: VmHost) -> None:
    vif = vif_of(example("ovs-trunk"))
    assert vif.network.trunk == (100, 200, 300)

    with host.running(vif) as vm:
        assert_started(vm)
        _ovs_port_checks(host, vif, vm)
        assert host.ovs.get("Port", vif.tap_name, "trunks") == "[100, 200, 300]"
        assert host.ovs.get("Port", vif.tap_name, "tag") == "[]"

    assert vif.tap_name not in host.ovs.ports(host.br_int)


# --- a TAP libvirt only opens: ethernet, and OVS plugged by vifplug ---


def test_ethernet_managed_no(host: VmHost, scratch: list[str]) -> None:
    vif = vif_of(example("ethernet"))
    tap = vif.tap_name
    assert vif.mtu == 9000
    # As plug would: libvirt must open this TAP, not create its own. With managed='no' libvirt
    # sets neither its MTU nor its MAC (it only tells the guest host_mtu): plug must.
    scratch.append(tap)
    host.netns.add_tap(tap, mtu=vif.mtu)
    before = host.netns.link(tap)
    assert before is not None

    with host.running(vif) as vm:
        assert_started(vm)
        assert vm.live[0].find("target").attrib == {"dev": tap, "managed": "no"}
        assert qemu_tun_fds(vm.pid) == [tap]
        (nic,) = qemu_nic(vm.pid)
        assert (nic["mac"], nic["host_mtu"]) == (vif.mac, 9000)
        during = host.netns.link(tap)
        assert during is not None
        assert (during["address"], during["mtu"]) == (before["address"], 9000)
        assert "LOWER_UP" in during["flags"]  # QEMU attached: the TAP has carrier

    after = host.netns.link(tap)
    assert after is not None, "managed='no': libvirt must leave the TAP alone"
    assert "NO-CARRIER" in after["flags"]  # and QEMU let go of it


@pytest.mark.parametrize("queues", ["example", "single"])
def test_ovs_manual(queues: str, host: VmHost, scratch: list[str]) -> None:
    data = example("ovs-manual")
    assert data["queues"] == 4
    if queues == "single":
        del data["queues"]
    vif = vif_of(data)
    assert vif.ovs is not None
    tap = vif.tap_name
    # What plug will do for ovs-manual: the TAP, and its OVS port with the port's identity.
    scratch.append(tap)
    host.netns.add_tap(tap, multi_queue=vif.queues is not None, mtu=vif.mtu)
    host.ovs.vsctl("add-port", host.br_int, tap, "tag=100", "--", "set", "Interface", tap,
                   f"external_ids:iface-id={vif.ovs.interface_id}",
                   f"external_ids:attached-mac={vif.mac}")
    try:
        with host.running(vif) as vm:
            assert_started(vm)
            assert vm.live[0].find("target").attrib == {"dev": tap, "managed": "no"}
            assert qemu_tun_fds(vm.pid) == [tap] * (vif.queues or 1)  # one fd per queue
            assert host.ovs.get("Interface", tap, "error") == "[]"
            assert int(host.ovs.get("Interface", tap, "ofport")) > 0

        assert host.netns.link(tap) is not None
        assert tap in host.ovs.ports(host.br_int), "managed='no': libvirt removed the OVS port"
    finally:
        host.ovs.vsctl("--if-exists", "del-port", host.br_int, tap)


# --- macvtap ---


@pytest.fixture(scope="session")
def no_shaping(netns: Netns) -> str | None:
    """Why ``<bandwidth>`` cannot be applied on this kernel (None: it can)."""
    return netns.missing_tc_shaping()


@pytest.mark.parametrize("mode", ["bridge", "vepa", "private", "passthrough"])
def test_direct(mode: str, host: VmHost, scratch: list[str], no_shaping: str | None) -> None:
    data = example("direct", direct={"mode": mode})
    if no_shaping:
        del data["bandwidth"]  # test_direct_bandwidth says why; the macvtap is the point here
    vif = vif_of(data)
    lower = vif.network.interface
    assert lower == "eth2"
    assert vif.devname is not None
    scratch.append(lower)
    host.netns.add_veth(lower, "eth2-peer")
    before = host.netns.link(lower)
    assert before is not None

    with host.running(vif) as vm:
        assert_started(vm)
        macvtap = host.netns.link(vif.devname)
        assert macvtap is not None, f"libvirt did not create {vif.devname}"
        assert macvtap["linkinfo"]["info_kind"] == "macvtap"
        assert macvtap["link"] == lower
        kernel_mode = "passthru" if mode == "passthrough" else mode
        assert macvtap["linkinfo"]["info_data"]["mode"] == kernel_mode
        assert macvtap["address"] == vif.mac
        assert f"/dev/tap{macvtap['ifindex']}" in qemu_open_paths(vm.pid)
        if mode == "passthrough":  # the guest owns the lower device: it takes the guest MAC
            lent = host.netns.link(lower)
            assert lent is not None
            assert lent["address"] == vif.mac

    assert host.netns.link(vif.devname) is None, "libvirt left its macvtap behind"
    after = host.netns.link(lower)
    assert after is not None
    assert after["address"] == before["address"]  # passthrough gave the MAC back


def test_direct_bandwidth(host: VmHost, scratch: list[str], no_shaping: str | None) -> None:
    if no_shaping:
        pytest.skip(no_shaping)
    vif = vif_of(example("direct"))
    assert vif.devname is not None
    assert vif.bandwidth is not None
    scratch.append("eth2")
    host.netns.add_veth("eth2", "eth2-peer")

    with host.running(vif) as vm:
        assert_started(vm)
        qdiscs = host.netns.tc("qdisc", "show", "dev", vif.devname)
        assert "htb 1: root" in qdiscs
        assert "ingress ffff:" in qdiscs


# --- issue 14's tuning keys, on real QEMU guests ---


def _tuned(kind: str, host: VmHost, scratch: list[str], **keys: Any) -> Vif:
    """A VIF of ``kind`` (bridge: on a Linux bridge; ethernet: its TAP made as plug would;
    direct: a bridge-mode macvtap) with ``keys`` added, its host side ready."""
    if kind == "bridge":
        scratch.append("red")
        host.netns.add_bridge("red")
        return vif_of(example("bridge", **keys))
    if kind == "ethernet":
        data = example("ethernet", **keys)
        del data["mtu"]
        vif = vif_of(data)
        scratch.append(vif.tap_name)
        host.netns.add_tap(vif.tap_name, multi_queue=vif.multi_queue)  # as plug makes it
        return vif
    scratch.append("eth2")
    host.netns.add_veth("eth2", "eth2-peer")
    data = example("direct", **keys)
    del data["bandwidth"]  # test_direct_bandwidth's business
    return vif_of(data)


def qmp(vm: Running, command: str, **arguments: Any) -> Any:
    """A QMP command's ``return`` from the running QEMU (through libvirt)."""
    import libvirt_qemu

    text = json.dumps({"execute": command, "arguments": arguments})
    return json.loads(libvirt_qemu.qemuMonitorCommand(vm.dom, text, 0))["return"]


def virtio_net(vm: Running) -> str:
    """The QOM path of the first NIC's virtio device (its alias is libvirt's, ``net0``)."""
    return f"/machine/peripheral/{vm.live[0].find('alias').get('name')}/virtio-backend"


def ring_sizes(vm: Running) -> tuple[int, int]:
    """The sizes QEMU gave the first RX and TX virtqueues (queues 0 and 1)."""
    rx, tx = (qmp(vm, "x-query-virtio-queue-status", path=virtio_net(vm), queue=index)
              for index in (0, 1))
    return rx["vring-num"], tx["vring-num"]


def offers_packed(vm: Running) -> bool:
    """Whether the device offers the guest packed virtqueues (VIRTIO_F_RING_PACKED)."""
    status = qmp(vm, "x-query-virtio-status", path=virtio_net(vm))
    return any(feature.startswith("VIRTIO_F_RING_PACKED")
               for feature in status["host-features"]["transports"])


@pytest.mark.parametrize("tuned", [True, False], ids=["tuned", "defaults"])
@pytest.mark.parametrize("kind", ["bridge", "ethernet", "direct"])
def test_virtio_ring_sizes_and_packed_reach_qemu(kind: str, tuned: bool, host: VmHost,
                                                 scratch: list[str]) -> None:
    keys: dict[str, Any] = {"queues": 2}
    if tuned:
        keys["virtio"] = {"rx_queue_size": 1024, "packed": True}
    vif = _tuned(kind, host, scratch, **keys)
    with host.running(vif) as vm:
        assert_started(vm)
        (nic,) = qemu_nic(vm.pid)
        assert nic["mq"] is True
        assert (nic.get("rx_queue_size"), nic.get("packed")) == ((1024, True) if tuned
                                                                 else (None, None))
        # what QEMU made of it: the RX ring's size, and packed rings offered to the guest
        assert ring_sizes(vm) == ((1024, 256) if tuned else (256, 256))
        assert offers_packed(vm) is tuned


def test_tx_queue_size_on_a_tap_is_taken_by_qemu_yet_refused_by_vifplug(
        host: VmHost, scratch: list[str]) -> None:
    # Why tx_queue_size is vhostuser-only: libvirt and QEMU here take it on a TAP and start,
    # yet QEMU keeps a TAP's TX ring at 256 (its vring-num below); on vhost-user it takes
    # (test_vhostuser_ring_sizes_and_packed_reach_qemu).
    with pytest.raises(InvalidVifError, match=r"\$\.virtio\.tx_queue_size: only for vif_type "
                       "'vhostuser'"):
        vif_of(example("bridge", virtio={"tx_queue_size": 1024}))
    scratch.append("red")
    host.netns.add_bridge("red")
    by_hand = etree.fromstring(
        "<interface type='bridge'><mac address='fa:16:3e:12:34:56'/><source bridge='red'/>"
        "<model type='virtio'/><driver rx_queue_size='1024' tx_queue_size='1024'/>"
        "</interface>")
    with host.started([by_hand]) as vm:
        (nic,) = qemu_nic(vm.pid)
        assert (nic["rx_queue_size"], nic["tx_queue_size"]) == (1024, 1024)
        assert ring_sizes(vm) == (1024, 256)


@pytest.mark.parametrize("frames", [7, 64])
def test_coalesce_sets_the_taps_rx_frames(frames: int, host: VmHost,
                                          scratch: list[str]) -> None:
    vif = _tuned("bridge", host, scratch, coalesce={"rx_max_frames": frames})
    with host.running(vif) as vm:
        assert_started(vm)
        shown = host.netns.run("ethtool", "-c", vif.tap_name).stdout
        assert f"rx-frames: {frames}\n" in shown, shown


def test_coalesce_on_ovs_virtualport(host: VmHost) -> None:
    vif = vif_of(example("ovs-virtualport", coalesce={"rx_max_frames": 16}))
    with host.running(vif) as vm:
        assert_started(vm)
        assert "rx-frames: 16\n" in host.netns.run("ethtool", "-c", vif.tap_name).stdout


@pytest.mark.parametrize("kind", ["bridge", "ethernet", "direct"])
def test_rom_disabled(kind: str, host: VmHost, scratch: list[str]) -> None:
    vif = _tuned(kind, host, scratch, rom={"enabled": False})
    with host.running(vif) as vm:
        assert_started(vm)
        (nic,) = qemu_nic(vm.pid)
        assert nic["romfile"] == ""  # QEMU loads no option ROM at all
        assert "rombar" not in nic


def test_rom_file_and_bar(host: VmHost, scratch: list[str], tmp_path: Path) -> None:
    rom = tmp_path / "vt-pxe.rom"
    rom.write_bytes(bytes(4096))
    vif = _tuned("bridge", host, scratch, rom={"file": str(rom), "bar": False})
    with host.running(vif) as vm:
        assert_started(vm)
        (nic,) = qemu_nic(vm.pid)
        assert (nic["romfile"], nic["rombar"]) == (str(rom), 0)


@pytest.mark.parametrize("kind", ["bridge", "ethernet"])
def test_backend_tap_node_is_the_one_libvirt_opens(kind: str, host: VmHost, scratch: list[str],
                                                   tmp_path: Path) -> None:
    # A second node of the TUN clone device (char 10:200) under another path: libvirt opening
    # it (not /dev/net/tun) shows in the fds QEMU holds.
    node = tmp_path / "vt-tun"
    os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(10, 200))
    vif = _tuned(kind, host, scratch, backend={"tap": str(node)})
    with host.running(vif) as vm:
        assert_started(vm)
        paths = qemu_open_paths(vm.pid)
        assert str(node) in paths
        assert "/dev/net/tun" not in paths
        assert qemu_tun_fds(vm.pid) == [vif.host_device]


def test_backend_vhost_path_is_accepted(host: VmHost, scratch: list[str]) -> None:
    # vhost-net is optional to libvirt unless <driver name='vhost'> (never written) insists: a
    # host without it (this one has no /dev/vhost-net) still starts the guest, on QEMU's own
    # backend. Where the node exists, QEMU holds it.
    vif = _tuned("bridge", host, scratch,
                 backend={"tap": "/dev/net/tun", "vhost": "/dev/vhost-net"})
    with host.running(vif) as vm:
        assert_started(vm)
        held = "/dev/vhost-net" in qemu_open_paths(vm.pid)
        assert held == Path("/dev/vhost-net").exists()


@pytest.mark.parametrize("trust", [True, False])
def test_trust_guest_rx_filters_on_a_macvtap(trust: bool, host: VmHost,
                                             scratch: list[str]) -> None:
    vif = _tuned("direct", host, scratch, trust_guest_rx_filters=trust)
    with host.running(vif) as vm:
        assert_started(vm)
        assert vm.live[0].get("trustGuestRxFilters") == ("yes" if trust else "no")


# --- vhost-user, against a minimal backend ---


class VhostUserPeer:
    """The backend end of a vhost-user socket, as far as QEMU needs one to start a NIC whose
    driver never runs: it listens on ``path`` (QEMU connects, ``mode='client'``), answers
    GET_FEATURES with ``features`` (and the protocol-feature queries with none), and takes every
    other message (SET_OWNER, SET_VRING_CALL/ERR, with their fds) without a reply, as the
    protocol allows when no REPLY_ACK was negotiated. ``requests`` records what QEMU sent."""

    GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM = 1, 15, 17
    VERSION, REPLY = 0x1, 0x4
    VIRTIO_F_VERSION_1, VIRTIO_F_RING_PACKED = 1 << 32, 1 << 34

    def __init__(self, path: str, features: int) -> None:
        self.path, self.features = path, features
        self.requests: list[int] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.listener.settimeout(60)  # QEMU never came: the thread ends (the test fails)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:  # closed before QEMU connected
            return
        conn.settimeout(None)
        with conn:
            while True:
                try:
                    header, ancillary, _, _ = conn.recvmsg(12, socket.CMSG_LEN(64))
                except OSError:
                    return
                if len(header) < 12:
                    return  # QEMU hung up
                request, _, size = struct.unpack("<III", header)
                if size:
                    conn.recv(size, socket.MSG_WAITALL)
                for level, kind, data in ancillary:  # fds QEMU passed (eventfds): not ours
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        for fd in struct.unpack(f"<{len(data) // 4}i", data[:len(data) // 4 * 4]):
                            os.close(fd)
                self.requests.append(request)
                answer = {self.GET_FEATURES: self.features, self.GET_PROTOCOL_FEATURES: 0,
                          self.GET_QUEUE_NUM: 1}.get(request)
                if answer is not None:
                    conn.sendall(struct.pack("<IIIQ", request, self.VERSION | self.REPLY, 8,
                                             answer))

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def vhost_user_socket() -> Iterator[str]:
    """A short socket path (sun_path holds 107 bytes) in a directory of its own."""
    directory = tempfile.mkdtemp(prefix="vt-vhu-")
    try:
        yield os.path.join(directory, "vhu.sock")
    finally:
        shutil.rmtree(directory)


@pytest.mark.parametrize("tuned", [True, False], ids=["tuned", "defaults"])
def test_vhostuser_ring_sizes_and_packed_reach_qemu(tuned: bool, host: VmHost,
                                                    vhost_user_socket: str) -> None:
    data = example("vhostuser", vhostuser={"socket": vhost_user_socket, "mode": "client"})
    del data["queues"]  # multiqueue needs the MQ protocol feature the peer does not offer
    if tuned:
        data["virtio"] = {"rx_queue_size": 1024, "tx_queue_size": 1024, "packed": True}
    vif = vif_of(data)
    peer = VhostUserPeer(vhost_user_socket, VhostUserPeer.VIRTIO_F_VERSION_1
                         | VhostUserPeer.VIRTIO_F_RING_PACKED)
    try:
        with host.running(vif) as vm:
            assert_started(vm)
            assert peer.requests[0] == VhostUserPeer.GET_FEATURES  # QEMU came to the peer
            (nic,) = qemu_nic(vm.pid)
            assert (nic.get("rx_queue_size"), nic.get("tx_queue_size"), nic.get("packed")) == (
                (1024, 1024, True) if tuned else (None, None, None))
            # unlike a TAP's (test_tx_queue_size_on_a_tap_...), the TX ring takes the size
            assert ring_sizes(vm) == ((1024, 1024) if tuned else (256, 256))
            assert offers_packed(vm) is tuned
    finally:
        peer.close()


# --- issue 14: an isolated port, failover teaming, vDPA ---


def test_bridge_isolated(host: VmHost, scratch: list[str], tmp_path: Path) -> None:
    """libvirt isolates the bridge port of the TAP it makes (``<port isolated='yes'/>``), and
    vifplug's readiness of the started guest and its audit read the flag back from the kernel
    (and see it gone when it is cleared by hand)."""
    import dataclasses

    from vifplug import GenericVIFDriver
    from vifplug.audit import audit, domain_from_xml
    from vifplug.host import Host
    from vifplug.host.inventory import read_inventory

    first = vif_of(example("bridge-isolated"))
    second = vif_of(example("bridge-isolated", id="1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
                            mac="fa:16:3e:9a:8b:7d"))
    plain = vif_of(example("bridge", mtu=None))
    scratch.append("red")
    host.netns.add_bridge("red")
    host.netns.ip("link", "set", "dev", "red", "up")

    with host.running(first, second, plain) as vm:
        assert_started(vm)  # the live XML keeps <port isolated='yes'/> on the first two
        for vif, isolated in ((first, True), (second, True), (plain, False)):
            tap = host.netns.link(vif.tap_name)
            assert tap is not None, f"libvirt did not create {vif.tap_name}"
            assert tap["master"] == "red"
            assert tap["linkinfo"]["info_slave_data"]["isolated"] is isolated
            assert vif.tap_name in qemu_tun_fds(vm.pid)
        driver = GenericVIFDriver(conn=host.conn)
        live = domain_from_xml(vm.dom.XMLDesc(), running=True)
        # as if rendered with --metadata (the domain here has none): the vifplug interfaces
        domain = dataclasses.replace(live, interfaces=tuple(
            dataclasses.replace(iface, network="red") for iface in live.interfaces))
        assert [iface.isolated for iface in domain.interfaces] == [True, True, False]
        with Host(netns=host.netns.name, ovsdb=host.ovs.db, lock_dir=tmp_path) as plug_host:
            states = driver.readiness([first, second, plain], plug_host, started=True)
            assert [state.reasons for state in states] == [(), (), ()]
            assert states[0].details[first.tap_name]["link"]["isolated"] is True
            missing = [f for f in audit(read_inventory(plug_host, tmp_path), [domain]).findings
                       if f.kind == "missing"]
            assert missing == []

            host.netns.ip("link", "set", "dev", first.tap_name, "type", "bridge_slave",
                          "isolated", "off")
            missing = [f for f in audit(read_inventory(plug_host, tmp_path), [domain]).findings
                       if f.kind == "missing"]
            assert [(f.subject, f.evidence["absent"]) for f in missing] == [
                (first.mac, [f"the isolation of bridge port {first.tap_name} "
                             "(<port isolated='yes'/>)"])]
            [state] = driver.readiness([first], plug_host, started=True)
            assert state.reasons == (
                f"{first.tap_name} is not an isolated port of red (libvirt isolates it from "
                "<port isolated='yes'/> when it starts the guest)",)


def test_failover_persistent_half(host: VmHost, scratch: list[str]) -> None:
    """The virtio half of a failover pair starts on its own: QEMU's virtio-net gets
    ``failover=on`` (its VF partner cannot be given here: see test_failover_pair)."""
    pair = json.loads((EXAMPLES / "failover-pair.json").read_text())
    persistent = vif_of(pair[0])
    scratch.append("red")
    host.netns.add_bridge("red")

    with host.running(persistent) as vm:
        assert_started(vm)  # <teaming type='persistent'/> and <alias name='ua-backup0'/> kept
        [nic] = qemu_nic(vm.pid)
        assert nic["failover"] is True
        assert nic["id"] == "ua-backup0"


def _a_vf() -> str | None:
    """The PCI address of an SR-IOV virtual function of this host, if there is one."""
    for device in sorted(Path("/sys/bus/pci/devices").iterdir()):
        if (device / "physfn").exists():
            return device.name
    return None


def test_failover_pair(host: VmHost, scratch: list[str]) -> None:
    vf = _a_vf()
    if vf is None:
        pytest.skip("no SR-IOV VF on this host (no /sys/bus/pci/devices/*/physfn): the pair's "
                    "transient half is a VF; the pair is proven against libvirt's schema and "
                    "test:///default in tests/unit/test_render.py::test_failover_pair_tree")
    pair = json.loads((EXAMPLES / "failover-pair.json").read_text())
    pair[1]["hostdev"]["pci"] = vf
    vifs = load_vifs(pair)
    scratch.append("red")
    host.netns.add_bridge("red")
    with host.running(*vifs) as vm:
        assert_started(vm)


def test_vdpa(host: VmHost) -> None:
    devices = sorted(Path("/dev").glob("vhost-vdpa-*"))
    if not devices:
        pytest.skip("no vDPA device on this host (/dev/vhost-vdpa-N: made by vdpa dev add on an "
                    "offloading NIC, or with the vdpa_sim_net module); type='vdpa' is proven "
                    "against libvirt's schema and test:///default in tests/unit/test_render.py")
    vif = vif_of(example("vdpa", vdpa={"device": str(devices[0])}))
    with host.running(vif) as vm:
        assert_started(vm)
        assert str(devices[0]) in qemu_open_paths(vm.pid)
