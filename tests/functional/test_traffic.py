"""Traffic through hybrid-plugged VIFs (the session's private OVS, userspace datapath).

There is no QEMU here, so a "guest" is a network namespace of its own: a veth pair stands in for
the guest's TAP, its host end named as the TAP (``tap<id[:11]>``) and enslaved to the VIF's
``qbr<id[:11]>``, the other end moved into the guest namespace with the VIF's MAC and an address
in 198.51.100.0/24. Frames then go guest → tap → qbr → qvb/qvo → br-int (access tag) → …

ICMP echo is sent by a small raw-socket pinger (this machine has no ``ping`` binary): like
``ping -c 3 -i 0.2 -W 1``: three requests 0.2 s apart, replies counted until all three came or
one second after the last request.

- same VLAN tag (100/100): the guests reach each other;
- different tags (100/200): they do not, while a third guest on 200 reaches the one on 200;
- a VIF plugged on 100 then plugged again with vlan 200 converges its port's tag: it loses the
  guest on 100 and reaches the guest on 200.
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import Netns, PrivateOvs
from tests.fixtures.snapshot import HostSnapshot, host_snapshot
from vifplug.driver import GenericVIFDriver
from vifplug.host import Host
from vifplug.loading import load_vifs
from vifplug.model import Vif
from vifplug.plan import EnsureOvsPort

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MTU = 1450  # examples/ovs-hybrid.json

pytestmark = [
    pytest.mark.root,
]

# ICMP echo over a raw socket, run inside the guest's namespace: argv = destination, count.
# Prints {"transmitted": n, "received": m} (a reply counts once per sequence number).
PINGER = r'''
import json, os, select, socket, struct, sys, time

destination, count = sys.argv[1], int(sys.argv[2])
INTERVAL, WAIT = 0.2, 1.0
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident = os.getpid() & 0xFFFF
payload = b"vifplug traffic test"


def checksum(data):
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def receive(until):
    while (left := until - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            return
        data, (source, _) = sock.recvfrom(4096)
        offset = (data[0] & 0x0F) * 4
        kind, _, _, their_ident, their_seq = struct.unpack("!BBHHH", data[offset:offset + 8])
        if kind == 0 and their_ident == ident and source == destination:
            replies.add(their_seq)
            if len(replies) == count:
                return


replies = set()
start = time.monotonic()
for seq in range(count):
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    sock.sendto(struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq) + payload,
                (destination, 0))
    receive(start + (seq + 1) * INTERVAL if seq < count - 1 else time.monotonic() + WAIT)
print(json.dumps({"transmitted": count, "received": len(replies)}))
'''


def hybrid_vif(vlan: int, *, like: Vif | None = None) -> Vif:
    """examples/ovs-hybrid.json with a fresh id and MAC (or ``like``'s) on ``vlan``."""
    data: dict[str, Any] = json.loads((EXAMPLES / "ovs-hybrid.json").read_text())
    vif_id = like.id if like is not None else str(uuid.uuid4())
    data["id"] = vif_id
    data["ovs"]["interface_id"] = vif_id
    data["mac"] = like.mac if like is not None else "fa:16:3e:" + ":".join(
        uuid.uuid4().hex[i:i + 2] for i in (0, 2, 4))
    data["network"]["vlan"] = vlan
    return load_vifs(data)[0]


class Guests:
    """Guest namespaces, each wired to one plugged VIF's qbr; all removed on exit."""

    def __init__(self, netns: Netns, stack: contextlib.ExitStack) -> None:
        self.netns = netns
        self.stack = stack
        self.addresses: dict[str, str] = {}  # VIF id → its guest's address
        self.namespaces: dict[str, Netns] = {}

    def add(self, vif: Vif, address: str) -> None:
        host, guest_end = vif.tap_name, "g" + vif.id[:11]
        guest = self.stack.enter_context(Netns())  # deleted last: takes the veth pair with it
        self.stack.callback(self.netns.delete_link, host)
        self.netns.ip("link", "add", "name", host, "mtu", str(MTU), "type", "veth",
                      "peer", "name", guest_end, "mtu", str(MTU))
        self.netns.ip("link", "set", "dev", guest_end, "netns", guest.name)
        self.netns.ip("link", "set", "dev", host, "master", vif.qbr_name)
        self.netns.ip("link", "set", "dev", host, "up")
        guest.ip("link", "set", "dev", guest_end, "name", "eth0", "address", vif.mac)
        guest.ip("address", "add", f"{address}/24", "dev", "eth0")
        guest.ip("link", "set", "dev", "eth0", "up")
        tap = self.netns.link(host)
        assert tap is not None
        assert tap.get("master") == vif.qbr_name
        self.addresses[vif.id] = address
        self.namespaces[vif.id] = guest

    def ping(self, source: Vif, destination: Vif, count: int = 3) -> int:
        """Echo replies ``source``'s guest got from ``destination``'s (of ``count``)."""
        return ping_from(self.namespaces[source.id], self.addresses[destination.id], count)


def ping_from(guest: Netns, address: str, count: int = 3) -> int:
    """Echo replies the namespace ``guest`` got from ``address`` (of ``count``), its neighbour
    cache flushed first."""
    guest.ip("neigh", "flush", "all")
    result = guest.run(sys.executable, "-c", PINGER, address, str(count))
    stats: dict[str, int] = json.loads(result.stdout)
    assert stats["transmitted"] == count
    return stats["received"]


@contextlib.contextmanager
def plugged(netns: Netns, ovs: PrivateOvs, vifs: Sequence[Vif],
            tmp_path: Path) -> Iterator[tuple[Host, Guests]]:
    """Plug ``vifs`` (one Host), yield it and an empty Guests; on exit remove the guests, unplug
    (even when the body failed; leftovers then removed with ip/ovs-vsctl) and check the host is
    as it was."""
    before: HostSnapshot = host_snapshot(netns, ovs)
    with Host(netns=netns.name, ovsdb=ovs.db, lock_dir=tmp_path / "locks") as host:
        try:
            with contextlib.ExitStack() as stack:
                GenericVIFDriver().plug_many(vifs, host)
                yield host, Guests(netns, stack)
        finally:
            try:
                GenericVIFDriver().unplug_many(vifs, host)
            finally:  # whatever vifplug left (a bug) goes anyway
                names = {name for vif in vifs
                         for name in (vif.tap_name, vif.qbr_name, vif.qvb_name, vif.qvo_name)}
                for port in set(ovs.ports("br-int")) & names:
                    ovs.vsctl("--if-exists", "del-port", port, check=False)
                for link in {link["ifname"] for link in netns.links()} & names:
                    netns.ip("link", "delete", "dev", link, check=False)
    after = host_snapshot(netns, ovs)
    assert after == before, "\n".join(after.diff(before))


def port_tag(ovs: PrivateOvs, vif: Vif) -> int:
    return int(ovs.get("Port", vif.qvo_name, "tag"))


def test_same_vlan_tag_passes_traffic(netns: Netns, ovs: PrivateOvs, br_int: str,
                                      tmp_path: Path) -> None:
    a, b = hybrid_vif(100), hybrid_vif(100)
    with plugged(netns, ovs, [a, b], tmp_path) as (_, guests):
        guests.add(a, "198.51.100.11")
        guests.add(b, "198.51.100.12")
        assert (port_tag(ovs, a), port_tag(ovs, b)) == (100, 100)
        assert guests.ping(a, b) == 3
        assert guests.ping(b, a) == 3


def test_different_vlan_tags_isolate(netns: Netns, ovs: PrivateOvs, br_int: str,
                                     tmp_path: Path) -> None:
    """A on 100 cannot reach B on 200; C on 200 can (B's guest works: the tags isolate)."""
    a, b, c = hybrid_vif(100), hybrid_vif(200), hybrid_vif(200)
    with plugged(netns, ovs, [a, b, c], tmp_path) as (_, guests):
        guests.add(a, "198.51.100.21")
        guests.add(b, "198.51.100.22")
        guests.add(c, "198.51.100.23")
        assert [port_tag(ovs, vif) for vif in (a, b, c)] == [100, 200, 200]
        assert guests.ping(a, b) == 0
        assert guests.ping(c, b) == 3


def test_replug_with_another_vlan_moves_the_vif(netns: Netns, ovs: PrivateOvs, br_int: str,
                                                tmp_path: Path) -> None:
    """B plugged on 100 reaches A (100), not C (200). B plugged again as vlan 200 changes only
    its OVS port (the devices stay, the guest keeps its TAP) and then reaches C, not A."""
    a, b, c = hybrid_vif(100), hybrid_vif(100), hybrid_vif(200)
    with plugged(netns, ovs, [a, b, c], tmp_path) as (host, guests):
        guests.add(a, "198.51.100.31")
        guests.add(b, "198.51.100.32")
        guests.add(c, "198.51.100.33")
        assert guests.ping(b, a) == 3
        assert guests.ping(b, c) == 0

        moved = hybrid_vif(200, like=b)
        outcome = GenericVIFDriver().plug(moved, host)
        assert [type(step) for step in outcome.changed] == [EnsureOvsPort]
        assert port_tag(ovs, b) == 200
        assert guests.ping(b, a) == 0
        assert guests.ping(b, c) == 3
        assert guests.ping(a, b) == 0
