"""Priority lists per network on real migration targets (issue 12, item 4).

Hosts A and B list different connection options for network ``red``; each host's hook takes
the first option the guest can use there and then, from that host's map and pools' state
alone, whatever the guest arrives as:

- A: a passthrough pool of one NIC (``vp-oa-pool``), else macvtap (bridge mode) on ``vp-oa-nic``;
- B: a passthrough pool of one NIC (``vp-ob-pool``), else OVS ``br-int`` with VLAN 200.

The guest starts on A as macvtap on vp-oa-nic. B's pool is held (by a guest B's state file
names), so A → B lands on OVS VLAN 200; B → A lands on A's free pool NIC (passthrough); B's
pool freed, A → B lands on B's pool NIC. The live XML on the target shows each. A second guest,
sent to B when B's pool is held and B's map offers only a pool and 802.1Qbg (which needs an
instanceid the guest lacks), is refused with one line naming both options and keeps running
on A.
"""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from tests.fixtures.libvirtd import minimal_domain
from tests.fixtures.migration import migrate, two_hosts
from vifplug import GenericVIFDriver, load_vifs
from vifplug.pools import Holder, PoolState, load

pytestmark = [pytest.mark.root]

A_MAP = """\
[[networks.red.options]]
switch = "direct"
mode = "passthrough"
interfaces = ["vp-oa-pool"]

[[networks.red.options]]
switch = "direct"
interface = "vp-oa-nic"
mode = "bridge"
"""
B_MAP = """\
[[networks.red.options]]
switch = "direct"
mode = "passthrough"
interfaces = ["vp-ob-pool"]

[[networks.red.options]]
switch = "ovs"
bridge = "br-int"
vlan = 200
"""
#: B offering only what the second guest cannot use: a held pool, 802.1Qbg without instanceid.
B_NO_WAY = """\
[[networks.red.options]]
switch = "direct"
mode = "passthrough"
interfaces = ["vp-ob-pool"]

[[networks.red.options]]
switch = "direct"
interface = "vp-ob-nic"
mode = "vepa"
qbg = {manager_id = 11, type_id = 1193047, type_id_version = 2}
"""


def guest_xml(name: str, mac: str) -> str:
    (vif,) = load_vifs({"id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f", "vif_type": "direct",
                        "mac": mac, "network": {"name": "red", "interface": "vp-oa-nic"},
                        "direct": {"mode": "bridge"}})
    driver = GenericVIFDriver()
    return minimal_domain(name, [driver.interface_xml(vif)],
                          metadata=driver.metadata_xml([vif]))


def connection(dom: Any) -> tuple[str | None, ...]:
    """(type, source dev or bridge, mode, virtualport type, VLAN tag) of the live interface."""
    iface = etree.fromstring(dom.XMLDesc()).find("devices/interface")
    source = iface.find("source")
    port = iface.find("virtualport")
    tag = iface.find("vlan/tag")
    return (iface.get("type"), source.get("dev") or source.get("bridge"), source.get("mode"),
            port.get("type") if port is not None else None,
            tag.get("id") if tag is not None else None)


def test_each_host_takes_the_first_option_its_own_map_and_pools_allow() -> None:
    import libvirt

    with two_hosts(A_MAP, B_MAP) as (a, b):
        for nic, peer in (("vp-oa-nic", "vp-oa-nicp"), ("vp-oa-pool", "vp-oa-poolp")):
            a.netns.add_veth(nic, peer)
        for nic, peer in (("vp-ob-nic", "vp-ob-nicp"), ("vp-ob-pool", "vp-ob-poolp")):
            b.netns.add_veth(nic, peer)
        someone = Holder("someone-else", "fa:16:3e:00:0f:99")
        b.pools.write_text(PoolState({"red": {"vp-ob-pool": [someone]}}).to_json())
        one = a.conn.createXML(guest_xml("vp-opt-one", "fa:16:3e:00:0f:01"), 0)
        two = a.conn.createXML(guest_xml("vp-opt-two", "fa:16:3e:00:0f:02"), 0)
        try:
            assert connection(one) == ("direct", "vp-oa-nic", "bridge", None, None)

            one = migrate(one, a, b)  # B's pool is held: its second option, OVS VLAN 200
            assert connection(one) == ("bridge", "br-int", None, "openvswitch", "200")
            assert load(str(b.pools)).networks["red"] == {"vp-ob-pool": [someone]}

            one = migrate(one, b, a)  # A's pool is free: its first option
            assert connection(one) == ("direct", "vp-oa-pool", "passthrough", None, None)
            assert load(str(a.pools)).networks["red"] == {
                "vp-oa-pool": [Holder("vp-opt-one", "fa:16:3e:00:0f:01")]}

            b.pools.write_text(PoolState().to_json())  # someone else left B
            one = migrate(one, a, b)  # now B's first option: the same guest, another answer
            assert connection(one) == ("direct", "vp-ob-pool", "passthrough", None, None)
            assert load(str(b.pools)).networks["red"] == {
                "vp-ob-pool": [Holder("vp-opt-one", "fa:16:3e:00:0f:01")]}
            assert load(str(a.pools)).networks.get("red", {}).get("vp-oa-pool", []) == []

            b.set_map(B_NO_WAY)  # B's pool is guest one's; 802.1Qbg needs an instanceid
            with pytest.raises(libvirt.libvirtError) as refused:
                migrate(two, a, b)
            said = str(refused.value)
            assert ("vifplug: interface fa:16:3e:00:0f:02: network 'red': no connection "
                    "option is usable on this host") in said
            assert ("options[0] (macvtap on a pool of vp-ob-pool (one guest per NIC) "
                    "(passthrough)): pool of network red exhausted: vp-ob-pool (vp-opt-one)"
                    ) in said
            assert ("options[1] (macvtap on vp-ob-nic (vepa) with 802.1Qbg): 802.1Qbg needs "
                    "the interface's instanceid") in said
            assert two.isActive()
            assert connection(two) == ("direct", "vp-oa-nic", "bridge", None, None)
            assert b.domain("vp-opt-two") is None
            assert load(str(b.pools)).networks["red"] == {
                "vp-ob-pool": [Holder("vp-opt-one", "fa:16:3e:00:0f:01")]}
        finally:
            for host in (a, b):
                for name in ("vp-opt-one", "vp-opt-two"):
                    dom = host.domain(name)
                    if dom is not None and dom.isActive():
                        dom.destroy()
