"""The migration hook's cost: ``hooks/qemu`` side by side with a bare interpreter start.

libvirt runs the qemu hook synchronously for every operation on every guest (prepare, start,
started, stopped, release, migrate, restore, reconnect, attach...), so what it costs is the cost
of a fresh process. Compared, in one run, fresh subprocesses, commands alternating round by round
(two warm-up rounds discarded), wall time around ``subprocess.run``:

* ``python3 -I -c pass``: the baseline, the floor of any Python hook;
* ``hooks/qemu guest started begin -`` (a non-migrate operation: exit 0 at once, nothing
  imported): goal at most 1.3x the baseline;
* ``hooks/qemu guest migrate begin -`` with a realistic 16-interface domain on stdin (bridge,
  OVS and macvtap interfaces, all listed in the vifplug metadata, and a networks.toml that puts
  every one on a different switch, so all 16 are rewritten): goal at most 3x the baseline;
* for information: ``python3 -I -S -c pass`` (no ``site`` at all: no venv ``.pth`` files, so
  not the editable install's import finder), ``python3 hooks/qemu ...`` (the interpreter named
  directly instead of through the ``#!/usr/bin/env python3`` shebang), and the baseline and both
  hook runs again in a "plain" venv of the same interpreter without the editable install (its
  one ``.pth`` puts /work/venv's site-packages and the checkout on the path, as a regular install
  would; the editable finder and the namespace-package ``.pth`` shims are not run), each divided
  by the plain venv's own baseline, with the floor under any hook that uses lxml and tomllib:
  ``python3 -c "import lxml.etree"`` and ``python3 -c "import lxml.etree, tomllib"`` there; and
  ``python3 -I -c pass`` in a plain venv holding only the editable install's ``.pth`` and finder
  (its cost alone, against the plain baseline; the rest of the difference between the two
  baselines is /work/venv's other ``.pth`` files).

Every command runs the same interpreter, the venv's ``python3`` (``sys.executable``'s
directory is put first on PATH, so the hook's shebang resolves to it), in an environment like
the one libvirt gives hooks: ``PATH``, ``LC_ALL=C``, plus ``VIFPLUG_NETWORKS`` naming the map.
Bytecode is cached in a temporary ``PYTHONPYCACHEPREFIX`` as on an installed system (the warm-up
rounds fill it); ``--no-bytecode-cache`` keeps ``PYTHONDONTWRITEBYTECODE`` as the caller has it.
No ``/dev/log`` here means no syslog line per interface; where it exists the hook logs 16.

Before timing, the migrate run is checked: exit 0, nothing on stderr, all 16 interfaces
rewritten as the map says. After, ``--importtime`` prints ``python -X importtime`` for the
baseline and both hook runs (the editable install's finder, ``site``, and what the hook
imports), and ``--phases`` the in-process cost of each step of a migrate run.

Run by hand (never from the tests); about 20 s::

    /work/venv/bin/python bench/hook.py                  # 40 rounds
    /work/venv/bin/python bench/hook.py --rounds 60
    /work/venv/bin/python bench/hook.py --importtime --phases
    /work/venv/bin/python bench/hook.py --write-domain /tmp/d.xml --write-map /tmp/n.toml
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
HOOK = ROOT / "hooks" / "qemu"
PYTHON3 = Path(sys.executable).parent / "python3"
NS = "http://vifplug.org/xmlns/vifplug/1"

GOAL_OTHER_OP = 1.3
GOAL_MIGRATE = 3.0
INTERFACES = 16

# --- the guest and the receiving host's map ----------------------------------------------------


@dataclass(frozen=True)
class Nic:
    """One interface of the guest as it arrives, and where the receiving host puts it."""

    index: int
    kind: str  # on the sending host: 'bridge' (Linux bridge), 'ovs', 'direct'
    local: str  # on this host: 'legacy', 'ovs', 'direct' (never the same as kind)

    @property
    def mac(self) -> str:
        return f"fa:16:3e:00:10:{self.index:02x}"

    @property
    def network(self) -> str:
        return f"net{self.index:02d}"

    @property
    def uuid(self) -> str:
        return f"0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d{self.index:04x}"

    def xml(self) -> str:
        slot = f"0x{self.index + 3:02x}"
        tail = (f"      <model type='virtio'/>\n"
                f"      <driver name='vhost' queues='4'/>\n"
                f"      <alias name='net{self.index}'/>\n"
                f"      <address type='pci' domain='0x0000' bus='0x01' slot='{slot}' "
                "function='0x0'/>\n    </interface>\n")
        if self.kind == "bridge":
            return (f"    <interface type='bridge'>\n      <mac address='{self.mac}'/>\n"
                    f"      <source bridge='brq{self.network}'/>\n"
                    f"      <target dev='tap{self.uuid[:11]}'/>\n"
                    "      <mtu size='1500'/>\n" + tail)
        if self.kind == "ovs":
            return (f"    <interface type='bridge'>\n      <mac address='{self.mac}'/>\n"
                    "      <source bridge='br-int'/>\n"
                    f"      <vlan>\n        <tag id='{100 + self.index}'/>\n      </vlan>\n"
                    "      <virtualport type='openvswitch'>\n"
                    f"        <parameters interfaceid='{self.uuid}'/>\n"
                    "      </virtualport>\n"
                    f"      <target dev='tap{self.uuid[:11]}'/>\n"
                    "      <mtu size='1450'/>\n" + tail)
        return (f"    <interface type='direct'>\n      <mac address='{self.mac}'/>\n"
                "      <source dev='eth2' mode='vepa'/>\n"
                "      <virtualport type='802.1Qbg'>\n"
                "        <parameters managerid='11' typeid='1193047' typeidversion='2' "
                f"instanceid='{self.uuid}'/>\n      </virtualport>\n"
                f"      <target dev='macvtap{self.index}'/>\n" + tail)

    def toml(self) -> str:
        head = f"[networks.{self.network}]\nswitch = \"{self.local}\"\n"
        if self.local == "legacy":
            return head + f"bridge = \"br-{self.network}\"\n"
        if self.local == "ovs":
            return head + f"bridge = \"br-int\"\nvlan = {200 + self.index}\n"
        return (head + f"interface = \"ens{self.index}\"\nmode = \"bridge\"\n"
                f"[networks.{self.network}.qbg]\nmanager_id = 12\ntype_id = 42\n"
                "type_id_version = 1\n")


#: 6 Linux-bridge, 6 OVS and 4 macvtap interfaces, each going to a different switch here.
NICS = [Nic(i, kind, local) for i, (kind, local) in enumerate(
    [("bridge", "ovs"), ("bridge", "direct")] * 3
    + [("ovs", "legacy"), ("ovs", "direct")] * 3
    + [("direct", "ovs"), ("direct", "legacy")] * 2)]
assert len(NICS) == INTERFACES


def domain_xml() -> bytes:
    """A guest as libvirt hands it over (the shape of ``virsh dumpxml --migratable``)."""
    nics = "".join(nic.xml() for nic in NICS)
    entries = "".join(f"      <vifplug:interface mac='{nic.mac}' network='{nic.network}'/>\n"
                      for nic in NICS)
    return f"""<domain type='kvm'>
  <name>bench-guest</name>
  <uuid>6f5e2b1a-3c4d-4e5f-8a9b-0c1d2e3f4a5b</uuid>
  <description>a 16-NIC router guest (bench/hook.py)</description>
  <metadata>
    <vifplug:interfaces xmlns:vifplug='{NS}'>
{entries}    </vifplug:interfaces>
  </metadata>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>8388608</currentMemory>
  <vcpu placement='static'>8</vcpu>
  <resource>
    <partition>/machine</partition>
  </resource>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
    <vmport state='off'/>
  </features>
  <cpu mode='host-model' check='partial'>
    <topology sockets='1' dies='1' cores='4' threads='2'/>
  </cpu>
  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
    <timer name='pit' tickpolicy='delay'/>
    <timer name='hpet' present='no'/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <pm>
    <suspend-to-mem enabled='no'/>
    <suspend-to-disk enabled='no'/>
  </pm>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' io='native' discard='unmap'/>
      <source file='/var/lib/libvirt/images/bench-guest.qcow2' index='2'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
      <alias name='sata0-0-0'/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <controller type='usb' index='0' model='qemu-xhci' ports='15'>
      <alias name='usb'/>
      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </controller>
    <controller type='sata' index='0'>
      <alias name='ide'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/>
    </controller>
    <controller type='pci' index='0' model='pcie-root'>
      <alias name='pcie.0'/>
    </controller>
    <controller type='pci' index='1' model='pci-bridge'>
      <model name='pci-bridge'/>
      <target chassisNr='1'/>
      <alias name='pci.1'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </controller>
    <controller type='virtio-serial' index='0'>
      <alias name='virtio-serial0'/>
      <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>
    </controller>
{nics}    <serial type='pty'>
      <source path='/dev/pts/3'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
      <alias name='serial0'/>
    </serial>
    <console type='pty' tty='/dev/pts/3'>
      <source path='/dev/pts/3'/>
      <target type='serial' port='0'/>
      <alias name='serial0'/>
    </console>
    <channel type='unix'>
      <source mode='bind' path='/run/libvirt/qemu/channel/1-bench-guest/org.qemu.guest_agent.0'/>
      <target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>
      <alias name='channel0'/>
      <address type='virtio-serial' controller='0' bus='0' port='1'/>
    </channel>
    <input type='tablet' bus='usb'>
      <alias name='input0'/>
      <address type='usb' bus='0' port='1'/>
    </input>
    <input type='mouse' bus='ps2'>
      <alias name='input1'/>
    </input>
    <input type='keyboard' bus='ps2'>
      <alias name='input2'/>
    </input>
    <graphics type='vnc' port='5900' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <video>
      <model type='virtio' heads='1' primary='yes'/>
      <alias name='video0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>
    </video>
    <memballoon model='virtio'>
      <alias name='balloon0'/>
      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
    </memballoon>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
      <alias name='rng0'/>
      <address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x0'/>
    </rng>
  </devices>
  <seclabel type='dynamic' model='apparmor' relabel='yes'>
    <label>libvirt-6f5e2b1a-3c4d-4e5f-8a9b-0c1d2e3f4a5b</label>
    <imagelabel>libvirt-6f5e2b1a-3c4d-4e5f-8a9b-0c1d2e3f4a5b</imagelabel>
  </seclabel>
</domain>
""".encode()


def networks_toml() -> str:
    # strict = false: this machine has none of the 16 bridges and NICs, so the hook's device
    # checks (issue 13's preflight) would refuse the guest; this measures the rewrite
    return "# the receiving host (bench/hook.py): every network on another switch\n" + \
        "strict = false\n\n" + "\n".join(nic.toml() for nic in NICS)


def check_rewrite(output: bytes) -> None:
    """All 16 interfaces moved to this host's switch, as the map says."""
    root = etree.fromstring(output)
    by_mac = {iface.find("mac").get("address"): iface  # type: ignore[union-attr]
              for iface in root.iterfind("devices/interface")}
    assert len(by_mac) == INTERFACES, len(by_mac)
    for nic in NICS:
        iface = by_mac[nic.mac]
        source = iface.find("source")
        assert source is not None
        port = iface.find("virtualport")
        if nic.local == "legacy":
            assert iface.get("type") == "bridge"
            assert source.attrib == {"bridge": f"br-{nic.network}"}, nic
            assert port is None, nic
            assert iface.find("vlan") is None, nic
        elif nic.local == "ovs":
            assert iface.get("type") == "bridge"
            assert source.attrib == {"bridge": "br-int"}, nic
            assert port is not None, nic
            assert port.get("type") == "openvswitch", nic
            assert iface.find("vlan/tag").get("id") == str(200 + nic.index), nic  # type: ignore[union-attr]
        else:
            assert iface.get("type") == "direct"
            assert source.attrib == {"dev": f"ens{nic.index}", "mode": "bridge"}, nic
            assert port is not None, nic
            assert port.get("type") == "802.1Qbg", nic
            assert port.find("parameters").get("managerid") == "12"  # type: ignore[union-attr]
        assert iface.find("address") is not None, nic
        assert iface.find("model") is not None, nic


# --- timing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    argv: list[str]
    stdin: bytes | None = None
    env: dict[str, str] | None = None  # else the common environment


BASELINE = "python3 -I -c pass"
OTHER_OP = "hooks/qemu guest started begin -"
MIGRATE = f"hooks/qemu guest migrate begin - ({INTERFACES} NICs)"


PLAIN = "[plain venv] "


EDITABLE_ONLY = f"{PLAIN}+ editable finder only: python3 -I -c pass"


def commands(domain: bytes, plain_env: dict[str, str] | None,
             editable_env: dict[str, str] | None) -> dict[str, Command]:
    py = str(PYTHON3)
    table = {
        BASELINE: Command([py, "-I", "-c", "pass"]),
        OTHER_OP: Command([str(HOOK), "guest", "started", "begin", "-"]),
        MIGRATE: Command([str(HOOK), "guest", "migrate", "begin", "-"], domain),
        "python3 -I -S -c pass (no site)": Command([py, "-I", "-S", "-c", "pass"]),
        "python3 hooks/qemu guest started begin -": Command(
            [py, str(HOOK), "guest", "started", "begin", "-"]),
        "python3 hooks/qemu guest migrate begin -": Command(
            [py, str(HOOK), "guest", "migrate", "begin", "-"], domain),
    }
    if plain_env is not None:
        plain_py = str(Path(plain_env["PATH"].split(os.pathsep)[0]) / "python3")
        table.update({
            PLAIN + BASELINE: Command([plain_py, "-I", "-c", "pass"], env=plain_env),
            PLAIN + OTHER_OP: Command([str(HOOK), "guest", "started", "begin", "-"],
                                      env=plain_env),
            PLAIN + MIGRATE: Command([str(HOOK), "guest", "migrate", "begin", "-"], domain,
                                     env=plain_env),
            # The floor under any lxml + tomllib hook (lxml.etree alone imports re, typing,
            # inspect and gzip).
            PLAIN + "python3 -c 'import lxml.etree'": Command(
                [plain_py, "-c", "import lxml.etree"], env=plain_env),
            PLAIN + "python3 -c 'import lxml.etree, tomllib'": Command(
                [plain_py, "-c", "import lxml.etree, tomllib"], env=plain_env),
        })
    if editable_env is not None:
        editable_py = str(Path(editable_env["PATH"].split(os.pathsep)[0]) / "python3")
        table[EDITABLE_ONLY] = Command([editable_py, "-I", "-c", "pass"], env=editable_env)
    return table


PURELIB = "import sysconfig; print(sysconfig.get_path('purelib'))"


def plain_venv(work: Path, env: dict[str, str], *, editable: bool = False) -> dict[str, str]:
    """A venv of the same interpreter without the editable install: its only ``.pth`` adds
    /work/venv's site-packages (whose own ``.pth`` files, the editable finder and the
    namespace-package shims, are then not run) and the checkout, as a regular install would
    put vifplug on the path. With ``editable``, the editable install's ``.pth`` and finder are
    copied in instead of the checkout: the difference is the finder's own cost. Returns the
    environment that runs it (its bin first on PATH)."""
    venv = work / ("editable-venv" if editable else "plain-venv")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(subprocess.run(
        [str(venv / "bin" / "python3"), "-c", PURELIB], check=True, capture_output=True,
        text=True).stdout.strip())
    ours = Path(subprocess.run([str(PYTHON3), "-c", PURELIB], check=True, capture_output=True,
                               text=True).stdout.strip())
    if editable:
        finder = sorted(ours.glob("__editable__*vifplug*.pth"))
        finder += sorted(ours.glob("__editable___vifplug_*_finder.py"))
        assert len(finder) == 2, f"no editable install of vifplug in {ours}"
        for path in finder:
            shutil.copy(path, purelib / path.name)
        (purelib / "vifplug-bench.pth").write_text(f"{ours}\n")
    else:
        (purelib / "vifplug-bench.pth").write_text(f"{ours}\n{ROOT}\n")
    plain = dict(env)
    plain["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH'].split(os.pathsep, 1)[1]}"
    return plain


def environment(networks: Path, cache: str | None) -> dict[str, str]:
    """What libvirt gives a hook (PATH, LC_ALL=C), plus the map, plus the bytecode cache."""
    env = {"PATH": f"{PYTHON3.parent}{os.pathsep}/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C",
           "VIFPLUG_NETWORKS": str(networks)}
    if cache is not None:
        env["PYTHONPYCACHEPREFIX"] = cache
    elif "PYTHONDONTWRITEBYTECODE" in os.environ:
        env["PYTHONDONTWRITEBYTECODE"] = os.environ["PYTHONDONTWRITEBYTECODE"]
    return env


def run_once(command: Command, env: dict[str, str]) -> int:
    start = time.perf_counter_ns()
    result = subprocess.run(command.argv, input=command.stdin or b"", capture_output=True,
                            env=command.env or env, cwd="/", check=False)
    elapsed = time.perf_counter_ns() - start
    if result.returncode != 0:
        raise SystemExit(f"{command.argv}: exit {result.returncode}: {result.stderr.decode()}")
    return elapsed


def measure(table: dict[str, Command], env: dict[str, str], rounds: int,
            warmup: int = 2) -> dict[str, list[int]]:
    times: dict[str, list[int]] = {name: [] for name in table}
    for number in range(warmup + rounds):
        for name, command in table.items():
            elapsed = run_once(command, env)
            if number >= warmup:
                times[name].append(elapsed)
    return times


def print_table(table: dict[str, Command], times: dict[str, list[int]]) -> dict[str, float]:
    """Median, min and p90 per command; ratios of medians (the verdict) and of minimums."""
    medians = {name: statistics.median(values) / 1e6 for name, values in times.items()}
    minimums = {name: min(values) / 1e6 for name, values in times.items()}
    print(f"{'command':58} {'median ms':>9} {'min ms':>7} {'p90 ms':>7} {'ratio':>6} "
          f"{'min ratio':>9} {'goal':>5}")
    for name, values in times.items():
        ms = sorted(v / 1e6 for v in values)
        p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
        goal = {OTHER_OP: f"{GOAL_OTHER_OP}x", MIGRATE: f"{GOAL_MIGRATE}x"}.get(name, "")
        label = f"{name} (baseline)" if name == BASELINE else name
        # The plain venv's rows are divided by the plain venv's baseline.
        base = PLAIN + BASELINE if name.startswith(PLAIN) else BASELINE
        print(f"{label:58} {medians[name]:>9.1f} {ms[0]:>7.1f} {p90:>7.1f} "
              f"{medians[name] / medians[base]:>5.2f}x "
              f"{minimums[name] / minimums[base]:>8.2f}x {goal:>5}")
    return medians


# --- profiles ------------------------------------------------------------------------------------


def importtime(argv: list[str], stdin: bytes | None, env: dict[str, str], *, top: int = 12,
               runs: int = 9, python: str | None = None) -> None:
    """``python -X importtime``: per module, the median over ``runs`` of self and cumulative."""
    samples: dict[str, list[tuple[int, int]]] = {}
    order: list[str] = []
    for _ in range(runs):
        result = subprocess.run([python or str(PYTHON3), "-X", "importtime", *argv],
                                input=stdin or b"",
                                capture_output=True, env=env, cwd="/", check=True)
        for line in result.stderr.decode().splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            self_us, cumulative_us, raw = line.removeprefix("import time:").split("|", 2)
            depth = (len(raw) - len(raw.lstrip())) // 2
            key = f"{'  ' * depth}{raw.strip()}"
            if key not in samples:
                samples[key] = []
                order.append(key)
            samples[key].append((int(self_us), int(cumulative_us)))
    rows = [(statistics.median(c for _, c in samples[k]),
             statistics.median(s for s, _ in samples[k]), k) for k in order]
    top_level = [row for row in rows if not row[2].startswith("  ")]
    total = sum(row[0] for row in top_level)
    print(f"\n{python or PYTHON3} -X importtime {' '.join(argv)}\n(median of {runs}; total of "
          f"top-level imports {total / 1e3:.1f} ms)")
    print(f"{'cumulative ms':>13} {'self ms':>8}  module (indented: imported by the one above)")
    shown = sorted(rows, reverse=True)[:top]
    for cumulative, self_time, name in [row for row in rows if row in shown]:
        print(f"{cumulative / 1e3:>13.2f} {self_time / 1e3:>8.2f}  {name}")


_PHASES = """
import io, sys, time
t = [time.perf_counter_ns()]
import lxml.etree
t.append(time.perf_counter_ns())
import vifplug.netmap
t.append(time.perf_counter_ns())
import vifplug.hook
t.append(time.perf_counter_ns())
host_map = vifplug.netmap.load_network_map()
t.append(time.perf_counter_ns())
data = sys.stdin.buffer.read()
root = vifplug.hook.parse_domain(data)
t.append(time.perf_counter_ns())
result = vifplug.hook.rewrite(data, host_map)
t.append(time.perf_counter_ns())
out = result.encode("utf-8")
t.append(time.perf_counter_ns())
print(" ".join(str(b - a) for a, b in zip(t, t[1:])))
"""
PHASES = ("import lxml.etree (with the re, typing, inspect, gzip it imports)",
          "import vifplug.netmap (tomllib, names)",
          "import vifplug.hook (rest)", "load_network_map() (16 networks)",
          "read stdin + parse_domain() alone", "rewrite() (parse, 16 rewrites, serialise)",
          "encode the result")


def phases(domain: bytes, env: dict[str, str], runs: int = 15) -> None:
    samples = []
    for _ in range(runs):
        result = subprocess.run([str(PYTHON3), "-c", _PHASES], input=domain, capture_output=True,
                                env=env, cwd="/", check=True)
        samples.append([int(v) for v in result.stdout.split()])
    print(f"\nsteps of a migrate run, in process (median of {runs} fresh subprocesses):")
    for index, name in enumerate(PHASES):
        print(f"  {statistics.median(s[index] for s in samples) / 1e6:>7.2f} ms  {name}")


# --- main ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=40, help="runs of each command (40)")
    parser.add_argument("--importtime", action="store_true",
                        help="also python -X importtime of the baseline and both hook runs")
    parser.add_argument("--phases", action="store_true",
                        help="also the in-process cost of each step of a migrate run")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="no PYTHONPYCACHEPREFIX: keep PYTHONDONTWRITEBYTECODE as it is")
    parser.add_argument("--no-plain-venv", action="store_true",
                        help="skip the rows run in a venv without the editable install")
    parser.add_argument("--write-domain", metavar="FILE", help="save the 16-NIC domain XML")
    parser.add_argument("--write-map", metavar="FILE", help="save the receiving host's map")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="vifplug-bench-hook-"))
    try:
        return _main(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _main(args: argparse.Namespace, work: Path) -> int:
    domain = domain_xml()
    networks = work / "networks.toml"
    networks.write_text(networks_toml())
    if args.write_domain:
        Path(args.write_domain).write_bytes(domain)
    if args.write_map:
        Path(args.write_map).write_text(networks_toml())
    cache = None if args.no_bytecode_cache else str(work / "pycache")
    env = environment(networks, cache)

    check = subprocess.run([str(HOOK), "guest", "migrate", "begin", "-"], input=domain,
                           capture_output=True, env=env, cwd="/", check=False)
    assert check.returncode == 0, check.stderr.decode()
    assert check.stderr == b"", check.stderr.decode()
    check_rewrite(check.stdout)
    plain_env = None if args.no_plain_venv else plain_venv(work, env)
    editable_env = None if args.no_plain_venv else plain_venv(work, env, editable=True)
    table = commands(domain, plain_env, editable_env)
    if plain_env is not None:
        plain_check = subprocess.run(table[PLAIN + MIGRATE].argv, input=domain,
                                     capture_output=True, env=plain_env, cwd="/", check=False)
        assert plain_check.returncode == 0, plain_check.stderr.decode()
        check_rewrite(plain_check.stdout)
    print(f"checked: the migrate run rewrites all {INTERFACES} interfaces "
          f"({len(domain)} bytes in, {len(check.stdout)} out)")
    print(f"interpreter: {PYTHON3} -> {os.path.realpath(PYTHON3)} (Python "
          f"{sys.version.split()[0]}); hooks/qemu via '#!/usr/bin/env python3' with "
          f"{PYTHON3.parent} first on PATH")
    print(f"environment: {', '.join(f'{k}={v}' for k, v in env.items())}")
    print(f"\n{args.rounds} alternating rounds of fresh subprocesses; ratio = median / median "
          f"of {BASELINE!r}, min ratio = min / min (the plain venv's rows: of its own "
          "baseline)\n")
    medians = print_table(table, measure(table, env, args.rounds))
    other = medians[OTHER_OP] / medians[BASELINE]
    migrate = medians[MIGRATE] / medians[BASELINE]
    print(f"\ngoal non-migrate op <= {GOAL_OTHER_OP}x baseline: "
          f"{'met' if other <= GOAL_OTHER_OP else 'MISSED'} ({other:.2f}x)")
    print(f"goal migrate begin ({INTERFACES} NICs) <= {GOAL_MIGRATE}x baseline: "
          f"{'met' if migrate <= GOAL_MIGRATE else 'MISSED'} ({migrate:.2f}x)")
    if args.importtime:
        importtime(["-I", "-c", "pass"], None, env)
        importtime([str(HOOK), "guest", "started", "begin", "-"], None, env)
        importtime([str(HOOK), "guest", "migrate", "begin", "-"], domain, env, top=25)
        if plain_env is not None:
            plain_py = table[PLAIN + BASELINE].argv[0]
            importtime(["-I", "-c", "pass"], None, plain_env, python=plain_py)
            importtime([str(HOOK), "guest", "migrate", "begin", "-"], domain, plain_env,
                       top=40, python=plain_py)
    if args.phases:
        phases(domain, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
