#!/usr/bin/env bash
# Proves that the optimizer, clipping, schedule and checkpoint functions have
# no panic path: builds .ci/optimizer-no-panic, a bare-metal binary that calls
# them on black_box inputs, and whose panic handler calls a symbol that is
# defined nowhere. The link succeeds only if the optimiser removed every
# panic, so a failed link here means a panic path in that code.
#
# Usage: bash .ci/optimizer_no_panic.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The binary has its own entry point `_start` and no runtime; RUSTFLAGS also
# replaces the per-target rustflags of .cargo/config.toml.
export RUSTFLAGS="-C link-arg=--entry=_start"
manifest=.ci/optimizer-no-panic/Cargo.toml

# target, opt-level: the default release level everywhere, and the size
# levels that firmware often uses on the Cortex-M4F.
builds=(
    "thumbv7em-none-eabihf 3"
    "thumbv7em-none-eabihf s"
    "thumbv7em-none-eabihf z"
    "thumbv8m.main-none-eabihf 3"
    "thumbv6m-none-eabi 3"
    "riscv32imac-unknown-none-elf 3"
)

status=0
for build in "${builds[@]}"; do
    read -r target level <<<"$build"
    log=$(mktemp)
    if CARGO_PROFILE_RELEASE_OPT_LEVEL=$level CARGO_TARGET_DIR=target/optimizer-no-panic/opt-$level \
        cargo build --release --quiet --manifest-path "$manifest" --target "$target" >"$log" 2>&1; then
        echo "no panic path: $target opt-level $level"
    else
        echo "FAILED: $target opt-level $level"
        if grep -q adamw_optimizer_functions_reach_a_panic "$log"; then
            echo "  a panic path survived optimisation in the optimizer functions"
        fi
        sed 's/^/  /' "$log" | tail -20
        status=1
    fi
    rm -f "$log"
done
exit $status
