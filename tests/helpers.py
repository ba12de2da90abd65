"""Test helpers shared by every suite: libvirt's RelaxNG schema, its test:///default driver,
XML tree compare.

Missing libvirt pieces skip the tests that need them, with the reason — except when
VIFPLUG_REQUIRE_LIBVIRT=1 (tests/run-all.sh, CI), where they are failures.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOMAIN_RNG = Path("/usr/share/libvirt/schemas/domain.rng")
REQUIRE_LIBVIRT = os.environ.get("VIFPLUG_REQUIRE_LIBVIRT") == "1"

_names = itertools.count()


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail when the run must prove libvirt (CI)."""
    if REQUIRE_LIBVIRT:
        pytest.fail(f"{reason} (VIFPLUG_REQUIRE_LIBVIRT=1: tests/run-all.sh installs it)")
    pytest.skip(reason)


def wrap_domain(devices: list[etree._Element], metadata: etree._Element | None = None,
                *, name: str | None = None) -> etree._Element:
    """A minimal domain holding ``devices`` (and a ``<metadata>`` child when given)."""
    domain = etree.Element("domain", type="test")
    etree.SubElement(domain, "name").text = name or f"vifplug-test-{os.getpid()}-{next(_names)}"
    etree.SubElement(domain, "memory", unit="KiB").text = "65536"
    if metadata is not None:
        etree.SubElement(domain, "metadata").append(metadata)
    os_ = etree.SubElement(domain, "os")
    etree.SubElement(os_, "type", arch="x86_64").text = "hvm"
    devs = etree.SubElement(domain, "devices")
    devs.extend(devices)
    return domain


class DomainChecker:
    """Validates domains with libvirt's RelaxNG and defines + starts them on test:///default."""

    def __init__(self, schema: etree.RelaxNG, conn: Any) -> None:
        self.schema = schema
        self.conn = conn

    def validate(self, domain: etree._Element) -> None:
        if not self.schema.validate(domain):
            raise AssertionError(
                f"libvirt's domain.rng rejects:\n{etree.tostring(domain, encoding='unicode')}\n"
                f"{self.schema.error_log}"
            )

    def start(self, domain: etree._Element) -> etree._Element:
        """Define (with libvirt's own validation) and start; return libvirt's live XML."""
        import libvirt

        xml = etree.tostring(domain, encoding="unicode")
        dom = self.conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        try:
            dom.create()
            live = etree.fromstring(dom.XMLDesc())
            dom.destroy()
        finally:
            dom.undefine()
        return live

    def check(self, interfaces: list[etree._Element],
              metadata: etree._Element | None = None) -> etree._Element:
        domain = wrap_domain(interfaces, metadata)
        self.validate(domain)
        return self.start(domain)


def tree(element: etree._Element) -> tuple[Any, ...]:
    """A comparable form of an element: tag, attributes and children, whitespace ignored."""
    text = (element.text or "").strip()
    return (element.tag, dict(element.attrib), text,
            tuple(tree(child) for child in element if isinstance(child.tag, str)))


def xml(text: str) -> etree._Element:
    """Parse an expected XML snippet (whitespace between elements is ignored by ``tree``)."""
    return etree.fromstring(text)
