"""The plug-method selection table of VIF_FORMAT.md, exhaustively: firewall x filtered x libvirt
version x plug, and the version gates it implies in the XML."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from lxml import etree

from vifplug import GenericVIFDriver, LibvirtVersion, UnsupportedError, VifError, load_vifs

ID = "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"


def ovs_vif(**extra: Any) -> Any:
    data = {"id": ID, "vif_type": "ovs", "mac": "fa:16:3e:12:34:56", "mtu": 1450,
            "network": {"name": "blue", "bridge": "br-int", "vlan": 100},
            "ovs": {"interface_id": ID}, **extra}
    return load_vifs(data)[0]


VERSIONS = ["0.9.10", "0.9.11", "5.0.0", "9.0.0", None]
# The spec's rule, written out: without `plug`, rows are (firewall, filtered), columns VERSIONS.
H, V, M = "ovs-hybrid", "ovs-virtualport", "ovs-manual"
AUTOMATIC = {
    (False, False): [M, V, V, V, V],
    (False, True): [M, V, V, V, V],
    (True, False): [H, H, H, H, H],
    (True, True): [M, V, V, V, V],
}
# With `plug`, that method whatever the rest — except virtualport, which libvirt < 0.9.11 lacks.
FORCED = {
    "hybrid": [H, H, H, H, H],
    "manual": [M, M, M, M, M],
    "virtualport": [UnsupportedError, V, V, V, V],
}

TABLE = [
    (firewall, filtered, version, plug,
     (AUTOMATIC[firewall, filtered] if plug is None else FORCED[plug])[column])
    for firewall, filtered, (column, version), plug in itertools.product(
        (False, True), (False, True), enumerate(VERSIONS),
        (None, "hybrid", "virtualport", "manual"))
]


def test_table_is_exhaustive() -> None:
    assert len(TABLE) == 2 * 2 * len(VERSIONS) * 4


@pytest.mark.parametrize(("firewall", "filtered", "version", "plug", "expected"), TABLE)
def test_selection(firewall: bool, filtered: bool, version: str | None, plug: str | None,
                   expected: Any) -> None:
    vif = ovs_vif(filtered=filtered, **({"plug": plug} if plug else {}))
    driver = GenericVIFDriver(firewall=firewall, libvirt_version=version)
    if expected is UnsupportedError:
        with pytest.raises(UnsupportedError, match=r"\$\.plug: 'virtualport' needs libvirt"):
            driver.select(vif)
        return
    selection = driver.selection(vif)
    assert selection.connection.name == expected
    assert selection.reason
    element = driver.interface_xml(vif)
    # What each method means in the XML (VIF_FORMAT.md, "Choosing the plug method").
    if expected == H:
        assert element.get("type") == "bridge"
        assert element.find("source").get("bridge") == "qbr0f6d3c1e-5b"
        assert element.find("virtualport") is None
        assert element.find("vlan") is None
    elif expected == V:
        assert element.get("type") == "bridge"
        assert element.find("source").get("bridge") == "br-int"
        assert element.find("virtualport").get("type") == "openvswitch"
        assert element.find("virtualport/parameters").get("interfaceid") == ID
        assert element.find("vlan/tag").get("id") == "100"
    else:
        assert element.get("type") == "ethernet"
        assert element.find("source") is None
        assert element.find("virtualport") is None
        assert element.find("vlan") is None
    assert element.find("target").get("dev") == "tap0f6d3c1e-5b"


@pytest.mark.parametrize(("version", "mtu", "managed"), [
    ("0.9.10", False, False), ("3.0.99", False, False), ("3.1.0", True, False),
    ("5.0.0", True, False), ("5.1.0", True, True), ("9.0.0", True, True), (None, True, True),
])
def test_version_gates(version: str | None, mtu: bool, managed: bool) -> None:
    element = GenericVIFDriver(libvirt_version=version).interface_xml(ovs_vif(plug="manual"))
    assert (element.find("mtu") is not None) is mtu
    assert element.find("target").get("managed") == ("no" if managed else None)


@pytest.mark.parametrize(("firewall", "filtered", "with_filter", "filterref"), [
    (f, fl, wf, f and not fl and wf)
    for f, fl, wf in itertools.product((False, True), repeat=3)
])
def test_bridge_filterref(firewall: bool, filtered: bool, with_filter: bool,
                          filterref: bool) -> None:
    data = {"id": ID, "vif_type": "bridge", "mac": "fa:16:3e:12:34:56", "filtered": filtered,
            "network": {"name": "red", "bridge": "red"}}
    if with_filter:
        data["filter"] = {"name": "clean-traffic", "parameters": {"IP": "198.51.100.7"}}
    element = GenericVIFDriver(firewall=firewall).interface_xml(load_vifs(data)[0])
    assert (element.find("filterref") is not None) is filterref
    assert GenericVIFDriver(firewall=firewall).select(load_vifs(data)[0]).name == "bridge"


def test_version_from_argument_forms() -> None:
    for given in ("0.9.10", (0, 9, 10), LibvirtVersion(0, 9, 10)):
        assert GenericVIFDriver(libvirt_version=given).libvirt_version == (0, 9, 10)
    assert GenericVIFDriver().libvirt_version is None
    with pytest.raises(VifError, match=r"expected X\.Y\.Z"):
        GenericVIFDriver(libvirt_version="nine")


def test_version_from_a_libvirt_connection(test_conn: Any) -> None:
    driver = GenericVIFDriver(conn=test_conn)
    assert driver.libvirt_version == LibvirtVersion.from_int(test_conn.getLibVersion())
    assert driver.select(ovs_vif()).name == V


def test_version_from_an_old_connection_and_argument_precedence(mocker: Any) -> None:
    old = mocker.Mock()
    old.getLibVersion.return_value = 9010  # libvirt 0.9.10
    assert GenericVIFDriver(conn=old).select(ovs_vif()).name == M
    # The explicit argument wins over the connection.
    assert GenericVIFDriver(libvirt_version="1.0.0", conn=old).select(ovs_vif()).name == V


def test_libvirt_version_parsing() -> None:
    assert LibvirtVersion.parse("9.0.0") == (9, 0, 0)
    assert LibvirtVersion.parse("0.9") == (0, 9, 0)
    assert LibvirtVersion.from_int(9_000_000) == (9, 0, 0)
    assert LibvirtVersion.from_int(5_001_002) == (5, 1, 2)
    assert str(LibvirtVersion(3, 1, 0)) == "3.1.0"
    for bad in ("", "9", "9.0.0.0", "v9.0.0", "9.x"):
        with pytest.raises(VifError):
            LibvirtVersion.parse(bad)


def test_every_vif_type_has_exactly_the_expected_connections() -> None:
    driver = GenericVIFDriver()
    serving = {name: sorted(c.name for c in conns.values())
               for name, conns in driver._serving.items()}
    assert serving == {
        "bridge": ["bridge"], "ovs": [H, M, V], "802.1qbg": ["802.1qbg"],
        "802.1qbh": ["802.1qbh"], "direct": ["direct"], "ethernet": ["ethernet"],
        "vhostuser": ["vhostuser"], "hostdev": ["hostdev"], "vdpa": ["vdpa"],
    }


def test_two_connections_for_one_choice_are_refused() -> None:
    from vifplug.connections import REGISTRY

    twin = type("SecondBridge", (type(REGISTRY["bridge"]),), {"name": "bridge-2"})()
    with pytest.raises(ValueError, match="'bridge' and 'bridge-2' both serve vif_type 'bridge'"):
        GenericVIFDriver(connections={**REGISTRY, "bridge-2": twin})


def test_a_custom_registry_is_honoured() -> None:
    from vifplug.connections import REGISTRY

    only_manual = {M: REGISTRY[M]}
    driver = GenericVIFDriver(firewall=True, connections=only_manual)
    assert driver.select(ovs_vif()).name == M
    with pytest.raises(UnsupportedError, match="no connection serves 'bridge'"):
        driver.select(load_vifs({"id": ID, "vif_type": "bridge", "mac": "fa:16:3e:12:34:56",
                                 "network": {"name": "red", "bridge": "red"}})[0])
    assert etree.iselement(driver.interface_xml(ovs_vif()))
