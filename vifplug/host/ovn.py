"""This host as an OVN chassis: what its OVSDB says, whether ovn-controller runs, what the
southbound database says about a port — for ``vifplug host show`` and for naming why a port on
an OVN chassis did not become ready (``wait``'s timeout).

Nothing here is on a hot path: :func:`diagnose` runs once per port that timed out, and
``host show`` once. The southbound database is read with one short-lived OVSDB JSON-RPC
connection (RFC 7047 ``transact`` with ``select``: no IDL, no schema download, a bounded
timeout), over ``unix:`` or ``tcp:``; an ``ssl:`` remote is only checked for reachability
(vifplug holds no certificates). ovn-controller is found by its pidfile and asked
``connection-status`` through ``ovn-appctl`` (an argv, never a shell).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from vifplug.host.netlink import run_in_netns
from vifplug.host.ovsjson import ovsdb_map

__all__ = [
    "DEFAULT_TIMEOUT",
    "ChassisConfig",
    "ControllerStatus",
    "Southbound",
    "SouthboundError",
    "chassis_registered",
    "controller_status",
    "diagnose",
    "ovn_rundirs",
    "reachable",
]

#: Seconds any one look (a connect, a query, ovn-appctl) may take.
DEFAULT_TIMEOUT = 2.0
#: Where ovn-controller keeps its pidfile and control socket unless ``OVN_RUNDIR`` says.
DEFAULT_RUNDIRS = ("/run/ovn", "/var/run/ovn")
#: A logical port / chassis name as vifplug passes it on (to a query, to a message).
_NAME = re.compile(r"^[\w.:@/+\-]{1,255}$")



class ChassisConfig(NamedTuple):
    """What the ``Open_vSwitch`` row's ``external_ids`` say about this host as a chassis."""

    system_id: str | None
    remote: str | None
    encap_type: str | None
    encap_ip: str | None
    bridge: str

    @classmethod
    def from_external_ids(cls, ids: Mapping[str, str]) -> ChassisConfig:
        return cls(ids.get("system-id"), ids.get("ovn-remote"), ids.get("ovn-encap-type"),
                   ids.get("ovn-encap-ip"), ids.get("ovn-bridge", "br-int"))

    @property
    def configured(self) -> bool:
        """Everything ovn-controller needs to register the chassis is set."""
        return all((self.system_id, self.remote, self.encap_type, self.encap_ip))

    def missing(self) -> list[str]:
        return [f"external_ids:{key}" for key, value in (
            ("system-id", self.system_id), ("ovn-remote", self.remote),
            ("ovn-encap-type", self.encap_type), ("ovn-encap-ip", self.encap_ip)) if not value]


# --- reaching a remote --------------------------------------------------------------------------


def _remotes(remote: str) -> list[str]:
    """``ovn-remote`` may list several remotes, comma-separated."""
    return [part.strip() for part in remote.split(",") if part.strip()]


def _address(remote: str) -> tuple[int, Any]:
    """(family, address) to connect to for a ``unix:PATH`` / ``tcp:HOST:PORT`` /
    ``ssl:HOST:PORT`` remote; ValueError for anything else."""
    kind, _, rest = remote.partition(":")
    if kind == "unix" and rest:
        return socket.AF_UNIX, rest
    if kind in ("tcp", "ssl"):
        host, _, port = rest.rpartition(":")
        host = host.strip("[]")
        if host and port.isdigit() and 0 < int(port) < 65536:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return family, (host, int(port))
    raise ValueError(f"not a unix:, tcp: or ssl: OVSDB remote: {remote!r}")


def _connect(remote: str, timeout: float, netns: str | None) -> socket.socket:
    family, address = _address(remote)

    def connect() -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock

    # a unix socket is a path (the same in every netns); a TCP address is the namespace's own
    return connect() if family == socket.AF_UNIX else run_in_netns(netns, connect)


def reachable(remote: str, *, timeout: float = DEFAULT_TIMEOUT,
              netns: str | None = None) -> tuple[bool, str]:
    """Whether one of ``remote``'s (comma-separated) remotes accepts a connection now, and what
    was found, said for a person."""
    found: list[str] = []
    for one in _remotes(remote):
        try:
            _connect(one, timeout, netns).close()
        except ValueError as exc:
            found.append(str(exc))
            continue
        except OSError as exc:
            found.append(f"{one}: {exc.strerror or exc}")
            continue
        return True, f"{one} accepts connections"
    return False, "; ".join(found) or "no remote given"


# --- the southbound database --------------------------------------------------------------------


class SouthboundError(OSError):
    """The southbound database cannot be read (unreachable, ssl:, a protocol error)."""


class Southbound:
    """One short-lived JSON-RPC connection to ``OVN_Southbound`` for a few ``select``\\ s."""

    def __init__(self, remote: str, *, timeout: float = DEFAULT_TIMEOUT,
                 netns: str | None = None) -> None:
        self.remote = remote
        errors: list[str] = []
        self._sock: socket.socket | None = None
        for one in _remotes(remote):
            if one.startswith("ssl:"):
                errors.append(f"{one}: vifplug cannot read an ssl: remote (no certificates)")
                continue
            try:
                self._sock = _connect(one, timeout, netns)
                self.remote = one
                break
            except (OSError, ValueError) as exc:
                errors.append(f"{one}: {getattr(exc, 'strerror', None) or exc}")
        if self._sock is None:
            raise SouthboundError("; ".join(errors) or "no remote given")
        self._buffer = b""
        self._ids = 0

    def select(self, table: str, where: list[list[Any]], columns: list[str]
               ) -> list[dict[str, Any]]:
        """The rows of ``table`` matching ``where`` (RFC 7047 conditions), with ``columns``."""
        self._ids += 1
        request = {"method": "transact", "id": self._ids, "params": [
            "OVN_Southbound", {"op": "select", "table": table, "where": where,
                               "columns": columns}]}
        reply = self._call(request)
        results = reply.get("result")
        if reply.get("error") is not None or not isinstance(results, list) or not results:
            raise SouthboundError(f"{self.remote}: select on {table} failed: {reply}")
        first = results[0]
        if not isinstance(first, dict) or "rows" not in first:
            raise SouthboundError(f"{self.remote}: select on {table} failed: {first}")
        rows: list[dict[str, Any]] = first["rows"]
        return rows

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._sock is not None  # noqa: S101 - set in __init__ or raised
        try:
            self._sock.sendall(json.dumps(request).encode())
            decoder = json.JSONDecoder()
            while True:
                text = self._buffer.decode("utf-8", "replace").lstrip()
                if text:
                    try:
                        message, end = decoder.raw_decode(text)
                    except json.JSONDecodeError:
                        pass
                    else:
                        self._buffer = text[end:].encode()
                        if isinstance(message, dict) and message.get("id") == request["id"]:
                            return message
                        if isinstance(message, dict) and message.get("method") == "echo":
                            self._sock.sendall(json.dumps({"id": message.get("id"), "error":
                                                           None, "result": message.get(
                                                               "params", [])}).encode())
                        continue
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise SouthboundError(f"{self.remote}: the server closed the connection")
                self._buffer += chunk
        except TimeoutError:
            raise SouthboundError(f"{self.remote}: no answer in time") from None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Southbound:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _uuid(value: Any) -> str | None:
    """An OVSDB JSON reference (``["uuid", U]``; an empty optional is ``["set", []]``)."""
    if isinstance(value, list) and len(value) == 2 and value[0] == "uuid":
        return str(value[1])
    return None


def chassis_registered(config: ChassisConfig, *, timeout: float = DEFAULT_TIMEOUT,
                       netns: str | None = None) -> tuple[bool | None, str]:
    """Whether the southbound database has a Chassis named this host's system-id (``None``:
    cannot tell), and what was found."""
    if not config.remote or not config.system_id:
        return False, "not configured (missing " + ", ".join(config.missing()) + ")"
    try:
        with Southbound(config.remote, timeout=timeout, netns=netns) as sb:
            rows = sb.select("Chassis", [["name", "==", config.system_id]],
                             ["hostname", "encaps"])
    except SouthboundError as exc:
        return None, f"cannot read the southbound database: {exc}"
    if not rows:
        return False, (f"the southbound database has no chassis {config.system_id!r} "
                       "(ovn-controller has not registered it)")
    return True, (f"registered as chassis {config.system_id!r} (hostname "
                  f"{rows[0].get('hostname') or '?'})")


# --- ovn-controller -----------------------------------------------------------------------------


class ControllerStatus(NamedTuple):
    """What was found of this chassis's ovn-controller; ``problem`` is None when it runs and
    says it is connected (or cannot be asked, but runs)."""

    pid: int | None
    problem: str | None


def ovn_rundirs(ovsdb_url: str | None = None) -> list[Path]:
    """Where to look for ovn-controller's pidfile: ``$OVN_RUNDIR``, the directory of the
    OVSDB unix socket (a private OVS and its ovn-controller usually share one), then
    /run/ovn and /var/run/ovn."""
    dirs = [os.environ.get("OVN_RUNDIR") or ""]
    if ovsdb_url is not None and ovsdb_url.startswith("unix:"):
        dirs.append(os.path.dirname(ovsdb_url[len("unix:"):]))
    dirs += DEFAULT_RUNDIRS
    seen: list[Path] = []
    for entry in dirs:
        if entry and Path(entry) not in seen:
            seen.append(Path(entry))
    return seen


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` if it is an ovn-controller, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat[stat.find("(") + 1:stat.rfind(")")]
    if not name.startswith("ovn-controller"):
        return None  # the pid was reused
    state = stat[stat.rfind(")") + 2:][:1]
    return None if state in ("Z", "X") else state


def controller_status(rundirs: Iterable[Path], *, timeout: float = DEFAULT_TIMEOUT
                      ) -> ControllerStatus:
    """Whether ovn-controller runs (its pidfile in one of ``rundirs`` names a live
    ovn-controller), is not stopped, and says it is connected to the southbound database."""
    dirs = list(rundirs)
    pidfiles = [d / "ovn-controller.pid" for d in dirs if (d / "ovn-controller.pid").exists()]
    if not pidfiles:
        return ControllerStatus(None, "ovn-controller is not running (no ovn-controller.pid in "
                                + ", ".join(map(str, dirs)) + ")")
    live = [(path, pid) for path in pidfiles if (pid := _read_pid(path)) is not None
            and _process_state(pid) is not None]
    if not live:
        return ControllerStatus(None, "ovn-controller is not running (its pidfile "
                                f"{pidfiles[0]} names no live ovn-controller)")
    path, pid = live[0]
    if _process_state(pid) in ("T", "t"):
        return ControllerStatus(pid, f"ovn-controller (pid {pid}) is stopped (SIGSTOP or a "
                                "debugger): it binds and installs nothing")
    control = path.parent / f"ovn-controller.{pid}.ctl"
    appctl = shutil.which("ovn-appctl")
    if appctl is None or not control.exists():
        return ControllerStatus(pid, None)  # it runs; nothing more can be asked
    try:
        # a fixed program and a path built from a pid; no shell
        answer = subprocess.run(
            [appctl, "-t", str(control), f"--timeout={max(1, int(timeout))}",
             "connection-status"], capture_output=True, text=True, timeout=timeout + 1,
            check=False)
    except subprocess.TimeoutExpired:
        return ControllerStatus(pid, f"ovn-controller (pid {pid}) does not answer on "
                                f"{control}: hung?")
    status = answer.stdout.strip()
    if answer.returncode != 0:
        return ControllerStatus(pid, f"ovn-controller (pid {pid}) does not answer on {control}: "
                                f"{answer.stderr.strip() or answer.returncode}")
    if status != "connected":
        return ControllerStatus(pid, f"ovn-controller (pid {pid}) is not connected to the "
                                f"southbound database (connection-status: {status or '?'})")
    return ControllerStatus(pid, None)


# --- why a port is not installed ----------------------------------------------------------------


def diagnose(port: str, iface_id: str | None, config: ChassisConfig, *, rundirs: Iterable[Path],
             netns: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Why ovn-controller has not marked OVS port ``port`` (``external_ids:iface-id`` =
    ``iface_id``) installed on this chassis, in one line: no iface-id; ovn-controller not
    running, stopped, or not connected; the southbound database unreachable; no logical port of
    that name; ``requested-chassis`` naming another chassis; bound elsewhere or not yet."""
    head = f"OVS port {port}: ovn-controller has not installed its flows (no " \
           "external_ids:ovn-installed): "
    if not iface_id:
        return head + ("the port has no external_ids:iface-id, so no logical port can be bound "
                       "to it (an OVN VIF's ovs.interface_id names its logical switch port)")
    if not _NAME.match(iface_id):
        return head + f"its external_ids:iface-id {iface_id!r} is not a logical port name"
    controller = controller_status(rundirs, timeout=timeout)
    if controller.problem is not None:
        return head + controller.problem
    if not config.remote or not config.system_id:
        return head + "this host is not configured as a chassis (missing " + \
            ", ".join(config.missing()) + " in the Open_vSwitch row)"
    me = config.system_id
    try:
        with Southbound(config.remote, timeout=timeout, netns=netns) as sb:
            bindings = sb.select("Port_Binding", [["logical_port", "==", iface_id]],
                                 ["chassis", "options", "type"])
            mine = sb.select("Chassis", [["name", "==", me]], ["_uuid", "hostname"])
            other: list[dict[str, Any]] = []
            if bindings and (bound := _uuid(bindings[0].get("chassis"))) is not None and \
                    (not mine or _uuid(mine[0].get("_uuid")) != bound):
                other = sb.select("Chassis", [["_uuid", "==", ["uuid", bound]]], ["name"])
    except SouthboundError as exc:
        return head + f"cannot read the southbound database ({exc})"
    if not bindings:
        return head + (f"no logical port {iface_id!r} is claimed by this chassis ({me}): the "
                       "southbound database has no port binding of that name (is there a "
                       "logical switch port of that name?)")
    binding = bindings[0]
    hostname = str(mine[0].get("hostname") or "") if mine else ""
    requested = ovsdb_map(binding.get("options")).get("requested-chassis")
    if requested:
        names = [name.strip() for name in requested.split(",") if name.strip()]
        if me not in names and (not hostname or hostname not in names):
            return head + (f"requested-chassis names another chassis ({requested}) for logical "
                           f"port {iface_id!r}; this chassis is {me}")
    if not mine:
        return head + (f"this chassis ({me}) is not registered in the southbound database")
    bound = _uuid(binding.get("chassis"))
    if bound is None:
        return head + (f"no chassis has claimed logical port {iface_id!r} yet (not claimed by "
                       f"this chassis, {me})")
    if other:
        return head + (f"logical port {iface_id!r} is claimed by another chassis "
                       f"({other[0].get('name')}), not by this chassis ({me})")
    return head + (f"logical port {iface_id!r} is claimed by this chassis ({me}), but "
                   "ovn-controller has not installed its flows yet")
