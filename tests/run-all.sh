#!/usr/bin/env bash
# Run every test vifplug has (lint, unit, functional, integration, docs build) as root on a
# fresh Debian 12: installs the apt packages, the users libvirt needs and a venv itself.
# Idempotent: a second run installs nothing new. Usage: bash tests/run-all.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 libvirt-clients libvirt-dev
    pkg-config libxml2-utils openvswitch-switch ovn-central ovn-host iproute2 gcc
    # the real Linux guest (tests/fixtures/guest.py): a kernel and a busybox initramfs
    linux-image-cloud-amd64 busybox-static cpio
    # the peers that ping guests (tests/fixtures/pinger.py, segment.py)
    iputils-ping ethtool
)

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run-all.sh: run as root (network namespaces, OVS and libvirtd need it)" >&2
    exit 1
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# libvirtd runs QEMU as this user (ENVIRONMENT.md); harmless when they exist.
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null \
    || useradd -r -g kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

VENV=${VIFPLUG_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
echo "== pip install -e .[test,libvirt,lint,docs,os-vif] into $VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test,libvirt,lint,docs,os-vif]'
export PATH="$PWD/$VENV/bin:$PATH"

echo "== lint: ruff, mypy --strict"
ruff check vifplug tests bench
mypy

echo "== docs: mkdocs build --strict; the reference and every shown output are current"
mkdocs build --strict --quiet -f docs/mkdocs.yml --site-dir "$(mktemp -d)"
python docs/gen_reference.py --check
python docs/check_examples.py

echo "== tests: unit, functional, integration"
# Missing libvirt pieces are failures here, not skips: this is the run that proves them.
export VIFPLUG_REQUIRE_LIBVIRT=1
exec python -m pytest tests/unit tests/functional tests/integration "$@"
