#!/usr/bin/env bash
# Prepare this (Debian, x86_64, root) host for the cross end-to-end suite:
# Debian's cross compilers and qemu user-mode emulation with binfmt_misc, so
# that aarch64 and armv7 binaries run directly (subprocesses included).
# Idempotent: installs only what is missing, mounts binfmt_misc only if it is
# not mounted, registers only the interpreters not registered yet.
# Called by .ci/run; never by pytest (plain `python -m pytest` changes nothing).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(qemu-user-static gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf binutils-aarch64-linux-gnu
          binutils-arm-linux-gnueabihf linux-libc-dev-arm64-cross linux-libc-dev-armhf-cross python3.11 ccache)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || { apt-get -o DPkg::Lock::Timeout=600 update -qq &&
             apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

BINFMT=/proc/sys/fs/binfmt_misc
if [ ! -e "$BINFMT/register" ]; then
    mount -t binfmt_misc binfmt_misc "$BINFMT"
fi
for name in qemu-aarch64 qemu-arm; do
    conf=/usr/lib/binfmt.d/$name.conf
    [ -f "$conf" ] || { echo "ci_cross: $conf missing" >&2; exit 1; }
    if [ ! -e "$BINFMT/$name" ]; then
        # The conf line is ':name:type:offset:magic:mask:interpreter:flags'.
        grep -v '^#' "$conf" | grep . > "$BINFMT/register"
    fi
    grep -q '^enabled' "$BINFMT/$name" || { echo "ci_cross: $name not enabled" >&2; exit 1; }
done
echo "ci_cross: qemu-aarch64 and qemu-arm registered ($(qemu-aarch64-static --version | head -1))"
