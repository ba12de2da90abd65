"""`vifplug hook install|uninstall`: where the hook goes, what it says, what it never does."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vifplug.cli import main
from vifplug.hook_install import MARKER, HookInstallError, install, uninstall


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    (tmp_path / "hooks").mkdir()
    return tmp_path


def test_install_into_qemu_d_names_the_interpreter_and_the_map(etc: Path) -> None:
    done = install(etc, networks="/srv/host-b/networks.toml", layout="qemu.d")
    assert done.path == etc / "hooks" / "qemu.d" / "vifplug"
    text = done.path.read_text()
    assert text.startswith(f"#!{sys.executable} -I\n")
    assert MARKER in text
    assert "VIFPLUG_NETWORKS\"] = '/srv/host-b/networks.toml'" in text
    assert os.access(done.path, os.X_OK)


def test_the_installed_hook_runs_without_an_environment(etc: Path, tmp_path: Path) -> None:
    networks = tmp_path / "networks.toml"
    # strict = false: this machine has no br-int; the device checks are test_preflight's
    networks.write_text('strict = false\n[networks.red]\nswitch = "ovs"\nbridge = "br-int"\n')
    hook = install(etc, networks=str(networks), layout="qemu").path
    domain = (b"<domain type='kvm'><name>g</name><devices><interface type='bridge'>"
              b"<mac address='fa:16:3e:00:00:01'/><source bridge='red'/></interface>"
              b"</devices></domain>")
    # libvirt runs hooks with (almost) no environment: no PATH, no PYTHONPATH
    result = subprocess.run([str(hook), "g", "migrate", "begin", "-"], input=domain,
                            capture_output=True, env={}, check=False)
    assert (result.returncode, result.stderr) == (0, b"")
    source = ET.fromstring(result.stdout).find("devices/interface/source")  # noqa: S314
    assert source is not None
    assert source.attrib == {"bridge": "br-int"}
    other = subprocess.run([str(hook), "g", "started", "begin", "-"], input=b"junk",
                           capture_output=True, env={}, check=False)
    assert (other.returncode, other.stdout, other.stderr) == (0, b"", b"")


def test_a_foreign_qemu_hook_is_never_overwritten(etc: Path) -> None:
    foreign = etc / "hooks" / "qemu"
    foreign.write_text("#!/bin/sh\necho site hook\n")
    with pytest.raises(HookInstallError, match="--force"):
        install(etc, layout="qemu")
    assert foreign.read_text() == "#!/bin/sh\necho site hook\n"
    code, out, err = run("hook", "install", "--libvirt-dir", str(etc), "--layout", "qemu")
    assert (code, out) == (2, "")
    assert "--force" in err
    # qemu.d leaves it alone entirely
    assert install(etc, layout="qemu.d").path.name == "vifplug"
    assert foreign.read_text() == "#!/bin/sh\necho site hook\n"


def test_force_backs_up_and_uninstall_restores(etc: Path) -> None:
    foreign = etc / "hooks" / "qemu"
    foreign.write_text("#!/bin/sh\necho site hook\n")
    done = install(etc, layout="qemu", force=True)
    assert done.backup == etc / "hooks" / "qemu.vifplug-backup"
    assert MARKER in foreign.read_text()
    assert uninstall(etc) == [foreign]
    assert foreign.read_text() == "#!/bin/sh\necho site hook\n"


def test_reinstall_replaces_our_own_and_uninstall_is_idempotent(etc: Path) -> None:
    install(etc, layout="qemu")
    install(etc, layout="qemu", networks="/x/networks.toml")
    assert "/x/networks.toml" in (etc / "hooks" / "qemu").read_text()
    assert uninstall(etc) == [etc / "hooks" / "qemu"]
    assert uninstall(etc) == []
    code, out, _ = run("hook", "uninstall", "--libvirt-dir", str(etc))
    assert (code, out) == (0, "no vifplug hook installed\n")


def test_bad_arguments(etc: Path, tmp_path: Path) -> None:
    with pytest.raises(HookInstallError, match="not a directory"):
        install(tmp_path / "absent")
    with pytest.raises(HookInstallError, match="absolute path"):
        install(etc, networks="relative/networks.toml")
