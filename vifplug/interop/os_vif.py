"""os-vif's versioned objects in and out, and vifplug as an os-vif plugin.

os-vif is imported only inside these functions (``pip install vifplug[os-vif]``), and
``VifplugPlugin`` (the ``os_vif`` entry point ``vifplug``) is built on first access.

    from vifplug.interop.os_vif import from_os_vif, instance_uuid_of, to_os_vif
    vif = from_os_vif(osv_vif)                       # a vifplug Vif
    driver.plug(vif, host, instance_uuid=instance_uuid_of(instance_info))
    osv_vif = to_os_vif(vif)                         # an os-vif VIF (plugin "vifplug")

How the models meet (os-vif 5.3; ``vif.json`` on the right):

===================================================  ======================================
os-vif                                               vif.json
===================================================  ======================================
``VIFBridge`` + ``VIFPortProfileOpenVSwitch``        ``ovs``, ``plug: hybrid`` (bridge_name
                                                     must be ``qbr`` + ``id[:11]``, the name
                                                     vifplug and neutron's agent derive)
``VIFBridge`` without a port profile                 ``bridge`` (``network.bridge`` from
                                                     ``bridge_name``, else ``Network.bridge``)
``VIFOpenVSwitch``                                   ``ovs``, ``plug: virtualport`` (libvirt
                                                     adds the port, as nova renders it)
``VIFOpenVSwitch``, profile ``create_port``          ``ovs``, ``plug: manual`` (the plugin
                                                     adds the port; nova renders
                                                     ``type='ethernet'``)
``VIFDirect`` + ``VIFPortProfile8021Qbg`` / ``Qbh``  ``802.1qbg`` / ``802.1qbh``
``VIFDirect`` without a port profile                 ``direct``; ``mode`` → ``direct.mode``
``VIFHostDevice`` (``dev_type`` ethernet)            ``hostdev``; ``dev_address`` →
                                                     ``hostdev.pci``
``VIFVHostUser``                                     ``vhostuser``: ``path``, ``mode`` (both
                                                     QEMU's side); OVS profile → ``ovs``
``VIFGeneric``                                       ``ethernet``
``address`` / ``has_traffic_filtering``              ``mac`` / ``filtered``
``vif_name`` (not ``tap`` + ``id[:11]``)             ``devname`` (TAP and macvtap kinds)
OVS profile ``interface_id``, ``datapath_type``      ``ovs.interface_id``, ``ovs.datapath_type``
Qbg ``manager_id``, ``type_id``, ``type_id_version``,  ``qbg.*``; Qbh ``profile_id`` →
``instance_id``                                      ``qbh.profile_id``
``Network.label`` (else ``Network.id``)              ``network.name`` (characters vif.json
                                                     refuses become ``_``, cut to 64)
``Network.bridge``, ``vlan``, ``bridge_interface``   ``network.bridge``, ``vlan``, ``interface``
                                                     (``interface`` is also a macvtap's lower
                                                     device: ``VIFDirect.dev_address`` is a PCI
                                                     address, which vifplug does not resolve)
``Network.mtu``                                      ``mtu``
``should_provide_bridge`` / ``should_provide_vlan``  ``network.create_bridge`` / ``create_vlan``
===================================================  ======================================

Refused with :class:`~vifplug.interop.errors.InteropError` (the path is the os-vif field):
``VIFNestedDPDK``; ``VIFHostDevice`` with ``dev_type`` generic (a PCI ``<hostdev>``, not an
``<interface>``) or with an OVS port profile (a switchdev representor, which vifplug does not
plug); fast-path and representor port profiles, ``datapath_offload``, an OVS ``profile_id``;
``VIFDirect.vlan_name``; a vifplug ``vdpa`` VIF (os-vif has none: nova describes vDPA as a
``VIFHostDevice`` of the parent VF, and finds ``/dev/vhost-vdpa-N`` from its PCI address on the
host); anything the vif.json rules refuse (a VLAN on a ``VIFGeneric``, ...).
Not carried: ``active``, ``preserve_on_delete`` (os-vif's own OVS plugin ignores it too),
``plugin``, ``Network.subnets`` / ``multi_host``, the OVS profile's ``create_tap`` /
``multiqueue``. ``to_os_vif`` leaves out what only the guest side uses (``model``, ``queues``,
``virtio``, ``coalesce``, ``backend``, ``rom``, ``trust_guest_rx_filters``,
``link_state``, ``bandwidth``, ``filter``, ``isolated``, ``alias``, ``teaming``): the object
describes what a plugin plugs.

The instance: a :class:`~vifplug.model.Vif` does not name its guest. ``instance_info`` is what
os-vif passes to ``plug()``; give ``instance_uuid_of(instance_info)`` to
``GenericVIFDriver.plug(..., instance_uuid=...)`` (it becomes ``external_ids:vm-uuid``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from vifplug import names
from vifplug.interop._build import Loc, Translation, network_name
from vifplug.interop.errors import InteropError
from vifplug.model import (
    BridgeVif,
    EthernetVif,
    HostDevVif,
    MacvtapVif,
    OvsParams,
    OvsVif,
    QbgVif,
    QbhVif,
    VdpaVif,
    VhostUserVif,
    Vif,
)

if TYPE_CHECKING:
    from vifplug.interop._os_vif_plugin import VifplugPlugin

__all__ = ["VifplugPlugin", "from_os_vif", "instance_uuid_of", "os_vif_objects", "to_os_vif"]

#: The os-vif VIF classes vifplug takes, and the port profiles each may carry (``None``: none).
SUPPORTED: dict[str, tuple[str | None, ...]] = {
    "VIFBridge": (None, "VIFPortProfileOpenVSwitch"),
    "VIFOpenVSwitch": ("VIFPortProfileOpenVSwitch",),
    "VIFDirect": (None, "VIFPortProfile8021Qbg", "VIFPortProfile8021Qbh"),
    "VIFHostDevice": (None,),
    "VIFVHostUser": (None, "VIFPortProfileOpenVSwitch"),
    "VIFGeneric": (None,),
}


@functools.cache
def os_vif_objects() -> Any:
    """``os_vif.objects`` with every class registered (imported on first call).

    os-vif's dependencies warn as they are imported (eventlet and oslo.utils' eventletutils are
    deprecated): warnings about their own modules that a vifplug user can do nothing about, so
    they are silenced here, only while importing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import os_vif.objects

        os_vif.objects.register_all()
    return os_vif.objects


def is_os_vif_vif(obj: object) -> bool:
    """Whether ``obj`` looks like an os-vif VIF (duck-typed: os-vif is not imported)."""
    fields = getattr(obj, "fields", None)
    return (callable(getattr(obj, "obj_name", None)) and isinstance(fields, Mapping)
            and {"id", "address", "network", "plugin"} <= fields.keys())


def instance_uuid_of(instance_info: Any) -> str | None:
    """The instance UUID of an os-vif ``InstanceInfo`` (``None`` when not given or not set):
    what ``GenericVIFDriver.plug(instance_uuid=...)`` writes as ``external_ids:vm-uuid``."""
    if instance_info is None:
        return None
    value = _value(instance_info, "uuid")
    return None if value is None else str(value)


# --- os-vif → vifplug -----------------------------------------------------------------------------


def from_os_vif(vif: Any, instance_info: Any = None, *, portgroup: str | None = None) -> Vif:
    """The :class:`~vifplug.model.Vif` for an os-vif VIF object (see the module's table);
    ``portgroup``: its ``network.portgroup`` (no os-vif object carries one: its port profiles
    hold the port's identity and the 802.1Qbg/Qbh parameters, which vifplug maps as such).

    ``instance_info`` is accepted so os-vif's ``(vif, instance_info)`` pair can be passed as it
    is; the Vif does not carry it (use :func:`instance_uuid_of`). Raises
    :class:`~vifplug.interop.errors.InteropError` naming the os-vif field (``$.address``,
    ``$.port_profile.interface_id``)."""
    del instance_info  # the instance is the plug call's business, not the VIF's
    return translate(vif).portgroup(portgroup).vif()


def translate(vif: Any) -> Translation:
    """The vif.json translation of an os-vif VIF, with the origin of every value."""
    t = Translation("os-vif")
    if not is_os_vif_vif(vif):
        t.fail((), f"expected an os-vif VIF object (got {type(vif).__name__})")
        return t
    cls: str = vif.obj_name()
    if cls not in SUPPORTED:
        t.fail((), f"os-vif {cls} is not a VIF vifplug connects (it takes "
               f"{', '.join(SUPPORTED)})")
        return t
    profile = _value(vif, "port_profile")
    profile_name: str | None = None if profile is None else profile.obj_name()
    if profile_name not in SUPPORTED[cls]:
        allowed = " or ".join("none" if p is None else p for p in SUPPORTED[cls])
        t.fail(("port_profile",), f"{cls} with port profile {profile_name or 'none'}: vifplug "
               f"takes {allowed}" + _PROFILE_WHY.get(profile_name or "", ""))
        return t

    vif_id = _value(vif, "id")
    t.put(("id",), None if vif_id is None else str(vif_id), ("id",))
    t.put(("mac",), _value(vif, "address"), ("address",))
    if _value(vif, "has_traffic_filtering"):
        t.put(("filtered",), True, ("has_traffic_filtering",))
    network = _value(vif, "network")
    if network is None:
        t.fail(("network",), "required: the Network the VIF is on")
        return t
    _network(t, network)
    _BY_CLASS[cls](t, vif, network, profile, profile_name)
    return t


_PROFILE_WHY = {
    "VIFPortProfileOVSRepresentor": " (a switchdev VF representor, which vifplug does not plug)",
    "VIFPortProfileFPOpenVSwitch": " (a fast-path port, which vifplug does not plug)",
    "VIFPortProfileFPBridge": " (a fast-path port, which vifplug does not plug)",
    "VIFPortProfileFPTap": " (a fast-path port, which vifplug does not plug)",
}


def _network(t: Translation, network: Any) -> None:
    label = _value(network, "label")
    net_id = _value(network, "id")
    if label is not None and network_name(str(label)):
        t.put(("network", "name"), network_name(str(label)), ("network", "label"))
    elif net_id is not None:
        t.put(("network", "name"), str(net_id), ("network", "id"))
    else:
        t.fail(("network", "label"), "required: a label (or id) to name the network")
    t.put(("mtu",), _value(network, "mtu"), ("network", "mtu"))
    t.put(("network", "vlan"), _value(network, "vlan"), ("network", "vlan"))
    t.put(("network", "interface"), _value(network, "bridge_interface"),
          ("network", "bridge_interface"))
    for theirs, ours in (("should_provide_bridge", "create_bridge"),
                         ("should_provide_vlan", "create_vlan")):
        if _value(network, theirs):
            t.put(("network", ours), True, ("network", theirs))


def _devname(t: Translation, vif: Any, default: Callable[[str], str] = names.tap_name) -> None:
    """``vif_name`` → ``devname``, unless it is the name vif.json implies without one."""
    name = _value(vif, "vif_name")
    vif_id = t.data.get("id")
    implied = default(vif_id) if isinstance(vif_id, str) else None
    t.put(("devname",), None if name == implied else name, ("vif_name",))


def _ovs_profile(t: Translation, profile: Any) -> None:
    t.put(("ovs", "interface_id"), _str(_value(profile, "interface_id")),
          ("port_profile", "interface_id"))
    t.put(("ovs", "datapath_type"), _value(profile, "datapath_type"),
          ("port_profile", "datapath_type"))
    if _value(profile, "profile_id"):
        t.fail(("port_profile", "profile_id"), "an OVS port profile id is not something vifplug "
               "sets (leave it unset)")
    if _value(profile, "datapath_offload") is not None:
        t.fail(("port_profile", "datapath_offload"), "datapath offload (a VF representor) is not "
               "something vifplug plugs")


def _from_bridge(t: Translation, vif: Any, network: Any, profile: Any,
                 profile_name: str | None) -> None:
    _devname(t, vif)
    bridge_name = _value(vif, "bridge_name")
    if profile_name is None:  # a Linux bridge: libvirt's <source bridge> is bridge_name
        t.put(("vif_type",), "bridge", None)
        if bridge_name is not None:
            t.put(("network", "bridge"), bridge_name, ("bridge_name",))
        else:
            t.put(("network", "bridge"), _value(network, "bridge"), ("network", "bridge"))
        return
    # OVS hybrid: the guest's TAP on a per-VIF Linux bridge, veth to the OVS bridge.
    t.put(("vif_type",), "ovs", None)
    t.put(("plug",), "hybrid", None)
    t.put(("network", "bridge"), _value(network, "bridge"), ("network", "bridge"))
    _ovs_profile(t, profile)
    vif_id = t.data.get("id")
    expected = "qbr" + vif_id[:11] if isinstance(vif_id, str) else None
    if bridge_name is not None and expected is not None and bridge_name != expected:
        t.fail(("bridge_name",), f"the hybrid bridge must be {expected!r} ('qbr' + id[:11], the "
               f"name vifplug, os-vif and neutron's agent derive; got {bridge_name!r})")


def _from_ovs(t: Translation, vif: Any, network: Any, profile: Any,
              profile_name: str | None) -> None:
    _devname(t, vif)
    t.put(("vif_type",), "ovs", None)
    create_port = _value(profile, "create_port")
    t.put(("plug",), "manual" if create_port else "virtualport", None)
    bridge_name = _value(vif, "bridge_name")
    net_bridge = _value(network, "bridge")
    if bridge_name is not None and net_bridge is not None and bridge_name != net_bridge:
        t.fail(("bridge_name",), f"must be the Network's bridge {net_bridge!r} (os-vif plugs "
               f"the port on Network.bridge, libvirt on bridge_name; got {bridge_name!r})")
    if bridge_name is not None:
        t.put(("network", "bridge"), bridge_name, ("bridge_name",))
    else:
        t.put(("network", "bridge"), net_bridge, ("network", "bridge"))
    _ovs_profile(t, profile)


def _from_direct(t: Translation, vif: Any, network: Any, profile: Any,
                 profile_name: str | None) -> None:
    _devname(t, vif)
    kind = {"VIFPortProfile8021Qbg": "802.1qbg",
            "VIFPortProfile8021Qbh": "802.1qbh"}.get(profile_name or "", "direct")
    t.put(("vif_type",), kind, None)
    t.put(("network", "bridge"), _value(network, "bridge"), ("network", "bridge"))
    if _value(network, "bridge_interface") is None:
        t.fail(("network", "bridge_interface"), "required: the macvtap's lower net device "
               "(vifplug does not look up the device of a PCI dev_address)")
    mode = _value(vif, "mode")
    default = "passthrough" if kind == "802.1qbh" else "vepa"
    if mode is not None and mode != default:
        t.put(("direct", "mode"), mode, ("mode",))
    if _value(vif, "vlan_name"):
        t.fail(("vlan_name",), "vifplug does not create a VLAN device under a macvtap: give the "
               "VLAN device itself as Network.bridge_interface")
    if kind == "802.1qbg":
        for theirs, ours in (("manager_id", "manager_id"), ("type_id", "type_id"),
                             ("type_id_version", "type_id_version")):
            t.put(("qbg", ours), _value(profile, theirs), ("port_profile", theirs))
        t.put(("qbg", "instance_id"), _str(_value(profile, "instance_id")),
              ("port_profile", "instance_id"))
    elif kind == "802.1qbh":
        t.put(("qbh", "profile_id"), _value(profile, "profile_id"),
              ("port_profile", "profile_id"))


def _from_hostdev(t: Translation, vif: Any, network: Any, profile: Any,
                  profile_name: str | None) -> None:
    t.put(("vif_type",), "hostdev", None)
    t.put(("network", "bridge"), _value(network, "bridge"), ("network", "bridge"))
    dev_type = _value(vif, "dev_type")
    if dev_type == "generic":
        t.fail(("dev_type",), "'generic' is a PCI <hostdev>, not an <interface>: vifplug "
               "connects dev_type 'ethernet' only")
    t.put(("hostdev", "pci"), _str(_value(vif, "dev_address")), ("dev_address",))


def _from_vhostuser(t: Translation, vif: Any, network: Any, profile: Any,
                    profile_name: str | None) -> None:
    t.put(("vif_type",), "vhostuser", None)
    t.put(("network", "bridge"), _value(network, "bridge"), ("network", "bridge"))
    t.put(("vhostuser", "socket"), _value(vif, "path"), ("path",))
    t.put(("vhostuser", "mode"), _value(vif, "mode"), ("mode",))
    _devname(t, vif, names.vhu_name)  # the OVS port's name
    if profile is not None:
        _ovs_profile(t, profile)


def _from_generic(t: Translation, vif: Any, network: Any, profile: Any,
                  profile_name: str | None) -> None:
    _devname(t, vif)
    t.put(("vif_type",), "ethernet", None)
    t.put(("network", "bridge"), _value(network, "bridge"), ("network", "bridge"))


_BY_CLASS = {
    "VIFBridge": _from_bridge,
    "VIFOpenVSwitch": _from_ovs,
    "VIFDirect": _from_direct,
    "VIFHostDevice": _from_hostdev,
    "VIFVHostUser": _from_vhostuser,
    "VIFGeneric": _from_generic,
}


def _value(obj: Any, name: str) -> Any:
    """A field's value, ``None`` when the object has no such field or it is not set."""
    if obj is None or name not in getattr(obj, "fields", {}) or not obj.obj_attr_is_set(name):
        return None
    return getattr(obj, name)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


# --- vifplug → os-vif -----------------------------------------------------------------------------


def to_os_vif(vif: Vif, *, firewall: bool = False, plugin: str = "vifplug") -> Any:
    """The os-vif VIF object for ``vif`` (see the module's table), for plugin ``plugin``.

    An ``ovs`` VIF without ``plug`` takes the method vifplug would choose with ``firewall``
    (the newest libvirt): ``VIFBridge`` for hybrid, ``VIFOpenVSwitch`` otherwise (with
    ``create_port`` and ``create_tap`` for manual). Raises
    :class:`~vifplug.interop.errors.InteropError` for what os-vif cannot say: an OVS trunk, the
    macvtap mode ``private``."""
    objects = os_vif_objects()
    problems: list[tuple[str, str]] = []
    if isinstance(vif, OvsVif) and vif.network.trunk is not None:
        problems.append(("$.network.trunk", "os-vif has no trunk (VLAN list) for a port"))
    if isinstance(vif, VdpaVif):
        problems.append(("$.vif_type", "os-vif has no vDPA VIF: nova says vDPA with a "
                         "VIFHostDevice of the parent VF's PCI address (and vnic_type 'vdpa' "
                         "in its own VIF), from which it finds /dev/vhost-vdpa-N on the host; "
                         "a vifplug 'vdpa' VIF names the device, not the VF"))
    if isinstance(vif, MacvtapVif) and vif.direct_mode == "private":
        problems.append(("$.direct.mode", "os-vif's VIFDirect has no mode 'private' (it has "
                         "vepa, bridge, passthrough)"))
    if problems:
        raise InteropError(problems, kind="os-vif")

    net = vif.network
    network = objects.network.Network(label=net.name)
    # each kind's network has some of these keys (os-vif's Network has them all)
    for theirs, value in (("bridge", getattr(net, "bridge", None)),
                          ("vlan", getattr(net, "vlan", None)),
                          ("mtu", getattr(vif, "mtu", None)),
                          ("bridge_interface", getattr(net, "interface", None))):
        if value is not None:
            setattr(network, theirs, value)
    network.should_provide_bridge = getattr(net, "create_bridge", False)
    network.should_provide_vlan = getattr(net, "create_vlan", False)
    common: dict[str, Any] = {"id": vif.id, "address": vif.mac, "plugin": plugin,
                              "has_traffic_filtering": vif.filtered, "network": network}
    ovs: Any = None
    identity: OvsParams | None = getattr(vif, "ovs", None)
    if identity is not None:
        ovs = objects.vif.VIFPortProfileOpenVSwitch(interface_id=identity.interface_id)
        if identity.datapath_type is not None:
            ovs.datapath_type = identity.datapath_type
    if isinstance(vif, BridgeVif):
        return objects.vif.VIFBridge(vif_name=vif.tap_name, bridge_name=vif.network.bridge,
                                     **common)
    if isinstance(vif, OvsVif):
        method = vif.plug or _chosen_plug(vif, firewall)
        if method == "hybrid":
            return objects.vif.VIFBridge(vif_name=vif.tap_name, bridge_name=vif.qbr_name,
                                         port_profile=ovs, **common)
        if method == "manual":
            ovs.create_port = True
            ovs.create_tap = True  # vifplug's manual plug creates the TAP too
            ovs.multiqueue = vif.multi_queue
        return objects.vif.VIFOpenVSwitch(vif_name=vif.tap_name, bridge_name=vif.network.bridge,
                                          port_profile=ovs, **common)
    if isinstance(vif, MacvtapVif):
        direct = objects.vif.VIFDirect(vif_name=vif.devname or names.tap_name(vif.id),
                                       mode=vif.direct_mode, **common)
        if isinstance(vif, QbgVif):
            direct.port_profile = objects.vif.VIFPortProfile8021Qbg(
                manager_id=vif.qbg.manager_id, type_id=vif.qbg.type_id,
                type_id_version=vif.qbg.type_id_version, instance_id=vif.qbg.instance_id)
        elif isinstance(vif, QbhVif):
            direct.port_profile = objects.vif.VIFPortProfile8021Qbh(
                profile_id=vif.qbh.profile_id)
        return direct
    if isinstance(vif, HostDevVif):
        return objects.vif.VIFHostDevice(dev_type="ethernet", dev_address=vif.hostdev.pci,
                                         **common)
    if isinstance(vif, VhostUserVif):
        user = objects.vif.VIFVHostUser(vif_name=vif.port_name, path=vif.vhostuser.socket,
                                        mode=vif.vhostuser.mode, **common)
        if ovs is not None:
            user.port_profile = ovs
        return user
    assert isinstance(vif, EthernetVif)  # noqa: S101 - every kind is handled above
    return objects.vif.VIFGeneric(vif_name=vif.tap_name, **common)


def _chosen_plug(vif: OvsVif, firewall: bool) -> str:
    from vifplug.connections.base import Options
    from vifplug.selection import ovs_plug_methods

    method, _ = next(ovs_plug_methods(vif, Options(firewall=firewall)))
    return method


def vif_from_primitive(primitive: object, loc: Loc = ()) -> Any:
    """Rebuild an os-vif object from its ``obj_to_primitive()`` form (parsed JSON). Raises
    :class:`~vifplug.interop.errors.InteropError` at ``$`` saying what os-vif refused."""
    objects = os_vif_objects()
    from os_vif.objects import base

    from vifplug.errors import json_path

    path = json_path(loc)
    if not isinstance(primitive, Mapping) or "versioned_object.name" not in primitive:
        raise InteropError([(path, "expected an os-vif object primitive (an object with "
                             "'versioned_object.name' and 'versioned_object.data', as "
                             "obj_to_primitive() gives)")], kind="os-vif")
    del objects
    try:
        return base.VersionedObject.obj_from_primitive(dict(primitive))
    except Exception as exc:  # oslo raises many kinds (KeyError, ValueError, its own)
        raise InteropError([(path, f"os-vif cannot rebuild the object: "
                             f"{type(exc).__name__}: {exc}")], kind="os-vif") from None


def __getattr__(name: str) -> Any:
    """``VifplugPlugin`` is built on first access: defining it imports os-vif and oslo.config."""
    if name == "VifplugPlugin":
        from vifplug.interop._os_vif_plugin import VifplugPlugin

        globals()[name] = VifplugPlugin
        return VifplugPlugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
