"""nova's network_info VIF (``nova.network.model.VIF``, as JSON) → :class:`~vifplug.model.Vif`.

One item of an instance's ``network_info`` (``instance_info_caches.network_info`` holds the list).
How each nova ``type`` maps:

- ``bridge`` → ``bridge``: ``network.bridge``; ``network.meta``'s ``should_create_bridge``,
  ``should_create_vlan``, ``bridge_interface``, ``vlan`` → ``network.create_bridge``,
  ``create_vlan``, ``interface``, ``vlan`` (nova's own os-vif conversion reads the same keys).
- ``ovs`` → ``ovs``: ``network.bridge`` (else ``details.bridge_name``), ``ovs_interfaceid`` (else
  ``id``) → ``ovs.interface_id``, ``details.datapath_type``. The plug method follows nova:
  ``details.ovs_hybrid_plug`` → ``plug: hybrid`` (nova plugs hybrid whenever it is set, also when
  ``port_filter`` is true: that is neutron's ``iptables_hybrid`` firewall, which filters on the
  qbr); ``delegate_create`` → ``plug: manual`` (nova then lets os-vif add the port); otherwise no
  ``plug``, so vifplug's rule decides: hybrid when the driver has ``firewall`` and the port is not
  ``filtered``, else virtualport — exactly older nova's
  ``get_firewall_required(vif) or vif.is_hybrid_plug_enabled()``, with vifplug's ``firewall``
  standing for nova's non-noop ``firewall_driver``. ``vnic_type`` direct/remote-managed on
  ``ovs`` (hardware offload through a VF representor) is refused; so is ``vdpa``, with what to
  do instead: nova's VIF carries the parent VF's PCI address (``profile.pci_slot``) and nova
  finds ``/dev/vhost-vdpa-N`` from it on the host (libvirt's node devices), which vifplug's
  translation does not (it reads no host): write a ``vdpa`` VIF naming the device.
- ``802.1qbg`` / ``802.1qbh`` → the same: ``network.meta.interface`` (where nova takes the macvtap's
  lower device) → ``network.interface``; ``qbg_params`` ``managerid``, ``typeid``,
  ``typeidversion``, ``instanceid`` → ``qbg``; ``qbh_params.profileid`` → ``qbh.profile_id``.
- ``hw_veb`` with ``vnic_type`` direct (its default) → ``hostdev``, ``profile.pci_slot`` →
  ``hostdev.pci``, ``details.vlan``; with ``vnic_type`` macvtap → ``direct`` in passthrough mode on
  ``network.meta.interface`` (nova finds that device from the PCI address on the host; vifplug does
  not, so it must be given). Both: ``profile.trusted`` → ``trust_guest_rx_filters``.
- ``macvtap`` → ``direct``: ``details.macvtap_source`` → ``network.interface``,
  ``details.macvtap_mode`` → ``direct.mode``. The source already is the VLAN device nova would
  create from ``details.vlan``, so that VLAN is not mapped.
- ``vhostuser`` → ``vhostuser``: ``details.vhostuser_socket``, ``details.vhostuser_mode`` (QEMU's
  side; default ``server``, as nova's); with ``details.vhostuser_ovs_plug`` also ``ovs`` and
  ``network.bridge``.
- ``tap`` (and ``ethernet``) → ``ethernet``.
- ``unbound`` / ``binding_failed`` → refused: the port is not bound. ``hostdev_physical`` (a whole
  PCI device as ``<hostdev>``, not an ``<interface>``) and every other type → refused.

Everywhere: ``address`` → ``mac``; ``network.label`` (else ``network.id``) → ``network.name``
(characters vif.json refuses become ``_``); ``network.meta.mtu`` → ``mtu``;
``details.port_filter`` → ``filtered``; ``details.vlan`` (else ``network.meta.vlan``) →
``network.vlan``; ``devname`` → ``devname`` unless it is the default ``tap`` + ``id[:11]``
(for vhostuser it names the OVS port; never for hostdev, which has no host device).

Not in a network_info VIF, so never mapped: nova.conf's ``[libvirt]rx_queue_size`` /
``tx_queue_size`` and the flavor's ``hw:virtio_packed_ring`` (vif.json ``virtio``), which an agent
takes from its own configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from vifplug.interop._build import (
    Reader,
    Translation,
    default_tap,
    network_name,
    put_identity,
    put_trusted,
    start,
)
from vifplug.model import Vif

__all__ = ["NOVA_TYPES", "from_nova_vif"]

#: nova's VIF types vifplug takes.
NOVA_TYPES = ("bridge", "ovs", "802.1qbg", "802.1qbh", "hw_veb", "macvtap", "vhostuser", "tap",
              "ethernet")
_NOT_BOUND = ("unbound", "binding_failed")


class _Context(NamedTuple):
    """One nova VIF being translated: its top level, details, network and network meta."""

    t: Translation
    r: Reader
    details: Reader
    network: Reader
    meta: Reader
    vnic_type: str | None
_MACVTAP_KINDS = ("802.1qbg", "802.1qbh", "direct")


def from_nova_vif(d: Mapping[str, Any], *, portgroup: str | None = None) -> Vif:
    """The :class:`~vifplug.model.Vif` for one nova network_info VIF (parsed JSON);
    ``portgroup``: its ``network.portgroup`` (a nova VIF carries none).

    Raises :class:`~vifplug.interop.errors.InteropError` naming the nova path (``$.address``,
    ``$.details.vhostuser_socket``) and what was expected."""
    return translate(d).portgroup(portgroup).vif()


def translate(d: object) -> Translation:
    """The vif.json translation of a nova VIF, with the origin of every value."""
    t, r = start("nova", d, "nova network_info VIF")
    if r is None:
        return t
    vif_id = put_identity(t, r, id_what="the VIF (port) id", mac_key="address",
                          mac_what="the guest MAC address")
    vtype = r.get("type", str, required="the VIF type (ovs, bridge, ...)")
    details = r.sub("details")
    network = r.sub("network", required="the network the VIF is on")
    meta = network.sub("meta")

    label = network.get("label", str)
    net_id = network.get("id", str)
    if label is not None and network_name(label):
        t.put(("network", "name"), network_name(label), ("network", "label"))
    elif net_id is not None:
        t.put(("network", "name"), net_id, ("network", "id"))
    elif network.data:
        t.fail(("network", "label"), "required: a label (or id) to name the network")
    t.put(("mtu",), meta.number("mtu"), ("network", "meta", "mtu"))
    if details.get("port_filter", bool):
        t.put(("filtered",), True, ("details", "port_filter"))

    if vtype is None:
        return t
    if vtype in _NOT_BOUND:
        t.fail(("type",), _not_bound(vtype))
        return t
    convert = _KIND.get(vtype)
    if convert is None:
        t.fail(("type",), _unsupported(vtype))
        return t
    kind = convert(_Context(t, r, details, network, meta, r.get("vnic_type", str)))
    if kind is None:
        return t
    t.put(("vif_type",), kind, ("type",))
    if kind != "direct" or vtype != "macvtap":
        vlan = details.number("vlan")
        if vlan is not None:
            t.put(("network", "vlan"), vlan, ("details", "vlan"))
        else:
            t.put(("network", "vlan"), meta.number("vlan"), ("network", "meta", "vlan"))
    if kind != "hostdev":  # vhostuser: the OVS port's name
        devname = r.get("devname", str)
        t.put(("devname",), None if devname == default_tap(vif_id) else devname, ("devname",))
    return t


def _not_bound(vtype: str) -> str:
    if vtype == "binding_failed":
        return ("the port is not bound: binding failed (type 'binding_failed'): no Neutron "
                "mechanism driver could bind it to this host")
    return "the port is not bound (type 'unbound'): bind it to a host before connecting it"


def _unsupported(vtype: str) -> str:
    if vtype == "hostdev_physical":
        return ("'hostdev_physical' passes a whole PCI device through as a <hostdev>, which is "
                "not a libvirt <interface>: vifplug does not describe it")
    return f"vifplug does not connect nova VIF type {vtype!r} (it takes {', '.join(NOVA_TYPES)})"


def _bridge(c: _Context) -> str | None:
    _bridge_name(c.t, c.details, c.network)
    for theirs, ours in (("should_create_bridge", "create_bridge"),
                         ("should_create_vlan", "create_vlan")):
        c.t.put(("network", ours), c.meta.get(theirs, bool), ("network", "meta", theirs))
    c.t.put(("network", "interface"), c.meta.get("bridge_interface", str),
            ("network", "meta", "bridge_interface"))
    return "bridge"


def _bridge_name(t: Translation, details: Reader, network: Reader) -> None:
    bridge = network.get("bridge", str)
    if bridge is not None or details.data.get("bridge_name") is None:
        t.put(("network", "bridge"), bridge, ("network", "bridge"))
    else:
        t.put(("network", "bridge"), details.get("bridge_name", str), ("details", "bridge_name"))


def _ovs_identity(t: Translation, r: Reader, details: Reader) -> None:
    if r.data.get("ovs_interfaceid") is not None:
        t.put(("ovs", "interface_id"), r.get("ovs_interfaceid", str), ("ovs_interfaceid",))
    else:
        t.put(("ovs", "interface_id"), r.data.get("id"), ("id",))
    t.put(("ovs", "datapath_type"), details.get("datapath_type", str),
          ("details", "datapath_type"))


def _macvtap_profile(t: Translation, r: Reader, meta: Reader, kind: str) -> None:
    t.put(("network", "interface"), meta.get("interface", str),
          ("network", "meta", "interface"))
    if kind == "802.1qbg":
        params = r.sub("qbg_params", required="the 802.1Qbg parameters")
        for theirs, ours in (("managerid", "manager_id"), ("typeid", "type_id"),
                             ("typeidversion", "type_id_version")):
            t.put(("qbg", ours), params.number(theirs), ("qbg_params", theirs))
        t.put(("qbg", "instance_id"), params.get("instanceid", str),
              ("qbg_params", "instanceid"))
    else:
        params = r.sub("qbh_params", required="the 802.1Qbh parameters")
        t.put(("qbh", "profile_id"), params.get("profileid", str), ("qbh_params", "profileid"))


#: Why a vDPA port is not translated (nova, Neutron, os-vif): what they carry is the VF.
VDPA_NOT_CARRIED = (
    "is vDPA: what it carries is the parent VF's PCI address (profile.pci_slot), from which "
    "nova finds the vhost-vdpa device on the host (libvirt's node devices); vifplug does not "
    "read the host here: write a 'vdpa' VIF whose vdpa.device is that /dev/vhost-vdpa-N")


def _ovs(c: _Context) -> str | None:
    if c.vnic_type == "vdpa":
        c.t.fail(("vnic_type",), f"an 'ovs' VIF with vnic_type 'vdpa' {VDPA_NOT_CARRIED}")
        return None
    if c.vnic_type not in (None, "normal"):
        c.t.fail(("vnic_type",), f"an 'ovs' VIF with vnic_type {c.vnic_type!r} is OVS hardware "
                 "offload through a VF representor, which vifplug does not plug (it takes "
                 "vnic_type 'normal')")
        return None
    _bridge_name(c.t, c.details, c.network)
    _ovs_identity(c.t, c.r, c.details)
    if c.details.get("ovs_hybrid_plug", bool):
        c.t.put(("plug",), "hybrid", ("details", "ovs_hybrid_plug"))
    elif c.r.get("delegate_create", bool):
        c.t.put(("plug",), "manual", ("delegate_create",))
    return "ovs"


def _qbg(c: _Context) -> str | None:
    _macvtap_profile(c.t, c.r, c.meta, "802.1qbg")
    return "802.1qbg"


def _qbh(c: _Context) -> str | None:
    _macvtap_profile(c.t, c.r, c.meta, "802.1qbh")
    return "802.1qbh"


def _hw_veb(c: _Context) -> str | None:
    t = c.t
    if c.vnic_type in (None, "direct"):
        profile = c.r.sub("profile", required="the SR-IOV binding profile (pci_slot)")
        t.put(("hostdev", "pci"), profile.get("pci_slot", str, required="the VF's PCI address"),
              ("profile", "pci_slot"))
        _trusted(c)
        return "hostdev"
    if c.vnic_type == "macvtap":
        interface = c.meta.get("interface", str)
        if interface is None:
            t.fail(("network", "meta", "interface"), "required: a macvtap on an SR-IOV VF "
                   "needs the VF's net device name, which nova finds from the PCI address on "
                   "the host; vifplug does not look it up")
        t.put(("network", "interface"), interface, ("network", "meta", "interface"))
        t.put(("direct", "mode"), "passthrough", ("vnic_type",))
        _trusted(c)
        return "direct"
    t.fail(("vnic_type",), f"an 'hw_veb' VIF takes vnic_type 'direct' or 'macvtap' "
           f"(got {c.vnic_type!r})")
    return None


def _trusted(c: _Context) -> None:
    put_trusted(c.t, c.r.sub("profile"))


def _macvtap(c: _Context) -> str | None:
    c.t.put(("network", "interface"),
            c.details.get("macvtap_source", str, required="the macvtap's lower device"),
            ("details", "macvtap_source"))
    c.t.put(("direct", "mode"),
            c.details.get("macvtap_mode", str, required="the macvtap mode (vepa, bridge, ...)"),
            ("details", "macvtap_mode"))
    return "direct"


def _vhostuser(c: _Context) -> str | None:
    t, details = c.t, c.details
    for flag in ("vhostuser_fp_plug", "vhostuser_vrouter_plug"):
        if details.get(flag, bool):
            t.fail(("details", flag), "a fast-path or vRouter vhost-user port is plugged by its "
                   "own os-vif plugin; vifplug plugs plain and OVS vhost-user ports")
    t.put(("vhostuser", "socket"),
          details.get("vhostuser_socket", str, required="the vhost-user socket path"),
          ("details", "vhostuser_socket"))
    t.put(("vhostuser", "mode"), details.get("vhostuser_mode", str),
          ("details", "vhostuser_mode"))
    if details.get("vhostuser_ovs_plug", bool):
        _bridge_name(t, details, c.network)
        _ovs_identity(t, c.r, details)
    return "vhostuser"


def _tap(c: _Context) -> str | None:
    del c  # a TAP needs nothing beyond the common fields
    return "ethernet"


_KIND: dict[str, Callable[[_Context], str | None]] = {
    "bridge": _bridge,
    "ovs": _ovs,
    "802.1qbg": _qbg,
    "802.1qbh": _qbh,
    "hw_veb": _hw_veb,
    "macvtap": _macvtap,
    "vhostuser": _vhostuser,
    "tap": _tap,
    "ethernet": _tap,
}
