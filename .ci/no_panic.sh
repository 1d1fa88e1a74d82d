#!/usr/bin/env bash
# Proves that the step functions have no panic path: builds .ci/no-panic, a
# bare-metal binary that calls StepScalars::new, apply, apply_scalar and
# adamw_step on black_box inputs, and whose panic handler calls a symbol
# that is defined nowhere. The link succeeds only if the optimiser removed
# every panic, so a failed link here means a panic path in the kernel.
#
# Usage: bash .ci/no_panic.sh     (about 1 to 2 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."

# RUSTFLAGS replaces the per-target rustflags of .cargo/config.toml, which
# link the conformance test against cortex-m-rt; this binary has its own
# entry point `_start` and no runtime.
export RUSTFLAGS="-C link-arg=--entry=_start"
manifest=.ci/no-panic/Cargo.toml

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
    if CARGO_PROFILE_RELEASE_OPT_LEVEL=$level CARGO_TARGET_DIR=target/no-panic/opt-$level \
        cargo build --release --quiet --manifest-path "$manifest" --target "$target" >"$log" 2>&1; then
        echo "no panic path: $target opt-level $level"
    else
        echo "FAILED: $target opt-level $level"
        if grep -q adamw_step_functions_reach_a_panic "$log"; then
            echo "  a panic path survived optimisation in the step functions"
        fi
        sed 's/^/  /' "$log" | tail -20
        status=1
    fi
    rm -f "$log"
done
exit $status
