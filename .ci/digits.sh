#!/usr/bin/env bash
# Trains the digits example on the host and under QEMU on a Cortex-M4F
# (mps2-an386), a Cortex-M33 (mps2-an505) and an RV32IMAC (virt), and checks
# that:
# - the initial weights are the ones torch's reference run started from,
# - the loss stays within 1e-6 (relative) of torch's committed losses,
# - a full run reaches at least 95 % test accuracy,
# - every target ends with the same final weights, bit for bit, as the
#   digests committed below,
# - the Cortex-M4F program's peak stack, where all of its data lives, fits
#   in 64 KiB.
# Needs the thumbv7em-none-eabihf, thumbv8m.main-none-eabihf and
# riscv32imac-unknown-none-elf targets and qemu-system-arm and
# qemu-system-misc (.ci/install.sh), and python3 for the stack measurement
# (standard library only). No torch: the torch losses are in
# examples/data/digits_torch.csv.
set -euo pipefail
cd "$(dirname "$0")/.."

# Final weight digests printed by the example (FNV-1a over the f32 bits).
full_digest=0x9bed680bcdeb3c09  # 20 epochs, the default
short_digest=0x0b0f418707a0ce7f # DIGITS_EPOCHS=2
min_accuracy=95
max_loss_diff=1e-6

# One count per run: a run passes when all of its checks pass.
passed=0
failed=0
run_failed=0

fail() {
    echo "FAIL: $*"
    run_failed=1
}

# check NAME REPORT EXPECTED_DIGEST [MIN_ACCURACY]
check() {
    local name=$1 report=$2 digest=$3 accuracy=${4:-}
    run_failed=0

    grep -q "^initial weights: .*the same as torch's" <<<"$report" ||
        fail "$name: the initial weights differ from torch's"

    local diff
    diff=$(sed -n 's/^largest relative loss difference to torch: //p' <<<"$report")
    if [ -z "$diff" ]; then
        fail "$name: no loss difference in the report"
    elif ! awk -v d="$diff" -v max="$max_loss_diff" 'BEGIN { exit !(d <= max) }'; then
        fail "$name: relative loss difference $diff is above $max_loss_diff"
    fi

    local found
    found=$(sed -n 's/^final weights: digest //p' <<<"$report")
    [ "$found" = "$digest" ] ||
        fail "$name: final weights digest ${found:-missing}, expected $digest"

    if [ -n "$accuracy" ]; then
        local test_accuracy
        test_accuracy=$(sed -n 's/^test accuracy: \([0-9.]*\) %.*/\1/p' <<<"$report")
        if [ -z "$test_accuracy" ]; then
            fail "$name: no test accuracy in the report"
        elif ! awk -v a="$test_accuracy" -v min="$accuracy" 'BEGIN { exit !(a >= min) }'; then
            fail "$name: test accuracy $test_accuracy % is below $accuracy %"
        fi
    fi
    if [ "$run_failed" -eq 0 ]; then
        echo "$name: passed"
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
}

# run NAME COMMAND...: runs the example, shows its report and keeps it in
# $report.
run() {
    local name=$1
    shift
    echo "== digits: $name"
    local start=$SECONDS
    if ! report=$("$@"); then
        echo "$report"
        echo "FAIL: $name: the example exited with an error"
        failed=$((failed + 1))
        return 1
    fi
    echo "$report"
    echo "($name: $((SECONDS - start)) s including the build)"
}

# The host run uses the dev profile: `cargo test` has built it already,
# while a release build would first compile every dev-dependency again
# (about 100 s on 2 cores). The bits are the same in both profiles.
if run "host" cargo run --quiet --example digits; then
    check "host" "$report" "$full_digest" "$min_accuracy"
fi
if run "host, 2 epochs" env DIGITS_EPOCHS=2 cargo run --quiet --example digits; then
    check "host, 2 epochs" "$report" "$short_digest"
fi

# Bare-metal programs read DIGITS_EPOCHS when they are compiled.
if run "Cortex-M4F" cargo run --quiet --release --example digits --target thumbv7em-none-eabihf; then
    check "Cortex-M4F" "$report" "$full_digest" "$min_accuracy"
fi
# The training keeps everything on the stack, so its peak is all the RAM it
# needs. Hold it to 64 KiB, the RAM of a small Cortex-M4F part.
echo "== digits: Cortex-M4F peak stack"
if python3 examples/digits_stack.py --max 65536 \
    target/thumbv7em-none-eabihf/release/examples/digits; then
    echo "Cortex-M4F peak stack: passed"
    passed=$((passed + 1))
else
    echo "FAIL: Cortex-M4F peak stack"
    failed=$((failed + 1))
fi
if run "Cortex-M33" cargo run --quiet --release --example digits --target thumbv8m.main-none-eabihf; then
    check "Cortex-M33" "$report" "$full_digest" "$min_accuracy"
fi
# Without an FPU every float operation is a library call, so RV32IMAC runs
# 2 epochs only.
if run "RV32IMAC, 2 epochs" env DIGITS_EPOCHS=2 \
    cargo run --quiet --release --example digits --target riscv32imac-unknown-none-elf; then
    check "RV32IMAC, 2 epochs" "$report" "$short_digest"
fi

echo "digits: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
