#!/usr/bin/env bash
# Proves that the public functions have no panic path. It builds two
# bare-metal binaries whose panic handlers call a symbol that is defined
# nowhere, so each links only if the optimiser removed every panic:
# - .ci/no-panic calls StepScalars::new, apply, apply_scalar and adamw_step;
# - .ci/optimizer-no-panic calls the optimizer, clipping, schedule and
#   checkpoint functions.
# All inputs come through black_box, so no check is decided at compile time.
#
# Usage: bash .ci/no_panic.sh     (about 1 to 2 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."

# RUSTFLAGS replaces the per-target rustflags of .cargo/config.toml, which
# link the conformance test against cortex-m-rt; this binary has its own
# entry point `_start` and no runtime.
export RUSTFLAGS="-C link-arg=--entry=_start"
# crate folder under .ci | its undefined symbol | what it covers
crates=(
    "no-panic|adamw_step_functions_reach_a_panic|the step functions"
    "optimizer-no-panic|adamw_optimizer_functions_reach_a_panic|the optimizer, clipping, schedule or checkpoint functions"
)

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
for crate in "${crates[@]}"; do
    IFS='|' read -r folder symbol covered <<<"$crate"
    for build in "${builds[@]}"; do
        read -r target level <<<"$build"
        log=$(mktemp)
        if CARGO_PROFILE_RELEASE_OPT_LEVEL=$level CARGO_TARGET_DIR=target/$folder/opt-$level \
            cargo build --release --quiet --manifest-path ".ci/$folder/Cargo.toml" \
            --target "$target" >"$log" 2>&1; then
            echo "no panic path: $folder, $target opt-level $level"
        else
            echo "FAILED: $folder, $target opt-level $level"
            if grep -q "$symbol" "$log"; then
                echo "  a panic path survived optimisation in $covered"
            fi
            sed 's/^/  /' "$log" | tail -20
            status=1
        fi
        rm -f "$log"
    done
done
exit $status
