"""The ``vifplug`` command: render, validate, explain, schema.

Exit codes: 0 ok; 2 bad input (the message names the file, the JSON path and what was expected;
nothing on the host is touched); 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

from vifplug.errors import VifError, VifplugError

if TYPE_CHECKING:
    from vifplug.driver import GenericVIFDriver
    from vifplug.host import Host
    from vifplug.model import Vif

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def _build_parser() -> argparse.ArgumentParser:
    # a usage error is bad input: argparse exits 2 with the message, as vifplug does
    parser = argparse.ArgumentParser(
        prog="vifplug",
        description="Connect virtual machines' NICs to host networking: render the libvirt "
        "<interface> XML for a VIF described in vif.json (see `vifplug schema`).",
        epilog="Exit codes: 0 ok, 2 bad input, 1 unexpected error.",
    )
    parser.add_argument("--version", action="version", version=f"vifplug {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def vif_command(name: str, help_: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=description)
        sub.add_argument("vif_json", metavar="vif.json",
                         help="a VIF object or an array of them ('-' reads stdin)")
        sub.add_argument("--firewall", action="store_true",
                         help="the host firewalls guest traffic: OVS VIFs whose switch does not "
                         "filter take the hybrid path; bridge VIFs get their <filterref>")
        sub.add_argument("--libvirt-version", metavar="X.Y.Z",
                         help="the libvirt the XML is for (default: the newest)")
        sub.add_argument("--from", dest="from_", metavar="FORMAT", default="vif.json",
                         choices=("vif.json", "os-vif", "nova", "neutron"),
                         help="what the file holds: vif.json (default); os-vif (an os-vif VIF "
                         "as obj_to_primitive() JSON); nova (a network_info VIF dict); neutron "
                         "(a port as the API returns it) — one object or a list")
        sub.add_argument("--network-name", metavar="NAME",
                         help="--from neutron: the logical network's name (default: the "
                         "port's network_id)")
        sub.add_argument("--mtu", type=int, metavar="N",
                         help="--from neutron: the network's MTU")
        sub.add_argument("--portgroup", metavar="NAME",
                         help="--from: every VIF's network.portgroup (no foreign model carries "
                         "one)")
        return sub

    render = vif_command(
        "render", "print the libvirt <interface> XML",
        "Print one <interface> for a VIF object, or a <devices> holding one <interface> per "
        "VIF for an array.",
    )
    render.add_argument("--metadata", action="store_true",
                        help="print instead the domain's <vifplug:interfaces> metadata element "
                        "that the migration hook reads")
    render.add_argument("--as-network", action="store_true",
                        help="print it as <interface type='network'> on the libvirt network "
                        "named after the VIF's network (what `vifplug host libvirt-networks` "
                        "defines on each host): the per-guest parts only")
    _local_map_options(render, "render each VIF as this host's map connects its network, "
                       "as the migration hook would: the first usable option of its priority "
                       "list, its portgroup and the merge rule; a pool's NIC is the one the "
                       "pools' state would give (read only)")
    render.set_defaults(handler=_render)
    vif_command("validate", "check vif.json and say which connection each VIF takes",
                "Check every rule of vif.json format 1 and that each VIF can be connected with "
                "the given options. Prints nothing but a summary when valid."
                ).set_defaults(handler=_validate)
    explain = vif_command(
        "explain", "say, for a person, how each VIF is connected and why",
        "For each VIF: the connection chosen, the reason, and the host devices it implies, "
        "drawn from the guest outwards. With --networks: also what this host's map gives its "
        "network, and for each attribute (MAC, port identities, port profile, VLAN, "
        "bandwidth, trustGuestRxFilters) its value and the layer it comes from (interface, "
        "portgroup, network: the merge rule).")
    explain.add_argument("--networks", metavar="FILE",
                         help="the host's network map (networks.toml) to merge with")
    explain.set_defaults(handler=_explain)
    for name, verb, description in (
        ("plug", "make each VIF's host side exist (bridges, veths, TAPs, OVS ports)",
         "Apply each VIF's plan: checks first, then net devices (netlink), then one OVSDB "
         "transaction. Idempotent (plugging twice changes nothing) and rolled back on failure. "
         "Many VIFs in one file plug as one batch."),
        ("unplug", "remove what plug made for each VIF",
         "Delete each VIF's OVS ports (one OVSDB transaction) and devices (one netlink "
         "request), and wait until ovs-vswitchd has applied the removal. What is already gone "
         "is skipped, so a half-plugged VIF finishes cleanly."),
    ):
        sub = vif_command(name, verb, description)
        sub.add_argument("--dry-run", action="store_true",
                         help="print the plan and touch nothing")
        _local_map_options(sub, "check each VIF against this host's map first, as render "
                           "--networks does (a portgroup the network lacks, a conflict: exit "
                           "2, nothing plugged); plug takes the pool NIC its option needs in "
                           "the pools' state, unplug frees it" if name == "plug" else
                           "free the pool NICs plug --networks took for these VIFs",
                           domain=True)
        _host_options(sub)
        if name == "plug":
            sub.add_argument("--instance-uuid", metavar="UUID",
                             help="the VM's UUID: external_ids:vm-uuid on the OVS ports")
            sub.add_argument("--create-ovs-bridge", action="store_true",
                             help="create a missing OVS bridge instead of refusing")
            sub.add_argument("--no-wait", dest="wait", action="store_false",
                             help="return once the changes are committed, without waiting "
                             "until the VIFs are ready (see `vifplug wait`)")
            _timeout_option(sub)
        else:
            _timeout_option(sub, "seconds to wait for ovs-vswitchd to apply the removal of the "
                                 "OVS ports (default 30)")
        sub.set_defaults(handler=_plug if name == "plug" else _unplug)
    wait = vif_command(
        "wait", "wait until each VIF plugged earlier is ready",
        "Wait until each VIF's host side is ready: its devices exist and are up (a Linux "
        "bridge port forwarding), its OVS ports have an OpenFlow port and no error (on an OVN "
        "chassis: ovn-controller's flows installed), and ovs-vswitchd has applied what was "
        "committed. Exit 0 when all are, 1 after the timeout naming each VIF that is not and "
        "why.")
    _host_options(wait)
    _timeout_option(wait)
    wait.add_argument("--started", action="store_true",
                      help="the guest runs: also wait for what libvirt adds when it starts it "
                      "(its TAP on a Linux bridge, the OVS port of a virtualport)")
    wait.add_argument("--json", action="store_true",
                      help="print each VIF's state as JSON (also when not ready)")
    wait.set_defaults(handler=_wait)
    _add_hook_commands(commands)
    _add_host_commands(commands)
    _add_pools_commands(commands)
    _add_audit_commands(commands)
    schema = commands.add_parser("schema", help="print the JSON Schema of vif.json",
                                 description="Print the JSON Schema (2020-12) of vif.json.")
    schema.set_defaults(handler=_schema)
    return parser


def _guest_options(apply: argparse.ArgumentParser) -> None:
    apply.add_argument("--guests", choices=("refuse", "move", "restore"), default="refuse",
                       help="running guests on networks whose switch changes (compared with "
                       "the map last applied): refuse (default: exit 2 naming each guest, MAC "
                       "and network, nothing changed) or move them to the new switch in the "
                       "same rolled-back step (build the new switch, move the uplink to it, "
                       "move the guests through libvirt, remove the old switch): move (live, "
                       "no pause: Linux bridge → OVS by the hybrid path, qbr/qvb/qvo) or "
                       "restore (Linux bridge ⇄ OVS virtualport by a save + restore of each "
                       "guest: a pause)")
    apply.add_argument("--connect", metavar="URI", default="qemu:///system",
                       help="libvirt's URI (default qemu:///system): read-only for "
                       "--guests=refuse, read-write for --guests=move and restore")


def _local_map_options(sub: argparse.ArgumentParser, help_: str, *,
                       domain: bool = False) -> None:
    """``--networks FILE`` and ``--pools FILE`` of render, plug and unplug."""
    sub.add_argument("--networks", metavar="FILE", help=help_)
    sub.add_argument("--pools", metavar="FILE", help="with --networks: the NIC pools' state "
                     "file (default: $VIFPLUG_POOLS, else /var/lib/vifplug/pools.json)")
    if domain:
        sub.add_argument("--domain", metavar="NAME", help="with --networks: the libvirt "
                         "domain the VIFs belong to, who holds their pool NICs (default: each "
                         "VIF's id); name the domain so that the hook frees them when it stops")


def _map_option(sub: argparse.ArgumentParser) -> None:
    """``--networks FILE``: the network map."""
    sub.add_argument("--networks", metavar="FILE", help="the network map (default: "
                     "$VIFPLUG_NETWORKS, else /etc/vifplug/networks.toml)")


def _netns_ovsdb_options(sub: argparse.ArgumentParser, *, netns_help: str) -> None:
    """``--netns NAME`` and ``--ovsdb URL``: which host to look at."""
    sub.add_argument("--netns", metavar="NAME", help=netns_help)
    sub.add_argument("--ovsdb", metavar="URL", default=None,
                     help="the OVSDB server (default: unix:/run/openvswitch/db.sock)")


def _record_option(sub: argparse.ArgumentParser) -> None:
    """``--record FILE``: host apply's record of the Linux devices it made."""
    sub.add_argument("--record", metavar="FILE", help="vifplug's record of the Linux devices "
                     "it made (default: $VIFPLUG_HOST_RECORD, else "
                     "/var/lib/vifplug/host-devices.json)")


def _audit_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--connect", metavar="URI", default=None,
                     help="libvirt URI (default: libvirt's default, e.g. qemu:///system)")
    _netns_ovsdb_options(sub, netns_help="audit this network namespace (ip netns) instead of "
                         "the host's")
    sub.add_argument("--networks", metavar="FILE",
                     help="the network map (default: $VIFPLUG_NETWORKS, else "
                     "/etc/vifplug/networks.toml when it exists; without one, mismatches "
                     "are not checked)")
    sub.add_argument("--lock-dir", metavar="DIR", default=None,
                     help="vifplug's lock files (default: /run/vifplug/locks)")
    sub.add_argument("--pools", metavar="FILE", default=None,
                     help="the NIC pools' state file (default: $VIFPLUG_POOLS, else "
                     "/var/lib/vifplug/pools.json; pools are audited when it exists)")


def _add_audit_commands(commands: Any) -> None:
    audit = commands.add_parser(
        "audit", help="compare this host's VIF plumbing with libvirt's domains",
        description="List everything vifplug-shaped on this host (tap/qbr/qvb/qvo/vhu devices, "
        "OVS ports with a guest's external_ids, vifplug's lock files), match it against "
        "libvirt's domains (read-only connection: running and defined) and the network map, "
        "and report each orphan, missing, mismatch and foreign object with its evidence. "
        "Changes nothing.",
        epilog="Exit codes: 0 clean, 1 findings (or the host or libvirt cannot be read), "
        "2 bad input.")
    audit.add_argument("--json", action="store_true",
                       help="print the report as JSON (format 1, docs: audit)")
    _audit_options(audit)
    audit.set_defaults(handler=_audit)
    gc = commands.add_parser(
        "gc", help="remove orphans and repair mismatches that audit finds",
        description="Run the audit, then, as one plan: delete the orphans' OVS ports and repair "
        "the mismatched ports' tag, trunks, MTU and iface-id (one OVSDB transaction), and "
        "delete the orphans' devices (one netlink request). The plan is printed first; every "
        "change is rolled back if one fails. Never touched: foreign objects, anything a domain "
        "has, anything whose VIF's lock a plug holds, anything seen for less than "
        "--older-than seconds (gc records when it first saw each finding in --state).",
        epilog="Exit codes: 0 done (or nothing to do), 1 failed (rolled back), 2 bad input.")
    gc.add_argument("--dry-run", action="store_true",
                    help="print the plan and change nothing (not even the --state record)")
    gc.add_argument("--older-than", type=float, default=60.0, metavar="S",
                    help="act only on what was first seen at least S seconds ago (default 60)")
    _audit_options(gc)
    gc.add_argument("--state", metavar="FILE", default=None,
                    help="when gc first saw each finding (default: /run/vifplug/gc-seen.json)")
    gc.set_defaults(handler=_gc)


def _host_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--netns", metavar="NAME",
                     help="work in this network namespace (ip netns) instead of the host's")
    sub.add_argument("--ovsdb", metavar="URL", default=None,
                     help="the OVSDB server (default: unix:/run/openvswitch/db.sock)")
    sub.add_argument("--ovsdb-backend", choices=("native", "vsctl"), default="native",
                     help="native: ovsdbapp's IDL (default); vsctl: one ovs-vsctl per apply")


def _timeout_option(sub: argparse.ArgumentParser,
                    meaning: str = "seconds to wait for the VIFs to be ready (default 30)"
                    ) -> None:
    sub.add_argument("--timeout", type=float, metavar="S", default=None, help=meaning)


def _add_hook_commands(commands: Any) -> None:
    """``vifplug hook install|uninstall|rewrite|check|run``."""
    hook = commands.add_parser("hook", help="the libvirt qemu hook that rewrites migrating guests",
                               description="Install, remove, preview or run vifplug's libvirt "
                               "qemu hook (see docs: the migration hook).")
    hook_commands = hook.add_subparsers(dest="hook_command", metavar="COMMAND", required=True)
    install = hook_commands.add_parser(
        "install", help="install the hook into libvirt's hooks directory",
        description="Install the hook as hooks/qemu.d/vifplug (libvirt >= 6.5) or hooks/qemu, "
        "naming this Python; never overwrites a foreign hooks/qemu unless --force.")
    install.add_argument("--libvirt-dir", default="/etc/libvirt", metavar="DIR",
                         help="libvirt's configuration directory (default: /etc/libvirt)")
    install.add_argument("--networks", metavar="FILE",
                         help="the network map the hook reads (absolute path; default: "
                         "/etc/vifplug/networks.toml)")
    install.add_argument("--pools", metavar="FILE",
                         help="the NIC pools' state file the hook keeps (absolute path; "
                         "default: /var/lib/vifplug/pools.json)")
    install.add_argument("--layout", choices=("auto", "qemu.d", "qemu"), default="auto",
                         help="where to install (default: qemu.d when libvirtd >= 6.5)")
    install.add_argument("--force", action="store_true",
                         help="replace a foreign hooks/qemu, keeping it as qemu.vifplug-backup")
    install.set_defaults(handler=_hook_install)
    remove = hook_commands.add_parser("uninstall", help="remove the hook",
                                      description="Remove vifplug's hook files (and put back a "
                                      "hooks/qemu that install --force set aside).")
    remove.add_argument("--libvirt-dir", default="/etc/libvirt", metavar="DIR")
    remove.set_defaults(handler=_hook_uninstall)
    preview = hook_commands.add_parser(
        "rewrite", help="rewrite a domain XML offline, as the hook would on this host",
        description="Print domain.xml with every vifplug interface rewritten for this host's "
        "network map: a preview of what an incoming migration gets.")
    preview.add_argument("domain_xml", metavar="domain.xml", help="('-' reads stdin)")
    _map_option(preview)
    preview.add_argument("--explain", action="store_true",
                         help="print instead, for each rewritten interface, the option of its "
                         "network's priority list it gets and why earlier ones were skipped, "
                         "and every attribute's value and the layer it comes from (interface, "
                         "portgroup, network)")
    preview.add_argument("--pools", metavar="FILE", help="the NIC pools' state file, read only "
                         "(default: $VIFPLUG_POOLS, else /var/lib/vifplug/pools.json)")
    preview.set_defaults(handler=_hook_rewrite)
    check = hook_commands.add_parser(
        "check", help="can this host take the guest? (a migration's preflight)",
        description="On a migration's target, before the memory copy: rewrite domain.xml for "
        "this host's map as the hook would, then check that every vifplug interface's network "
        "is in the map, its Linux bridge, OVS bridge or NIC exists now, its MTU fits the "
        "guest's <mtu>, a NIC pool has a free NIC for it, and, for OVN networks, that this "
        "host is a registered chassis. Exit 0 "
        "ready; 1 with one line per problem. The hook's `migrate begin` runs the same device "
        "checks (not the chassis registration) unless the map says strict = false.")
    check.add_argument("domain_xml", metavar="domain.xml", help="('-' reads stdin)")
    _map_option(check)
    _netns_ovsdb_options(check, netns_help="check in this network namespace (runs itself "
                         "there with `ip netns exec`, which shows that namespace's devices in "
                         "/sys)")
    check.add_argument("--pools", metavar="FILE", help="the NIC pools' state file (default: "
                       "$VIFPLUG_POOLS, else /var/lib/vifplug/pools.json)")
    check.set_defaults(handler=_hook_check)
    run = hook_commands.add_parser("run", help="run exactly as libvirt runs the hook",
                                   description="DOMAIN OP SUBOP [EXTRA], the domain XML on "
                                   "stdin: the same as hooks/qemu.")
    run.add_argument("hook_args", nargs="+", metavar="ARG", help="DOMAIN OP SUBOP [EXTRA]")
    _map_option(run)
    run.set_defaults(handler=_hook_run)



def _add_pools_commands(commands: Any) -> None:
    """``vifplug pools show|rebuild``."""
    pools = commands.add_parser("pools", help="the NIC pools of direct networks: who holds what",
                                description="Show or rebuild which guest interface holds which "
                                "NIC of each pooled direct network (interfaces = [...] in the "
                                "map), as recorded in the pools' state file.")
    pool_commands = pools.add_subparsers(dest="pools_command", metavar="COMMAND", required=True)
    for name, help_ in (("show", "print who holds each pool NIC"),
                        ("rebuild", "make the state file again from the running guests "
                         "(libvirt, read-only)")):
        sub = pool_commands.add_parser(name, help=help_, description=help_[0].upper() +
                                       help_[1:] + ".")
        _map_option(sub)
        sub.add_argument("--state", metavar="FILE", help="the state file (default: "
                         "$VIFPLUG_POOLS, else /var/lib/vifplug/pools.json)")
        if name == "rebuild":
            sub.add_argument("--connect", metavar="URI", default="qemu:///system",
                             help="the libvirt to read the running guests from (read-only; "
                             "default: qemu:///system)")
        sub.set_defaults(handler=_pools_show if name == "show" else _pools_rebuild)


def _add_host_commands(commands: Any) -> None:
    """``vifplug host show|apply|unit|libvirt-networks``."""
    host = commands.add_parser("host", help="this host's network map: show it, build it",
                               description="Show this host's network map (networks.toml) and "
                               "what differs on the host; build its bridges, bonds and uplinks "
                               "(apply); print the systemd unit that applies it at boot.")
    host_commands = host.add_subparsers(dest="host_command", metavar="COMMAND", required=True)
    show = host_commands.add_parser(
        "show", help="print the map and whether each network's device exists now",
        description="Print each network of the map and whether its Linux bridge, OVS bridge "
        "or NIC exists on this host now; with an OVN network, whether this host is a "
        "registered OVN chassis (the Open_vSwitch row's system-id, ovn-remote, ovn-encap-*) "
        "and its ovn-remote reachable.")
    _map_option(show)
    _netns_ovsdb_options(show, netns_help="look in this network namespace")
    _record_option(show)
    show.set_defaults(handler=_host_show)
    apply = host_commands.add_parser(
        "apply", help="build the map's bridges, bonds, VLAN devices and uplinks on this host",
        description="Converge this host to the network map: create, change or remove the "
        "Linux bridges, VLAN devices and kernel bonds of legacy networks, the OVS bridges and "
        "uplink ports (NIC or OVS bond, trunking the networks' tags) of ovs networks, and "
        "their MTUs. Touches only what vifplug made (OVS rows marked "
        "external_ids:vifplug-owner=host, Linux devices in its record). Idempotent; every "
        "change is undone if a step fails. Exit 2 when the map cannot be applied (a device in "
        "the way that is not vifplug's, a missing NIC, a map mixing switch types): nothing "
        "is changed then.")
    _map_option(apply)
    apply.add_argument("--dry-run", action="store_true", help="print the plan and touch nothing")
    _netns_ovsdb_options(apply, netns_help="work in this network namespace (ip netns) instead "
                         "of the host's")
    apply.add_argument("--datapath-type", metavar="TYPE", choices=("system", "netdev"),
                       help="the datapath of the OVS bridges vifplug makes (default: OVS's "
                       "own, system; netdev: the userspace datapath)")
    _record_option(apply)
    _guest_options(apply)
    apply.set_defaults(handler=_host_apply)
    unit = host_commands.add_parser(
        "unit", help="print the systemd unit that runs host apply at boot",
        description="Print vifplug-host.service (shipped in the package: vifplug/data/), a "
        "oneshot unit ordered before libvirtd that runs `vifplug host apply`, with ExecStart "
        "naming this Python. Install it with: vifplug host unit > "
        "/etc/systemd/system/vifplug-host.service")
    unit.set_defaults(handler=_host_unit)
    networks = host_commands.add_parser(
        "libvirt-networks", help="print (or define) a libvirt <network> per network of the map",
        description="Print one libvirt <network> definition per network of the map, saying how "
        "this host connects its guests (a Linux bridge, an OVS bridge and VLAN, macvtap on a "
        "NIC); with --define, define each on that libvirt (persistent, autostarted) and start "
        "it. Guests whose interfaces name these networks (`vifplug render --as-network`) "
        "migrate between hosts whose networks differ with no hook.")
    _map_option(networks)
    networks.add_argument("--network", metavar="NAME", action="append",
                          help="only this network of the map (repeatable)")
    networks.add_argument("--define", metavar="URI",
                          help="define, autostart and start them on this libvirt "
                          "(e.g. qemu:///system)")
    networks.set_defaults(handler=_host_libvirt_networks)


def _version() -> str:
    from vifplug import __version__

    return __version__


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the CLI; return the exit code."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    # Libraries underneath (ovsdbapp, ovs) log warnings that our own error line already says
    # better; without a handler, Python would print them to stderr as they come.
    logging.getLogger().addHandler(logging.NullHandler())
    # The ovs wheel (under ovsdbapp) imports eventlet when it is installed, which then warns
    # about itself on every run: not something a vifplug user can act on.
    # (EventletDeprecationWarning derives from Warning itself, not DeprecationWarning.)
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    parser = _build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse exits 2)
        return int(exc.code or 0)
    handler: Callable[[argparse.Namespace, TextIO], int] = args.handler
    try:
        return handler(args, out)
    except BrokenPipeError:  # `vifplug schema | head`: the reader left; say nothing more
        _silence(out)
        return EXIT_FAILURE
    except VifError as exc:
        for line in str(exc).splitlines():
            print(line, file=err)
        return EXIT_BAD_INPUT
    except OSError as exc:
        name = getattr(args, "vif_json", None)
        if name is not None and exc.filename in (name, os.path.abspath(name)):
            print(f"vifplug: cannot read {name}: {exc.strerror}", file=err)
            return EXIT_BAD_INPUT
        print(f"vifplug: {exc}", file=err)
        return EXIT_FAILURE
    except VifplugError as exc:
        print(f"vifplug: {exc}", file=err)
        return exc.exit_code
    except Exception as exc:
        print(f"vifplug: unexpected error: {type(exc).__name__}: {exc}", file=err)
        return EXIT_FAILURE


def _silence(stream: TextIO) -> None:
    """After EPIPE, point the stream's descriptor at /dev/null so Python's exit flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file (a StringIO in tests)
        pass


# --- commands -----------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> tuple[list[Vif], bool, str]:
    """The VIFs of ``args.vif_json``, whether the file held an array, and its name."""
    from vifplug.loading import parse_vif_json, vifs_from_data

    name: str = args.vif_json
    raw: str | bytes
    if name == "-":
        stdin = sys.stdin
        source, raw = "<stdin>", stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
    else:
        with open(name, "rb") as handle:
            source, raw = name, handle.read()
    data = parse_vif_json(raw, source)
    kind: Any = getattr(args, "from_", "vif.json")  # argparse's choices: one load_foreign knows
    if kind == "vif.json":
        if args.network_name is not None or args.mtu is not None:
            raise VifError("--network-name and --mtu go with --from neutron")
        if args.portgroup is not None:
            raise VifError("--portgroup goes with --from (vif.json gives network.portgroup)")
        return vifs_from_data(data, source=source), isinstance(data, list), source
    from vifplug.interop import load_foreign

    vifs = load_foreign(data, kind, network_name=args.network_name, mtu=args.mtu, source=source,
                        portgroup=args.portgroup)
    array = isinstance(data, list) or (isinstance(data, dict) and "ports" in data)
    return vifs, array, source


def _driver(args: argparse.Namespace) -> GenericVIFDriver:
    from vifplug.driver import GenericVIFDriver

    try:
        return GenericVIFDriver(firewall=args.firewall, libvirt_version=args.libvirt_version)
    except VifError as exc:
        raise VifError(f"--libvirt-version: {exc}") from None


def _located(exc: VifError, source: str, index: int | None) -> VifError:
    """An error about one VIF, restated with its file and array index (``$[2].plug``)."""
    message = str(exc)
    if index is not None and message.startswith("$"):
        message = f"$[{index}]{message[1:]}"
    return VifError(f"{source}: {message}")


def _each(args: argparse.Namespace) -> tuple[GenericVIFDriver, list[Vif], bool, str]:
    driver = _driver(args)
    vifs, array, source = _load(args)
    for index, vif in enumerate(vifs):  # select all first: bad input prints nothing on stdout
        try:
            driver.selection(vif)
        except VifError as exc:
            raise _located(exc, source, index if array else None) from None
    return driver, vifs, array, source


def _render(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.xml import tostring

    _with_networks_only(args)
    driver, vifs, array, source = _each(args)
    if args.metadata and args.as_network:
        raise VifError("--metadata and --as-network: give one")
    if args.networks is not None:
        if args.as_network:
            raise VifError("--networks and --as-network: give one (a libvirt network "
                           "connects the guest itself on each host)")
        local = _localized(args, driver, vifs, source, array, _preview(args))
        if args.metadata:
            element = local.metadata
        elif array:
            element = _devices(local.interfaces)
        else:
            element = local.interfaces[0]
    elif args.metadata:
        element = driver.metadata_xml(vifs)
    elif args.as_network:
        from lxml import etree

        from vifplug.libvirt_networks import as_network

        interfaces = [as_network(driver.interface_xml(vif), network=vif.network.name,
                                 connection=driver.select(vif).name,
                                 portgroup=vif.network.portgroup) for vif in vifs]
        if array:
            element = etree.Element("devices")
            element.extend(interfaces)
        else:
            (element,) = interfaces
    elif array:
        element = driver.devices_xml(vifs)
    else:
        element = driver.interface_xml(vifs[0])
    out.write(tostring(element))
    return EXIT_OK


class _Local(NamedTuple):
    """VIFs as this host's map connects them (:func:`_localized`)."""

    #: The rewritten ``<interface>`` per VIF (lxml), the metadata after the rewrite.
    interfaces: list[Any]
    metadata: Any
    #: The hook's account of each (vifplug.hook.Rewritten).
    rewritten: list[Any]
    host_map: Any


def _devices(interfaces: list[Any]) -> Any:
    """``<devices>`` holding ``interfaces``."""
    from lxml import etree

    devices = etree.Element("devices")
    devices.extend(interfaces)
    return devices


def _with_networks_only(args: argparse.Namespace) -> None:
    """``--pools`` and ``--domain`` mean something with ``--networks`` only."""
    if args.networks is None:
        for option, value in (("--pools", args.pools), ("--domain", getattr(args, "domain", None))):
            if value is not None:
                raise VifError(f"{option} goes with --networks (the host's map)")


def _preview(args: argparse.Namespace) -> Callable[[str], Any]:
    """Pool choosers on one copy of the pools' state, read once (nothing written)."""
    from vifplug.hook import state_chooser
    from vifplug.pools import load, state_path

    state = load(state_path(getattr(args, "pools", None)))
    return lambda domain: state_chooser(domain, state=state)


def _holder(args: argparse.Namespace, vif: Vif) -> str:
    """Who holds a VIF's pool NIC: ``--domain``, else the VIF's id."""
    return getattr(args, "domain", None) or vif.id


def _localized(args: argparse.Namespace, driver: GenericVIFDriver, vifs: list[Vif],  # noqa: PLR0917
               source: str, array: bool, pool: Callable[[str], Any]) -> _Local:
    """Each VIF rendered, then rewritten for this host's map (``args.networks``) exactly as the
    migration hook rewrites an incoming guest: the first usable option, the portgroup, the
    merge rule; ``pool(domain)`` picks pool NICs for the VIF's holder (:func:`_holder`). Every
    refusal is bad input: ``source: $[i].network: ...`` (exit 2), the map's errors
    ``file:line``."""
    from lxml import etree

    from vifplug.hook import HookError, Rewritten, rewrite
    from vifplug.netmap import load_network_map
    from vifplug.xml import metadata_element, metadata_entry

    host_map = load_network_map(args.networks)
    interfaces: list[Any] = []
    entries: list[Any] = []
    rewritten: list[Rewritten] = []
    for index, vif in enumerate(vifs):
        root = etree.Element("domain", type="kvm")
        etree.SubElement(root, "name").text = _holder(args, vif)
        etree.SubElement(root, "metadata").append(metadata_element([metadata_entry(vif)]))
        etree.SubElement(root, "devices").append(driver.interface_xml(vif))
        try:
            result = rewrite(etree.tostring(root), host_map, log=rewritten.append,
                             pool=pool(_holder(args, vif)))
        except HookError as exc:
            raise _located(VifError(f"$.network: {exc}"), source,
                           index if array else None) from None
        done = etree.fromstring(result.encode("utf-8"))
        iface = done.find("devices/interface")
        assert iface is not None  # noqa: S101 - the rewrite keeps the interface it was given
        done.find("devices").remove(iface)  # type: ignore[union-attr]
        etree.cleanup_namespaces(iface)  # the metadata's namespace is not the interface's
        interfaces.append(iface)
        entries.extend(done.iterfind("metadata/{*}interfaces/{*}interface"))
    return _Local(interfaces, metadata_element(dict(e.attrib) for e in entries), rewritten,
                  host_map)


def _host_vifs(vifs: list[Vif], local: _Local, driver: GenericVIFDriver, source: str,
               array: bool) -> list[Vif]:
    """Each VIF with the devices this host's map chose for it (``local``): what ``plug
    --networks`` plugs, so that the host side it makes is the one ``render --networks`` shows —
    a ``bridge`` VIF on the map's Linux bridge, an ``ovs`` VIF on the map's OVS bridge and VLAN
    (by virtualport, as the rewritten interface says), a macvtap VIF on the NIC the map (or its
    pool) gave. A VIF whose kind cannot make the host side the map chose is bad input (exit 2):
    plugging it would make the host side of another switch than the guest will use."""
    from vifplug.loading import parse_vif

    hosted = []
    for index, (vif, iface) in enumerate(zip(vifs, local.interfaces, strict=True)):
        own = driver.interface_xml(vif)
        if _where(own) == _where(iface):
            hosted.append(vif)
            continue
        data = vif.hosted(_host_side(iface))
        if data is None:
            raise _located(VifError(
                f"$.vif_type: a {vif.vif_type!r} VIF cannot make the host side network "
                f"{vif.network.name!r} has on this host ({_where(iface)}, {local.host_map.path}): "
                "plug a VIF of that kind (`vifplug render --networks` shows the interface)"),
                source, index if array else None)
        hosted.append(parse_vif(data, loc=(index,) if array else ()))
    return hosted


def _host_side(iface: Any) -> Any:
    """The :class:`vifplug.model.HostSide` of a rewritten ``<interface>``."""
    from vifplug.model import HostSide

    found, port, vlan = iface.find("source"), iface.find("virtualport"), iface.find("vlan")
    tags = tuple(int(tag.get("id", "0")) for tag in vlan.iterfind("tag")) if vlan is not None \
        else ()
    trunk = vlan is not None and vlan.get("trunk") == "yes"
    return HostSide(iface.get("type", ""), {} if found is None else dict(found.attrib),
                    None if port is None else port.get("type"),
                    tags[0] if tags and not trunk else None, tags if tags and trunk else None)


def _where(iface: Any) -> str:
    """Where an ``<interface>`` is connected, in words: its type, source and virtualport."""
    found = iface.find("source")
    attrs = " ".join(f"{key}={value}" for key, value in sorted(
        (found.attrib if found is not None else {}).items()) if key != "mode")
    port = iface.find("virtualport")
    kind = port.get("type") if port is not None else None
    return f"type={iface.get('type')} {attrs}" + (f" virtualport {kind}" if kind else "")


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    driver, vifs, _, source = _each(args)
    kinds = ", ".join(driver.select(vif).name for vif in vifs)
    for vif in vifs:  # what only rendering checks: the keys the target libvirt lacks
        driver.interface_xml(vif)
    noun = "VIF" if len(vifs) == 1 else "VIFs"
    print(f"{source}: valid ({len(vifs)} {noun}: {kinds})", file=out)
    return EXIT_OK


def _explain(args: argparse.Namespace, out: TextIO) -> int:
    driver, vifs, array, source = _each(args)
    options = driver.options
    merged: list[list[str]] = [[] for _ in vifs]
    if args.networks is not None:  # everything checked before the first line is printed
        local = _localized(args, driver, vifs, source, array, _preview(args))
        merged = [_explain_merge(entry, local.host_map) for entry in local.rewritten]
    for number, vif in enumerate(vifs):
        if number:
            print(file=out)
        selection = driver.selection(vif)
        connection = selection.connection
        print(f"VIF {vif.id} ({vif.vif_type}), MAC {vif.mac}, network {vif.network.name!r}",
              file=out)
        print(f"  connection  {connection.name}: {connection.summary}", file=out)
        print(f"  because     {selection.reason}", file=out)
        print(f"  options     firewall={'yes' if options.firewall else 'no'}, "
              f"libvirt {options.version_text}", file=out)
        print(f"  path        {' ─ '.join(connection.topology(vif))}", file=out)
        steps = driver.plan(vif).steps
        print("  plug        " + ("nothing to do on the host" if not steps else
                                  "\n              ".join(str(step) for step in steps)), file=out)
        for line in merged[number]:
            print(line, file=out)
    return EXIT_OK


def _explain_merge(entry: Any, host_map: Any) -> list[str]:
    """The host's network (the option of its priority list) an interface gets, and the merge
    rule's choice per attribute, as lines (``entry``: the hook's Rewritten for it)."""
    network = host_map.definitions(entry.network)[entry.option or 0]
    lines = [f"  host        network {network.name!r} ({host_map.path}): {network.describe()}"]
    lines += _option_lines(entry, "  ", width=12)
    if entry.portgroup:
        lines.append(f"  portgroup   {entry.portgroup}")
    return lines + _merge_lines(entry.chosen, entry.switch, "  merge       ")


def _merge_lines(chosen: Any, switch: str, first: str) -> list[str]:
    """One aligned line per attribute with a value: ``name  value  source``."""
    from vifplug.merge import show

    rows = show(chosen, switch)
    name_width = max(len(name) for name, _, _ in rows) if rows else 0
    value_width = max(len(value) for _, value, _ in rows) if rows else 0
    return [(first if number == 0 else " " * len(first))
            + f"{name:<{name_width}}  {value:<{value_width}}  {source}"
            for number, (name, value, source) in enumerate(rows)]


def _instance_uuid(text: str | None) -> str | None:
    if text is None:
        return None
    import re

    if not re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                        r"[0-9a-fA-F]{12}", text):
        raise VifError(f"--instance-uuid: expected a UUID (got {text!r})")
    return text.lower()


def _plug(args: argparse.Namespace, out: TextIO) -> int:
    return _apply(args, out, plug=True)


def _unplug(args: argparse.Namespace, out: TextIO) -> int:
    return _apply(args, out, plug=False)


def _apply(args: argparse.Namespace, out: TextIO, *, plug: bool) -> int:
    _with_networks_only(args)
    driver, vifs, array, source = _each(args)
    instance_uuid = _instance_uuid(getattr(args, "instance_uuid", None))
    create = bool(getattr(args, "create_ovs_bridge", False))
    local = None
    given = vifs
    if plug and args.networks is not None:  # refusals first: exit 2, nothing taken
        local = _localized(args, driver, given, source, array, _preview(args))
        vifs = _host_vifs(given, local, driver, source, array)
    plans = [driver.plan(vif, instance_uuid=instance_uuid, create_ovs_bridges=create) if plug
             else driver.unplan(vif) for vif in vifs]
    host = _host(args)
    if args.dry_run:
        for line in _pool_lines(args, vifs, local):
            print(f"{line} (would take)", file=out)
        for plan in plans:
            print(plan, file=out)
        return EXIT_OK
    from vifplug.pools import Holder, load, release, state_path

    held = load(state_path(args.pools)) if args.networks is not None else None
    taken: list[str] = []
    try:
        if local is not None:  # take the pool NICs; plug on the ones taken
            local = _localized(args, driver, given, source, array, _taking(args))
            taken = _pool_lines(args, given, local)
            vifs = _host_vifs(given, local, driver, source, array)
            plans = [driver.plan(vif, instance_uuid=instance_uuid, create_ovs_bridges=create)
                     for vif in vifs]
        code = _plug_or_unplug(args, out, driver, vifs, plans, host, plug=plug,
                               instance_uuid=instance_uuid, create=create, taken=taken)
    except BaseException:
        if plug and held is not None:  # not plugged: the NICs this call took go back
            for vif in vifs:
                holder = Holder(_holder(args, vif), vif.mac)
                if not any(holder in holders for nics in held.networks.values()
                           for holders in nics.values()):
                    release(holder.domain, args.pools, macs=[vif.mac])
        raise
    if args.networks is not None and not plug:  # unplugged: their pool NICs are free
        for vif in vifs:
            for network, nic in release(_holder(args, vif), args.pools, macs=[vif.mac]):
                print(f"pool of network {network}: {nic} freed ({_holder(args, vif)}, "
                      f"{vif.mac})", file=out)
    return code


def _taking(args: argparse.Namespace) -> Callable[[str], Any]:
    """Pool choosers that allocate in the pools' state file (``--pools``), as the hook does."""
    from vifplug.hook import PoolFull
    from vifplug.pools import Holder, PoolExhausted, allocate

    def chooser(domain: str) -> Any:
        def choose(network: Any, mac: str) -> str:
            try:
                return allocate(network, Holder(domain, mac), args.pools)
            except PoolExhausted as exc:
                raise PoolFull(f"interface {mac}: {exc}; refused") from None
        return choose
    return chooser


def _pool_lines(args: argparse.Namespace, vifs: list[Vif], local: _Local | None) -> list[str]:
    """``pool of network red: eth10 for DOMAIN (MAC)`` per VIF on a pool NIC."""
    if local is None:
        return []
    lines = []
    for vif, iface, entry in zip(vifs, local.interfaces, local.rewritten, strict=True):
        network = local.host_map.definitions(entry.network)[entry.option or 0]
        source = iface.find("source")
        if getattr(network, "pool", ()) and source is not None:
            lines.append(f"pool of network {entry.network}: {source.get('dev')} for "
                         f"{_holder(args, vif)} ({vif.mac})")
    return lines


def _plug_or_unplug(args: argparse.Namespace, out: TextIO, driver: GenericVIFDriver,  # noqa: PLR0917
                    vifs: list[Vif], plans: list[Any], host: Host, *, plug: bool,
                    instance_uuid: str | None, create: bool, taken: list[str]) -> int:
    for line in taken:
        print(line, file=out)
    progress = _ProgressBar(sum(len(plan.steps) for plan in plans), "plug" if plug else "unplug"
                            ) if len(vifs) > 1 and sys.stderr.isatty() else None
    with host:
        if plug:
            outcome = driver.plug_many(vifs, host, instance_uuid=instance_uuid,
                                       create_ovs_bridges=create, progress=progress,
                                       wait=args.wait, timeout=_timeout(args))
        else:
            outcome = driver.unplug_many(vifs, host, progress=progress,
                                         timeout=_timeout(args))
    if progress is not None:
        progress.done()
    verb = "plugged" if plug else "unplugged"
    noun = "VIF" if len(vifs) == 1 else f"{len(vifs)} VIFs"
    if outcome.already_done:
        state = "already plugged" if plug else "already unplugged"
        print(f"{noun}: {state}, nothing changed ({len(outcome.unchanged)} steps hold)",
              file=out)
    else:
        print(f"{verb} {noun}: {len(outcome.changed)} changes, "
              f"{len(outcome.unchanged)} steps already held", file=out)
    return EXIT_OK


def _timeout(args: argparse.Namespace) -> float:
    from vifplug.driver import WAIT_TIMEOUT

    if args.timeout is None:
        return WAIT_TIMEOUT
    if not 0 <= args.timeout <= 86400:
        raise VifError(f"--timeout: expected seconds from 0 to 86400 (got {args.timeout:g})")
    return float(args.timeout)


def _host(args: argparse.Namespace) -> Host:
    from vifplug.host import DEFAULT_OVSDB, Host

    return Host(netns=args.netns, ovsdb=args.ovsdb or DEFAULT_OVSDB,
                ovsdb_backend=args.ovsdb_backend)  # validates the options: bad input exits 2


def _wait(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.host.errors import NotReadyError

    driver, vifs, _, _ = _each(args)
    timeout = _timeout(args)
    with _host(args) as host:
        try:
            states = driver.wait(vifs, host, timeout=timeout, started=args.started)
        except NotReadyError as exc:
            if args.json:
                _print_json([state.to_dict() for state in exc.states], out)
            raise
    if args.json:
        _print_json([state.to_dict() for state in states], out)
    else:
        print(f"{'VIF' if len(vifs) == 1 else f'{len(vifs)} VIFs'} ready", file=out)
    return EXIT_OK


def _audit(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.audit import report_json, report_text

    result = _audit_result(args)
    if args.json:
        _print_json(report_json(result), out)
    else:
        print(report_text(result), file=out)
    return EXIT_OK if result.clean else EXIT_FAILURE


def _audit_result(args: argparse.Namespace, again: Any = None) -> Any:
    from pathlib import Path

    from vifplug.audit import audit
    from vifplug.host import DEFAULT_OVSDB, Host
    from vifplug.host.apply import LOCK_DIR
    from vifplug.host.inventory import read_domains, read_inventory
    from vifplug.netmap import load_network_map, map_path

    path = map_path(args.networks)
    host_map = (load_network_map(path) if args.networks is not None or os.path.exists(path)
                else None)
    if again is not None:  # the same host, libvirt's domains read anew
        inventory = again.inventory
    else:
        with Host(netns=args.netns, ovsdb=args.ovsdb or DEFAULT_OVSDB) as host:
            inventory = read_inventory(host, Path(args.lock_dir) if args.lock_dir else LOCK_DIR,
                                       pools=args.pools)
    domains = read_domains(args.connect)
    networks = None if host_map is None else {
        name: host_map.options.get(name, network) for name, network in host_map.networks.items()}
    return audit(inventory, domains, networks,
                 map_path=host_map.path if host_map is not None else None)


#: Where gc records when it first saw each finding.
GC_STATE = "/run/vifplug/gc-seen.json"


def _gc(args: argparse.Namespace, out: TextIO) -> int:
    import time
    from pathlib import Path

    from vifplug.gc import narrow, plan_gc, seen_now
    from vifplug.host import DEFAULT_OVSDB, Host
    from vifplug.host.apply import LOCK_DIR, apply_gc, vif_locks

    if not 0 <= args.older_than <= 10**9:
        raise VifError(f"--older-than: expected seconds from 0 (got {args.older_than:g})")
    state = Path(args.state or GC_STATE)
    result = _audit_result(args)
    scope = result.inventory.scope
    record = _read_gc_state(state)
    now = time.time()
    seen = seen_now(result, record.get(scope, {}), now)
    plan = plan_gc(result, seen=seen, now=now, older_than=args.older_than)
    print(plan, file=out)
    if args.dry_run:
        print("dry run: nothing changed", file=out)
        return EXIT_OK
    record[scope] = seen
    _write_gc_state(state, record)
    if plan.empty:
        return EXIT_OK
    # a domain defined since the audit read libvirt claims what it names: read them again
    narrowed = narrow(plan, _audit_result(args, again=result))
    for skip in narrowed.skipped[len(plan.skipped):]:
        print(f"  skip {skip.kind} {skip.subject}: {skip.reason}", file=out)
    plan = narrowed
    changed = 0
    if plan.steps:
        lock_dir = Path(args.lock_dir) if args.lock_dir else LOCK_DIR
        with Host(netns=args.netns, ovsdb=args.ovsdb or DEFAULT_OVSDB) as host, \
                vif_locks(list(plan.lock_ids), host.scope, lock_dir, remove=plan.removed_ids):
            changed = len(apply_gc(plan.steps, plan.undo, host).changed)
    if plan.pool_release or plan.pool_record:
        from vifplug import pools

        def held(items: Any) -> list[Any]:
            return [(h.network, h.nic, pools.Holder(h.domain, h.mac)) for h in items]

        changed += pools.amend(held(plan.pool_release), held(plan.pool_record),
                               result.inventory.pools_path)
    total = len(plan.steps) + len(plan.pool_release) + len(plan.pool_record)
    print(f"done: {changed} of {total} steps changed the host", file=out)
    return EXIT_OK


def _read_gc_state(path: Any) -> dict[str, dict[str, float]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise VifError(f"{path}: cannot read gc's record ({exc}); move it away") from None
    scopes = data.get("scopes") if isinstance(data, dict) else None
    if not isinstance(scopes, dict):
        raise VifError(f"{path}: not gc's record (no scopes); move it away")
    return {str(scope): {str(k): float(v) for k, v in keys.items()}
            for scope, keys in scopes.items() if isinstance(keys, dict)}


def _write_gc_state(path: Any, record: dict[str, dict[str, float]]) -> None:
    from vifplug.files import replace_durably

    path.parent.mkdir(parents=True, exist_ok=True)
    replace_durably(path, json.dumps({"format": 1, "scopes": record}, indent=1, sort_keys=True))


def _print_json(data: object, out: TextIO) -> None:
    json.dump(data, out, indent=2)
    out.write("\n")


class _ProgressBar:
    """A one-line progress bar on stderr for batches (only on a terminal)."""

    WIDTH = 30

    def __init__(self, total: int, label: str) -> None:
        self.total = max(total, 1)
        self.label = label
        self.count = 0

    def __call__(self, step: object) -> None:
        self.count += 1
        filled = self.WIDTH * self.count // self.total
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{' ' * (self.WIDTH - filled)}] "
                         f"{self.count}/{self.total} steps")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def _hook_install(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from vifplug.hook_install import install

    done = install(Path(args.libvirt_dir), networks=args.networks, layout=args.layout,
                   force=args.force, pools=args.pools)
    print(f"installed {done.path}", file=out)
    if done.backup is not None:
        print(f"the previous hook is kept as {done.backup}", file=out)
    return EXIT_OK


def _hook_uninstall(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from vifplug.hook_install import uninstall

    removed = uninstall(Path(args.libvirt_dir))
    for path in removed:
        print(f"removed {path}", file=out)
    if not removed:
        print("no vifplug hook installed", file=out)
    return EXIT_OK


def _hook_rewrite(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.hook import HookError, Rewritten, parse_domain, rewrite, state_chooser
    from vifplug.netmap import load_network_map

    host_map = load_network_map(args.networks)
    if args.domain_xml == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    else:
        with open(args.domain_xml, "rb") as handle:
            data = handle.read()
    rewritten: list[Rewritten] = []
    try:
        chooser = state_chooser(parse_domain(data).findtext("name") or "", args.pools)
        result = rewrite(data, host_map, log=rewritten.append, pool=chooser)
    except HookError as exc:
        raise VifError(f"{args.domain_xml}: {exc}") from None
    if not args.explain:
        out.write(result)
        out.write("\n")
        return EXIT_OK
    if not rewritten:
        print("no vifplug interface in this domain", file=out)
    for number, entry in enumerate(rewritten):
        if number:
            print(file=out)
        print(f"interface {entry.mac}, network {entry.network!r}: {entry.detail}", file=out)
        for line in _option_lines(entry, "  "):
            print(line, file=out)
        if entry.portgroup:
            print(f"  portgroup  {entry.portgroup}", file=out)
        for line in _merge_lines(entry.chosen, entry.switch, "  merge      "):
            print(line, file=out)
    return EXIT_OK


def _option_lines(entry: Any, indent: str, width: int = 11) -> list[str]:
    """``option   options[1] of 3`` and one ``skipped`` line per earlier option, for an
    interface whose network has a priority list; [] for a single definition."""
    if entry.option is None:
        return []
    lines = [f"{indent}{'option':<{width}}options[{entry.option}] of {entry.options} (the first "
             "usable here: the network's priority list)"]
    lines += [f"{indent}{'skipped' if n == 0 else '':<{width}}{line}"
              for n, line in enumerate(entry.skipped)]
    return lines


def _hook_check(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.hook import HookError, definition_of, interface_networks, parse_domain, rewrite
    from vifplug.netmap import OvnNetwork, load_network_map, map_path
    from vifplug.preflight import device_problems, ovsdb_view

    url = args.ovsdb or "unix:/run/openvswitch/db.sock"
    if not url.startswith("unix:"):
        raise VifError(f"--ovsdb: hook check reads OVSDB over its unix socket (got {url!r})")
    if args.netns is not None:
        return _in_netns(args, url, out)
    host_map = load_network_map(args.networks)
    if args.domain_xml == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    else:
        with open(args.domain_xml, "rb") as handle:
            data = handle.read()
    name = args.domain_xml
    pool_problems: list[str] = []
    try:
        rewritten = rewrite(data, host_map, pool=_pool_preview(data, args.pools, pool_problems))
    except HookError as exc:
        print(f"{name}: {exc}", file=out)
        return EXIT_FAILURE
    socket_path = url.removeprefix("unix:")
    problems = pool_problems + device_problems(rewritten, host_map,
                                               ovsdb=lambda: ovsdb_view(socket_path))
    interfaces = list(interface_networks(parse_domain(rewritten)))
    if any(isinstance(definition_of(host_map, net, iface), OvnNetwork)
           for _, net, iface in interfaces):
        problems += _chassis_problems(socket_path)
    for problem in problems:
        print(f"{name}: {problem}", file=out)
    if problems:
        return EXIT_FAILURE
    networks = ", ".join(sorted({net for _, net, _ in interfaces})) or "none"
    print(f"{name}: ready: {len(interfaces)} vifplug interface(s) on network(s) {networks} "
          f"can be connected on this host ({map_path(args.networks)})", file=out)
    return EXIT_OK


def _pool_preview(data: bytes | str, pools: str | None, problems: list[str]) -> Any:
    """For ``hook check``: the NIC each interface on a pooled network would get, chosen on a
    copy of the pools' state (nothing is allocated); a full pool is a problem line (an
    option's: the next option is tried, as the hook does)."""
    from vifplug.hook import parse_domain, state_chooser

    return state_chooser(parse_domain(data).findtext("name") or "", pools, problems=problems)


def _chassis_problems(socket_path: str) -> list[str]:
    """For a guest on an OVN network: whether this host is a registered chassis."""
    from vifplug.host.ovn import ChassisConfig, chassis_registered
    from vifplug.preflight import ovsdb_view

    try:
        config = ChassisConfig.from_external_ids(ovsdb_view(socket_path).external_ids)
    except OSError as exc:
        return [f"OVN: cannot read this host's chassis configuration: {exc}"]
    registered, said = chassis_registered(config)
    if registered:
        return []
    what = "cannot tell whether this host is a registered OVN chassis" if registered is None \
        else "this host is not a registered OVN chassis"
    return [f"OVN: {what}: {said}"]


def _in_netns(args: argparse.Namespace, url: str, out: TextIO) -> int:
    """``vifplug hook check`` again inside the namespace (``ip netns exec`` gives it that
    namespace's /sys); its output, its exit code."""
    import subprocess

    from vifplug.host.netlink import check_netns
    from vifplug.netmap import map_path

    check_netns(args.netns)
    source = args.domain_xml if args.domain_xml == "-" else os.path.abspath(args.domain_xml)
    argv = ["ip", "netns", "exec", args.netns, sys.executable, "-m", "vifplug", "hook", "check",
            source, "--networks", os.path.abspath(map_path(args.networks)), "--ovsdb", url]
    if args.pools is not None:
        argv += ["--pools", os.path.abspath(args.pools)]
    stdin = None
    if source == "-":
        stdin = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    result = subprocess.run(argv, input=stdin, capture_output=True, check=False, timeout=60)
    out.write(result.stdout.decode(errors="replace").replace(source, args.domain_xml))
    sys.stderr.write(result.stderr.decode(errors="replace"))
    return result.returncode


def _pools_show(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.netmap import load_network_map
    from vifplug.pools import describe, load, state_path

    host_map = load_network_map(args.networks)
    path = state_path(args.state)
    for line in describe(load(path), host_map) or ["no pooled network in the map"]:
        print(line, file=out)
    return EXIT_OK


def _pools_rebuild(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.netmap import load_network_map
    from vifplug.pools import describe, load, locked, rebuild, save

    host_map = load_network_map(args.networks)
    try:
        import libvirt
    except ImportError:
        raise VifplugError("pools rebuild needs libvirt-python (pip install "
                           "'vifplug[libvirt]')") from None
    try:
        conn = libvirt.openReadOnly(args.connect)
    except libvirt.libvirtError as exc:
        raise VifplugError(f"cannot connect to {args.connect}: {exc}") from None
    try:
        domains = [(dom.name(), dom.XMLDesc()) for dom in conn.listAllDomains(
            libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)]
    finally:
        conn.close()
    state = rebuild(domains, host_map)
    with locked(args.state) as path:
        before = load(path)
        save(path, state)
    print(f"{path}: {'unchanged' if before == state else 'rebuilt'} from {len(domains)} "
          "running guest(s)", file=out)
    for line in describe(state, host_map):
        print(f"  {line}", file=out)
    return EXIT_OK


def _hook_run(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.hook import main as hook_main

    return hook_main(args.hook_args, sys.stdin, out, sys.stderr, networks=args.networks)


def _host_show(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.host import DEFAULT_OVSDB, Host
    from vifplug.netmap import load_network_map

    host_map = load_network_map(args.networks)
    print(f"{host_map.path}: {len(host_map.networks)} network(s)", file=out)
    with Host(netns=args.netns, ovsdb=args.ovsdb or DEFAULT_OVSDB, ovsdb_backend="vsctl") as host:
        for name, network in sorted(host_map.every_definition().items()):  # each option too
            print(f"  {name:<16} {network.switch:<7} {network.describe()}  "
                  f"[{_present(host, network)}]", file=out)
        if any(network.switch == "ovn" for network in host_map.every_definition().values()):
            for line in _chassis_lines(host):
                print(line, file=out)
        for line in _drift_lines(host_map, host, args):
            print(line, file=out)
    return EXIT_OK


def _drift_lines(host_map: Any, host: Host, args: argparse.Namespace) -> list[str]:
    """What ``host apply`` would change, per network (``host show``)."""
    from vifplug.host import HostError
    from vifplug.host.network import DeviceRecord, read_host_state, record_path
    from vifplug.hostnet import HostMapError, plan_host

    try:
        owned = DeviceRecord(record_path(args.record), host.scope).read()
        plan = plan_host(host_map, read_host_state(host), owned)
    except HostMapError as exc:
        return ["host apply would refuse this map:", *(f"  {line}" for line in
                                                       str(exc).splitlines())]
    except (HostError, OSError) as exc:
        return [f"drift: unknown: {exc}"]
    if not plan.steps:
        return ["drift: none (host apply has nothing to do)"]
    lines = ["drift (what host apply would change):"]
    defined = host_map.every_definition()  # a network's options by name.options[N]
    for name in sorted(defined):
        steps = plan.for_network(name)
        lines += [f"  {name}: {step.describe()}" for step in steps]
    lines += [f"  (no network): {step.describe()}" for networks, step in plan.entries
              if not networks]
    removed = sorted({n for networks, _ in plan.entries for n in networks} - set(defined))
    for name in removed:
        lines += [f"  {name} (not in the map): {step.describe()}"
                  for step in plan.for_network(name)]
    return lines


def _host_apply(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.host import DEFAULT_OVSDB, Host
    from vifplug.host.network import DeviceRecord, apply_host, plan_for_host, record_path
    from vifplug.netmap import load_network_map

    host_map = load_network_map(args.networks)
    with Host(netns=args.netns, ovsdb=args.ovsdb or DEFAULT_OVSDB, ovsdb_backend="vsctl") as host:
        record = DeviceRecord(record_path(args.record), host.scope)
        if args.dry_run:
            print(plan_for_host(host_map, host, record, datapath_type=args.datapath_type),
                  file=out)
            return EXIT_OK
        if args.guests in ("move", "restore"):
            from vifplug.host.transition import transition

            conn = _libvirt(args.connect, read_only=False)
            if conn is not None:
                with contextlib.closing(conn):
                    moved = transition(host_map, host, record, conn,
                                       datapath_type=args.datapath_type,
                                       hybrid=args.guests == "move",
                                       say=lambda line: print(f"  {line}", file=out))
                if moved is not None:
                    for title, plan in (("build", moved.build), ("finish", moved.finish)):
                        print(f"{title}: {plan}", file=out)
                    print(f"moved: {', '.join(m.domain for m in moved.moves)}", file=out)
                    return EXIT_OK
        else:
            _refuse_guests(host_map, record, args.connect)
        plan, outcome = apply_host(host_map, host, record, datapath_type=args.datapath_type)
    if outcome is None:
        print(f"host networks ({host_map.path}): nothing to do", file=out)
        return EXIT_OK
    print(plan, file=out)
    print(f"applied: {len(outcome.changed)} changes, {len(outcome.unchanged)} steps already "
          "held", file=out)
    return EXIT_OK


def _libvirt(uri: str, *, read_only: bool) -> Any:
    """A libvirt connection to ``uri``, or None (said on stderr) when libvirt is not there: no
    libvirt-python, or no daemon (a host booting, before libvirtd: no guest runs)."""
    try:
        import libvirt
    except ImportError:
        print("vifplug: libvirt-python is not installed: no running guest checked",
              file=sys.stderr)
        return None
    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        return libvirt.openReadOnly(uri) if read_only else libvirt.open(uri)
    except libvirt.libvirtError as exc:
        print(f"vifplug: cannot reach libvirt at {uri} ({exc}): no running guest checked",
              file=sys.stderr)
        return None


def _refuse_guests(host_map: Any, record: Any, uri: str) -> None:
    """``--guests=refuse``: exit 2 naming every running guest (domain, MAC, network) whose
    interfaces the map would move to another switch."""
    from vifplug.guests import (
        GuestsOnMovingNetworks,
        describe,
        moving_networks,
        plan_moves,
        read_guests,
    )
    from vifplug.host.transition import empty_map

    old_map = record.applied() or empty_map(host_map)
    if not moving_networks(old_map, host_map):
        return
    conn = _libvirt(uri, read_only=True)
    if conn is None:
        return
    with contextlib.closing(conn):
        moves = [move for move in plan_moves(read_guests(conn), old_map, host_map)
                 if move.interfaces]
    if moves:
        error = GuestsOnMovingNetworks(
            f"{host_map.path}: {len(moves)} running guest(s) on networks whose switch "
            f"changes: {describe(moves)}; stop or migrate them, or move them with "
            "--guests=move (nothing was changed)", moves)
        raise VifError(str(error))


def _host_libvirt_networks(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.libvirt_networks import network_element
    from vifplug.netmap import load_network_map
    from vifplug.xml import tostring

    host_map = load_network_map(args.networks)
    names = args.network or sorted(host_map.networks)
    unknown = [name for name in names if name not in host_map.networks]
    if unknown:
        raise VifError(f"--network: {', '.join(map(repr, unknown))} not in {host_map.path} "
                       f"(it has {', '.join(sorted(host_map.networks)) or 'no networks'})")
    documents = [(name, tostring(network_element(host_map.networks[name],
                                                 host_map.definitions(name))))
                 for name in names]
    if args.define is None:
        out.write("\n".join(text for _, text in documents))
        return EXIT_OK
    from vifplug.libvirt_networks import define_networks

    for name, action in define_networks(args.define, [text for _, text in documents]):
        print(f"{name}: {action}", file=out)
    return EXIT_OK


def _chassis_lines(host: Any) -> list[str]:
    """This host as an OVN chassis, for ``host show``: the Open_vSwitch row's external_ids,
    whether ovn-remote accepts connections, whether the southbound database has the chassis."""
    from vifplug.host import HostError
    from vifplug.host.ovn import chassis_registered, reachable

    try:
        switch = host.ovsdb_reader.switch_state()
    except (HostError, OSError) as exc:
        return [f"OVN chassis: unknown: {exc}"]
    chassis = switch.chassis if switch is not None else None
    if chassis is None:
        return ["OVN chassis: unknown: the OVSDB has no Open_vSwitch row"]
    lines = [f"OVN chassis: system-id {chassis.system_id or '(unset)'}, ovn-remote "
             f"{chassis.remote or '(unset)'}, encap {chassis.encap_type or '(unset)'} "
             f"{chassis.encap_ip or '(unset)'}, bridge {chassis.bridge}"]
    if not chassis.configured:
        lines.append("  NOT a chassis: the Open_vSwitch row lacks "
                     + ", ".join(chassis.missing()))
    if chassis.remote:
        ok, said = reachable(chassis.remote, netns=host.netns)
        lines.append(f"  ovn-remote: {'reachable' if ok else 'UNREACHABLE'} ({said})")
        if ok and chassis.system_id:
            registered, said = chassis_registered(chassis, netns=host.netns)
            state = {True: "registered", False: "NOT registered", None: "unknown"}[registered]
            lines.append(f"  chassis: {state} ({said})")
    return lines


def _present(host: Any, network: Any) -> str:
    """Whether the network's device exists on this host now, said for a person."""
    from vifplug.host import HostError

    try:
        if network.switch in ("ovs", "ovn"):
            return "present" if host.ovsdb.bridge_exists(network.bridge) else "MISSING"
        if network.switch == "direct" and network.pool:
            missing = [nic for nic in network.pool if host.netlink.get(nic) is None]
            return f"MISSING {', '.join(missing)}" if missing else "present"
        device = network.bridge if network.switch == "legacy" else network.interface
        link = host.netlink.get(device)
    except (HostError, OSError) as exc:
        return f"unknown: {exc}"
    if link is None:
        return "MISSING"
    if network.switch == "legacy" and link.kind != "bridge":
        return f"present, but a {link.kind or 'plain'} device, not a Linux bridge"
    return "present"


def _host_unit(args: argparse.Namespace, out: TextIO) -> int:
    from importlib.resources import files

    text = files("vifplug").joinpath("data/vifplug-host.service").read_text()
    out.write(text.replace("ExecStart=/usr/bin/env vifplug host apply",
                           f"ExecStart={sys.executable} -m vifplug host apply"))
    return EXIT_OK


def _schema(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.model import Vif

    json.dump(Vif.json_schema(), out, indent=2)
    out.write("\n")
    return EXIT_OK
