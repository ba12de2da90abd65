"""Shared by the plugging benchmarks (bench/plug.py, bench/plug_floor.py): a private OVS in a
fresh network namespace, VIF specs, a host-state picture, and os-vif run in a worker process.

- :func:`private_ovs`: ``tests/fixtures``' ``Netns`` + ``PrivateOvs`` (userspace datapath,
  everything in a temp dir) with ``br-int`` added; stopped and deleted on exit.
- :func:`vif_specs`: N hybrid (or manual) VIF descriptions with distinct ids (so distinct device
  names), MACs and interface ids, as plain dicts every side turns into its own input.
- :class:`OsVifWorker`: os-vif 5.3's ``ovs`` plugin in a child process started with
  ``ip netns exec NS``, so the privsep daemon it spawns lives in the same namespace as the
  private OVS; driven over stdin/stdout (one JSON line per command, the reply carries the time
  each VIF took, measured in the worker). It starts privsep and connects to OVSDB before it
  says ready, so no timing includes those one-time costs.

This file is also the worker's program: ``python bench/_ovs.py os-vif-worker DB NETNS_INODE``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Appended: for tests.fixtures; a PYTHONPATH copy of vifplug (a patched one) still wins.
    sys.path.append(str(ROOT))

BRIDGE = "br-int"
INSTANCE_UUID = "5e1f3a9c-7d2b-4c8e-9f60-a1b2c3d4e5f6"


# --- private OVS ----------------------------------------------------------------------------------


@contextmanager
def private_ovs() -> Iterator[tuple[Any, Any]]:
    """``(netns, ovs)``: a fresh namespace with a private OVS and ``br-int`` (netdev)."""
    from tests.fixtures import Netns, PrivateOvs

    with Netns() as netns, PrivateOvs(netns) as ovs:
        ovs.add_bridge(BRIDGE)
        try:
            yield netns, ovs
        finally:
            # A change without --no-wait returns once ovs-vswitchd has caught up: a side that
            # did not wait for it must not leave it busy while it is being stopped.
            subprocess.run(["ovs-vsctl", f"--db={ovs.db}", "--timeout=120", "set",
                            "Open_vSwitch", ".", "external_ids:vifplug-bench=done"],
                           capture_output=True, check=False, timeout=130)


def ovs_version() -> str:
    out = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True, text=True,
                         check=False).stdout
    return out.split()[-1] if out else "?"


# --- VIFs -----------------------------------------------------------------------------------------


def vif_specs(count: int, salt: int, *, mtu: int = 1450,
              vlan: int | None = 100) -> list[dict[str, Any]]:
    """``count`` VIFs: ``id[:11]`` (device names) differs for each index; ``salt`` (0-4095)
    keeps scenarios apart."""
    specs = []
    for i in range(count):
        vif_id = f"{i:08x}-{salt:03x}0-4000-8000-{i:012x}"
        specs.append({
            "id": vif_id,
            "mac": f"fa:16:3e:{salt & 0xFF:02x}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}",
            "interface_id": f"{salt:04x}{i:04x}-1f2a-4b3c-8d4e-{i:012x}",
            "mtu": mtu,
            "vlan": vlan,
        })
    return specs


def names(spec: dict[str, Any]) -> dict[str, str]:
    return {prefix: prefix + spec["id"][:11] for prefix in ("tap", "qbr", "qvb", "qvo")}


def vif_json(spec: dict[str, Any], plug: str = "hybrid") -> dict[str, Any]:
    """The vif.json object vifplug reads for ``spec``."""
    network: dict[str, Any] = {"name": "bench", "bridge": BRIDGE}
    if spec["vlan"] is not None:
        network["vlan"] = spec["vlan"]
    return {"id": spec["id"], "vif_type": "ovs", "mac": spec["mac"], "mtu": spec["mtu"],
            "plug": plug, "network": network,
            "ovs": {"interface_id": spec["interface_id"], "datapath_type": "netdev"}}


# --- what a plug left behind ---------------------------------------------------------------------


def host_state(netns: Any, ovs: Any) -> dict[str, Any]:
    """Devices (kind, master, MTU, up, bridge timers, group) and the OVS Port/Interface rows,
    without what differs between equal states (ifindex, MACs, UUIDs)."""
    from tests.fixtures.snapshot import links_snapshot, ovsdb_rows

    links = {name: {key: value for key, value in link.items() if key != "address"}
             for name, link in links_snapshot(netns).items()}
    return {"links": links, "ovsdb": ovsdb_rows(ovs)}


# --- os-vif in a worker process ------------------------------------------------------------------


class OsVifWorker:
    """os-vif's ovs plugin in a child inside ``netns``; see the module docstring."""

    def __init__(self, netns: Any, ovs: Any) -> None:
        inode = os.stat(f"/run/netns/{netns.name}").st_ino
        self.netns = netns
        self.proc = subprocess.Popen(
            netns.argv(sys.executable, str(Path(__file__).resolve()), "os-vif-worker", ovs.db,
                       str(inode)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"})
        self.version = self._reply()["version"]

    def _reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"os-vif worker exited ({code}); see its stderr above")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"os-vif worker: {reply['error']}")
        return reply

    def run(self, op: str, specs: list[dict[str, Any]], kind: str = "hybrid") -> list[float]:
        """``op`` (plug/unplug) each VIF, one at a time; the seconds each took."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "kind": kind, "vifs": specs}) + "\n")
        self.proc.stdin.flush()
        times: list[float] = self._reply()["times"]
        return times

    def run_parallel(self, op: str, specs: list[dict[str, Any]], kind: str = "hybrid"
                     ) -> float:
        """``op`` every VIF at once, each from a thread of its own (all released together);
        the seconds until the last returned."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "kind": kind, "vifs": specs,
                                          "parallel": True}) + "\n")
        self.proc.stdin.flush()
        wall: float = self._reply()["wall"]
        return wall

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def __enter__(self) -> OsVifWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_os_vif(db: str) -> int:
    """Configure and initialise os-vif, start its privsep daemon and its OVSDB connection;
    the daemon's PID."""
    import socket
    import struct

    import os_vif
    from oslo_config import cfg
    from vif_plug_ovs import ovs, privsep

    conf = cfg.CONF
    conf([], project="vifplug-bench")
    # Before initialize(): later overrides are silently ignored (ENVIRONMENT.md).
    conf.register_opts(ovs.OvsPlugin.CONFIG_OPTS, group=cfg.OptGroup("os_vif_ovs"))
    conf.set_override("ovsdb_interface", "native", group="os_vif_ovs")
    conf.set_override("ovsdb_connection", db, group="os_vif_ovs")
    conf.set_override("helper_command", str(Path(sys.executable).parent / "privsep-helper"),
                      group="vif_plug_ovs_privileged")  # root here, and no sudo
    os_vif.initialize()
    privsep.vif_plug.start()
    sock = privsep.vif_plug.channel.writer.writesock
    pid: int = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                   struct.calcsize("3i")))[0]
    plugin = os_vif._EXT_MANAGER["ovs"].obj
    plugin.ovsdb.ovsdb.br_exists(BRIDGE).execute(check_error=True)
    return pid


def _stop_privsep(daemon_pid: int) -> None:
    """The daemon exits when its socket closes; make sure of it (by its PID)."""
    import time

    from vif_plug_ovs import privsep

    privsep.vif_plug.stop()
    deadline = time.monotonic() + 5
    while Path(f"/proc/{daemon_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    if Path(f"/proc/{daemon_pid}").exists():
        os.kill(daemon_pid, 9)


def _os_vif_object(spec: dict[str, Any], kind: str) -> Any:
    """os-vif's VIF for ``spec``: a ``VIFBridge`` (hybrid), or a ``VIFOpenVSwitch`` whose
    profile asks the plugin to create the TAP and the port (manual)."""
    from os_vif import objects

    network = objects.network.Network(id="c0ffee00-0000-4000-8000-000000000001",
                                      bridge=BRIDGE, mtu=spec["mtu"])
    if kind == "hybrid":
        profile = objects.vif.VIFPortProfileOpenVSwitch(
            interface_id=spec["interface_id"], datapath_type="netdev")
        return objects.vif.VIFBridge(
            id=spec["id"], address=spec["mac"], network=network, plugin="ovs",
            bridge_name=names(spec)["qbr"], vif_name=names(spec)["tap"],
            has_traffic_filtering=False, preserve_on_delete=False, port_profile=profile)
    profile = objects.vif.VIFPortProfileOpenVSwitch(
        interface_id=spec["interface_id"], datapath_type="netdev", create_port=True,
        create_tap=True)
    return objects.vif.VIFOpenVSwitch(
        id=spec["id"], address=spec["mac"], network=network, plugin="ovs",
        bridge_name=BRIDGE, vif_name=names(spec)["tap"], has_traffic_filtering=True,
        preserve_on_delete=False, port_profile=profile)


def _os_vif_worker(db: str, netns_inode: int) -> int:
    """The worker: JSON commands on stdin, JSON replies on stdout."""
    if os.stat("/proc/self/ns/net").st_ino != netns_inode:
        print(json.dumps({"error": "not inside the benchmark's network namespace"}), flush=True)
        return 3
    import time
    import warnings
    from importlib import metadata

    warnings.simplefilter("ignore")
    import os_vif
    from os_vif import objects

    daemon_pid = _start_os_vif(db)
    instance = objects.instance_info.InstanceInfo(uuid=INSTANCE_UUID, name="bench-vm")
    print(json.dumps({"version": metadata.version("os-vif")}), flush=True)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            call = os_vif.plug if command["op"] == "plug" else os_vif.unplug
            vifs = [_os_vif_object(spec, command["kind"]) for spec in command["vifs"]]
            if command.get("parallel"):
                print(json.dumps(_in_threads(call, vifs, instance)), flush=True)
                continue
            times = []
            try:
                for vif in vifs:
                    start = time.perf_counter()
                    call(vif, instance)
                    times.append(time.perf_counter() - start)
            except Exception as exc:
                print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
                continue
            print(json.dumps({"times": times}), flush=True)
    finally:
        _stop_privsep(daemon_pid)
    return 0


def _in_threads(call: Any, vifs: list[Any], instance: Any) -> dict[str, Any]:
    """``call(vif, instance)`` for every VIF at once, a thread each, released together: the
    seconds until the last returned, or the first error."""
    import threading
    import time

    start = threading.Barrier(len(vifs) + 1)
    errors: list[str] = []

    def one(vif: Any) -> None:
        start.wait()
        try:
            call(vif, instance)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one, args=(vif,)) for vif in vifs]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {"error": errors[0]} if errors else {"wall": wall}


if __name__ == "__main__" and sys.argv[1:2] == ["os-vif-worker"]:
    sys.exit(_os_vif_worker(sys.argv[2], int(sys.argv[3])))
