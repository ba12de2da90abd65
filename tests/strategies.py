"""Hypothesis strategies for valid vif.json objects (every vif_type, every optional key)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

HEX = "0123456789abcdef"
NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"


def uuids() -> st.SearchStrategy[str]:
    return st.uuids().map(str)


@st.composite
def macs(draw: st.DrawFn) -> str:
    first = draw(st.integers(0, 255)) & 0xFE  # unicast
    rest = draw(st.lists(st.integers(0, 255), min_size=5, max_size=5))
    if first == 0 and not any(rest):
        rest[-1] = 1
    return ":".join(f"{b:02x}" for b in [first, *rest])


@st.composite
def device_names(draw: st.DrawFn, *, target: bool = False) -> str:
    name = draw(st.text(NAME_CHARS, min_size=1, max_size=15))
    if name in (".", "..") or (target and name.startswith(("vnet", "vif", "macvtap", "macvlan"))):
        name = "d" + name[:14]
    return name


def vlans() -> st.SearchStrategy[int]:
    return st.integers(1, 4094)


def rates() -> st.SearchStrategy[dict[str, int]]:
    speed = st.integers(1, 2**32 - 1)
    return st.fixed_dictionaries({"average": speed}, optional={"peak": speed, "burst": speed})


def bandwidths() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={"inbound": rates(), "outbound": rates()}).filter(
        bool)


def filters() -> st.SearchStrategy[dict[str, Any]]:
    params = st.dictionaries(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", min_size=1,
                                     max_size=12),
                             st.text("abcdef0123456789.:_", min_size=1, max_size=20), max_size=3)
    return st.fixed_dictionaries({"name": st.sampled_from(["clean-traffic", "no-spoofing",
                                                           "allow-ipv4"])},
                                 optional={"parameters": params})


@st.composite
def vif_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A valid vif.json object of any vif_type."""
    kind = draw(st.sampled_from(["bridge", "ovs", "802.1qbg", "802.1qbh", "direct", "ethernet",
                                 "vhostuser", "hostdev", "vdpa"]))
    vif: dict[str, Any] = {"id": draw(uuids()), "vif_type": kind, "mac": draw(macs())}
    network: dict[str, Any] = {"name": draw(st.text(NAME_CHARS, min_size=1, max_size=64))}
    vif["network"] = network
    common = kind != "hostdev"
    if common:
        model = draw(st.sampled_from([None, "virtio", "e1000", "rtl8139"]))
        if kind in ("vhostuser", "vdpa"):
            model = draw(st.sampled_from([None, "virtio"]))
        if model:
            vif["model"] = model
        if kind != "vdpa" and draw(st.booleans()):
            vif["mtu"] = draw(st.integers(68, 65535))
        if kind != "vdpa" and (model in (None, "virtio")) and draw(st.booleans()):
            vif["queues"] = draw(st.integers(1, 256))
        if draw(st.booleans()):
            vif["link_state"] = draw(st.sampled_from(["up", "down"]))
        if kind not in ("vhostuser", "vdpa") and draw(st.booleans()):
            vif["bandwidth"] = draw(bandwidths())
        if kind != "vdpa" and model in (None, "virtio") and draw(st.booleans()):
            vif["teaming"] = {"type": "persistent"}
    elif draw(st.booleans()):
        vif["teaming"] = {"type": "transient", "persistent": "ua-" + draw(
            st.text("abcXYZ019_.-", min_size=1, max_size=60))}
    if draw(st.booleans()):
        vif["alias"] = "ua-" + draw(st.text("abcXYZ019_.-", min_size=1, max_size=60))
    if kind in ("bridge", "ovs", "ethernet", "802.1qbg", "802.1qbh", "direct") and draw(
            st.booleans()):
        vif["devname"] = draw(device_names(target=True))
    if draw(st.booleans()):
        vif["filtered"] = draw(st.booleans())

    if kind == "bridge":
        network["bridge"] = draw(device_names())
        if draw(st.booleans()):
            network["vlan"] = draw(vlans())
            if draw(st.booleans()):
                # <interface>.<vlan> must itself be a device name (at most 15 bytes).
                parent = draw(device_names())[:14 - len(str(network["vlan"]))]
                network["interface"] = parent if parent not in (".", "..") else "eth"
                network["create_vlan"] = True
        if draw(st.booleans()):
            network["create_bridge"] = draw(st.booleans())
        if draw(st.booleans()):
            vif["filter"] = draw(filters())
        if draw(st.booleans()):
            vif["isolated"] = draw(st.booleans())
    elif kind == "ovs":
        network["bridge"] = draw(device_names())
        vif["ovs"] = {"interface_id": draw(uuids())}
        if draw(st.booleans()):
            vif["ovs"]["datapath_type"] = draw(st.sampled_from(["system", "netdev"]))
        tagging = draw(st.sampled_from(["none", "vlan", "trunk"]))
        if tagging == "vlan":
            network["vlan"] = draw(vlans())
        elif tagging == "trunk":
            network["trunk"] = draw(st.lists(vlans(), min_size=1, max_size=8, unique=True))
        plug = draw(st.sampled_from([None, "hybrid", "virtualport", "manual"]))
        if plug:
            vif["plug"] = plug
        if plug in (None, "hybrid") and draw(st.booleans()):
            vif["filter"] = draw(filters())
    elif kind in ("802.1qbg", "802.1qbh", "direct"):
        network["interface"] = draw(device_names())
        mode = draw(st.sampled_from([None, "vepa", "bridge", "private", "passthrough"]))
        if mode:
            vif["direct"] = {"mode": mode}
        effective = mode or ("passthrough" if kind == "802.1qbh" else "vepa")
        if effective == "passthrough" and draw(st.booleans()):
            network["vlan"] = draw(vlans())
        if kind == "802.1qbg":
            vif["qbg"] = {"manager_id": draw(st.integers(0, 255)),
                          "type_id": draw(st.integers(0, 2**24 - 1)),
                          "type_id_version": draw(st.integers(0, 255)),
                          "instance_id": draw(uuids())}
        elif kind == "802.1qbh":
            vif["qbh"] = {"profile_id": draw(st.text(
                st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="<>&'\""),
                min_size=1, max_size=39))}
    elif kind == "vhostuser":
        vif["vhostuser"] = {"socket": "/run/vhu/" + draw(device_names())
                            + draw(st.text("<&'\" é", max_size=3))}
        if draw(st.booleans()):
            vif["vhostuser"]["mode"] = draw(st.sampled_from(["client", "server"]))
        if draw(st.booleans()):
            network["bridge"] = draw(device_names())
            vif["ovs"] = {"interface_id": draw(uuids())}
    elif kind == "hostdev":
        domain, bus = draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFF))
        slot, function = draw(st.integers(0, 0x1F)), draw(st.integers(0, 7))
        vif["hostdev"] = {"pci": f"{domain:04x}:{bus:02x}:{slot:02x}.{function}"}
        if draw(st.booleans()):
            network["vlan"] = draw(vlans())
    elif kind == "vdpa":
        vif["vdpa"] = {"device": f"/dev/vhost-vdpa-{draw(st.integers(0, 999_999_999))}"}
    return vif


def libvirt_versions() -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.integers(0, 11),
                                          st.integers(0, 12), st.integers(0, 20)))
