"""Open vSwitch's database through one small interface with two backends.

- ``native`` (default): ovsdbapp's IDL over one connection; all of an apply's OVSDB steps in one
  transaction, committed without waiting for ovs-vswitchd (readiness waits, on the replica's
  change notifications) except for unplug, which waits as ovs-vsctl does.
- ``vsctl``: one ``ovs-vsctl`` invocation per apply, its commands chained with ``--``.

Both write exactly the same columns for the same steps, so they leave identical rows (the
functional tests compare them). What a step writes is the step's own business
(:meth:`~vifplug.plan.Step.ovsdb_native`, :meth:`~vifplug.plan.Step.vsctl_commands`), and so is
whether it already holds (:meth:`~vifplug.plan.Step.holds` over a :class:`Snapshot` of the rows
it names): the backends only connect, read rows and send one transaction. ovsdbapp is imported
only by the native backend, on first use.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, runtime_checkable

from vifplug.errors import VifError
from vifplug.host.errors import CommitTimeout, HostError
from vifplug.host.ovn import ChassisConfig
from vifplug.plan import Step

__all__ = [
    "DEFAULT_OVSDB",
    "NativeOvsdb",
    "Ovsdb",
    "Snapshot",
    "VsctlOvsdb",
    "Watch",
    "Watchers",
    "check_ovsdb_backend",
    "check_ovsdb_url",
    "native_commit",
    "open_ovsdb",
]

#: Where Debian's (and most) openvswitch-switch serves the database.
DEFAULT_OVSDB = "unix:/run/openvswitch/db.sock"
#: Seconds an OVSDB operation (connect, transaction, vswitchd's reconfiguration) may take.
TIMEOUT = 30

Backend = Literal["native", "vsctl"]


def check_ovsdb_url(url: str) -> str:
    """``unix:/path``, ``tcp:host:port`` or ``ssl:host:port`` (bad input otherwise: exit 2)."""
    method, _, rest = url.partition(":")
    if method not in ("unix", "tcp", "ssl") or not rest or not url.isprintable():
        raise VifError(f"--ovsdb: expected unix:/path, tcp:host:port or ssl:host:port "
                       f"(got {url!r})")
    return url


def check_ovsdb_backend(backend: str) -> Backend:
    """``native`` or ``vsctl`` (bad input otherwise: exit 2). The one place this is checked."""
    found = _BACKENDS.get(backend)
    if found is None:
        raise VifError(f"--ovsdb-backend: expected 'native' or 'vsctl' (got {backend!r})")
    return found


_BACKENDS: dict[str, Backend] = {"native": "native", "vsctl": "vsctl"}


class Ovsdb(Protocol):
    """What plans need of OVSDB. :class:`NativeOvsdb` and :class:`VsctlOvsdb` are the real ones;
    :class:`vifplug.host.fake.FakeOvsdb` keeps the rows in memory for unit tests."""

    def bridge_exists(self, bridge: str) -> bool: ...

    def snapshot(self, steps: Sequence[Step]) -> Snapshot:
        """The rows (by name) of the bridges, ports and interfaces ``steps`` are about."""
        ...

    def commit(self, steps: Sequence[Step]) -> int | None:
        """Apply the OVSDB steps in one transaction: all or nothing. Returns once OVSDB has
        committed it, with the ``next_cfg`` it set for readiness (and unplug) to wait on
        (``None``: none to wait on)."""
        ...

    def close(self) -> None: ...


class SwitchState(NamedTuple):
    """What readiness reads of the ``Open_vSwitch`` row."""

    #: The configuration ovs-vswitchd has applied, and the newest one committed.
    cur_cfg: int
    next_cfg: int
    #: This host is an OVN chassis (``external_ids:ovn-remote`` is set).
    ovn: bool
    #: What ``external_ids`` say about the chassis (system-id, ovn-remote, ovn-encap-*), for
    #: naming why a port is not installed (``None``: not read).
    chassis: ChassisConfig | None = None


class InterfaceState(NamedTuple):
    """What readiness reads of an ``Interface`` row."""

    #: The OpenFlow port: ``None`` not assigned yet, -1 failed.
    ofport: int | None
    #: ovs-vswitchd's error for it, if any.
    error: str | None
    #: ``external_ids:ovn-installed`` is ``"true"``.
    ovn_installed: bool
    #: ``external_ids:iface-id``: the logical switch port ovn-controller binds to it.
    iface_id: str | None = None


@runtime_checkable
class OvsdbReader(Protocol):
    """What readiness needs of OVSDB: the replica's view and a way to wait for it to change.
    :class:`NativeOvsdb` is one (whatever backend writes), and the fake."""

    def switch_state(self) -> SwitchState | None:
        """The ``Open_vSwitch`` row (``None``: the database has none)."""
        ...

    def interface_states(self, names: Sequence[str]) -> dict[str, InterfaceState | None]:
        """Each Interface of ``names`` as the replica has it (``None``: no such row)."""
        ...

    def watch(self) -> Watch | None:
        """A new subscription to the replica's changes (close it when done); ``None`` when
        there is nothing to wait on (the replica cannot change)."""
        ...

    def close(self) -> None: ...


class Watch:
    """One waiter's subscription to the replica's changes: a pipe that becomes readable when the
    replica changes (select on :meth:`fileno`, then :meth:`drain` it). Each waiter has a pipe of
    its own, so one thread draining never hides a change from another."""

    def __init__(self, watchers: Watchers) -> None:
        self._watchers = watchers
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def fileno(self) -> int:
        return self._read

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        self._watchers.forget(self)
        os.close(self._read)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Watchers:
    """The :class:`Watch`-es of one replica; :meth:`notify` wakes them all."""

    def __init__(self) -> None:
        # Held while writing to the pipes and while one is closed, so a write never goes to a
        # descriptor number that was closed (and perhaps reused) meanwhile.
        self._lock = threading.Lock()
        self._pipes: dict[Watch, int] = {}

    def watch(self) -> Watch:
        watch = Watch(self)
        with self._lock:
            self._pipes[watch] = watch._write
        return watch

    def forget(self, watch: Watch) -> None:
        with self._lock:
            fd = self._pipes.pop(watch, None)
            if fd is not None:
                os.close(fd)

    def notify(self) -> None:
        with self._lock:
            for fd in self._pipes.values():
                with contextlib.suppress(BlockingIOError):  # a full pipe wakes its waiter already
                    os.write(fd, b"!")


def open_ovsdb(url: str = DEFAULT_OVSDB, backend: Backend = "native") -> Ovsdb:
    check_ovsdb_url(url)
    if check_ovsdb_backend(backend) == "native":
        return NativeOvsdb(url)
    return VsctlOvsdb(url)


def native_commit(api: Any, steps: Sequence[Step]) -> int | None:
    """``steps`` in one ovsdbapp transaction on ``api`` (each adds its commands), all or
    nothing; a failure is a :class:`HostError` (the native backend's commit, and the fake's).
    Returns the transaction's ``next_cfg`` when ``api`` records it (see
    :class:`NativeOvsdb`)."""
    try:
        with api.transaction(check_error=True) as txn:
            for step in steps:
                step.ovsdb_native(api, txn)
    except HostError:
        raise
    except Exception as exc:
        from ovsdbapp.exceptions import TimeoutException

        if isinstance(exc, TimeoutException):
            raise CommitTimeout(f"OVSDB did not confirm the transaction within {TIMEOUT} s "
                                "(it may or may not have been committed)") from exc
        raise HostError(f"OVSDB transaction failed: {database_said(str(exc))}") from exc
    next_cfg: int | None = getattr(txn, "next_cfg", None)
    return next_cfg


#: The longest cause an OVSDB failure is told with (the rest is cut, marked "…").
CAUSE_LIMIT = 200


def database_said(text: str) -> str:
    """What OVSDB (through ovsdbapp) or ovs-vsctl said about a failed transaction, as one short
    line: ovsdbapp's ``OVSDB Error: {"error": ..., "details": ...}`` as the error and the first
    sentence of the details; ovs-vsctl's stderr as its last ``ovs-vsctl:`` line, without its
    log lines and its repeated prefix."""
    found = re.search(r"OVSDB Error: (\{.*\})\s*$", text, re.DOTALL)
    if found:
        with contextlib.suppress(ValueError):
            said = json.loads(found.group(1))
            details = str(said.get("details", "")).split(".  ")[0].rstrip(".")
            text = f"{said.get('error', 'error')}: {details}" if details else str(
                said.get("error", text))
    else:
        lines = [line for line in text.splitlines() if line.strip() and "|" not in line[:40]]
        if lines:
            text = lines[-1]
        while text.startswith("ovs-vsctl: ovs-vsctl: "):
            text = text.removeprefix("ovs-vsctl: ")
    text = " ".join(text.split())
    return text if len(text) <= CAUSE_LIMIT else text[:CAUSE_LIMIT - 1] + "…"


class NativeOvsdb:
    """ovsdbapp's native IDL: connect once (lazily), one transaction per :meth:`commit`."""

    #: The columns the replica holds: what vifplug's steps, readiness and ovsdbapp's commands
    #: they use (``add_br``, ``add_port``, ``db_set``, the wait for ``cur_cfg``) read or write.
    #: Not whole tables: ovs-vswitchd rewrites every Interface's ``statistics`` and ``status``
    #: every few seconds, and a replica of those spends its connection thread (and the GIL)
    #: decoding updates for every port of the host.
    COLUMNS: ClassVar[dict[str, tuple[str, ...]]] = {
        "Open_vSwitch": ("bridges", "cur_cfg", "next_cfg", "external_ids"),
        "Bridge": ("name", "ports", "datapath_type"),
        "Port": ("name", "interfaces", "tag", "trunks"),
        "Interface": ("name", "type", "options", "external_ids", "mtu_request", "ofport",
                      "error"),
    }

    def __init__(self, url: str) -> None:
        self.url = url
        self._api: Any = None
        self._connection: Any = None
        #: Woken whenever the IDL has applied changes to the replica (readiness waits on them).
        self._watchers = Watchers()
        #: Held while the IDL applies changes to the replica, and while another thread reads it
        #: (ovsdbapp updates the replica in its connection thread; plugs and waits read it in
        #: theirs).
        self._replica = threading.Lock()

    @property
    def api(self) -> Any:
        if self._api is None:
            from ovsdbapp.backend.ovs_idl import connection, idlutils

            try:
                helper = idlutils.get_schema_helper(self.url, "Open_vSwitch")
            except Exception as exc:
                raise HostError(f"cannot reach OVSDB at {self.url}: {exc}") from exc
            for table, columns in self.COLUMNS.items():
                helper.register_columns(table, list(columns))
            idl = _replica_idl(self._watchers, self._replica)(self.url, helper)
            self._connection = connection.Connection(idl=idl, timeout=TIMEOUT)
            # ovsdbapp keeps the connection in a class attribute, set once per process: a
            # class of our own per instance, or a second Host (another OVSDB) would use the
            # first one's server.
            self._api = _commit_only_api()()(self._connection)
        return self._api

    # --- readiness (OvsdbReader): the replica, and its change notifications ---

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Any]:
        """The IDL, held still for the caller to read."""
        idl = self.api.idl
        with self._replica:
            yield idl

    def switch_state(self) -> SwitchState | None:
        with self._reading() as idl:
            rows = [row for row in idl.tables["Open_vSwitch"].rows.values()
                    if row._data is not None]
            if not rows:
                return None
            cur_cfg, next_cfg, external_ids = (_committed(rows[0], column) for column in
                                               ("cur_cfg", "next_cfg", "external_ids"))
            return SwitchState(cur_cfg, next_cfg, "ovn-remote" in external_ids,
                               ChassisConfig.from_external_ids(external_ids))

    def interface_states(self, names: Sequence[str]) -> dict[str, InterfaceState | None]:
        found: dict[str, InterfaceState | None] = {}
        with self._reading() as idl:
            for name in names:
                row = _committed_row(idl, "Interface", name)
                if row is None:
                    found[name] = None
                    continue
                ofport, error, external_ids = (_committed(row, column) for column in
                                               ("ofport", "error", "external_ids"))
                found[name] = InterfaceState(ofport[0] if ofport else None,
                                             error[0] if error else None,
                                             external_ids.get("ovn-installed") == "true",
                                             external_ids.get("iface-id"))
        return found

    def watch(self) -> Watch:
        self.api  # noqa: B018 - connect first: changes come through the connection
        return self._watchers.watch()

    def bridge_exists(self, bridge: str) -> bool:
        # From the replica, not api.br_exists(): ovsdbapp runs every command, reads included,
        # in a transaction that bumps next_cfg and waits for ovs-vswitchd to reconfigure every
        # port — the no-op "ensure br-int" that doubles os-vif's cost per plug.
        with self._reading() as idl:
            return _committed_row(idl, "Bridge", bridge) is not None

    def snapshot(self, steps: Sequence[Step]) -> Snapshot:
        """From the IDL's in-memory replica: no round trip. A Bridge's ``ports`` lists the
        ports the steps name that it holds (a bridge of 500 ports is not listed per plug)."""
        snap = Snapshot()
        wanted = snapshot_names(steps)
        with self._reading() as idl:
            ports = [row for name in wanted.get("Port", ())
                     if (row := _committed_row(idl, "Port", name)) is not None]
            for table, names in wanted.items():
                for name in names:
                    row = _committed_row(idl, table, name)
                    if row is None:
                        continue
                    values = {column: _idl_value(_committed(row, column))
                              for column in _COLUMNS[table] if column != "ports"}
                    if table == "Bridge":  # of its ports, those the steps name (not all)
                        values["ports"] = [_committed(port, "name") for port in ports
                                           if _holds(row, port)]
                    snap.add(table, values)
        return snap

    def commit(self, steps: Sequence[Step]) -> int | None:
        return native_commit(self.api, steps) if steps else None

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection, self._api = self._connection, None, None
            connection.stop()
            # ovsdbapp leaves these to the garbage collector: a Host closed is a Host whose
            # descriptors are closed (its queue's wake-up pipe, the IDL's session).
            connection.txns.close()
            connection.idl.close()


def _replica_idl(watchers: Watchers, replica: threading.Lock) -> Any:
    """ovsdbapp's IDL class, applying changes to the replica under ``replica`` (readers in
    other threads hold it too) and waking ``watchers`` after each run that changed it."""
    from ovsdbapp.backend.ovs_idl import connection

    def run(self: Any) -> Any:
        with replica:
            before = self.change_seqno
            result = connection.OvsdbIdl.run(self)
            changed = self.change_seqno != before
        if changed:
            watchers.notify()
        return result

    return type("VifplugReplicaIdl", (connection.OvsdbIdl,), {"run": run})


@functools.cache
def _commit_only_api() -> Any:
    """ovsdbapp's Open_vSwitch API whose transactions bump ``next_cfg`` (so ovs-vswitchd
    applies them and says when: ``cur_cfg``) but do not wait for it: readiness is
    :mod:`vifplug.host.ready`'s question, and many plugs in flight share one wait. The
    transaction keeps the ``next_cfg`` it set, for readiness to wait on."""
    from ovsdbapp.backend.ovs_idl import transaction
    from ovsdbapp.schema.open_vswitch import impl_idl

    class CommitOnly(impl_idl.OvsVsctlTransaction):  # type: ignore[misc]
        next_cfg: int | None = None

        def post_commit(self, txn: Any) -> None:
            transaction.Transaction.post_commit(self, txn)  # the commands' results only
            self.next_cfg = txn.get_increment_new_value()

    def create_transaction(self: Any, check_error: bool = False, log_errors: bool = True,
                           **kwargs: Any) -> Any:
        return CommitOnly(self, self.ovsdb_connection, check_error=check_error,
                          log_errors=log_errors)

    refuse, remove = _port_commands()

    def refuse_port_elsewhere(self: Any, bridge: str, port: str) -> Any:
        return refuse(self, bridge, port)

    def remove_port(self: Any, port: str) -> Any:
        return remove(self, port)

    # ovsdbapp keeps the connection in a class attribute: each NativeOvsdb gets a subclass
    # of its own (see NativeOvsdb.api), made from this one.
    base = type("VifplugOvsdbIdl", (impl_idl.OvsdbIdl,), {
        "create_transaction": create_transaction,
        "refuse_port_elsewhere": refuse_port_elsewhere,
        "remove_port": remove_port,
    })

    def fresh() -> Any:
        return type("VifplugOvsdbIdl", (base,), {"_ovsdb_connection": None})

    return fresh


def _port_commands() -> tuple[Any, Any]:
    """Two ovsdbapp commands of vifplug's, run (like every command) in ovsdbapp's connection
    thread when the transaction is sent:

    * ``refuse_port_elsewhere(bridge, port)``: fail the transaction if a port of that name is on
      another bridge (ovsdbapp's ``add_port(may_exist=True)`` would take it as done there);
    * ``remove_port(port)``: remove the port from whichever bridge holds it (ovsdb-server then
      drops the unreferenced Port and Interface rows), if it exists.

    Both find the port's row by its name (an index) and ask each bridge whether it holds it (a
    set look-up): ovsdbapp's ``del_port`` reads every bridge's whole port list for each port
    (quadratic in a batch: seconds at 500 ports)."""
    from ovsdbapp.backend.ovs_idl import command

    class RefusePortElsewhere(command.BaseCommand):  # type: ignore[misc]
        def __init__(self, api: Any, bridge: str, port: str) -> None:
            super().__init__(api)
            self.bridge, self.port = bridge, port

        def run_idl(self, txn: Any) -> None:
            holder, _ = _holder(self.api.idl, self.port)
            if holder is not None and holder.name != self.bridge:
                raise HostError(f"OVS port {self.port} is already on bridge {holder.name}, not "
                                f"{self.bridge}: delete it there first", device=self.port)

    class RemovePort(command.BaseCommand):  # type: ignore[misc]
        def __init__(self, api: Any, port: str) -> None:
            super().__init__(api)
            self.port = port

        def run_idl(self, txn: Any) -> None:
            holder, port = _holder(self.api.idl, self.port)
            if holder is not None:
                holder.delvalue("ports", port)

    return RefusePortElsewhere, RemovePort


def _holder(idl: Any, name: str) -> tuple[Any | None, Any | None]:
    """The committed Bridge row holding the port ``name``, and the Port row (``None``s: no
    such port on any bridge)."""
    port = _committed_row(idl, "Port", name)
    if port is not None:
        for bridge in idl.tables["Bridge"].rows.values():
            if bridge._data is not None and _holds(bridge, port):
                return bridge, port
    return None, port


def _holds(bridge: Any, port: Any) -> bool:
    """Whether the committed ``ports`` of the Bridge row ``bridge`` has the Port row ``port``
    (one set look-up: no list of the bridge's ports is made)."""
    from ovs.db import data, types

    return data.Atom(types.UuidType, port.uuid) in bridge._data["ports"].values


#: The columns steps own, per table (all that is read to decide whether a step holds).
_COLUMNS = {
    "Bridge": ("name", "datapath_type", "ports"),
    "Port": ("name", "tag", "trunks"),
    "Interface": ("name", "external_ids", "mtu_request", "type", "options"),
}


def snapshot_names(steps: Sequence[Step]) -> dict[str, set[str]]:
    """The rows, by table, that ``steps`` need to see to know whether they hold."""
    names: dict[str, set[str]] = {table: set() for table in _COLUMNS}
    for step in steps:
        for table, name in step.snapshot_names():
            names[table].add(name)
    return {table: found for table, found in names.items() if found}


class Snapshot:
    """Rows by table and name, with columns as plain values: ``[]``/``[x]`` for optional
    columns, lists for sets, dicts for maps; a bridge's ``ports`` as port names."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, {})[row["name"]] = row

    def row(self, table: str, name: str) -> dict[str, Any] | None:
        """The row of ``table`` called ``name``, or ``None``."""
        return self.rows.get(table, {}).get(name)

    def holds(self, step: Step) -> bool:
        """Whether ``step``'s state already holds in these rows (the step decides)."""
        return step.holds(self)


# python-ovs shows a transaction this process is building (in ovsdbapp's connection thread) in
# the replica at once: the rows it inserts (with no committed data yet) and the values it sets.
# Plugs and waits in other threads read what ovsdb-server has committed instead.


def _committed_row(idl: Any, table: str, name: str) -> Any | None:
    """The committed row of ``table`` named ``name``, or ``None``."""
    from ovsdbapp.backend.ovs_idl import idlutils

    for row in idlutils.rows_by_value(idl, table, "name", name):
        if row._data is not None and _committed(row, "name") == name:
            return row
    return None


def _committed(row: Any, column: str) -> Any:
    """``column`` of ``row`` as ovsdb-server last sent it (references as rows)."""
    return row._data[column].to_python(row._uuid_to_row)


def _idl_value(value: Any) -> Any:
    """An IDL column value as a Snapshot holds it (rows of a reference set become names)."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return [getattr(item, "name", item) for item in value]
    return value


#: Columns that are sets (or optional values): OVSDB's JSON writes a one-element set bare.
_SETS = frozenset({"ports", "tag", "trunks", "mtu_request"})


def _json_value(value: Any, is_set: bool = False) -> Any:
    """``ovs-vsctl --data=json`` → a Snapshot value (``["set", [...]]``, ``["map", [...]]``,
    ``["uuid", "..."]``; a set of one element is written as the element alone)."""
    if isinstance(value, list) and len(value) == 2 and value[0] in ("set", "map", "uuid"):
        kind, items = value
        if kind == "map":
            return {k: _json_value(v) for k, v in items}
        if kind == "set":
            return [_json_value(item) for item in items]
        return [items] if is_set else items
    return [value] if is_set else value


class VsctlOvsdb:
    """``ovs-vsctl``: one process per :meth:`commit`, its commands chained with ``--``."""

    def __init__(self, url: str) -> None:
        self.url = url
        found = shutil.which("ovs-vsctl")
        if found is None:
            raise HostError("ovs-vsctl is not installed (apt-get install openvswitch-switch)")
        self.binary = found

    def _run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, f"--db={self.url}", f"--timeout={TIMEOUT}", *args]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, check=False,
                                    timeout=TIMEOUT + 5)
        except subprocess.TimeoutExpired as exc:
            result = subprocess.CompletedProcess(argv, -signal.SIGALRM, "", str(exc))
        if result.returncode == -signal.SIGALRM:  # ovs-vsctl's own --timeout
            raise CommitTimeout(f"ovs-vsctl did not finish within {TIMEOUT} s (its "
                                f"transaction may or may not have been committed)")
        return result

    def bridge_exists(self, bridge: str) -> bool:
        result = self._run(["br-exists", bridge])
        if result.returncode not in (0, 2):
            raise HostError(f"ovs-vsctl br-exists {bridge}: {database_said(result.stderr)}",
                            device=bridge)
        return result.returncode == 0

    def commit(self, steps: Sequence[Step]) -> int | None:
        """ovs-vsctl waits for ovs-vswitchd itself: ``None`` (nothing left to wait on)."""
        args = self.commands(steps)
        if not args:
            return None
        result = self._run(args)
        if result.returncode != 0:
            said = database_said(result.stderr)
            raise HostError(f"OVSDB transaction failed: "
                            f"{said if said.startswith('ovs-vsctl:') else 'ovs-vsctl: ' + said}")
        return None

    def snapshot(self, steps: Sequence[Step]) -> Snapshot:
        """One ``ovs-vsctl list`` invocation for the three tables."""
        tables = list(snapshot_names(steps))
        if "Bridge" in tables and "Port" not in tables:
            tables.append("Port")  # to name the bridges' ports
        args: list[str] = ["--format=json", "--data=json"]
        for table in tables:
            args += ["--", f"--columns=_uuid,{','.join(_COLUMNS[table])}", "list", table]
        result = self._run(args)
        if result.returncode != 0:
            raise HostError(f"ovs-vsctl list: {database_said(result.stderr)}")
        rows: dict[str, list[dict[str, Any]]] = {}
        for table, output in zip(tables, result.stdout.splitlines(), strict=True):
            data = json.loads(output)
            rows[table] = [{heading: _json_value(value, heading in _SETS)
                            for heading, value in zip(data["headings"], values, strict=True)}
                           for values in data["data"]]
        port_names = {row["_uuid"]: row["name"] for row in rows.get("Port", [])}
        snap = Snapshot()
        for table, found in rows.items():
            for row in found:
                if table == "Bridge":
                    row["ports"] = [port_names.get(uuid, uuid) for uuid in row["ports"]]
                del row["_uuid"]
                snap.add(table, row)
        return snap

    @staticmethod
    def commands(steps: Sequence[Step]) -> list[str]:
        """The ``--``-chained ovs-vsctl arguments for ``steps`` (pure: tests print them)."""
        args: list[str] = []
        for step in steps:
            for command in step.vsctl_commands():
                args += ["--", *command]
        return args

    def close(self) -> None:
        pass
