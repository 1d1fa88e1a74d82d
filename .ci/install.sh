#!/usr/bin/env bash
# Installs the Debian packages and Rust targets that .ci/run needs. Safe to
# run again: installed packages and targets are skipped.
set -euo pipefail

targets=(
    thumbv7em-none-eabihf
    thumbv8m.main-none-eabihf
    thumbv6m-none-eabi
    riscv32imac-unknown-none-elf
    aarch64-unknown-linux-gnu
    wasm32-wasip1
)
rustup target add "${targets[@]}"
rustup component add rustfmt clippy

packages=(
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    gcc-arm-none-eabi libnewlib-arm-none-eabi
)
# The machine image carries qemu-utils from bookworm-backports, which
# conflicts with bookworm's QEMU 7.2, so QEMU comes from backports too.
qemu_packages=(qemu-system-arm qemu-system-misc qemu-user)

missing=()
for p in "${packages[@]}" "${qemu_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo "deb http://deb.debian.org/debian bookworm-backports main" \
            > /etc/apt/sources.list.d/bookworm-backports.list
    fi
    apt-get update -q
    apt-get install -y -q -t bookworm-backports "${qemu_packages[@]}"
    apt-get install -y -q "${packages[@]}"
fi
