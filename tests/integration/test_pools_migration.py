"""A passthrough NIC pool on a real migration target (issue 12, item 3).

Host A connects network ``green`` by macvtap (bridge mode) on a veth end; host B has a
passthrough pool of one NIC (a veth end), ``interfaces = ["vp-pool0"]``. Each host's hook keeps
its own pools' state file (``vifplug hook install --pools``). Guest 1 live-migrates A → B and
gets ``vp-pool0`` (macvtap in passthrough mode on it); guest 2, sent next, is refused by B's
hook — "pool of network green exhausted: vp-pool0 (guest 1)" in libvirt's error — and keeps
running on A. Guest 1 is destroyed on B: libvirt's ``release`` operation runs the hook, which
frees the NIC, and guest 2 then migrates and gets it.
"""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from tests.fixtures.libvirtd import minimal_domain
from tests.fixtures.migration import migrate, two_hosts
from vifplug import GenericVIFDriver, load_vifs
from vifplug.pools import Holder, load

pytestmark = [pytest.mark.root]

A_MAP = '[networks.green]\nswitch = "direct"\ninterface = "vp-a-nic"\nmode = "bridge"\n'
B_MAP = ('[networks.green]\nswitch = "direct"\nmode = "passthrough"\n'
         'interfaces = ["vp-pool0"]\n')


def guest_xml(name: str, mac: str) -> str:
    (vif,) = load_vifs({"id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f", "vif_type": "direct",
                        "mac": mac, "network": {"name": "green", "interface": "vp-a-nic"},
                        "direct": {"mode": "bridge"}})
    driver = GenericVIFDriver()
    return minimal_domain(name, [driver.interface_xml(vif)],
                          metadata=driver.metadata_xml([vif]))


def source_dev(dom: Any) -> tuple[str | None, str | None]:
    source = etree.fromstring(dom.XMLDesc()).find("devices/interface/source")
    return source.get("dev"), source.get("mode")


def test_a_full_passthrough_pool_refuses_the_next_guest_until_one_leaves() -> None:
    import libvirt

    with two_hosts(A_MAP, B_MAP) as (a, b):
        a.netns.add_veth("vp-a-nic", "vp-a-peer")
        b.netns.add_veth("vp-pool0", "vp-pool0p")
        one = a.conn.createXML(guest_xml("vp-pool-one", "fa:16:3e:00:0e:01"), 0)
        two = a.conn.createXML(guest_xml("vp-pool-two", "fa:16:3e:00:0e:02"), 0)
        try:
            one = migrate(one, a, b)
            assert source_dev(one) == ("vp-pool0", "passthrough")
            assert load(str(b.pools)).networks["green"] == {
                "vp-pool0": [Holder("vp-pool-one", "fa:16:3e:00:0e:01")]}

            with pytest.raises(libvirt.libvirtError) as refused:
                migrate(two, a, b)
            assert ("vifplug: interface fa:16:3e:00:0e:02: pool of network green exhausted: "
                    "vp-pool0 (vp-pool-one); refused") in str(refused.value)
            assert two.isActive()
            assert source_dev(two) == ("vp-a-nic", "bridge")
            assert b.domain("vp-pool-two") is None

            one.destroy()  # libvirt runs the hook's release: the NIC is free again
            assert load(str(b.pools)).networks.get("green", {}).get("vp-pool0", []) == []
            two = migrate(two, a, b)
            assert source_dev(two) == ("vp-pool0", "passthrough")
        finally:
            for host in (a, b):
                for name in ("vp-pool-one", "vp-pool-two"):
                    dom = host.domain(name)
                    if dom is not None and dom.isActive():
                        dom.destroy()
