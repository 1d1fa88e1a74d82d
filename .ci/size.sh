#!/usr/bin/env bash
# Measures the Cortex-M4F step function in the .ci/no-panic binary
# (thumbv7em-none-eabihf, release, opt-level 3):
# - the code size of the two `kernel::apply_mode` monomorphs (fused and
#   unfused rounding), which must total at most 1.5 KiB;
# - that they use VSQRT.F32 and VDIV.F32, that exactly one of them (the
#   fused one) uses VFMA.F32, and that neither calls any routine, so no
#   software float (__aeabi_*, sqrtf, fmaf) is left in the step;
# - an estimate of cycles per element: every instruction of the loop counted
#   once with Cortex-M4 timings (VSQRT.F32 and VDIV.F32 14, VFMA.F32 and
#   VMLA.F32 3, loads and stores 2, anything else 1). Branches around the
#   flag-dependent code are counted on both sides, so the estimate is an
#   upper bound for the default flags.
#
# Needs arm-none-eabi-nm and arm-none-eabi-objdump (Debian binutils-arm-none-eabi).
# Usage: bash .ci/size.sh     (under a minute when .ci/no_panic.sh ran first)
set -euo pipefail
cd "$(dirname "$0")/.."

max_bytes=1536
target=thumbv7em-none-eabihf
target_dir=target/no-panic/opt-3
elf=$target_dir/$target/release/adamw-no-panic

RUSTFLAGS="-C link-arg=--entry=_start" CARGO_PROFILE_RELEASE_OPT_LEVEL=3 \
    CARGO_TARGET_DIR=$target_dir \
    cargo build --release --quiet --manifest-path .ci/no-panic/Cargo.toml --target $target

mapfile -t symbols < <(arm-none-eabi-nm -S "$elf" | awk '$4 ~ /kernel10apply_mode/ { print $1, $2, $4 }')
if [ ${#symbols[@]} -ne 2 ]; then
    echo "FAILED: expected 2 apply_mode functions (fused, unfused), found ${#symbols[@]}"
    exit 1
fi

status=0
total=0
fused_count=0
for entry in "${symbols[@]}"; do
    read -r address size name <<<"$entry"
    bytes=$((16#$size))
    total=$((total + bytes))
    start=$((16#$address))
    # Thumb symbols have bit 0 clear in nm's output; the range is [start, start + size).
    listing=$(arm-none-eabi-objdump -d --no-show-raw-insn \
        --start-address=$start --stop-address=$((start + bytes)) "$elf" |
        awk -F'\t' 'NF >= 2 && $1 ~ /^ *[0-9a-f]+:$/ { print $1 "\t" $2 "\t" $3 }')

    kind=unfused
    if grep -qP '\tvfma\.f32' <<<"$listing"; then
        kind=fused
        fused_count=$((fused_count + 1))
    fi
    echo "apply_mode ($kind): $bytes bytes ($name)"

    for mnemonic in vsqrt.f32 vdiv.f32; do
        if ! grep -qP "\t$mnemonic" <<<"$listing"; then
            echo "  FAILED: no $mnemonic"
            status=1
        fi
    done
    calls=$(grep -P '\t(bl|blx)\t|__aeabi_|sqrtf|fmaf' <<<"$listing" || true)
    if [ -n "$calls" ]; then
        echo "  FAILED: calls or software float routines in the step:"
        sed 's/^/    /' <<<"$calls"
        status=1
    fi

    # Each loop spans from the target of a backward branch to that branch;
    # overlapping spans (a loop with several back edges) are merged.
    awk -F'\t' '
        function hex(s,    i, v) {
            v = 0
            for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
            return v
        }
        function cost(op) {
            if (op ~ /^(vsqrt|vdiv)/) return 14
            if (op ~ /^(vfma|vfms|vmla|vmls)/) return 3
            if (op ~ /^(vldr|vstr|ldr|str)/) return 2
            return 1
        }
        {
            gsub(/[ :]/, "", $1)
            a[NR] = hex($1); op[NR] = $2
            if ($2 ~ /^b/ && match($3, /^[0-9a-f]+/)) {
                t = hex(substr($3, RSTART, RLENGTH))
                if (t < a[NR]) { loops++; lo[loops] = t; hi[loops] = a[NR] }
            }
        }
        END {
            # Merge overlapping spans (sorted by start with a simple insertion sort).
            for (i = 2; i <= loops; i++)
                for (j = i; j > 1 && lo[j] < lo[j - 1]; j--) {
                    x = lo[j]; lo[j] = lo[j - 1]; lo[j - 1] = x
                    x = hi[j]; hi[j] = hi[j - 1]; hi[j - 1] = x
                }
            merged = 0
            for (i = 1; i <= loops; i++) {
                if (merged > 0 && lo[i] <= mhi[merged]) {
                    if (hi[i] > mhi[merged]) mhi[merged] = hi[i]
                } else { merged++; mlo[merged] = lo[i]; mhi[merged] = hi[i] }
            }
            for (k = 1; k <= merged; k++) {
                n = 0; c = 0
                for (i = 1; i <= NR; i++)
                    if (a[i] >= mlo[k] && a[i] <= mhi[k]) { n++; c += cost(op[i]) }
                printf "  loop at %x: %d instructions, estimate at most %d cycles per element\n", mlo[k], n, c
            }
        }' <<<"$listing"
done

echo "step function total: $total bytes (limit $max_bytes)"
if [ $total -gt $max_bytes ]; then
    echo "FAILED: the step function is larger than $max_bytes bytes"
    status=1
fi
if [ $fused_count -ne 1 ]; then
    echo "FAILED: expected VFMA.F32 in exactly the fused monomorph, found it in $fused_count"
    status=1
fi
exit $status
