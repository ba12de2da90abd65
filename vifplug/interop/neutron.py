"""A Neutron port, as the API returns it (``GET /v2.0/ports/{id}``, seen by an admin: the
``binding:*`` attributes are admin-only) → :class:`~vifplug.model.Vif`.

The seed: oVirt takes Neutron as an external network provider; for each port, the host gets the
port's connection details (its binding) and plugs the NIC. The port must be bound to the host
(``binding:host_id``) first: ``binding:vif_type`` ``unbound`` or ``binding_failed`` is refused
with "not bound".

- The network name: a port has ``network_id`` only. ``network_name`` names the logical network
  (what the migration hook maps to a switch); when it is not given, the port's ``network_id``
  is the name (a UUID is a valid vif.json network name, so nothing is cut).
- The MTU: a port has none (its network does): pass ``mtu``.
- ``ovs`` → ``ovs``: ``binding:vif_details.bridge_name`` (default ``br-int``, nova's default
  ``[neutron] ovs_bridge``), the port id as ``ovs.interface_id`` (what nova and the agents use),
  ``datapath_type``; ``port_filter`` → ``filtered``. The plug method: ``ovs_hybrid_plug`` →
  hybrid; security groups on a port whose switch does not filter (``port_filter`` false, port
  security not disabled) → hybrid (the seed's rule: the host must filter, so the guest needs the
  qbr); otherwise none (vifplug's rule decides). ``binding:vnic_type`` other than ``normal``
  (hardware offload) is refused; for ``vdpa`` the message says what to write instead (a
  ``vdpa`` VIF naming ``/dev/vhost-vdpa-N``: the port carries only the parent VF's
  ``binding:profile.pci_slot``, from which nova finds the device on the host).
- ``bridge`` → ``bridge`` on ``bridge_name``, else ``brq`` + ``network_id[:11]`` (the Linux bridge
  agent's name, as nova computes it), with ``create_bridge`` (nova's ``should_create_bridge``).
- ``vhostuser`` → ``vhostuser``: ``vhostuser_socket``, ``vhostuser_mode`` (QEMU's side); with
  ``vhostuser_ovs_plug`` also ``ovs`` on ``bridge_name`` (default ``br-int``).
- ``hw_veb`` with ``binding:vnic_type`` direct → ``hostdev`` on ``binding:profile.pci_slot``
  with ``binding:vif_details.vlan``, ``binding:profile.trusted`` → ``trust_guest_rx_filters``
  (nova's ``trustGuestRxFilters``); vnic_type macvtap is refused (the VF's net device is known
  only on the host).
- ``macvtap`` → ``direct`` on ``macvtap_source`` in ``macvtap_mode`` (the source is already the
  VLAN device, so ``vlan`` is not mapped).
- ``tap`` → ``ethernet``.
- ``hostdev_physical``, ``distributed``, ``other`` and the rest are refused.

Elsewhere ``binding:vif_details.vlan`` → ``network.vlan``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vifplug import names
from vifplug.interop._build import Reader, Translation, put_identity, put_trusted, start
from vifplug.interop.nova import VDPA_NOT_CARRIED
from vifplug.model import Vif
from vifplug.names import check_network_name

__all__ = ["NEUTRON_VIF_TYPES", "from_neutron_port"]

#: Neutron's binding:vif_type values vifplug takes.
NEUTRON_VIF_TYPES = ("ovs", "bridge", "vhostuser", "hw_veb", "macvtap", "tap")
#: nova's default ``[neutron] ovs_bridge``: where an OVS port goes when Neutron names no bridge.
DEFAULT_OVS_BRIDGE = "br-int"
_VIF_TYPE = ("binding:vif_type",)
_DETAILS = "binding:vif_details"


def from_neutron_port(port: Mapping[str, Any], network_name: str | None = None,
                      mtu: int | None = None, *, portgroup: str | None = None) -> Vif:
    """The :class:`~vifplug.model.Vif` for a Neutron port (parsed JSON of the API's ``port``).

    ``network_name``: the logical network's name (default: the port's ``network_id``); ``mtu``:
    the network's MTU; ``portgroup``: its ``network.portgroup`` (a port has none). Raises
    :class:`~vifplug.interop.errors.InteropError` naming the port's path
    (``$['binding:vif_type']``, ``$.mac_address``) or the argument."""
    return translate(port, network_name, mtu).portgroup(portgroup).vif()


def translate(port: object, network_name: str | None = None,
              mtu: int | None = None) -> Translation:
    """The vif.json translation of a Neutron port, with the origin of every value."""
    t, r = start("neutron", port, "Neutron port")
    if r is None:
        return t
    put_identity(t, r, id_what="the port id", mac_key="mac_address",
                 mac_what="the port's MAC address")
    network_id = r.get("network_id", str)
    if network_name is not None:
        try:
            check_network_name(network_name)
        except (TypeError, ValueError) as exc:
            t.fail("network_name", f"{exc} (got {network_name!r})")
        else:
            t.put(("network", "name"), network_name, "network_name")
    elif network_id is not None:
        t.put(("network", "name"), network_id, ("network_id",))
    else:
        t.fail(("network_id",), "required: the port's network (or give network_name)")
    if mtu is not None:
        t.put(("mtu",), mtu, "mtu")

    vif_type = r.get("binding:vif_type", str, required="the port's binding (binding:* "
                     "attributes are shown to admins only)")
    details = r.sub(_DETAILS)
    vnic_type = r.get("binding:vnic_type", str) or "normal"
    if details.get("port_filter", bool):
        t.put(("filtered",), True, (_DETAILS, "port_filter"))
    if vif_type is None:
        return t
    if vif_type in ("unbound", "binding_failed"):
        host = r.get("binding:host_id", str) or "no host"
        reason = (f"binding failed: no mechanism driver could bind it to {host!r}"
                  if vif_type == "binding_failed" else "bind it to a host (set binding:host_id)")
        t.fail(_VIF_TYPE, f"the port is not bound (binding:vif_type {vif_type!r}): {reason}")
        return t
    kind = _KIND.get(vif_type)
    if kind is None:
        t.fail(_VIF_TYPE, _unsupported(vif_type))
        return t
    ours = kind(t, r, details, vnic_type, network_id)
    if ours is None:
        return t
    t.put(("vif_type",), ours, _VIF_TYPE)
    if vif_type != "macvtap":
        t.put(("network", "vlan"), details.number("vlan"), (_DETAILS, "vlan"))
    return t


def _unsupported(vif_type: str) -> str:
    if vif_type == "hostdev_physical":
        return ("'hostdev_physical' passes a whole PCI device through as a <hostdev>, which is "
                "not a libvirt <interface>: vifplug does not describe it")
    return (f"vifplug does not connect binding:vif_type {vif_type!r} (it takes "
            f"{', '.join(NEUTRON_VIF_TYPES)})")


def _ovs_bridge(t: Translation, details: Reader) -> None:
    bridge = details.get("bridge_name", str)
    t.put(("network", "bridge"), bridge or DEFAULT_OVS_BRIDGE, (_DETAILS, "bridge_name"))


def _ovs_identity(t: Translation, r: Reader, details: Reader) -> None:
    t.put(("ovs", "interface_id"), r.data.get("id"), ("id",))
    t.put(("ovs", "datapath_type"), details.get("datapath_type", str),
          (_DETAILS, "datapath_type"))


def _ovs(t: Translation, r: Reader, details: Reader, vnic_type: str,
         network_id: str | None) -> str | None:
    if vnic_type == "vdpa":
        t.fail(("binding:vnic_type",), f"an 'ovs' port with vnic_type 'vdpa' {VDPA_NOT_CARRIED}")
        return None
    if vnic_type != "normal":
        t.fail(("binding:vnic_type",), f"an 'ovs' port with vnic_type {vnic_type!r} is OVS "
               "hardware offload through a VF representor, which vifplug does not plug")
        return None
    _ovs_bridge(t, details)
    _ovs_identity(t, r, details)
    groups = r.get("security_groups", list)
    port_security = r.get("port_security_enabled", bool)
    if details.get("ovs_hybrid_plug", bool):
        t.put(("plug",), "hybrid", (_DETAILS, "ovs_hybrid_plug"))
    elif groups and port_security is not False and not details.get("port_filter", bool):
        t.put(("plug",), "hybrid", ("security_groups",))
    return "ovs"


def _bridge(t: Translation, r: Reader, details: Reader, vnic_type: str,
            network_id: str | None) -> str | None:
    bridge = details.get("bridge_name", str)
    if bridge is not None:
        t.put(("network", "bridge"), bridge, (_DETAILS, "bridge_name"))
    elif network_id is not None:
        t.put(("network", "bridge"), names.linux_bridge_name(network_id), ("network_id",))
    else:
        t.fail(("network_id",), "required: a 'bridge' port without bridge_name is on the Linux "
               "bridge 'brq' + network_id[:11]")
    t.put(("network", "create_bridge"), True, None)
    return "bridge"


def _detail(t: Translation, details: Reader, loc: tuple[str, ...], key: str,
            required: str | None = None) -> None:
    """vif.json's ``loc`` from the string ``binding:vif_details[key]``."""
    t.put(loc, details.get(key, str, required=required), (_DETAILS, key))


def _vhostuser(t: Translation, r: Reader, details: Reader, vnic_type: str,
               network_id: str | None) -> str | None:
    _detail(t, details, ("vhostuser", "socket"), "vhostuser_socket",
            required="the vhost-user socket path")
    _detail(t, details, ("vhostuser", "mode"), "vhostuser_mode")
    if details.get("vhostuser_ovs_plug", bool):
        _ovs_bridge(t, details)
        _ovs_identity(t, r, details)
    return "vhostuser"


def _hw_veb(t: Translation, r: Reader, details: Reader, vnic_type: str,
            network_id: str | None) -> str | None:
    if vnic_type != "direct":
        t.fail(("binding:vnic_type",), f"an 'hw_veb' port takes vnic_type 'direct' (got "
               f"{vnic_type!r}; a macvtap on a VF needs the VF's net device name, which only "
               "the host knows)")
        return None
    profile = r.sub("binding:profile", required="the SR-IOV binding profile (pci_slot)")
    t.put(("hostdev", "pci"), profile.get("pci_slot", str, required="the VF's PCI address"),
          ("binding:profile", "pci_slot"))
    put_trusted(t, profile)
    return "hostdev"


def _macvtap(t: Translation, r: Reader, details: Reader, vnic_type: str,
             network_id: str | None) -> str | None:
    _detail(t, details, ("network", "interface"), "macvtap_source",
            required="the macvtap's lower device")
    _detail(t, details, ("direct", "mode"), "macvtap_mode",
            required="the macvtap mode (vepa, bridge, ...)")
    return "direct"


def _tap(t: Translation, r: Reader, details: Reader, vnic_type: str,
         network_id: str | None) -> str | None:
    return "ethernet"


_KIND = {
    "ovs": _ovs,
    "bridge": _bridge,
    "vhostuser": _vhostuser,
    "hw_veb": _hw_veb,
    "macvtap": _macvtap,
    "tap": _tap,
}
