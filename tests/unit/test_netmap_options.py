"""Priority lists per network (issue 12, item 4): ``[[networks.NAME.options]]`` loaded and
checked (bad lists exit 2 with ``file:line: networks.NAME.options[N]...``, nothing changed),
the hook's choice of the first option the guest can use here and now (every skip reason, the
refusal naming each option), its determinism (the arriving XML's source type never matters),
the three-host scenarios of libvirt's design review, and what every other reader of the map
makes of options (host apply's bridges, hook check, pools, audit, libvirt networks)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from lxml import etree

from vifplug.cli import main as cli
from vifplug.hook import HookError, Rewritten, definition_of, parse_domain, rewrite
from vifplug.hook import main as hook
from vifplug.netlayout import legacy_bridges, one_switch_type_problem, ovs_bridges
from vifplug.netmap import NetworkMapError, load_network_map, parse_network_map
from vifplug.pools import Holder, PoolState, allocate, describe, load, rebuild

NS = "http://vifplug.org/xmlns/vifplug/1"
MAC = "fa:16:3e:00:00:01"
IID = "09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f"

#: vnlink (802.1Qbh on a pool, one guest per NIC), then VEPA with 802.1Qbg, then a bridge.
THREE = """\
[[networks.red.options]]
switch = "direct"
mode = "passthrough"
interfaces = ["eth10", "eth11"]
qbh = {profile_id = "finance"}

[[networks.red.options]]
switch = "direct"
interface = "eth2"
mode = "vepa"
[networks.red.options.qbg]
manager_id = 11
type_id = 1193047
type_id_version = 2

[[networks.red.options]]
switch = "legacy"
bridge = "red"
"""


def domain(*, identity: str = "", arrived: str = "bridge", portgroup: str = "",
           name: str = "g1", asks: str = "") -> bytes:
    """A guest on network red whose metadata holds ``identity`` attributes, arriving as
    ``arrived`` (bridge, ovs, direct, qbg, network)."""
    interface = {
        "bridge": "<interface type='bridge'><mac address='{mac}'/><source bridge='br0'/>"
                  "</interface>",
        "ovs": "<interface type='bridge'><mac address='{mac}'/><source bridge='br-int'/>"
               "<virtualport type='openvswitch'/></interface>",
        "direct": "<interface type='direct'><mac address='{mac}'/>"
                  "<source dev='eth99' mode='bridge'/></interface>",
        "qbg": "<interface type='direct'><mac address='{mac}'/><source dev='eth98' mode='vepa'/>"
               "<virtualport type='802.1Qbg'><parameters managerid='1' typeid='2' "
               "typeidversion='3'/></virtualport></interface>",
        "network": "<interface type='network'><mac address='{mac}'/><source network='red'/>"
                   "</interface>",
    }[arrived].format(mac=MAC)
    group = f" portgroup='{portgroup}'" if portgroup else ""
    return (f"<domain type='kvm'><name>{name}</name><metadata><vifplug:interfaces "
            f"xmlns:vifplug='{NS}'><vifplug:interface mac='{MAC}' network='red'{group} "
            f"{identity} {asks}/></vifplug:interfaces></metadata><devices>{interface}"
            "</devices></domain>").encode()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "networks.toml"
    path.write_text(text)
    return path


def state_with(*held: tuple[str, str]) -> PoolState:
    return PoolState({"red": {nic: [Holder(guest, "fa:16:3e:99:99:99")] for nic, guest in held}})


def choose(text: str, xml: bytes, state: PoolState | None = None) -> tuple[Rewritten, str]:
    """The hook's choice on a host with map ``text`` and pools ``state`` (a copy: a preview)."""
    host_map = parse_network_map(text, "networks.toml")
    log: list[Rewritten] = []
    pools = PoolState(state.networks if state is not None else None)  # a copy per call

    def pick(network: object, mac: str) -> str:
        from vifplug.hook import PoolFull
        from vifplug.pools import PoolExhausted
        try:
            return pools.choose(network, Holder("g1", mac))  # type: ignore[arg-type]
        except PoolExhausted as exc:
            raise PoolFull(f"interface {mac}: {exc}; refused") from None
    result = rewrite(xml, host_map, log=log.append, pool=pick)
    return log[0], result


def got(xml: str) -> tuple[str | None, str | None]:
    iface = etree.fromstring(xml.encode()).find("devices/interface")
    source = iface.find("source")
    port = iface.find("virtualport")
    where = source.get("dev") or source.get("bridge")
    return where, port.get("type") if port is not None else iface.get("type")


# --- loading -------------------------------------------------------------------------------


def test_options_load_in_order_and_the_first_stands_for_the_network() -> None:
    host_map = parse_network_map(THREE, "networks.toml")
    options = host_map.definitions("red")
    assert [(o.switch, o.option) for o in options] == [("direct", 0), ("direct", 1),
                                                       ("legacy", 2)]
    assert host_map.networks["red"] == options[0]
    assert list(host_map.every_definition()) == ["red.options[0]", "red.options[1]",
                                                 "red.options[2]"]
    assert host_map.place(("networks", "red", "options[1]", "interface")) == "networks.toml:9"
    assert host_map.place(("networks", "red.options[1]", "qbg", "type_id")) == "networks.toml:13"


BAD = [
    ('[networks.red]\nswitch = "legacy"\n[[networks.red.options]]\nswitch = "legacy"\n',
     "networks.toml:2: networks.red.switch: a network gives either a priority list "
     "([[networks.NAME.options]]) or a single definition, not both"),
    ('[networks.red]\noptions = []\n',
     "networks.toml:2: networks.red.options: must be an array of tables"),
    ('[networks.red]\noptions = ["legacy"]\n',
     "networks.toml:2: networks.red.options: must be an array of tables"),
    ('[[networks.red.options]]\nswitch = "legacy"\n[[networks.red.options]]\nswitch = "ovs"\n'
     'bridge = "br-int"\nnic = "eth1"\nflavour = 1\n',
     "networks.toml:7: networks.red.options[1].flavour: unknown key for switch 'ovs'"),
    ('[[networks.red.options]]\nswitch = "legacy"\n[[networks.red.options]]\nbridge = "x"\n',
     "networks.toml:3: networks.red.options[1].switch: must be one of"),
    ('[[networks.red.options]]\nswitch = "direct"\ninterface = "eth1"\nmode = "vepa"\n'
     'default_portgroup = "eng"\n',
     "networks.toml:5: networks.red.options[0].default_portgroup: names no portgroup of "
     "network 'red'"),
    # a pool NIC twice: across options of one network, across networks, as an interface
    ('[[networks.red.options]]\nswitch = "direct"\nmode = "passthrough"\n'
     'interfaces = ["eth10", "eth11"]\n[[networks.red.options]]\nswitch = "direct"\n'
     'mode = "passthrough"\ninterfaces = ["eth12", "eth11"]\n',
     "networks.toml:8: networks.red.options[1].interfaces: NIC eth11 is in the pool of "
     "network red (options[0]) already: a NIC is in one pool at most"),
    ('[networks.blue]\nswitch = "direct"\nmode = "passthrough"\ninterfaces = ["eth10"]\n'
     '[[networks.red.options]]\nswitch = "direct"\nmode = "passthrough"\n'
     'interfaces = ["eth10"]\n',
     "networks.toml:8: networks.red.options[0].interfaces: NIC eth10 is in the pool of "
     "network blue already"),
    ('[[networks.red.options]]\nswitch = "direct"\nmode = "passthrough"\n'
     'interfaces = ["eth10"]\n[[networks.red.options]]\nswitch = "direct"\n'
     'interface = "eth10"\n',
     "networks.toml:7: networks.red.options[1].interface: NIC eth10 is in the pool of "
     "network red (options[0]): a pool's NICs are its own"),
    # an option that can never be taken: a bridge before 802.1Qbg covers it
    ('[[networks.red.options]]\nswitch = "legacy"\nbridge = "red"\n'
     '[[networks.red.options]]\nswitch = "direct"\ninterface = "eth2"\n'
     'qbg = {manager_id = 1, type_id = 2, type_id_version = 3}\n',
     "networks.toml:4: networks.red.options[1]: can never be taken: options[0] takes every "
     "guest it would (it needs no identity"),
    # ... an OVN option before an OVS one: every OVS guest needs no identity, OVN does: fine;
    # the other way round, OVS (no identity) covers OVN (needs an interfaceid)
    ('[[networks.red.options]]\nswitch = "ovs"\nbridge = "br-int"\n'
     '[[networks.red.options]]\nswitch = "ovn"\n',
     "networks.toml:4: networks.red.options[1]: can never be taken: options[0]"),
    # the options of one network share the host: one layout (two switches on one uplink)
    ('allow_mixed = true\n[[networks.red.options]]\nswitch = "legacy"\nnic = "eth1"\n'
     '[[networks.red.options]]\nswitch = "ovs"\nnic = "eth1"\nvlan = 5\n',
     "networks.toml:7: networks.red.options[1].nic: eth1 is the uplink of legacy network"),
]


@pytest.mark.parametrize(("text", "error"), BAD, ids=[str(n) for n in range(len(BAD))])
def test_bad_option_lists_name_the_file_line_and_option(tmp_path: Path, text: str,
                                                        error: str) -> None:
    with pytest.raises(NetworkMapError) as raised:
        parse_network_map(text, "networks.toml")
    assert str(raised.value).startswith(error), str(raised.value)
    path = write(tmp_path, text)  # the CLI: exit 2, the line on stderr, nothing on stdout
    out, err = io.StringIO(), io.StringIO()
    assert cli(["host", "libvirt-networks", "--networks", str(path)], out, err) == 2
    assert out.getvalue() == ""
    assert error.replace("networks.toml", str(path)) in err.getvalue()


def test_a_bad_map_refuses_the_guest_and_allocates_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, BAD[6][0])
    pools = tmp_path / "pools.json"
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIFPLUG_POOLS", str(pools))
        assert hook(["g1", "migrate", "begin", "-"], io.BytesIO(domain()), io.StringIO(), err,
                    networks=str(path)) == 1
    assert "networks.red.options[1].interfaces: NIC eth11" in err.getvalue()
    assert not pools.exists()


def test_demanding_options_in_front_of_a_catch_all_are_fine() -> None:
    parse_network_map(THREE, "networks.toml")  # vnlink, vepa+802.1Qbg, then the bridge
    parse_network_map('[[networks.red.options]]\nswitch = "ovn"\n[[networks.red.options]]\n'
                      'switch = "ovs"\nbridge = "br-int"\nvlan = 100\n', "networks.toml")


# --- the choice ------------------------------------------------------------------------------


def test_the_first_option_with_a_free_nic() -> None:
    entry, xml = choose(THREE, domain(identity=f"instanceid='{IID}'"))
    assert (entry.option, entry.options, entry.skipped) == (0, 3, ())
    assert got(xml) == ("eth10", "802.1Qbh")


def test_a_full_pool_skips_to_the_next_option_naming_the_holders() -> None:
    entry, xml = choose(THREE, domain(identity=f"instanceid='{IID}'"),
                        state_with(("eth10", "a"), ("eth11", "b")))
    assert entry.option == 1
    assert got(xml) == ("eth2", "802.1Qbg")
    assert entry.skipped == ("options[0] (macvtap on a pool of eth10, eth11 (one guest per NIC) "
                             "(passthrough) with 802.1Qbh profile finance): pool of network "
                             "red exhausted: eth10 (a), eth11 (b)",)


def test_no_instanceid_skips_the_8021qbg_option() -> None:
    entry, xml = choose(THREE, domain(), state_with(("eth10", "a"), ("eth11", "b")))
    assert entry.option == 2
    assert got(xml) == ("red", "bridge")
    assert entry.skipped[1] == ("options[1] (macvtap on eth2 (vepa) with 802.1Qbg): 802.1Qbg "
                                "needs the interface's instanceid (its VSI instance), and it "
                                "carries none")


OVN_FIRST = """\
[[networks.red.options]]
switch = "ovn"
[[networks.red.options]]
switch = "ovs"
bridge = "br-int"
vlan = 100
default_portgroup = "eng"
[networks.red.options.portgroups.eng]
vlan = 200
[[networks.red.options]]
switch = "legacy"
bridge = "red"
default_portgroup = "eng"
[networks.red.options.portgroups.eng]
[networks.red.options.portgroups.sales]
"""


def test_no_interfaceid_skips_ovn_and_a_missing_portgroup_or_a_conflict_skips_more() -> None:
    entry, _ = choose(OVN_FIRST, domain(identity="interfaceid='port-1'"))
    assert entry.option == 0
    entry, xml = choose(OVN_FIRST, domain())
    assert entry.option == 1
    assert entry.skipped[0].startswith("options[0] (OVN logical switch red on br-int): "
                                       "network 'red' is OVN logical switch 'red' on this host,"
                                       " and the interface carries no port identity")
    assert "<tag id=\"200\"" in xml or "<tag id='200'" in xml
    entry, xml = choose(OVN_FIRST, domain(portgroup="sales"))  # option 1 lacks it
    assert (entry.option, got(xml)) == (2, ("red", "bridge"))
    assert "network 'red' has no portgroup 'sales' on this host (its portgroups: eng" \
        in entry.skipped[1]
    entry, _ = choose(OVN_FIRST, domain(asks="ask-vlan='300'"))  # conflicts with vlan 200
    assert entry.option == 2
    assert "vlan: the interface asks 300, portgroup eng of network red (networks.toml:9) gives " \
           "200; set override = true there" in entry.skipped[1]


def test_no_usable_option_refuses_with_one_line_naming_each(tmp_path: Path) -> None:
    text = THREE.replace('[[networks.red.options]]\nswitch = "legacy"\nbridge = "red"\n', "")
    with pytest.raises(HookError) as raised:
        choose(text, domain(), state_with(("eth10", "a"), ("eth11", "b")))
    message = str(raised.value)
    assert "\n" not in message
    assert message == (
        f"interface {MAC}: network 'red': no connection option is usable on this host "
        "(networks.toml): options[0] (macvtap on a pool of eth10, eth11 (one guest per NIC) "
        "(passthrough) with 802.1Qbh profile finance): pool of network red exhausted: eth10 "
        "(a), eth11 (b); options[1] (macvtap on eth2 (vepa) with 802.1Qbg): 802.1Qbg needs "
        "the interface's instanceid (its VSI instance), and it carries none; refused")
    # the hook: exit 1, that line, the pool untouched (allocations of a refused guest undone)
    path = write(tmp_path, text)
    pools = tmp_path / "pools.json"
    for guest in ("a", "b"):
        allocate(load_network_map(path).networks["red"], Holder(guest, "m"), str(pools))
    before = pools.read_text()
    err, out = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIFPLUG_POOLS", str(pools))
        assert hook(["g1", "migrate", "begin", "-"], io.BytesIO(domain()), out, err,
                    networks=str(path)) == 1
    assert out.getvalue() == ""
    assert err.getvalue().count("\n") == 1
    assert "no connection option is usable on this host" in err.getvalue()
    assert pools.read_text() == before


def test_the_hook_allocates_in_the_option_it_takes(tmp_path: Path) -> None:
    path = write(tmp_path, THREE)
    pools = tmp_path / "pools.json"
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIFPLUG_POOLS", str(pools))
        patch.setattr("vifplug.hook._refuse_early", lambda result, host_map: None)
        assert hook(["g1", "migrate", "begin", "-"], io.BytesIO(domain()), out, io.StringIO(),
                    networks=str(path)) == 0
    assert got(out.getvalue()) == ("eth10", "802.1Qbh")
    assert load(str(pools)).networks["red"] == {"eth10": [Holder("g1", MAC)]}
    assert describe(load(str(pools)), load_network_map(path)) == [
        f"red eth10: g1 ({MAC})", "red eth11: free"]


ARRIVALS = ("bridge", "ovs", "direct", "qbg", "network")


@pytest.mark.parametrize("held", [(), (("eth10", "a"),), (("eth10", "a"), ("eth11", "b"))])
@pytest.mark.parametrize("identity", ["", f"instanceid='{IID}'", "interfaceid='p1'"])
def test_the_choice_never_depends_on_the_arriving_source_type(held: tuple[tuple[str, str], ...],
                                                             identity: str) -> None:
    """The same host map, state and guest identity give the same option (and the same XML but
    for what the guest carried in) whatever switch the guest arrives from."""
    results = set()
    for arrived in ARRIVALS:
        entry, xml = choose(THREE, domain(identity=identity, arrived=arrived), state_with(*held))
        results.add((entry.option, entry.skipped, got(xml)))
    assert len(results) == 1, results


# --- the design review's three hosts ---------------------------------------------------------

#: Host 1: vepa + vnlink (802.1Qbh); host 2: a bridge; host 3: bridge + vepa + vnlink.
HOSTS = {
    1: THREE.replace('[[networks.red.options]]\nswitch = "legacy"\nbridge = "red"\n', ""),
    2: '[networks.red]\nswitch = "legacy"\nbridge = "red"\n',
    3: THREE,
}


@pytest.mark.parametrize(("host", "free", "instanceid", "option", "connection"), [
    (1, True, True, 0, ("eth10", "802.1Qbh")),
    (1, False, True, 1, ("eth2", "802.1Qbg")),
    (1, True, False, 0, ("eth10", "802.1Qbh")),
    (1, False, False, None, None),  # refused: no free NIC, no instanceid for 802.1Qbg
    (2, True, True, None, ("red", "bridge")),
    (2, False, False, None, ("red", "bridge")),
    (3, True, True, 0, ("eth10", "802.1Qbh")),
    (3, False, True, 1, ("eth2", "802.1Qbg")),
    (3, True, False, 0, ("eth10", "802.1Qbh")),
    (3, False, False, 2, ("red", "bridge")),
])
def test_three_hosts(host: int, free: bool, instanceid: bool, option: int | None,
                     connection: tuple[str, str] | None) -> None:
    state = state_with() if free else state_with(("eth10", "a"), ("eth11", "b"))
    xml = domain(identity=f"instanceid='{IID}'" if instanceid else "")
    if connection is None:
        with pytest.raises(HookError, match="no connection option is usable"):
            choose(HOSTS[host], xml, state)
        return
    entry, result = choose(HOSTS[host], xml, state)
    assert (entry.option, got(result)) == (option, connection)


@pytest.mark.parametrize("route", [(1, 2, 3, 1), (3, 2, 1, 3), (1, 3, 2, 1), (2, 1, 3, 2)])
def test_a_tour_lands_where_each_host_alone_says(route: tuple[int, ...]) -> None:
    """Moving 1→2→3→1 (and other tours) with an 802.1Qbg identity: on each host the guest gets
    what that host's map and pools give a guest arriving fresh — the hosts visited before
    change nothing (the bridge of host 2 drops the virtualport, the metadata keeps the
    instanceid)."""
    full = state_with(("eth10", "a"), ("eth11", "b"))
    for state in (PoolState(), full):
        xml = domain(identity=f"instanceid='{IID}'")
        fresh = {host: got(choose(HOSTS[host], xml, state)[1]) for host in set(route)}
        for host in route:
            _, result = choose(HOSTS[host], xml, state)
            assert got(result) == fresh[host]
            xml = result.encode()
        entry = parse_domain(xml).find(f"metadata/{{{NS}}}interfaces/{{{NS}}}interface")
        assert entry is not None
        assert entry.get("instanceid") == IID


# --- the other readers of the map ------------------------------------------------------------

MIXED = """\
allow_mixed = true
[[networks.red.options]]
switch = "ovs"
nic = "eth1"
vlan = 100
[[networks.red.options]]
switch = "legacy"
bridge = "red"
[networks.blue]
switch = "legacy"
nic = "eth3"
"""


def test_host_apply_builds_every_options_bridge_and_counts_each_switch() -> None:
    host_map = parse_network_map(MIXED, "networks.toml")
    assert [(b.name, b.network) for b in legacy_bridges(host_map)] == [
        ("blue", "blue"), ("red", "red.options[1]")]
    assert [(b.name, b.networks) for b in ovs_bridges(host_map)] == [
        ("br-eth1", ("red.options[0]",))]
    strict = parse_network_map(MIXED.replace("allow_mixed = true\n", ""), "networks.toml")
    problem = one_switch_type_problem(strict)
    assert problem is not None
    assert "legacy: blue, red.options[1]; ovs/ovn: red.options[0]" in str(problem)
    assert host_map.error(("networks", "red.options[1]", "bridge"), "x").args[0] == \
        "networks.toml:8: networks.red.options[1].bridge: x"


def test_hook_check_and_preflight_check_the_option_taken(tmp_path: Path) -> None:
    """Both pool NICs held: the guest gets the bridge (options[2]), and the device checks are
    the bridge's, not the first option's NICs."""
    from vifplug.preflight import device_problems

    path = write(tmp_path, THREE)
    pools = tmp_path / "pools.json"
    for guest in ("a", "b"):
        allocate(load_network_map(path).networks["red"], Holder(guest, "m"), str(pools))
    dom = tmp_path / "domain.xml"
    dom.write_bytes(domain())
    out = io.StringIO()
    assert cli(["hook", "check", str(dom), "--networks", str(path), "--pools", str(pools)],
               out, io.StringIO()) == 1
    assert out.getvalue() == (f"{dom}: interface {MAC}: network 'red': Linux bridge red does "
                              "not exist on this host\n")
    host_map = load_network_map(path)
    _, xml = choose(THREE, domain(), state_with(("eth10", "a"), ("eth11", "b")))
    sysfs = tmp_path / "sys"
    (sysfs / "red" / "bridge").mkdir(parents=True)
    assert device_problems(xml, host_map, sysfs=str(sysfs)) == []
    iface = parse_domain(xml).find("devices/interface")
    assert iface is not None
    assert definition_of(host_map, "red", iface) == host_map.options["red"][2]
    _, xml = choose(THREE, domain())
    iface = parse_domain(xml).find("devices/interface")
    assert iface is not None
    assert definition_of(host_map, "red", iface) == host_map.options["red"][0]
    assert device_problems(xml, host_map, sysfs=str(sysfs)) == [
        f"interface {MAC}: network 'red': NIC eth10 does not exist on this host"]


def test_pools_rebuild_finds_guests_on_any_options_pool() -> None:
    text = THREE + ('[[networks.red.options]]\nswitch = "direct"\nmode = "passthrough"\n'
                    'interfaces = ["eth20"]\n')
    with pytest.raises(NetworkMapError, match=r"options\[3\]: can never be taken"):
        parse_network_map(text, "networks.toml")  # after the bridge: never taken
    text = text.replace('[[networks.red.options]]\nswitch = "legacy"\nbridge = "red"\n', "")
    host_map = parse_network_map(text, "networks.toml")
    xml = domain(arrived="direct").replace(b"eth99", b"eth20").replace(b"'bridge'",
                                                                       b"'passthrough'")
    assert rebuild([("g1", xml.decode())], host_map) == PoolState(
        {"red": {"eth20": [Holder("g1", MAC)]}})


def test_libvirt_networks_define_the_first_option_and_say_so(tmp_path: Path) -> None:
    path = write(tmp_path, THREE)
    out = io.StringIO()
    assert cli(["host", "libvirt-networks", "--networks", str(path)], out, io.StringIO()) == 0
    document = etree.fromstring(out.getvalue().encode())
    assert document.find("forward").get("mode") == "passthrough"
    assert [i.get("dev") for i in document.findall("forward/interface")] == ["eth10", "eth11"]
    comment = next(iter(document.iter(etree.Comment)))
    assert "lists 3 connection options" in comment.text
    assert "options[1]: macvtap on eth2 (vepa) with 802.1Qbg; options[2]: Linux bridge red" \
        in comment.text
    schema = Path("/usr/share/libvirt/schemas/network.rng")
    if schema.exists():
        assert etree.RelaxNG(etree.parse(str(schema))).validate(document)


def test_audit_compares_a_port_with_the_option_on_its_bridge() -> None:
    from vifplug.audit import _mismatch

    host_map = parse_network_map(
        '[[networks.red.options]]\nswitch = "ovn"\n[[networks.red.options]]\nswitch = "ovs"\n'
        'bridge = "br-ex"\nvlan = 7\n', "networks.toml")
    networks = {name: host_map.options.get(name, n) for name, n in host_map.networks.items()}

    class Port:
        name, bridge, tag, trunks, mtu_request, ids = "tap1", "br-ex", 7, [], None, {}

        def evidence(self) -> dict[str, str]:
            return {}

    class Iface:
        network, mtu, interfaceid, mac = "red", None, None, MAC
        source_bridge = target = "tap1"

        def evidence(self) -> dict[str, str]:
            return {}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("vifplug.audit._port_of", lambda iface, ovs: Port())
        guest = type("Domain", (), {"name": "g1"})()
        assert _mismatch(guest, Iface(), networks, {}) is None  # type: ignore[arg-type]
        Port.tag = 8
        found = _mismatch(guest, Iface(), networks, {})  # type: ignore[arg-type]
    assert found is not None
    assert "tag 8 (expected 7)" in found.summary


def test_a_changed_list_is_a_moving_network_for_switch_transitions() -> None:
    from vifplug.guests import moving_networks

    old = parse_network_map(THREE, "networks.toml")
    assert moving_networks(old, parse_network_map(THREE, "networks.toml")) == frozenset()
    changed = parse_network_map(THREE.replace('bridge = "red"', 'bridge = "red2"'),
                                "networks.toml")
    assert old.networks["red"] == changed.networks["red"]  # the first option is the same
    assert moving_networks(old, changed) == {"red"}


def test_host_show_and_its_drift_list_every_option(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``host show``: one line per option, and host apply's steps under the option they build
    (a fake host without the bridge)."""
    import vifplug.host
    from vifplug.host import Host
    from vifplug.host.fake import FakeNetlink, FakeOvsdb

    monkeypatch.setattr(vifplug.host, "Host", lambda **_: Host.using(FakeNetlink(), FakeOvsdb()))
    path = write(tmp_path, THREE.replace('bridge = "red"', 'bridge = "vp-red"'))
    out = io.StringIO()
    assert cli(["host", "show", "--networks", str(path), "--record",
                str(tmp_path / "record.json")], out, io.StringIO()) == 0
    lines = out.getvalue().splitlines()
    assert lines[:5] == [
        f"{path}: 1 network(s)",
        "  red.options[0]   direct  macvtap on a pool of eth10, eth11 (one guest per NIC) "
        "(passthrough) with 802.1Qbh profile finance  [MISSING eth10, eth11]",
        "  red.options[1]   direct  macvtap on eth2 (vepa) with 802.1Qbg  [MISSING]",
        "  red.options[2]   legacy  Linux bridge vp-red  [MISSING]",
        "drift (what host apply would change):",
    ]
    drift = lines[5:]
    assert drift
    assert all(line.startswith("  red.options[2]: ") for line in drift), drift
    assert any("vp-red" in line for line in drift)
