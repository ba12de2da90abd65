"""The ``vifplug`` command: render, validate, explain, schema.

Exit codes: 0 ok; 2 bad input (the message names the file, the JSON path and what was expected;
nothing on the host is touched); 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from vifplug.errors import VifError, VifplugError

if TYPE_CHECKING:
    from vifplug.driver import GenericVIFDriver
    from vifplug.model import Vif

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is bad input: exit 2 with the message (argparse's own code)."""


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        return sub

    render = vif_command(
        "render", "print the libvirt <interface> XML",
        "Print one <interface> for a VIF object, or a <devices> holding one <interface> per "
        "VIF for an array.",
    )
    render.add_argument("--metadata", action="store_true",
                        help="print instead the domain's <vifplug:interfaces> metadata element "
                        "that the migration hook reads")
    render.set_defaults(handler=_render)
    vif_command("validate", "check vif.json and say which connection each VIF takes",
                "Check every rule of vif.json format 1 and that each VIF can be connected with "
                "the given options. Prints nothing but a summary when valid."
                ).set_defaults(handler=_validate)
    vif_command("explain", "say, for a person, how each VIF is connected and why",
                "For each VIF: the connection chosen, the reason, and the host devices it "
                "implies, drawn from the guest outwards.").set_defaults(handler=_explain)
    schema = commands.add_parser("schema", help="print the JSON Schema of vif.json",
                                 description="Print the JSON Schema (2020-12) of vif.json.")
    schema.set_defaults(handler=_schema)
    return parser


def _version() -> str:
    from vifplug import __version__

    return __version__


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the CLI; return the exit code."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
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
    from vifplug.model import parse_vif_json, vifs_from_data

    name: str = args.vif_json
    raw: str | bytes
    if name == "-":
        stdin = sys.stdin
        source, raw = "<stdin>", stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
    else:
        with open(name, "rb") as handle:
            source, raw = name, handle.read()
    data = parse_vif_json(raw, source)
    return vifs_from_data(data, source=source), isinstance(data, list), source


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

    driver, vifs, array, _ = _each(args)
    if args.metadata:
        element = driver.metadata_xml(vifs)
    elif array:
        element = driver.devices_xml(vifs)
    else:
        element = driver.interface_xml(vifs[0])
    out.write(tostring(element))
    return EXIT_OK


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    driver, vifs, _, source = _each(args)
    kinds = ", ".join(driver.select(vif).name for vif in vifs)
    noun = "VIF" if len(vifs) == 1 else "VIFs"
    print(f"{source}: valid ({len(vifs)} {noun}: {kinds})", file=out)
    return EXIT_OK


def _explain(args: argparse.Namespace, out: TextIO) -> int:
    driver, vifs, _, _ = _each(args)
    options = driver.options
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
    return EXIT_OK


def _schema(args: argparse.Namespace, out: TextIO) -> int:
    from vifplug.model import Vif

    json.dump(Vif.json_schema(), out, indent=2)
    out.write("\n")
    return EXIT_OK
