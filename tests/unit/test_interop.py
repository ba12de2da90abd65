"""vifplug.interop: os-vif objects (and their JSON primitives), nova network_info VIFs and Neutron
ports in; os-vif objects out.

- Round trips with real os-vif 5.3 objects, every VIF class vifplug takes: os-vif → vifplug →
  os-vif keeps every field both models carry; vifplug → os-vif → vifplug is the identity for each
  example VIF, less what os-vif cannot say (guest-side fields) or says only one way (``plug``).
- The twin table: the same logical VIF in each foreign shape renders the same libvirt XML
  (compared as parsed trees) as its vif.json twin.
- Bad shapes: ``InteropError`` (exit 2) naming the path in the foreign input.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import tree

from vifplug.driver import GenericVIFDriver
from vifplug.errors import InvalidVifError, VifError, json_path
from vifplug.interop import InteropError, coerce_vif, load_foreign
from vifplug.interop.neutron import from_neutron_port
from vifplug.interop.nova import from_nova_vif
from vifplug.interop.os_vif import SUPPORTED, from_os_vif, instance_uuid_of, to_os_vif
from vifplug.loading import load_vifs
from vifplug.model import Vif

try:
    with warnings.catch_warnings():  # os-vif's dependencies warn about themselves on import
        warnings.simplefilter("ignore")
        from os_vif import exception as osv_exception
        from os_vif import objects as osv

        osv.register_all()
except ImportError as missing:  # the os-vif extra; CI (VIFPLUG_REQUIRE_LIBVIRT=1) must have it
    if os.environ.get("VIFPLUG_REQUIRE_LIBVIRT") == "1":
        pytest.fail(f"os-vif is not installed (pip install '.[os-vif]'): {missing}",
                    pytrace=False)
    pytest.skip(f"os-vif is not installed (pip install '.[os-vif]'): {missing}",
                allow_module_level=True)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

VIF_ID = "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"
IFACE_ID = "9b8c7d6e-0001-4f2a-8b3c-4d5e6f708191"
MAC = "fa:16:3e:12:34:56"
NET_ID = "c0ffee00-1111-4222-8333-444455556666"
TAP = "tap" + VIF_ID[:11]
QBR = "qbr" + VIF_ID[:11]
QBG = {"manager_id": 11, "type_id": 1193047, "type_id_version": 2,
       "instance_id": "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f"}
SOCKET = "/var/run/openvswitch/vhu" + VIF_ID[:11]


# --- building os-vif objects ----------------------------------------------------------------------


def network(**fields: Any) -> Any:
    fields.setdefault("id", NET_ID)
    fields.setdefault("label", "blue")
    return osv.network.Network(**fields)


def ovs_profile(**fields: Any) -> Any:
    return osv.vif.VIFPortProfileOpenVSwitch(interface_id=fields.pop("interface_id", IFACE_ID),
                                             **fields)


def os_vif(cls: str, net: Any = None, **fields: Any) -> Any:
    """An os-vif VIF of class ``cls`` with this test's id and MAC."""
    fields.setdefault("id", VIF_ID)
    fields.setdefault("address", MAC)
    fields.setdefault("plugin", "ovs")
    return getattr(osv.vif, cls)(network=net if net is not None else network(), **fields)


def hybrid(**fields: Any) -> Any:
    fields.setdefault("has_traffic_filtering", False)
    fields.setdefault("port_profile", ovs_profile(datapath_type="netdev"))
    return os_vif("VIFBridge", network(bridge="br-int", mtu=1450), vif_name=TAP,
                  bridge_name=QBR, **fields)


#: One os-vif object per class (and per port profile) vifplug takes, with every field it maps.
OS_VIF_CASES: dict[str, Callable[[], Any]] = {
    "VIFBridge+OVS (hybrid)": hybrid,
    "VIFBridge (Linux bridge, VLAN created)": lambda: os_vif(
        "VIFBridge", network(bridge="br-red", vlan=100, bridge_interface="eth1", mtu=1500,
                             should_provide_bridge=True, should_provide_vlan=True),
        vif_name=TAP, bridge_name="br-red", plugin="linux_bridge", has_traffic_filtering=True),
    "VIFOpenVSwitch (virtualport)": lambda: os_vif(
        "VIFOpenVSwitch", network(bridge="br-int", vlan=100, mtu=1450), vif_name=TAP,
        bridge_name="br-int", port_profile=ovs_profile(datapath_type="system")),
    "VIFOpenVSwitch create_port (manual)": lambda: os_vif(
        "VIFOpenVSwitch", network(bridge="br-int"), vif_name="vm7-eth0", bridge_name="br-int",
        port_profile=ovs_profile(create_port=True)),
    "VIFDirect+8021Qbg": lambda: os_vif(
        "VIFDirect", network(bridge_interface="eth2"), vif_name=TAP, mode="vepa",
        plugin="vifplug", port_profile=osv.vif.VIFPortProfile8021Qbg(**QBG)),
    "VIFDirect+8021Qbh (passthrough, VLAN)": lambda: os_vif(
        "VIFDirect", network(bridge_interface="eth2", vlan=42), vif_name=TAP,
        mode="passthrough", plugin="vifplug",
        port_profile=osv.vif.VIFPortProfile8021Qbh(profile_id="finance")),
    "VIFDirect (bridge mode)": lambda: os_vif(
        "VIFDirect", network(bridge_interface="eth2", mtu=9000), vif_name="mvt1a2b3c4d",
        mode="bridge", plugin="vifplug"),
    "VIFHostDevice": lambda: os_vif(
        "VIFHostDevice", network(vlan=300), dev_type="ethernet", dev_address="0000:3b:00.2",
        plugin="vifplug"),
    "VIFVHostUser+OVS": lambda: os_vif(
        "VIFVHostUser", network(bridge="br-int"), vif_name="vhu" + VIF_ID[:11], path=SOCKET,
        mode="server", port_profile=ovs_profile(datapath_type="netdev")),
    "VIFVHostUser (client, no switch)": lambda: os_vif(
        "VIFVHostUser", network(mtu=9000), vif_name="vhu" + VIF_ID[:11], path=SOCKET,
        mode="client", plugin="noop"),
    "VIFGeneric": lambda: os_vif("VIFGeneric", network(mtu=9000), vif_name="vm7-eth1",
                                 plugin="noop"),
}

#: The os-vif fields vifplug carries (where it carries them: see the mapping table).
COMMON = ("id", "address", "has_traffic_filtering")
NETWORK = ("label", "bridge", "vlan", "mtu", "should_provide_bridge", "should_provide_vlan",
           "bridge_interface")
CARRIED = {
    "VIFBridge": ("vif_name", "bridge_name"),
    "VIFOpenVSwitch": ("vif_name", "bridge_name"),
    "VIFDirect": ("vif_name", "mode"),
    "VIFHostDevice": ("dev_type", "dev_address"),
    "VIFVHostUser": ("vif_name", "path", "mode"),
    "VIFGeneric": ("vif_name",),
}
PROFILE = {
    "VIFPortProfileOpenVSwitch": ("interface_id", "datapath_type", "create_port"),
    "VIFPortProfile8021Qbg": ("manager_id", "type_id", "type_id_version", "instance_id"),
    "VIFPortProfile8021Qbh": ("profile_id",),
}
#: Field defaults os-vif documents but leaves unset until obj_set_defaults().
DEFAULTS = {"has_traffic_filtering": False, "should_provide_bridge": False,
            "should_provide_vlan": False, "create_port": False}


def field(obj: Any, name: str) -> Any:
    if obj is None or not obj.obj_attr_is_set(name):
        return DEFAULTS.get(name)
    value = getattr(obj, name)
    return str(value) if name in ("id", "interface_id", "instance_id") else value


def carried(obj: Any) -> dict[str, Any]:
    """The fields of an os-vif VIF that vifplug carries, with unset fields at their defaults."""
    cls = obj.obj_name()
    result = {"class": cls, **{name: field(obj, name) for name in (*COMMON, *CARRIED[cls])}}
    net = obj.network
    result |= {f"network.{name}": field(net, name) for name in NETWORK}
    profile = obj.port_profile if obj.obj_attr_is_set("port_profile") else None
    result["port_profile"] = None if profile is None else profile.obj_name()
    if profile is not None:
        result |= {f"port_profile.{name}": field(profile, name)
                   for name in PROFILE[profile.obj_name()]}
    return result


def twin(example: str, **changes: Any) -> dict[str, Any]:
    """An example's vif.json data, with ``changes`` merged (``None`` removes a key)."""
    data: dict[str, Any] = json.loads((EXAMPLES / example).read_text())

    def merge(into: dict[str, Any], delta: dict[str, Any]) -> None:
        for key, value in delta.items():
            if value is None:
                into.pop(key, None)
            elif isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(data, changes)
    return data


def via_primitive(obj: Any) -> Vif:
    """``obj`` serialised as os-vif's JSON primitive, then read back by load_foreign."""
    (vif,) = load_foreign(json.loads(json.dumps(obj.obj_to_primitive())), "os-vif")
    return vif


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", OS_VIF_CASES)
def test_os_vif_to_vifplug_and_back_keeps_every_carried_field(case: str) -> None:
    original = OS_VIF_CASES[case]()
    vif = from_os_vif(original)
    again = to_os_vif(vif, plugin=original.plugin)
    assert carried(again) == carried(original)
    assert again.plugin == original.plugin
    # The JSON primitive (what `vifplug --from os-vif` reads) is the same VIF.
    assert via_primitive(original) == vif


def _examples() -> list[tuple[str, int]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.json")):
        data = json.loads(path.read_text())
        count = len(data) if isinstance(data, list) else 1
        found += [(path.name, index) for index in range(count)]
    return found


def test_vhostuser_devname_is_os_vifs_vif_name_and_novas_devname() -> None:
    data = json.loads((EXAMPLES / "vhostuser.json").read_text())
    named = load_vifs({**data, "devname": "vhu-guest1"})[0]
    osv_vif = to_os_vif(named)
    assert osv_vif.vif_name == "vhu-guest1"
    assert from_os_vif(osv_vif) == named.model_copy(update={"queues": None})
    default = to_os_vif(load_vifs(data)[0])
    assert default.vif_name == "vhu3c4d5e6f-7a"
    assert from_os_vif(default).to_dict().get("devname") is None  # the implied name stays implied
    nova = nova_vif("vhostuser", devname="vhu-guest1",
                    details={"vhostuser_socket": "/run/vhu.sock", "vhostuser_mode": "server"})
    assert from_nova_vif(nova).to_dict()["devname"] == "vhu-guest1"


#: What os-vif objects have no field for: the guest side of the NIC (libvirt XML only).
GUEST_SIDE = {"model": None, "queues": None, "link_state": None, "bandwidth": None,
              "filter": None, "isolated": False, "alias": None, "teaming": None}


@pytest.mark.parametrize("firewall", [False, True], ids=["no-firewall", "firewall"])
@pytest.mark.parametrize(("example", "index"), _examples())
def test_vifplug_to_os_vif_and_back_is_the_identity(example: str, index: int,
                                                    firewall: bool) -> None:
    vif = load_vifs(EXAMPLES / example)[index]
    if getattr(vif.network, "trunk", None) is not None:
        with pytest.raises(InteropError) as caught:
            to_os_vif(vif)
        assert caught.value.path == "$.network.trunk"
        return
    if vif.vif_type == "vdpa":  # os-vif has no vDPA VIF (nova's is the parent VF's)
        with pytest.raises(InteropError) as caught:
            to_os_vif(vif)
        assert caught.value.path == "$.vif_type"
        assert "/dev/vhost-vdpa-N" in str(caught.value)
        return
    expressible = vif.model_copy(update={key: value for key, value in GUEST_SIDE.items()
                                         if key in type(vif).model_fields})
    if vif.vif_type == "ovs" and vif.plug is None:  # os-vif's class fixes the plug method
        chosen = GenericVIFDriver(firewall=firewall).select(vif).plug_method
        expressible = expressible.model_copy(update={"plug": chosen})
    osv_vif = to_os_vif(vif, firewall=firewall)
    assert from_os_vif(osv_vif) == expressible
    assert via_primitive(osv_vif) == expressible
    assert osv_vif.plugin == "vifplug"


def test_the_hybrid_class_is_os_vif_s_own_hybrid_vif() -> None:
    """ENVIRONMENT.md: os-vif's hybrid VIF is VIFBridge(bridge_name=qbr…, vif_name=tap…,
    network.bridge=br-int, port_profile=VIFPortProfileOpenVSwitch(...))."""
    vif = load_vifs(EXAMPLES / "ovs-hybrid.json")[0]
    osv_vif = to_os_vif(vif)
    assert osv_vif.obj_name() == "VIFBridge"
    assert (osv_vif.bridge_name, osv_vif.vif_name, osv_vif.network.bridge) == (
        vif.qbr_name, vif.tap_name, "br-int")
    assert osv_vif.port_profile.obj_name() == "VIFPortProfileOpenVSwitch"
    assert str(osv_vif.port_profile.interface_id) == vif.ovs.interface_id  # type: ignore[union-attr]
    manual = to_os_vif(load_vifs(EXAMPLES / "ovs-manual.json")[0])
    assert manual.obj_name() == "VIFOpenVSwitch"
    assert (manual.port_profile.create_port, manual.port_profile.create_tap,
            manual.port_profile.multiqueue) == (True, True, True)


# --- the twin table: each foreign shape renders its vif.json twin's XML ------------------------


def nova_vif(vtype: str, **fields: Any) -> dict[str, Any]:
    """A nova network_info VIF as nova's neutron API code builds it."""
    meta = fields.pop("meta", {})
    net = {"id": NET_ID, "bridge": fields.pop("bridge", None), "label": "blue", "subnets": [],
           "meta": {"injected": False, "tenant_id": "a1b2", **meta}}
    vif = {"id": VIF_ID, "address": MAC, "type": vtype, "devname": TAP,
           "ovs_interfaceid": None, "qbh_params": None, "qbg_params": None, "active": True,
           "vnic_type": "normal", "profile": {}, "preserve_on_delete": False,
           "details": {}, "network": net}
    vif.update(fields)
    return vif


def neutron_port(vif_type: str, details: dict[str, Any] | None = None,
                 **fields: Any) -> dict[str, Any]:
    """A Neutron port as GET /v2.0/ports/{id} returns it to an admin."""
    port = {"id": VIF_ID, "name": "", "network_id": NET_ID, "mac_address": MAC,
            "admin_state_up": True, "status": "DOWN", "device_owner": "compute:nova",
            "fixed_ips": [], "security_groups": [], "port_security_enabled": True,
            "binding:host_id": "compute-1", "binding:vif_type": vif_type,
            "binding:vif_details": details or {}, "binding:vnic_type": "normal",
            "binding:profile": {}}
    port.update(fields)
    return port


class Case:
    """One logical VIF: its vif.json twin, the driver options, and its foreign shapes."""

    def __init__(self, twin: dict[str, Any], *, firewall: bool = False,
                 os_vif: Callable[[], Any] | None = None, nova: dict[str, Any] | None = None,
                 neutron: tuple[dict[str, Any], str | None, int | None] | None = None) -> None:
        self.twin = twin
        self.firewall = firewall
        self.shapes: dict[str, Callable[[], Vif]] = {}
        if os_vif is not None:
            self.shapes["os-vif"] = lambda: from_os_vif(os_vif())
            self.shapes["os-vif-json"] = lambda: via_primitive(os_vif())
        if nova is not None:
            self.shapes["nova"] = lambda: from_nova_vif(copy.deepcopy(nova))
        if neutron is not None:
            port, name, mtu = neutron
            self.shapes["neutron"] = lambda: from_neutron_port(copy.deepcopy(port), name, mtu)


def vif_json(**fields: Any) -> dict[str, Any]:
    data = {"id": VIF_ID, "mac": MAC, **fields}
    data.setdefault("network", {"name": "blue"})
    return data


OVS_ID = {"interface_id": VIF_ID}
CASES: dict[str, Case] = {
    # Hybrid because the switch asks for it (neutron's iptables_hybrid: filtered on the qbr).
    "ovs hybrid (ovs_hybrid_plug)": Case(
        vif_json(vif_type="ovs", mtu=1450, plug="hybrid", filtered=True,
                 network={"name": "blue", "bridge": "br-int"},
                 ovs={"interface_id": VIF_ID, "datapath_type": "netdev"}),
        os_vif=lambda: hybrid(has_traffic_filtering=True, port_profile=ovs_profile(
            interface_id=VIF_ID, datapath_type="netdev")),
        nova=nova_vif("ovs", bridge="br-int", meta={"mtu": 1450},
                      details={"port_filter": True, "ovs_hybrid_plug": True,
                               "datapath_type": "netdev"}),
        neutron=(neutron_port("ovs", {"port_filter": True, "ovs_hybrid_plug": True,
                                      "datapath_type": "netdev", "bridge_name": "br-int"}),
                 "blue", 1450)),
    # Hybrid because the host firewalls and the switch does not filter (nova's old rule; for
    # Neutron, security groups on an unfiltered port).
    "ovs hybrid (host firewall, unfiltered)": Case(
        vif_json(vif_type="ovs", network={"name": "blue", "bridge": "br-int"}, ovs=OVS_ID),
        firewall=True,
        os_vif=lambda: os_vif("VIFBridge", network(bridge="br-int"), vif_name=TAP,
                              bridge_name=QBR, port_profile=ovs_profile(interface_id=VIF_ID)),
        nova=nova_vif("ovs", bridge="br-int", details={"port_filter": False,
                                                       "ovs_hybrid_plug": False}),
        neutron=(neutron_port("ovs", {"port_filter": False, "ovs_hybrid_plug": False},
                              security_groups=["6e2f1b0c-5a3d-4b8e-9c7f-0d1e2f3a4b5c"]),
                 "blue", None)),
    "ovs virtualport, VLAN and MTU": Case(
        vif_json(vif_type="ovs", mtu=1450, network={"name": "blue", "bridge": "br-int",
                                                    "vlan": 100}, ovs=OVS_ID),
        os_vif=lambda: os_vif("VIFOpenVSwitch", network(bridge="br-int", vlan=100, mtu=1450),
                              vif_name=TAP, bridge_name="br-int",
                              port_profile=ovs_profile(interface_id=VIF_ID)),
        nova=nova_vif("ovs", bridge="br-int", meta={"mtu": 1450, "vlan": 100},
                      details={"port_filter": True}),
        neutron=(neutron_port("ovs", {"port_filter": True, "vlan": 100}), "blue", 1450)),
    "ovs filtered by the switch under a host firewall": Case(
        vif_json(vif_type="ovs", filtered=True, network={"name": "blue", "bridge": "br-int"},
                 ovs=OVS_ID),
        firewall=True,
        os_vif=lambda: os_vif("VIFOpenVSwitch", network(bridge="br-int"), vif_name=TAP,
                              bridge_name="br-int", has_traffic_filtering=True,
                              port_profile=ovs_profile(interface_id=VIF_ID)),
        nova=nova_vif("ovs", bridge="br-int", details={"port_filter": True,
                                                       "ovs_hybrid_plug": False}),
        neutron=(neutron_port("ovs", {"port_filter": True, "ovs_hybrid_plug": False},
                              security_groups=["6e2f1b0c-5a3d-4b8e-9c7f-0d1e2f3a4b5c"]),
                 "blue", None)),
    "ovs manual (the plugin adds the port)": Case(
        vif_json(vif_type="ovs", plug="manual", network={"name": "blue", "bridge": "br-int"},
                 ovs=OVS_ID),
        os_vif=lambda: os_vif("VIFOpenVSwitch", network(bridge="br-int"), vif_name=TAP,
                              bridge_name="br-int",
                              port_profile=ovs_profile(interface_id=VIF_ID, create_port=True)),
        nova=nova_vif("ovs", bridge="br-int", delegate_create=True)),
    "ovs on another bridge, own device name": Case(
        vif_json(vif_type="ovs", devname="vm7-eth0", network={"name": "blue", "bridge": "br-ex"},
                 ovs={"interface_id": IFACE_ID}),
        os_vif=lambda: os_vif("VIFOpenVSwitch", network(bridge="br-ex"), vif_name="vm7-eth0",
                              bridge_name="br-ex", port_profile=ovs_profile()),
        nova=nova_vif("ovs", bridge="br-ex", devname="vm7-eth0", ovs_interfaceid=IFACE_ID)),
    # Neutron's bridge ports always come with "create the bridge" (nova's should_create_bridge).
    "bridge": Case(
        vif_json(vif_type="bridge", mtu=1500, network={"name": "red", "bridge": "red",
                                                       "create_bridge": True}),
        os_vif=lambda: os_vif("VIFBridge", network(label="red", bridge="red", mtu=1500,
                                                   should_provide_bridge=True),
                              vif_name=TAP, bridge_name="red", plugin="linux_bridge"),
        nova=nova_vif("bridge", bridge="red", label="red", meta={
            "mtu": 1500, "should_create_bridge": True}),
        neutron=(neutron_port("bridge", {"bridge_name": "red"}), "red", 1500)),
    "bridge with VLAN created, firewalled": Case(
        twin("bridge-firewalled.json", filter=None, id=VIF_ID, mac=MAC),
        firewall=True,
        os_vif=lambda: os_vif("VIFBridge", network(label="red", bridge="br-red", vlan=100,
                                                   bridge_interface="eth1",
                                                   should_provide_bridge=True,
                                                   should_provide_vlan=True),
                              vif_name=TAP, bridge_name="br-red", plugin="linux_bridge"),
        nova=nova_vif("bridge", bridge="br-red", label="red", meta={
            "vlan": 100, "bridge_interface": "eth1", "should_create_bridge": True,
            "should_create_vlan": True})),
    "bridge named by the Linux bridge agent": Case(
        vif_json(vif_type="bridge", network={"name": NET_ID, "bridge": "brq" + NET_ID[:11],
                                             "create_bridge": True}),
        nova=nova_vif("bridge", bridge="brq" + NET_ID[:11], label=NET_ID,
                      meta={"should_create_bridge": True}),
        neutron=(neutron_port("bridge"), None, None)),
    "802.1qbg": Case(
        vif_json(vif_type="802.1qbg", network={"name": "green", "interface": "eth2"}, qbg=QBG),
        os_vif=lambda: os_vif("VIFDirect", network(label="green", bridge_interface="eth2"),
                              vif_name=TAP, mode="vepa",
                              port_profile=osv.vif.VIFPortProfile8021Qbg(**QBG)),
        nova=nova_vif("802.1qbg", label="green", meta={"interface": "eth2"}, qbg_params={
            "managerid": 11, "typeid": 1193047, "typeidversion": 2,
            "instanceid": QBG["instance_id"]})),
    "802.1qbg parameters given as strings": Case(
        vif_json(vif_type="802.1qbg", network={"name": "green", "interface": "eth2"}, qbg=QBG),
        nova=nova_vif("802.1qbg", label="green", meta={"interface": "eth2"}, qbg_params={
            "managerid": "11", "typeid": "1193047", "typeidversion": "2",
            "instanceid": QBG["instance_id"]})),
    "802.1qbh with a VLAN": Case(
        vif_json(vif_type="802.1qbh", network={"name": "green", "interface": "eth2",
                                               "vlan": 42}, qbh={"profile_id": "finance"}),
        os_vif=lambda: os_vif("VIFDirect", network(label="green", bridge_interface="eth2",
                                                   vlan=42),
                              vif_name=TAP, mode="passthrough",
                              port_profile=osv.vif.VIFPortProfile8021Qbh(profile_id="finance")),
        nova=nova_vif("802.1qbh", label="green", meta={"interface": "eth2"},
                      details={"vlan": 42}, qbh_params={"profileid": "finance"})),
    "direct (macvtap bridge mode)": Case(
        vif_json(vif_type="direct", devname="mvt1a2b3c4d", network={"name": "green",
                                                                    "interface": "eth2"},
                 direct={"mode": "bridge"}),
        os_vif=lambda: os_vif("VIFDirect", network(label="green", bridge_interface="eth2"),
                              vif_name="mvt1a2b3c4d", mode="bridge"),
        nova=nova_vif("macvtap", label="green", devname="mvt1a2b3c4d", details={
            "macvtap_source": "eth2", "macvtap_mode": "bridge"})),
    "direct (neutron macvtap agent)": Case(
        vif_json(vif_type="direct", network={"name": "green", "interface": "eth2.100"},
                 direct={"mode": "bridge"}),
        nova=nova_vif("macvtap", label="green", details={
            "macvtap_source": "eth2.100", "macvtap_mode": "bridge",
            "physical_interface": "eth2", "vlan": 100}),
        neutron=(neutron_port("macvtap", {"macvtap_source": "eth2.100", "macvtap_mode": "bridge",
                                          "physical_interface": "eth2", "vlan": 100}),
                 "green", None)),
    "hostdev (SR-IOV VF) with a VLAN": Case(
        vif_json(vif_type="hostdev", network={"name": "sriov", "vlan": 300},
                 hostdev={"pci": "0000:3b:00.2"}),
        os_vif=lambda: os_vif("VIFHostDevice", network(label="sriov", vlan=300),
                              dev_type="ethernet", dev_address="0000:3b:00.2"),
        nova=nova_vif("hw_veb", label="sriov", vnic_type="direct",
                      profile={"pci_slot": "0000:3b:00.2", "physical_network": "physnet2"},
                      details={"vlan": "300", "port_filter": False}),
        neutron=(neutron_port("hw_veb", {"vlan": "300"}, **{
            "binding:vnic_type": "direct",
            "binding:profile": {"pci_slot": "0000:3b:00.2", "physical_network": "physnet2"}}),
                 "sriov", None)),
    "macvtap passthrough on an SR-IOV VF (nova hw_veb)": Case(
        vif_json(vif_type="direct", network={"name": "sriov", "interface": "enp59s0f2",
                                             "vlan": 300}, direct={"mode": "passthrough"}),
        nova=nova_vif("hw_veb", label="sriov", vnic_type="macvtap",
                      meta={"interface": "enp59s0f2"},
                      profile={"pci_slot": "0000:3b:00.2"}, details={"vlan": 300})),
    "vhostuser on OVS-DPDK": Case(
        vif_json(vif_type="vhostuser", network={"name": "dpdk", "bridge": "br-int"},
                 ovs={"interface_id": VIF_ID, "datapath_type": "netdev"},
                 vhostuser={"socket": SOCKET, "mode": "server"}),
        os_vif=lambda: os_vif("VIFVHostUser", network(label="dpdk", bridge="br-int"),
                              vif_name="vhu" + VIF_ID[:11], path=SOCKET, mode="server",
                              port_profile=ovs_profile(interface_id=VIF_ID,
                                                       datapath_type="netdev")),
        nova=nova_vif("vhostuser", bridge="br-int", label="dpdk", details={
            "vhostuser_socket": SOCKET, "vhostuser_mode": "server",
            "vhostuser_ovs_plug": True, "datapath_type": "netdev", "port_filter": False}),
        neutron=(neutron_port("vhostuser", {
            "vhostuser_socket": SOCKET, "vhostuser_mode": "server", "vhostuser_ovs_plug": True,
            "datapath_type": "netdev", "port_filter": False}), "dpdk", None)),
    "vhostuser, QEMU the client, no switch": Case(
        vif_json(vif_type="vhostuser", mtu=9000, vhostuser={"socket": SOCKET, "mode": "client"}),
        os_vif=lambda: os_vif("VIFVHostUser", network(mtu=9000), vif_name="vhu" + VIF_ID[:11],
                              path=SOCKET, mode="client", plugin="noop"),
        nova=nova_vif("vhostuser", meta={"mtu": 9000}, details={
            "vhostuser_socket": SOCKET, "vhostuser_mode": "client"}),
        neutron=(neutron_port("vhostuser", {"vhostuser_socket": SOCKET,
                                            "vhostuser_mode": "client"}), "blue", 9000)),
    "ethernet (a TAP), MTU": Case(
        vif_json(vif_type="ethernet", mtu=9000, network={"name": "routed"}),
        os_vif=lambda: os_vif("VIFGeneric", network(label="routed", mtu=9000), vif_name=TAP,
                              plugin="noop"),
        nova=nova_vif("tap", label="routed", meta={"mtu": 9000}),
        neutron=(neutron_port("tap"), "routed", 9000)),
    "network name from a label with spaces, or the network id": Case(
        vif_json(vif_type="ovs", network={"name": "blue_net_2", "bridge": "br-int"},
                 ovs=OVS_ID),
        os_vif=lambda: os_vif("VIFOpenVSwitch", network(label="blue net 2", bridge="br-int"),
                              vif_name=TAP, bridge_name="br-int",
                              port_profile=ovs_profile(interface_id=VIF_ID)),
        nova=nova_vif("ovs", bridge="br-int", label="blue net 2")),
    "neutron network id as the name": Case(
        vif_json(vif_type="ovs", network={"name": NET_ID, "bridge": "br-int"}, ovs=OVS_ID),
        neutron=(neutron_port("ovs", {"port_filter": True}), None, None)),
}

TWIN_PARAMS = [pytest.param(name, shape, id=f"{name} [{shape}]")
               for name, case in CASES.items() for shape in case.shapes]


def test_the_twin_table_is_wide() -> None:
    assert len(CASES) >= 15
    assert {"os-vif", "os-vif-json", "nova", "neutron"} <= {p.values[1] for p in TWIN_PARAMS}


@pytest.mark.parametrize(("name", "shape"), TWIN_PARAMS)
def test_each_shape_renders_its_vif_json_twin(name: str, shape: str) -> None:
    case = CASES[name]
    expected = Vif.parse(case.twin)
    got = case.shapes[shape]()
    driver = GenericVIFDriver(firewall=case.firewall)
    assert tree(driver.interface_xml(got)) == tree(driver.interface_xml(expected))
    # And the host sides: the same steps, so the same devices and OVS ports.
    assert driver.plan(got) == driver.plan(expected)


def test_nova_hybrid_follows_nova_and_the_firewall_rule() -> None:
    """ovs_hybrid_plug fixes the hybrid path even when the switch filters (neutron's
    iptables_hybrid: the filter is on the qbr); without it the driver's rule decides, as older
    nova's ``get_firewall_required(vif) or vif.is_hybrid_plug_enabled()`` did."""
    both = from_nova_vif(nova_vif("ovs", bridge="br-int", details={"port_filter": True,
                                                                   "ovs_hybrid_plug": True}))
    assert (both.plug, both.filtered) == ("hybrid", True)
    unfiltered = from_nova_vif(nova_vif("ovs", bridge="br-int"))
    assert (unfiltered.plug, unfiltered.filtered) == (None, False)
    assert GenericVIFDriver(firewall=True).select(unfiltered).name == "ovs-hybrid"
    assert GenericVIFDriver(firewall=False).select(unfiltered).name == "ovs-virtualport"


@pytest.mark.parametrize(("groups", "port_security", "port_filter", "plug"), [
    (["sg"], True, False, "hybrid"),   # the seed's rule: the host must filter
    (["sg"], True, True, None),        # the switch filters
    ([], True, False, None),           # nothing to filter
    (["sg"], False, False, None),      # port security off
])
def test_neutron_security_groups_select_the_hybrid_path(
        groups: list[str], port_security: bool, port_filter: bool, plug: str | None) -> None:
    port = neutron_port("ovs", {"port_filter": port_filter}, security_groups=groups,
                        port_security_enabled=port_security)
    vif = from_neutron_port(port, "blue")
    assert (vif.plug, vif.filtered) == (plug, port_filter)


def test_neutron_defaults() -> None:
    vif = from_neutron_port(neutron_port("ovs"))
    assert (vif.network.name, vif.network.bridge, vif.ovs) == (
        NET_ID, "br-int", Vif.parse(vif_json(vif_type="ovs", network={
            "name": "x", "bridge": "b"}, ovs=OVS_ID)).ovs)
    bridge = from_neutron_port(neutron_port("bridge"), "red")
    assert (bridge.network.bridge, bridge.network.create_bridge) == ("brq" + NET_ID[:11], True)


def test_neutron_envelopes_and_lists() -> None:
    port = neutron_port("tap")
    other = neutron_port("tap", id="5e4d3c2b-1a09-4f8e-b7d6-c5b4a3928170",
                         mac_address="fa:16:3e:5e:4d:3c")
    (one,) = load_foreign({"port": port}, "neutron", network_name="red", mtu=1400)
    assert (one.vif_type, one.network.name, one.mtu) == ("ethernet", "red", 1400)
    assert [v.id for v in load_foreign({"ports": [port, other]}, "neutron")] == [
        VIF_ID, other["id"]]


def test_instance_uuid_of() -> None:
    info = osv.instance_info.InstanceInfo(uuid="5e1f3a9c-7d2b-4c8e-9f60-a1b2c3d4e5f6",
                                          name="vm")
    assert instance_uuid_of(info) == "5e1f3a9c-7d2b-4c8e-9f60-a1b2c3d4e5f6"
    assert instance_uuid_of(osv.instance_info.InstanceInfo(name="vm")) is None
    assert instance_uuid_of(None) is None
    assert from_os_vif(hybrid(), info) == from_os_vif(hybrid())


def test_coerce_vif() -> None:
    vif = load_vifs(EXAMPLES / "bridge.json")[0]
    assert coerce_vif(vif) is vif
    assert coerce_vif(hybrid()) == from_os_vif(hybrid())
    with pytest.raises(TypeError, match="expected a vifplug Vif or an os-vif VIF"):
        coerce_vif(vif.to_dict())


# --- bad shapes ----------------------------------------------------------------------------------


def problems(exc: InvalidVifError) -> dict[str, str]:
    return dict(exc.problems)


def test_nova_vif_without_address() -> None:
    data = nova_vif("ovs", bridge="br-int")
    del data["address"]
    with pytest.raises(InteropError) as caught:
        from_nova_vif(data)
    assert problems(caught.value) == {"$.address": "required: the guest MAC address"}
    assert isinstance(caught.value, VifError)
    assert caught.value.exit_code == 2
    assert caught.value.kind == "nova"


@pytest.mark.parametrize("vif_type", ["unbound", "binding_failed"])
def test_unbound_neutron_port(vif_type: str) -> None:
    with pytest.raises(InteropError) as caught:
        from_neutron_port(neutron_port(vif_type), "blue")
    path = json_path(("binding:vif_type",))
    assert path == "$['binding:vif_type']"
    assert list(problems(caught.value)) == [path]
    message = problems(caught.value)[path]
    assert "the port is not bound" in message
    assert ("binding failed" in message) == (vif_type == "binding_failed")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("vif_type", ["unbound", "binding_failed"])
def test_unbound_nova_vif(vif_type: str) -> None:
    with pytest.raises(InteropError) as caught:
        from_nova_vif(nova_vif(vif_type))
    message = problems(caught.value)["$.type"]
    assert "the port is not bound" in message
    assert ("binding failed" in message) == (vif_type == "binding_failed")


def test_os_vif_bridge_without_network() -> None:
    vif = osv.vif.VIFBridge(id=VIF_ID, address=MAC, plugin="ovs", vif_name=TAP, bridge_name=QBR,
                            port_profile=ovs_profile())
    with pytest.raises(InteropError) as caught:
        from_os_vif(vif)
    assert problems(caught.value) == {"$.network": "required: the Network the VIF is on"}


BAD = {
    "neutron port without binding (not an admin's view)": (
        lambda: from_neutron_port({k: v for k, v in neutron_port("ovs").items()
                                   if not k.startswith("binding:")}, "blue"),
        "$['binding:vif_type']", "required: the port's binding"),
    "neutron hostdev_physical": (
        lambda: from_neutron_port(neutron_port("hostdev_physical"), "blue"),
        "$['binding:vif_type']", "'hostdev_physical' passes a whole PCI device"),
    "neutron distributed": (
        lambda: from_neutron_port(neutron_port("distributed"), "blue"),
        "$['binding:vif_type']", "vifplug does not connect binding:vif_type 'distributed'"),
    "neutron OVS hardware offload": (
        lambda: from_neutron_port(neutron_port("ovs", **{"binding:vnic_type": "direct"}), "b"),
        "$['binding:vnic_type']", "an 'ovs' port with vnic_type 'direct' is OVS hardware"),
    "neutron hw_veb macvtap": (
        lambda: from_neutron_port(neutron_port("hw_veb", **{"binding:vnic_type": "macvtap"})),
        "$['binding:vnic_type']", "an 'hw_veb' port takes vnic_type 'direct'"),
    "neutron hw_veb without pci_slot": (
        lambda: from_neutron_port(neutron_port("hw_veb", **{"binding:vnic_type": "direct"})),
        "$['binding:profile'].pci_slot", "required: the VF's PCI address"),
    "neutron vhostuser without socket": (
        lambda: from_neutron_port(neutron_port("vhostuser")),
        "$['binding:vif_details'].vhostuser_socket", "required: the vhost-user socket path"),
    "neutron bad MAC": (
        lambda: from_neutron_port(neutron_port("tap", mac_address="01:00:5e:00:00:01")),
        "$.mac_address", "must be a unicast MAC address"),
    "neutron bad network name": (
        lambda: from_neutron_port(neutron_port("tap"), "no spaces please"),
        "network_name", "must be 1 to 64 characters"),
    "neutron bad mtu": (
        lambda: from_neutron_port(neutron_port("tap"), "blue", 20),
        "mtu", "must be at least 68 (got 20) (vif.json $.mtu)"),
    "neutron VLAN on a TAP": (
        lambda: from_neutron_port(neutron_port("tap", {"vlan": 5}), "blue"),
        "$['binding:vif_details'].vlan", "not used by vif_type 'ethernet'"),
    "nova unknown type": (
        lambda: from_nova_vif(nova_vif("vrouter")),
        "$.type", "vifplug does not connect nova VIF type 'vrouter'"),
    "nova hostdev_physical": (
        lambda: from_nova_vif(nova_vif("hostdev_physical")),
        "$.type", "'hostdev_physical' passes a whole PCI device"),
    "nova VLAN on a TAP": (
        lambda: from_nova_vif(nova_vif("tap", meta={"vlan": 7})),
        "$.network.meta.vlan", "not used by vif_type 'ethernet'"),
    "nova ovs without bridge": (
        lambda: from_nova_vif(nova_vif("ovs")),
        "$.network.bridge", "required when vif_type is 'ovs'"),
    "nova qbg without parameters": (
        lambda: from_nova_vif(nova_vif("802.1qbg", meta={"interface": "eth2"})),
        "$.qbg_params", "required: the 802.1Qbg parameters"),
    "nova qbg with a bad manager id": (
        lambda: from_nova_vif(nova_vif("802.1qbg", meta={"interface": "eth2"}, qbg_params={
            "typeid": 1, "typeidversion": 1, "instanceid": QBG["instance_id"],
            "managerid": 300})),
        "$.qbg_params.managerid", "must be at most 255"),
    "nova macvtap without mode": (
        lambda: from_nova_vif(nova_vif("macvtap", details={"macvtap_source": "eth2"})),
        "$.details.macvtap_mode", "required: the macvtap mode"),
    "nova vDPA port": (
        lambda: from_nova_vif(nova_vif("ovs", bridge="br-int", vnic_type="vdpa",
                                       profile={"pci_slot": "0000:3b:00.2"})),
        "$.vnic_type", "write a 'vdpa' VIF whose vdpa.device is that /dev/vhost-vdpa-N"),
    "neutron vDPA port": (
        lambda: from_neutron_port(neutron_port("ovs", **{"binding:vnic_type": "vdpa"}), "b"),
        "$['binding:vnic_type']", "from which nova finds the vhost-vdpa device on the host"),
    "nova OVS offload": (
        lambda: from_nova_vif(nova_vif("ovs", bridge="br-int", vnic_type="direct")),
        "$.vnic_type", "OVS hardware offload"),
    "nova fast-path vhostuser": (
        lambda: from_nova_vif(nova_vif("vhostuser", details={
            "vhostuser_socket": SOCKET, "vhostuser_fp_plug": True})),
        "$.details.vhostuser_fp_plug", "a fast-path or vRouter vhost-user port"),
    "nova hw_veb macvtap without the VF's device": (
        lambda: from_nova_vif(nova_vif("hw_veb", vnic_type="macvtap",
                                       profile={"pci_slot": "0000:3b:00.2"})),
        "$.network.meta.interface", "required: a macvtap on an SR-IOV VF"),
    "nova not an object": (lambda: from_nova_vif([]), "$", "expected a nova network_info VIF"),
    "nova port_filter not a bool": (
        lambda: from_nova_vif(nova_vif("tap", details={"port_filter": "yes"})),
        "$.details.port_filter", "must be true or false (got 'yes')"),
    "os-vif representor (hardware offload)": (
        lambda: from_os_vif(os_vif("VIFHostDevice", dev_type="ethernet",
                                   dev_address="0000:3b:00.2", port_profile=ovs_profile())),
        "$.port_profile", "VIFHostDevice with port profile VIFPortProfileOpenVSwitch"),
    "os-vif generic hostdev": (
        lambda: from_os_vif(os_vif("VIFHostDevice", dev_type="generic",
                                   dev_address="0000:3b:00.2")),
        "$.dev_type", "'generic' is a PCI <hostdev>"),
    "os-vif VIFOpenVSwitch without profile": (
        lambda: from_os_vif(os_vif("VIFOpenVSwitch", network(bridge="br-int"), vif_name=TAP,
                                   bridge_name="br-int")),
        "$.port_profile", "VIFOpenVSwitch with port profile none: vifplug takes "
                          "VIFPortProfileOpenVSwitch"),
    "os-vif bridge_name disagrees with the network": (
        lambda: from_os_vif(os_vif("VIFOpenVSwitch", network(bridge="br-int"), vif_name=TAP,
                                   bridge_name="br-ex", port_profile=ovs_profile())),
        "$.bridge_name", "must be the Network's bridge 'br-int'"),
    "os-vif hybrid without address": (
        lambda: from_os_vif(hybrid(address=None)),
        "$.address", "required (vif.json $.mac)"),
    "os-vif interface id missing": (
        lambda: from_os_vif(os_vif("VIFOpenVSwitch", network(bridge="br-int"), vif_name=TAP,
                                   bridge_name="br-int",
                                   port_profile=osv.vif.VIFPortProfileOpenVSwitch())),
        "$.port_profile.interface_id", "required when vif_type is 'ovs'"),
    "os-vif fast-path profile": (
        lambda: from_os_vif(os_vif("VIFVHostUser", path=SOCKET, mode="client",
                                   port_profile=osv.vif.VIFPortProfileFPBridge(
                                       bridge_name="br0"))),
        "$.port_profile", "(a fast-path port, which vifplug does not plug)"),
    "os-vif VLAN on a VIFGeneric": (
        lambda: from_os_vif(os_vif("VIFGeneric", network(vlan=5), vif_name=TAP)),
        "$.network.vlan", "not used by vif_type 'ethernet'"),
    "os-vif macvtap without its lower device": (
        lambda: from_os_vif(os_vif("VIFDirect", vif_name=TAP, mode="vepa",
                                   dev_address="0000:3b:00.2")),
        "$.network.bridge_interface", "required: the macvtap's lower net device"),
    "os-vif unlabelled network": (
        lambda: from_os_vif(os_vif("VIFGeneric", osv.network.Network(), vif_name=TAP)),
        "$.network.label", "required: a label (or id) to name the network"),
    "os-vif VIFNestedDPDK": (
        lambda: from_os_vif(os_vif("VIFNestedDPDK", pci_address="0000:00:05.0",
                                   dev_driver="virtio-pci")),
        "$", "os-vif VIFNestedDPDK is not a VIF vifplug connects"),
    "not an os-vif object": (lambda: from_os_vif({"id": VIF_ID}), "$",
                             "expected an os-vif VIF object (got dict)"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_shapes_name_the_foreign_path(case: str) -> None:
    convert, path, message = BAD[case]
    with pytest.raises(InteropError) as caught:
        convert()
    found = problems(caught.value)
    assert path in found, found
    assert message in found[path]
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("trusted", [True, "true", "True", False, "false"])
def test_sriov_trusted_port_asks_trust_guest_rx_filters(trusted: object) -> None:
    # Neutron's binding:profile trusted (a bool, or nova's bool_from_string) → the VIF's key
    want = trusted in (True, "true", "True")
    profile = {"pci_slot": "0000:3b:00.2", "trusted": trusted}
    hostdev = from_nova_vif(nova_vif("hw_veb", label="sriov", vnic_type="direct",
                                     profile=profile))
    macvtap = from_nova_vif(nova_vif("hw_veb", label="sriov", vnic_type="macvtap",
                                     meta={"interface": "enp59s0f2"}, profile=profile))
    port = from_neutron_port(neutron_port("hw_veb", **{"binding:vnic_type": "direct",
                                                       "binding:profile": profile}))
    for vif in (hostdev, macvtap, port):
        assert vif.to_dict()["trust_guest_rx_filters"] is want


def test_sriov_trusted_not_a_boolean_names_the_field() -> None:
    with pytest.raises(InteropError) as caught:
        from_nova_vif(nova_vif("hw_veb", label="sriov", vnic_type="direct",
                               profile={"pci_slot": "0000:3b:00.2", "trusted": "maybe"}))
    assert problems(caught.value) == {"$.profile.trusted": "must be true or false (got 'maybe')"}


def test_every_problem_is_reported_at_once() -> None:
    data = nova_vif("ovs", address="not-a-mac", details={"datapath_type": "kernel"})
    data["network"]["meta"]["mtu"] = "big"
    with pytest.raises(InteropError) as caught:
        from_nova_vif(data)
    # the bridge too (nova's ovs VIF here names none): problems of every kind, all at once
    assert set(problems(caught.value)) == {"$.network.meta.mtu", "$.address",
                                          "$.details.datapath_type", "$.network.bridge"}


def test_load_foreign_locates_items_and_names_the_file() -> None:
    good = nova_vif("tap")
    bad = nova_vif("tap", id="5e4d3c2b-1a09-4f8e-b7d6-c5b4a3928170")
    del bad["address"]
    with pytest.raises(InteropError) as caught:
        load_foreign([good, bad], "nova", source="network_info.json")
    assert problems(caught.value) == {"$[1].address": "required: the guest MAC address"}
    assert str(caught.value) == ("network_info.json: $[1].address: required: the guest MAC "
                                 "address")
    ports = [neutron_port("tap"), neutron_port("unbound")]
    with pytest.raises(InteropError) as caught:
        load_foreign({"ports": ports}, "neutron")
    assert list(problems(caught.value)) == ["$.ports[1]['binding:vif_type']"]


def test_load_foreign_refuses_two_items_with_one_identity() -> None:
    twice = [neutron_port("tap"), neutron_port("tap", mac_address="fa:16:3e:00:00:01")]
    with pytest.raises(InteropError) as caught:
        load_foreign({"ports": twice}, "neutron")
    assert problems(caught.value) == {
        "$.ports[1].id": f"id {VIF_ID!r} is already used by $.ports[0] (must be unique in a "
                         "file)",
        # A Neutron port names no device: the TAP's name derives from the id.
        "$.ports[1]": f"host device {TAP!r} is already used by $.ports[0] (must be unique in a "
                      "file) (vif.json $.devname)",
    }


@pytest.mark.parametrize(("data", "kind", "path", "message"), [
    ([], "nova", "$", "expected a nova network_info VIF or a non-empty array"),
    ("text", "neutron", "$", "expected a Neutron port or a non-empty array"),
    ([{"id": VIF_ID}], "os-vif", "$[0]", "expected an os-vif object primitive"),
    ([{"versioned_object.name": "VIFNoSuchThing", "versioned_object.namespace": "os_vif",
       "versioned_object.version": "1.0", "versioned_object.data": {}}], "os-vif", "$[0]",
     "os-vif cannot rebuild the object"),
    ({"versioned_object.name": "VIFGeneric", "versioned_object.namespace": "os_vif",
      "versioned_object.version": "1.0", "versioned_object.data": {"address": "zz"}},
     "os-vif", "$", "os-vif cannot rebuild the object"),
])
def test_load_foreign_bad_documents(data: object, kind: Any, path: str, message: str) -> None:
    with pytest.raises(InteropError) as caught:
        load_foreign(data, kind)
    assert message in problems(caught.value)[path]


def test_load_foreign_options() -> None:
    with pytest.raises(VifError, match="--from: expected one of os-vif, nova, neutron"):
        load_foreign({}, "quantum")  # type: ignore[arg-type]
    with pytest.raises(VifError, match="--network-name: only for --from neutron"):
        load_foreign(nova_vif("tap"), "nova", network_name="red")
    with pytest.raises(VifError, match="--mtu: only for --from neutron"):
        load_foreign(nova_vif("tap"), "nova", mtu=1500)


@pytest.mark.parametrize(("example", "changes", "path", "message"), [
    ("ovs-trunk.json", {}, "$.network.trunk", "os-vif has no trunk"),
    ("direct.json", {"direct": {"mode": "private"}}, "$.direct.mode",
     "os-vif's VIFDirect has no mode 'private'"),
])
def test_to_os_vif_refuses_what_os_vif_cannot_say(example: str, changes: dict[str, Any],
                                                  path: str, message: str) -> None:
    vif = Vif.parse(twin(example, **changes))
    with pytest.raises(InteropError) as caught:
        to_os_vif(vif)
    assert message in problems(caught.value)[path]


# --- the os-vif plugin, without touching a host ----------------------------------------------


@pytest.fixture
def plugin() -> Any:
    from vifplug.interop.os_vif import VifplugPlugin

    return VifplugPlugin.load("vifplug")


def test_plugin_describes_every_class_it_takes(plugin: Any) -> None:
    info = plugin.describe()
    assert info.plugin_name == "vifplug"
    assert [v.vif_object_name for v in info.vif_info] == list(SUPPORTED)
    for vif_info in info.vif_info:
        vif_info.get_common_version()  # the registered class satisfies min/max
        names = {p.profile_object_name for p in vif_info.supported_port_profiles}
        assert names == {p for p in SUPPORTED[vif_info.vif_object_name] if p is not None}
        for profile in vif_info.supported_port_profiles:
            profile.get_common_version()
    # Every case above is of a class the plugin says it takes.
    assert {build().obj_name() for build in OS_VIF_CASES.values()} == set(SUPPORTED)


def test_plugin_bad_vif_is_an_os_vif_plug_exception(plugin: Any) -> None:
    vif = osv.vif.VIFBridge(id=VIF_ID, address=MAC, plugin="vifplug", vif_name=TAP,
                            bridge_name=QBR, port_profile=ovs_profile())
    info = osv.instance_info.InstanceInfo(uuid="5e1f3a9c-7d2b-4c8e-9f60-a1b2c3d4e5f6", name="v")
    with pytest.raises(osv_exception.PlugException) as caught:
        plugin.plug(vif, info)
    assert isinstance(caught.value.__cause__, InteropError)
    assert "$.network: required" in str(caught.value)
    with pytest.raises(osv_exception.UnplugException) as caught_un:
        plugin.unplug(vif, info)
    assert isinstance(caught_un.value.__cause__, InteropError)
