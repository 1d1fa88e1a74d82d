#!/usr/bin/env bash
# Runs tests/conformance.rs on every supported target and fails unless every
# run passes and prints the same digest of its outputs. The runners (QEMU,
# qemu-aarch64, Node's WASI) come from .cargo/config.toml; each run is
# capped by `timeout`, both here and in the runners.
#
# Bare-metal targets run release builds: the debug image of the Cortex-M0
# does not fit the micro:bit's 256 KiB of flash. The Cortex-M4F runs both
# profiles, and the hosted targets run debug builds, which compile fastest.
#
# Usage: bash .ci/targets.sh     (about 5 minutes from a cold target/ on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."

# name | environment | cargo arguments
runs=(
    "x86-64|-|"
    "x86-64 forced portable|CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS=--cfg=adamw_no_runtime_dispatch|--target x86_64-unknown-linux-gnu"
    "x86-64-v3 (FMA3)|CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS=-Ctarget-cpu=x86-64-v3|--target x86_64-unknown-linux-gnu"
    "aarch64 (qemu-aarch64)|-|--target aarch64-unknown-linux-gnu"
    "wasm32-wasip1 (node)|-|--target wasm32-wasip1"
    "Cortex-M4F (mps2-an386)|-|--release --target thumbv7em-none-eabihf"
    "Cortex-M4F debug (mps2-an386)|-|--target thumbv7em-none-eabihf"
    "Cortex-M33 (mps2-an505)|-|--release --target thumbv8m.main-none-eabihf"
    "Cortex-M0 (microbit)|-|--release --target thumbv6m-none-eabi"
    "RV32IMAC (virt)|-|--release --target riscv32imac-unknown-none-elf"
)

status=0
reference=""
start=$SECONDS
for run in "${runs[@]}"; do
    IFS='|' read -r name environment arguments <<<"$run"
    env_args=()
    [ "$environment" != "-" ] && env_args=("$environment")
    log=$(mktemp)
    run_start=$SECONDS
    # shellcheck disable=SC2086 # the arguments are split on purpose
    if env "${env_args[@]}" timeout 900 cargo test --quiet $arguments --test conformance >"$log" 2>&1; then
        outcome=ok
    else
        outcome=FAILED
        status=1
    fi
    digest=$(sed -n 's/^digest: \([0-9a-f]*\)$/\1/p' "$log")
    backend=$(sed -n 's/^backend: //p' "$log")
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" || true)
    printf '%-30s %-6s digest %-16s %4ss  %-22s %s\n' "$name" "$outcome" "${digest:-none}" \
        $((SECONDS - run_start)) "${counts:-no counts}" "$backend"
    if [ "$outcome" != ok ] || [ -z "$digest" ]; then
        sed 's/^/    /' "$log" | tail -30
        status=1
    fi
    if [ -n "$digest" ]; then
        if [ -z "$reference" ]; then
            reference=$digest
        elif [ "$digest" != "$reference" ]; then
            echo "    FAILED: digest differs from the first target's $reference; the per-section"
            echo "    digests below show which part differs:"
            grep '^digest ' "$log" | sed 's/^/    /'
            status=1
        fi
    fi
    rm -f "$log"
done

echo "all targets: $((SECONDS - start))s"
if [ $status -eq 0 ]; then
    echo "every target printed digest $reference"
fi
exit $status
