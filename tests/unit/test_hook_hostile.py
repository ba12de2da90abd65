"""The migration hook against hostile and broken input, and every one of its error paths.

Each file of tests/data/hostile/ (plus two inputs generated here: one over 10 MiB, one nested
100,000 levels deep) goes on stdin to ``migrate begin``, three ways: ``hooks/qemu`` as libvirt
runs it (a fresh subprocess, the venv's python3 first on PATH, ``VIFPLUG_NETWORKS`` naming a
small valid map), ``vifplug hook run`` (the CLI), and :func:`vifplug.hook.main` in process with
BytesIO streams. Refused: exit 1, nothing at all on stdout, exactly one line on stderr starting
with ``vifplug: ``. Accepted (the positive controls: comments and processing instructions, and an
XInclude that must stay an inert element): exit 0 and the interface rewritten.

Then the other error paths (a network this host lacks, a broken map), every operation that is
not ``migrate/restore begin`` (exit 0, no output, stdin never read, lxml never imported), and a
non-ASCII domain under ``LC_ALL=C`` (vdsm BZ 1795206).

A new file in tests/data/hostile/ must be added to ``CASES`` (``test_every_file_is_in_the_table``).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from lxml import etree

from vifplug import hook
from vifplug.hook import MAX_INPUT

REPO = Path(__file__).resolve().parents[2]
HOSTILE = REPO / "tests" / "data" / "hostile"
HOOK = REPO / "hooks" / "qemu"
VENV_BIN = Path(sys.executable).parent
PYTHON3 = VENV_BIN / "python3"
VIFPLUG = VENV_BIN / "vifplug"
NS = "http://vifplug.org/xmlns/vifplug/1"
MAC = "fa:16:3e:12:34:56"
TIMEOUT = 60

#: The receiving host's map: network 'red' is an OVS bridge with an access VLAN.
# strict = false: these tests are about the input; the device checks that would refuse the guest
# here (no br-int on this machine) are tested in test_preflight.py
MAP = 'strict = false\n[networks.red]\nswitch = "ovs"\nbridge = "br-int"\nvlan = 100\n'

class Case(NamedTuple):
    """One input: refused with ``fragment`` in the message, or accepted (``fragment`` empty)."""

    fragment: str

    @property
    def accepted(self) -> bool:
        return not self.fragment


WELL_FORMED = "domain XML is not well-formed"
DOCTYPE = "domain XML has a DOCTYPE or entity declarations; refused"
NOT_UTF8 = "domain XML is not UTF-8"

CASES: dict[str, Case] = {
    "not-well-formed.xml": Case(WELL_FORMED),
    "truncated.xml": Case(WELL_FORMED),
    "billion-laughs.xml": Case(DOCTYPE),
    "quadratic-blowup.xml": Case(DOCTYPE),
    "external-entity.xml": Case(DOCTYPE),  # file:///etc/passwd
    "external-dtd.xml": Case(DOCTYPE),  # SYSTEM "http://vifplug.invalid/domain.dtd"
    "parameter-entities.xml": Case(DOCTYPE),  # %eval; %exfil; out-of-band exfiltration
    "doctype-only.xml": Case(DOCTYPE),  # harmless, but libvirt never sends one
    "undefined-entity.xml": Case(f"{WELL_FORMED}: undefined entity"),
    # '<!' written as '+ADwAIQ-' under a UTF-7 declaration: read as the UTF-8 it must be,
    # that is junk before the root, never a DOCTYPE.
    "utf7-doctype-xxe.xml": Case(f"{WELL_FORMED}: not well-formed (invalid token)"),
    "utf7-billion-laughs.xml": Case(f"{WELL_FORMED}: not well-formed (invalid token)"),
    "latin1.xml": Case(NOT_UTF8),
    "utf16-bom.xml": Case(NOT_UTF8),
    "utf16le-no-bom.xml": Case("domain XML contains NUL bytes"),
    # Accepted, and read as the UTF-8 it is whatever the declaration says (see
    # test_encoding_declaration_does_not_change_the_text).
    "encoding-declared-latin1.xml": Case(""),
    "wrong-root.xml": Case("expected a <domain> document, got <network>"),
    "namespaced-root.xml": Case("expected a <domain> document, got <{urn:not-libvirt}domain>"),
    "empty.xml": Case(f"{WELL_FORMED}: no element found"),
    "whitespace-only.xml": Case(WELL_FORMED),
    "two-roots.xml": Case(f"{WELL_FORMED}: junk after document element"),
    "nul-bytes.xml": Case("domain XML contains NUL bytes"),
    "pi-and-comments.xml": Case(""),  # positive control
    "xinclude.xml": Case(""),  # accepted, the xi:include left as an inert element
}


def _realistic(size: int) -> bytes:
    """A valid domain of exactly ``size`` bytes: the guest of the corpus padded with comments."""
    base = (HOSTILE / "pi-and-comments.xml").read_bytes()
    cut = base.index(b"  </devices>")
    pad = b"    <!-- " + b"x" * 65000 + b" -->\n"
    room = size - len(base)
    body = pad * (room // len(pad))
    body += b" " * (room - len(body))
    data = base[:cut] + body + base[cut:]
    assert len(data) == size
    return data


def _deep() -> bytes:
    base = (HOSTILE / "pi-and-comments.xml").read_bytes()
    cut = base.index(b"  </devices>")
    return base[:cut] + b"<a>" * 100_000 + b"</a>" * 100_000 + base[cut:]


GENERATED: dict[str, tuple[Callable[[], bytes], Case]] = {
    "oversize (10 MiB + 1 byte)": (lambda: _realistic(MAX_INPUT + 1),
                                   Case("domain XML is larger than 10 MiB")),
    "nested 100,000 levels": (_deep, Case("domain XML is nested more than 256 levels deep")),
}


def _inputs() -> list[Any]:
    params = []
    for name, case in CASES.items():
        params.append(pytest.param(name, case, id=name))
    for name, (_, case) in GENERATED.items():
        params.append(pytest.param(name, case, id=name))
    return params


def data_of(name: str) -> bytes:
    if name in GENERATED:
        return GENERATED[name][0]()
    return (HOSTILE / name).read_bytes()


@pytest.fixture
def networks(tmp_path: Path) -> Path:
    path = tmp_path / "networks.toml"
    path.write_text(MAP)
    return path


def hook_env(networks: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("VIFPLUG_NETWORKS", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["VIFPLUG_NETWORKS"] = str(networks)
    env.update(extra)
    return env


class Run(NamedTuple):
    code: int
    stdout: bytes
    stderr: bytes


def run_hook(args: list[str], stdin: bytes | int, networks: Path, *, via: str = "hooks/qemu",
             env: dict[str, str] | None = None) -> Run:
    """Run the hook as libvirt does (``hooks/qemu``) or through ``vifplug hook run``."""
    command = [str(HOOK), *args] if via == "hooks/qemu" else [str(VIFPLUG), "hook", "run", *args]
    kwargs: dict[str, Any] = ({"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin})
    result = subprocess.run(command, capture_output=True, timeout=TIMEOUT, check=False,
                            env=env or hook_env(networks), cwd="/", **kwargs)
    return Run(result.returncode, result.stdout, result.stderr)


def run_in_process(args: list[str], stdin: bytes, networks: Path | None) -> Run:
    out, err = io.BytesIO(), io.StringIO()
    code = hook.main(args, io.BytesIO(stdin), out, err,
                     networks=str(networks) if networks is not None else None)
    return Run(code, out.getvalue(), err.getvalue().encode("utf-8"))


def assert_refused(run: Run, fragment: str) -> None:
    assert run.code == 1, run
    assert run.stdout == b""
    message = run.stderr.decode("utf-8", "replace")
    assert message.startswith("vifplug: "), message
    assert fragment in message, message


def assert_one_line(run: Run) -> None:
    assert run.stderr.endswith(b"\n")
    assert run.stderr.count(b"\n") == 1, run.stderr


def assert_rewritten(run: Run, source: bytes) -> etree._Element:
    """Exit 0, nothing on stderr, the interface now on OVS br-int with VLAN 100."""
    assert run.code == 0, run
    assert run.stderr == b""
    root = etree.fromstring(run.stdout)
    iface = root.find("devices/interface")
    assert iface is not None
    assert iface.get("type") == "bridge"
    assert iface.find("source").attrib == {"bridge": "br-int"}  # type: ignore[union-attr]
    assert iface.find("virtualport").get("type") == "openvswitch"  # type: ignore[union-attr]
    assert iface.find("vlan/tag").get("id") == "100"  # type: ignore[union-attr]
    # the text as the UTF-8 it is, whatever an XML declaration claims (libvirt writes UTF-8)
    original = etree.fromstring(source, etree.XMLParser(encoding="utf-8"))
    assert root.findtext("name") == original.findtext("name")
    return root


RUNNERS = ["hooks/qemu", "vifplug hook run", "in process"]


def run_any(runner: str, args: list[str], data: bytes, networks: Path) -> Run:
    if runner == "in process":
        return run_in_process(args, data, networks)
    return run_hook(args, data, networks, via=runner)


# --- the corpus ---------------------------------------------------------------------------------


def test_every_file_is_in_the_table() -> None:
    assert sorted(p.name for p in HOSTILE.iterdir()) == sorted(CASES)
    assert len(CASES) + len(GENERATED) >= 14


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(("name", "case"), _inputs())
def test_hostile_input(name: str, case: Case, runner: str, networks: Path) -> None:
    data = data_of(name)
    run = run_any(runner, ["guest", "migrate", "begin", "-"], data, networks)
    if case.accepted:
        assert_rewritten(run, data)
    else:
        assert_refused(run, case.fragment)
        assert_one_line(run)


@pytest.mark.parametrize(("declared", "name"), [
    ("ISO-8859-1", "gæst-Überprüfung"),  # UTF-8 bytes read as Latin-1: 'gÃ¦st-Ã\x9cberprÃ¼fung'
    ("UTF-7", "g+AOY-st-+ANw-berpr+APw-fung"),  # ASCII read as UTF-7: 'gæst-Überprüfung'
])
def test_encoding_declaration_does_not_change_the_text(declared: str, name: str,
                                                       networks: Path) -> None:
    data = (HOSTILE / "encoding-declared-latin1.xml").read_bytes()
    data = data.replace(b'encoding="ISO-8859-1"', f'encoding="{declared}"'.encode())
    data = data.replace("gæst-Überprüfung".encode(), name.encode())
    run = run_hook(["guest", "migrate", "begin", "-"], data, networks)
    if run.code == 1:  # refusing it is fine too
        assert_refused(run, "")
        assert_one_line(run)
        return
    root = assert_rewritten(run, data)
    assert root.findtext("name") == name


def test_pi_and_comments_are_kept(networks: Path) -> None:
    data = (HOSTILE / "pi-and-comments.xml").read_bytes()
    run = run_hook(["guest", "migrate", "begin", "-"], data, networks)
    root = assert_rewritten(run, data)
    devices = root.find("devices")
    assert devices is not None
    kept = [(type(node).__name__, (node.text or "").strip()) for node in devices
            if not isinstance(node.tag, str)]
    assert kept == [("_Comment", "a comment among the devices"),
                    ("_ProcessingInstruction", "pi")]
    assert b"<?another pi?>" in run.stdout


@pytest.mark.parametrize("runner", RUNNERS)
def test_xinclude_is_not_processed(runner: str, networks: Path) -> None:
    data = (HOSTILE / "xinclude.xml").read_bytes()
    run = run_any(runner, ["guest", "migrate", "begin", "-"], data, networks)
    root = assert_rewritten(run, data)
    include = root.find("description/{http://www.w3.org/2001/XInclude}include")
    assert include is not None
    assert include.attrib == {"href": "file:///etc/passwd", "parse": "text"}
    assert root.findtext("description") == ""
    assert b"root:" not in run.stdout
    assert b"/bin/" not in run.stdout


def test_exactly_10_mib_is_accepted(networks: Path) -> None:
    data = _realistic(MAX_INPUT)
    run = run_hook(["guest", "migrate", "begin", "-"], data, networks)
    assert_rewritten(run, data)


def test_hostile_input_via_restore_begin(networks: Path) -> None:
    """restore begin rewrites too, so it refuses the same input."""
    run = run_hook(["guest", "restore", "begin", "-"], data_of("external-entity.xml"), networks)
    assert_refused(run, DOCTYPE)
    assert_one_line(run)


# --- other error paths ---------------------------------------------------------------------------

DOMAIN = (HOSTILE / "pi-and-comments.xml").read_bytes()


@pytest.mark.parametrize("runner", RUNNERS)
def test_network_not_on_this_host(runner: str, tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text('[networks.blue]\nswitch = "legacy"\n')
    run = run_any(runner, ["guest", "migrate", "begin", "-"], DOMAIN, path)
    assert run.code == 1
    assert run.stdout == b""
    assert run.stderr.decode() == (f"vifplug: interface {MAC}: network 'red' is not defined on "
                                   f"this host ({path})\n")


class BrokenMap(NamedTuple):
    text: str | None  # None: the file does not exist
    line: int | None  # the line the message must name as FILE:LINE
    fragment: str


BROKEN_MAPS: dict[str, BrokenMap] = {
    "bad TOML": BrokenMap('[networks.red]\nbridge = "red"\nswitch = legacy\n', 3,
                          "not valid TOML"),
    "duplicate key": BrokenMap('[networks.red]\nswitch = "legacy"\nswitch = "ovs"\n', 3,
                               "not valid TOML"),
    "unknown key": BrokenMap('[networks.red]\nswitch = "legacy"\ncolour = "red"\n', 3,
                             "networks.red.colour: unknown key for switch 'legacy'"),
    "vlan out of range": BrokenMap(
        '[networks.red]\nswitch = "ovs"\nbridge = "br-int"\nvlan = 4095\n', 4,
        "networks.red.vlan: must be between 1 and 4094 (got 4095)"),
    "vlan 0": BrokenMap('[networks.red]\nswitch = "ovs"\nbridge = "br-int"\nvlan = 0\n', 4,
                        "networks.red.vlan: must be between 1 and 4094 (got 0)"),
    "unknown switch": BrokenMap('\n[networks.red]\nswitch = "linuxbridge"\n', 3,
                                "networks.red.switch: must be one of"),
    "missing file": BrokenMap(None, None, "cannot read the network map: No such file"),
}


def _broken_params() -> list[Any]:
    return [pytest.param(name, case, id=name) for name, case in BROKEN_MAPS.items()]


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(("name", "case"), _broken_params())
def test_broken_map(name: str, case: BrokenMap, runner: str, tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    if case.text is not None:
        path.write_text(case.text)
    run = run_any(runner, ["guest", "migrate", "begin", "-"], DOMAIN, path)
    assert_refused(run, case.fragment)
    assert_one_line(run)
    message = run.stderr.decode()
    assert message.startswith(f"vifplug: {path}")
    if case.line is not None:
        assert f"line {case.line}" in message or f"{path}:{case.line}:" in message


@pytest.mark.parametrize(("name", "case"), [
    pytest.param(name, case, id=name)
    for name, case in BROKEN_MAPS.items() if case.line is not None])
def test_broken_map_names_file_colon_line(name: str, case: BrokenMap, tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text(case.text or "")
    run = run_hook(["guest", "migrate", "begin", "-"], DOMAIN, path)
    assert_refused(run, case.fragment)
    assert run.stderr.decode().startswith(f"vifplug: {path}:{case.line}: ")


def test_broken_map_is_reported_before_stdin_is_read(tmp_path: Path) -> None:
    """The map is checked first: even an empty stdin gets the map's error, not the XML's."""
    run = run_hook(["guest", "migrate", "begin", "-"], b"", tmp_path / "absent.toml")
    assert_refused(run, "cannot read the network map")


# --- every other operation ----------------------------------------------------------------------

OTHER_OPS = [("prepare", "begin"), ("start", "begin"), ("started", "begin"), ("stopped", "end"),
             ("release", "end"), ("reconnect", "begin"), ("migrate", "end"), ("restore", "end"),
             ("attach", "begin")]


@pytest.fixture
def unreadable_stdin() -> Any:
    """A stdin any read of which fails (EBADF): /dev/null opened write-only."""
    fd = os.open(os.devnull, os.O_WRONLY)
    yield fd
    os.close(fd)


def imported(importtime_log: str) -> list[str]:
    """The module names of a ``python -X importtime`` log."""
    return [line.rsplit("|", 1)[1].strip() for line in importtime_log.splitlines()
            if line.startswith("import time:") and "cumulative" not in line]


def test_the_unreadable_stdin_would_fail(unreadable_stdin: int, networks: Path) -> None:
    """The control: migrate begin does read stdin, and fails on it."""
    run = run_hook(["guest", "migrate", "begin", "-"], unreadable_stdin, networks)
    assert_refused(run, "unexpected error: OSError")
    assert_one_line(run)


@pytest.mark.parametrize(("op", "subop"), OTHER_OPS)
def test_other_ops_do_nothing_and_import_nothing(op: str, subop: str, unreadable_stdin: int,
                                                 tmp_path: Path) -> None:
    # A missing map too: nothing of the hook's may be looked at.
    env = hook_env(tmp_path / "absent.toml")
    result = subprocess.run([str(PYTHON3), "-X", "importtime", str(HOOK), "guest", op, subop, "-"],
                            stdin=unreadable_stdin, capture_output=True, timeout=TIMEOUT,
                            env=env, check=False, cwd="/")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == b""
    log = result.stderr.decode()
    modules = imported(log)
    assert modules, "no import log"
    assert all(line.startswith("import time:") for line in log.splitlines())  # nothing else
    assert not [m for m in modules if m == "lxml" or m.startswith("lxml.")]
    assert not [m for m in modules if m == "vifplug" or m.startswith("vifplug.")]
    assert "lxml" not in log


@pytest.mark.parametrize(("op", "subop"), OTHER_OPS)
def test_other_ops_via_plain_hook(op: str, subop: str, unreadable_stdin: int,
                                  tmp_path: Path) -> None:
    """As libvirt runs it, through the shebang (no -X importtime)."""
    run = run_hook(["guest", op, subop, "-"], unreadable_stdin, tmp_path / "absent.toml")
    assert run == Run(0, b"", b"")


class _Untouchable(io.RawIOBase):
    """A stream that fails the test on any read or write."""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("stdin was read")

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("stdin was read")

    def write(self, data: Any) -> int:
        raise AssertionError("written")


@pytest.mark.parametrize(("op", "subop"), [op for op in OTHER_OPS if op != ("release", "end")])
def test_other_ops_in_process(op: str, subop: str, tmp_path: Path) -> None:
    out, err = io.BytesIO(), io.StringIO()
    code = hook.main(["guest", op, subop, "-"], _Untouchable(), out, err,
                     networks=str(tmp_path / "absent.toml"))
    assert (code, out.getvalue(), err.getvalue()) == (0, b"", "")


def test_release_reads_the_xml_and_never_fails(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """release end reads the domain XML (the hybrid paths of a switch transition to remove);
    whatever it holds, libvirt's release goes on: exit 0, nothing on stdout."""
    monkeypatch.setenv("VIFPLUG_POOLS", str(tmp_path / "absent.json"))
    for stdin in (_Untouchable(), io.BytesIO(b"<domain"), io.BytesIO(b"")):
        out, err = io.BytesIO(), io.StringIO()
        code = hook.main(["guest", "release", "end", "-"], stdin, out, err,
                         networks=str(tmp_path / "absent.toml"))
        assert (code, out.getvalue()) == (0, b"")
        assert err.getvalue().count("\n") <= 1


@pytest.mark.parametrize("argv", [[], ["guest"], ["guest", "migrate"], ["guest", "begin"]])
def test_short_argv_does_nothing(argv: list[str], unreadable_stdin: int, networks: Path) -> None:
    assert run_hook(argv, unreadable_stdin, networks) == Run(0, b"", b"")
    out, err = io.BytesIO(), io.StringIO()
    assert hook.main(argv, _Untouchable(), out, err, networks=str(networks)) == 0
    assert (out.getvalue(), err.getvalue()) == (b"", "")


# --- non-ASCII under LC_ALL=C (vdsm BZ 1795206) --------------------------------------------------

NAME = "gæst-Überprüfung"
DESCRIPTION = "日本語"


def non_ascii_domain() -> bytes:
    data = DOMAIN.replace(b"<name>guest</name>", f"<name>{NAME}</name>".encode())
    return data.replace(b"  <metadata>",
                        f"  <description>{DESCRIPTION}</description>\n  <metadata>".encode())


LOCALES = {
    "LC_ALL=C": {"LC_ALL": "C", "LANG": "C"},
    # No locale coercion and no UTF-8 mode: stdio really is ASCII.
    "LC_ALL=C strict": {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0",
                        "PYTHONUTF8": "0"},
}


@pytest.mark.parametrize("via", ["hooks/qemu", "vifplug hook run"])
@pytest.mark.parametrize("locale", list(LOCALES))
def test_non_ascii_domain_under_c_locale(locale: str, via: str, networks: Path) -> None:
    env = hook_env(networks, **LOCALES[locale])
    for name in ("PYTHONIOENCODING", "LC_CTYPE"):
        env.pop(name, None)
    data = non_ascii_domain()
    run = run_hook(["gæst-Überprüfung", "migrate", "begin", "-"], data, networks, via=via,
                   env=env)
    root = assert_rewritten(run, data)
    assert root.findtext("name") == NAME
    assert root.findtext("description") == DESCRIPTION
    assert NAME.encode() in run.stdout  # as UTF-8, not as character references


def test_non_ascii_domain_in_process(networks: Path) -> None:
    data = non_ascii_domain()
    root = assert_rewritten(run_in_process(["gæst", "migrate", "begin", "-"], data, networks),
                            data)
    assert (root.findtext("name"), root.findtext("description")) == (NAME, DESCRIPTION)


# --- the CLI in process --------------------------------------------------------------------------

def test_cli_hook_run_in_process(networks: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vifplug.cli import main

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(DOMAIN), encoding="utf-8"))
    out, err = io.StringIO(), io.StringIO()
    code = main(["hook", "run", "--networks", str(networks), "guest", "migrate", "begin", "-"],
                out, err)
    assert (code, err.getvalue()) == (0, "")
    assert_rewritten(Run(0, out.getvalue().encode(), b""), DOMAIN)
