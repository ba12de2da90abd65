"""The merge rule (vifplug.merge) as a table: every attribute x layer x conflict x override."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from vifplug.merge import (
    ATTRIBUTES,
    IDENTITIES,
    Choice,
    Layer,
    MergeError,
    Vlan,
    host_layers,
    interface_layer,
    merge,
    requests,
    show,
)
from vifplug.netmap import Bandwidth, QbgShared, Rate, load_network_map

MAC = "fa:16:3e:12:34:56"
HOST_LEVEL = [a for a in ATTRIBUTES if a not in IDENTITIES]
#: Two different values of each attribute (the first the interface's, the second the host's).
VALUES: dict[str, tuple[Any, Any]] = {
    "mac": (MAC, "fa:16:3e:00:00:01"),
    "interfaceid": ("0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f", "c0ffee00-1d2e-4f3a-9b8c-7d6e5f4a3b2c"),
    "instanceid": ("09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f", "c0ffee00-1d2e-4f3a-9b8c-7d6e5f4a3b2c"),
    "managerid": (11, 12),
    "typeid": (1193047, 7),
    "typeidversion": (2, 3),
    "profileid": ("finance", "payroll"),
    "vlan": (Vlan((100,)), Vlan((10, 20), trunk=True)),
    "bandwidth": (Bandwidth(Rate(1000)), Bandwidth(None, Rate(5, 6, 7))),
    "trust_guest_rx_filters": (False, True),
}
TEXT = {"vlan": ("100", "trunk 10,20"), "bandwidth": ("inbound=1000", "outbound=5/6/7"),
        "trust_guest_rx_filters": ("no", "yes")}


def layer(kind: str, values: dict[str, Any], *, override: bool = False) -> Layer:
    if kind == "interface":
        return Layer("interface", {"mac": MAC, **values})
    if kind == "portgroup":
        return Layer("portgroup eng", values, override, "portgroup eng of network red",
                     dict.fromkeys(values, "networks.toml:12"))
    if kind == "network":
        return Layer("network red", values, override, "network red",
                     dict.fromkeys(values, "networks.toml:3"))
    return Layer("interface (as it arrived)", values)


def run(attribute: str, given: dict[str, int], overrides: frozenset[str] = frozenset()) -> Choice:
    """``given``: layer -> which of the two values it gives."""
    def values(kind: str) -> dict[str, Any]:
        return {attribute: VALUES[attribute][given[kind]]} if kind in given else {}
    return merge(layer("interface", values("interface")),
                 layer("portgroup", values("portgroup"), override="portgroup" in overrides),
                 layer("network", values("network"), override="network" in overrides),
                 layer("arrived", values("arrived")))[attribute]


# every combination: which layers give the attribute (interface: its own value 0; portgroup,
# network and arrived: value 0 (the same) or 1 (different)), and which host layers override
CASES = [
    (attribute, dict(zip(("interface", "portgroup", "network", "arrived"), combo, strict=True)),
     frozenset(over))
    for attribute in HOST_LEVEL
    for combo in itertools.product((None, 0), (None, 0, 1), (None, 0, 1), (None, 0, 1))
    for over in ((), ("portgroup",), ("network",), ("portgroup", "network"))
]


def expected(given: dict[str, int | None], overrides: frozenset[str]) -> tuple[Any, ...]:
    """The rule, restated: (layer chosen, value index, error?)."""
    host = next((kind for kind in ("portgroup", "network") if given[kind] is not None), None)
    if host is not None:
        differs = given["interface"] is not None and given[host] != given["interface"]
        if differs and host not in overrides:
            return ("error", host)
        return (host, given[host], differs)
    if given["interface"] is not None:
        return ("interface", given["interface"], False)
    if given["arrived"] is not None:
        return ("arrived", given["arrived"], False)
    return (None,)


@pytest.mark.parametrize(("attribute", "given", "overrides"), CASES)
def test_host_level_attributes(attribute: str, given: dict[str, int | None],
                               overrides: frozenset[str]) -> None:
    present = {kind: index for kind, index in given.items() if index is not None}
    want = expected(given, overrides)
    if want[0] == "error":
        with pytest.raises(MergeError) as caught:
            run(attribute, present, overrides)
        host = "portgroup eng of network red (networks.toml:12)" if want[1] == "portgroup" \
            else "network red (networks.toml:3)"
        asked, gave = TEXT.get(attribute, tuple(map(str, VALUES[attribute])))
        assert str(caught.value) == (
            f"interface {MAC}: {attribute}: the interface asks {asked}, {host} gives {gave}; "
            "set override = true there to let the host win")
        return
    choice = run(attribute, present, overrides)
    if want[0] is None:
        assert choice == Choice(None)
        return
    source = {"interface": "interface", "portgroup": "portgroup eng", "network": "network red",
              "arrived": "interface (as it arrived)"}[want[0]]
    assert choice.source == source
    assert choice.value == VALUES[attribute][want[1]]
    # an override that beat the interface's own value says so
    assert choice.overridden == (VALUES[attribute][0] if want[2] else None)


@pytest.mark.parametrize("attribute", IDENTITIES)
@pytest.mark.parametrize("from_interface", [True, False])
def test_identities_come_only_from_the_interface(attribute: str, from_interface: bool) -> None:
    host = {attribute: VALUES[attribute][1]}
    own = {attribute: VALUES[attribute][0]} if from_interface else {}
    interface = Layer("interface", own)
    chosen = merge(interface, layer("portgroup", host), layer("network", host, override=True),
                   layer("arrived", host))[attribute]
    assert chosen == (Choice(VALUES[attribute][0], "interface") if from_interface
                      else Choice(None))


def test_every_attribute_is_decided() -> None:
    chosen = merge(Layer("interface", {}), None, None)
    assert tuple(chosen) == ATTRIBUTES
    assert all(choice == Choice(None) for choice in chosen.values())


# --- the interface layer, from vifplug's metadata entry ------------------------------------------


def test_requests_round_trip_through_the_metadata() -> None:
    entry = {"mac": MAC.upper(), "network": "red", "interfaceid": VALUES["interfaceid"][0],
             "managerid": "99",  # the identity memory: never a request
             **requests(vlan=100, qbg=QbgShared(11, 1193047, 2), profile_id="finance",
                        bandwidth=Bandwidth(Rate(1, 2, 3)))}
    assert entry["ask-vlan"] == "100"
    assert entry["ask-bandwidth"] == "inbound=1/2/3"
    assert interface_layer(entry).values == {
        "mac": MAC, "interfaceid": VALUES["interfaceid"][0], "managerid": 11,
        "typeid": 1193047, "typeidversion": 2, "profileid": "finance", "vlan": Vlan((100,)),
        "bandwidth": Bandwidth(Rate(1, 2, 3))}
    assert interface_layer(requests(trunk=(10, 20))).values == {"vlan": Vlan((10, 20), True)}


def test_an_entry_from_before_the_rule_asks_nothing() -> None:
    entry = {"mac": MAC, "network": "red", "managerid": "11", "typeid": "1", "typeidversion": "2",
             "profileid": "finance", "instanceid": VALUES["instanceid"][0]}
    assert interface_layer(entry).values == {"mac": MAC, "instanceid": VALUES["instanceid"][0]}


@pytest.mark.parametrize("entry", [
    {"ask-vlan": "x"}, {"ask-trunk": "1,,2"}, {"ask-managerid": "-1"}, {"ask-bandwidth": "no"},
])
def test_a_garbled_request_is_none(entry: dict[str, str]) -> None:
    assert interface_layer(entry).values == {}


# --- the host layers, from the map ---------------------------------------------------------------

MAP = """\
[networks.red]
switch = "ovs"
bridge = "br-int"
vlan = 100
default_portgroup = "eng"
bandwidth = {inbound = {average = 1000}}

[networks.red.portgroups.eng]
vlan = 200
override = true

[networks.red.portgroups.sales]
trunk = [10, 20]

[networks.plain]
switch = "direct"
interface = "eth2"
trust_guest_rx_filters = true
[networks.plain.qbh]
profile_id = "finance"
"""


@pytest.fixture
def host_map(tmp_path: Path) -> Any:
    path = tmp_path / "networks.toml"
    path.write_text(MAP)
    return load_network_map(path)


def test_host_layers_name_their_lines(host_map: Any) -> None:
    red = host_map.networks["red"]
    group, network = host_layers(host_map, red, MAC, "sales")
    assert group == Layer("portgroup sales", {"vlan": Vlan((10, 20), True)}, False,
                          "portgroup sales of network red",
                          {"vlan": f"{host_map.path}:13"})
    assert network == Layer("network red", {"vlan": Vlan((100,)),
                                            "bandwidth": Bandwidth(Rate(1000))}, False,
                            "network red", {"vlan": f"{host_map.path}:4",
                                            "bandwidth": f"{host_map.path}:6"})
    default, _ = host_layers(host_map, red, MAC, None)
    assert default is not None
    assert default.source == "portgroup eng"
    assert default.override is True
    none, plain = host_layers(host_map, host_map.networks["plain"], MAC, None)
    assert none is None
    assert plain.values == {"profileid": "finance", "trust_guest_rx_filters": True}
    assert plain.places == {"profileid": f"{host_map.path}:20",
                            "trust_guest_rx_filters": f"{host_map.path}:18"}


def test_a_portgroup_the_host_lacks_is_refused(host_map: Any) -> None:
    with pytest.raises(MergeError) as caught:
        host_layers(host_map, host_map.networks["red"], MAC, "marketing")
    assert str(caught.value) == (f"interface {MAC}: network 'red' has no portgroup 'marketing' "
                                 f"on this host (its portgroups: eng, sales; {host_map.path})")
    with pytest.raises(MergeError) as caught:
        host_layers(host_map, host_map.networks["plain"], MAC, "eng")
    assert str(caught.value) == (f"interface {MAC}: network 'plain' has no portgroup 'eng' on "
                                 f"this host (it has no portgroups; {host_map.path})")


def test_show_marks_overrides_and_what_the_switch_does_not_use() -> None:
    chosen = merge(Layer("interface", {"mac": MAC, "vlan": Vlan((100,))}),
                   layer("portgroup", {"vlan": Vlan((200,))}, override=True),
                   layer("network", {"profileid": "p"}))
    assert show(chosen, "ovs") == [
        ("mac", MAC, "interface"),
        ("profileid", "p", "network red (not used by switch 'ovs')"),
        ("vlan", "200", "portgroup eng (override; the interface asks 100)")]
