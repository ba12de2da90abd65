"""vifplug as an os-vif plugin: ``os_vif.initialize()`` loads it from the installed entry point
(group ``os_vif``, name ``vifplug``), and os-vif's own ``os_vif.plug()`` / ``os_vif.unplug()``
plug and unplug through it on the session's private OVS, inside the session's netns.

The plugin is configured the way a deployment would configure it, through oslo.config options in
group ``[os_vif_vifplug]`` (``netns``, ``ovsdb_connection``, ``lock_dir``).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from importlib import metadata, util
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import Netns, PrivateOvs
from tests.fixtures.plugin import unavailable

pytestmark = pytest.mark.root

GROUP = "os_vif_vifplug"
INSTANCE_UUID = "7a3e9f10-2b4c-4d5e-8f60-718293a4b5c6"


@pytest.fixture(scope="module")
def os_vif() -> Any:
    if util.find_spec("os_vif") is None:
        unavailable("os-vif is not installed (pip install '.[os-vif]')")
    with warnings.catch_warnings():  # os-vif's dependencies warn about themselves on import
        warnings.simplefilter("ignore")
        import os_vif
        import os_vif.objects

        os_vif.objects.register_all()
    return os_vif


def _initialize(os_vif: Any) -> None:
    with warnings.catch_warnings():  # loading the other plugins imports their dependencies
        warnings.simplefilter("ignore")
        os_vif.initialize(reset=True)


def _forget_ovsdbapp_connection() -> None:
    """ovsdbapp keeps one OVSDB connection per process in a class attribute; start and end each
    test without one, so the plugin's Host opens its own to the private OVS."""
    from ovsdbapp.schema.open_vswitch import impl_idl

    connection = impl_idl.OvsdbIdl._ovsdb_connection
    if connection is not None:
        connection.stop(timeout=5)
    impl_idl.OvsdbIdl._ovsdb_connection = None


@pytest.fixture
def plugin(os_vif: Any, netns: Netns, ovs: PrivateOvs, br_int: str,
           tmp_path: Path) -> Iterator[Any]:
    """os-vif initialised, the vifplug plugin pointed at the private OVS and the netns."""
    from oslo_config import cfg

    _initialize(os_vif)
    overrides = {"netns": netns.name, "ovsdb_connection": ovs.db, "ovsdb_backend": "native",
                 "lock_dir": str(tmp_path / "locks")}
    for name, value in overrides.items():
        cfg.CONF.set_override(name, value, group=GROUP)
    _forget_ovsdbapp_connection()
    loaded = os_vif._EXT_MANAGER["vifplug"].obj
    try:
        yield loaded
    finally:
        loaded.close()
        for name in overrides:
            cfg.CONF.clear_override(name, group=GROUP)
        _forget_ovsdbapp_connection()


class Names:
    """A fresh VIF identity and the device names plug derives from it."""

    def __init__(self) -> None:
        self.id = str(uuid.uuid4())
        self.mac = "fa:16:3e:" + ":".join(self.id[i:i + 2] for i in (0, 2, 4))
        self.interface_id = str(uuid.uuid4())
        suffix = self.id[:11]
        self.tap, self.qbr, self.qvb, self.qvo = (p + suffix for p in ("tap", "qbr", "qvb", "qvo"))


@pytest.fixture
def names(netns: Netns, ovs: PrivateOvs) -> Iterator[Names]:
    """Fresh names; whatever a test left under them is removed with ip/ovs-vsctl afterwards."""
    found = Names()
    yield found
    for port in (found.qvo, found.tap):
        ovs.vsctl("--if-exists", "del-port", port, check=False)
    for link in (found.tap, found.qvb, found.qvo, found.qbr):
        netns.delete_link(link)


def _hybrid_vif(os_vif: Any, names: Names, bridge: str, *, mtu: int = 1400) -> Any:
    objects = os_vif.objects
    network = objects.network.Network(id=str(uuid.uuid4()), label="blue", bridge=bridge, mtu=mtu)
    profile = objects.vif.VIFPortProfileOpenVSwitch(interface_id=names.interface_id,
                                                    datapath_type="netdev")
    return objects.vif.VIFBridge(id=names.id, address=names.mac, network=network,
                                 plugin="vifplug", vif_name=names.tap, bridge_name=names.qbr,
                                 has_traffic_filtering=False, preserve_on_delete=False,
                                 port_profile=profile)


def _instance(os_vif: Any) -> Any:
    return os_vif.objects.instance_info.InstanceInfo(uuid=INSTANCE_UUID, name="vifplug-vm")


def test_os_vif_loads_vifplug_from_its_entry_point(os_vif: Any) -> None:
    (entry,) = [ep for ep in metadata.entry_points(group="os_vif") if ep.name == "vifplug"]
    assert entry.value == "vifplug.interop.os_vif:VifplugPlugin"
    _initialize(os_vif)
    from vifplug.interop.os_vif import VifplugPlugin

    assert "vifplug" in os_vif._EXT_MANAGER.names()
    assert isinstance(os_vif._EXT_MANAGER["vifplug"].obj, VifplugPlugin)
    info = os_vif.host_info()
    assert info.has_plugin("vifplug")
    bridge = info.get_plugin("vifplug").get_vif("VIFBridge")
    assert [p.profile_object_name for p in bridge.supported_port_profiles] == [
        "VIFPortProfileOpenVSwitch"]


@pytest.mark.usefixtures("plugin")
def test_os_vif_plugs_and_unplugs_a_hybrid_vif_through_vifplug(
        os_vif: Any, netns: Netns, ovs: PrivateOvs, br_int: str, names: Names) -> None:
    vif = _hybrid_vif(os_vif, names, br_int)
    instance = _instance(os_vif)

    os_vif.plug(vif, instance)
    links = {link["ifname"]: link for link in netns.links()}
    qbr, qvb, qvo = links[names.qbr], links[names.qvb], links[names.qvo]
    assert qbr["linkinfo"]["info_kind"] == "bridge"
    assert (qvb["linkinfo"]["info_kind"], qvb["master"], qvb["link"]) == (
        "veth", names.qbr, names.qvo)
    assert {qbr["mtu"], qvb["mtu"], qvo["mtu"]} == {1400}
    assert names.tap not in links  # libvirt creates the guest's TAP on the qbr
    assert names.qvo in ovs.ports(br_int)
    assert {key: ovs.get("Interface", names.qvo, f"external_ids:{key}")
            for key in ("iface-id", "attached-mac", "vm-uuid", "iface-status")} == {
        "iface-id": names.interface_id, "attached-mac": names.mac, "vm-uuid": INSTANCE_UUID,
        "iface-status": "active"}

    os_vif.plug(vif, instance)  # again: nothing to do, no error
    assert ovs.ports(br_int).count(names.qvo) == 1

    os_vif.unplug(vif, instance)
    left = {link["ifname"] for link in netns.links()}
    assert not {names.qbr, names.qvb, names.qvo} & left
    assert names.qvo not in ovs.ports(br_int)
    assert ovs.vsctl("--if-exists", "get", "Interface", names.qvo, "name") == ""


@pytest.mark.usefixtures("plugin")
def test_os_vif_plugs_a_vif_whose_plugin_adds_the_port(
        os_vif: Any, netns: Netns, ovs: PrivateOvs, br_int: str, names: Names) -> None:
    """VIFOpenVSwitch with create_port: vifplug's manual plug (its TAP and its OVS port)."""
    objects = os_vif.objects
    network = objects.network.Network(id=str(uuid.uuid4()), label="blue", bridge=br_int)
    profile = objects.vif.VIFPortProfileOpenVSwitch(interface_id=names.interface_id,
                                                    create_port=True)
    vif = objects.vif.VIFOpenVSwitch(id=names.id, address=names.mac, network=network,
                                     plugin="vifplug", vif_name=names.tap, bridge_name=br_int,
                                     port_profile=profile)
    os_vif.plug(vif, _instance(os_vif))
    tap = netns.link(names.tap)
    assert tap is not None
    assert tap["linkinfo"]["info_kind"] == "tun"
    assert names.tap in ovs.ports(br_int)
    assert ovs.get("Interface", names.tap, "external_ids:iface-id") == names.interface_id
    os_vif.unplug(vif, _instance(os_vif))
    assert netns.link(names.tap) is None
    assert names.tap not in ovs.ports(br_int)


@pytest.mark.usefixtures("plugin")
def test_a_missing_bridge_is_os_vif_s_interface_not_found(
        os_vif: Any, netns: Netns, names: Names) -> None:
    vif = _hybrid_vif(os_vif, names, "br-missing")
    with pytest.raises(os_vif.exception.PlugException) as caught:
        os_vif.plug(vif, _instance(os_vif))
    err = caught.value.kwargs["err"]
    assert isinstance(err, os_vif.exception.NetworkInterfaceNotFound)
    assert err.kwargs["interface"] == "br-missing"
    assert "OVS bridge br-missing does not exist" in str(err)
    left = {link["ifname"] for link in netns.links()}
    assert not {names.qbr, names.qvb, names.qvo} & left  # checked before anything changed
