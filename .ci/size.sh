#!/usr/bin/env bash
# Measures the Cortex-M4F step functions in the .ci/no-panic binary
# (thumbv7em-none-eabihf, release, opt-level 3):
# - the code size of the two `kernel::apply_mode` monomorphs (fused and
#   unfused rounding) and of the two `arch::cortex_m::plain_loop` monomorphs
#   (the asm loops for the common flags), which must total at most 1.5 KiB;
# - that each of the four uses VSQRT.F32 and VDIV.F32, that exactly the
#   fused ones use VFMA.F32, that no software float routine (__aeabi_*,
#   sqrtf, fmaf) is called, and that apply_mode calls nothing but
#   plain_loop;
# - an estimate of cycles per element for each loop (see `estimate` below).
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

# Prints "address<TAB>mnemonic<TAB>operands" for each instruction of the
# function at hex address $1 with hex size $2. Thumb symbols have bit 0
# clear in nm's output; the range is [start, start + size).
listing() {
    local start=$((16#$1)) bytes=$((16#$2))
    arm-none-eabi-objdump -d --no-show-raw-insn \
        --start-address=$start --stop-address=$((start + bytes)) "$elf" |
        awk -F'\t' 'NF >= 2 && $1 ~ /^ *[0-9a-f]+:$/ { print $1 "\t" $2 "\t" $3 }'
}

# A call: BL or BLX, with an optional condition (BLNE), but not a
# conditional branch such as BLT or BLS.
call='^blx?(eq|ne|cs|cc|hs|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?(\.[nw])?$'

# Prints one estimate of cycles per element for each loop in the listing of
# the function at hex address $1. A loop spans from the target of a backward
# branch within the function to that branch, and overlapping spans (a loop
# with several back edges) are merged. The estimate is not a measurement. It
# walks the loop once, in order, with these Cortex-M4 timings:
# - VSQRT.F32 and VDIV.F32: 1 cycle to issue, result ready 14 cycles after
#   issue. Later instructions issue meanwhile, except one that reads or
#   writes that result or starts another VSQRT or VDIV, which waits for it.
#   This overlap is an assumption about the M4's FPU that QEMU cannot check.
# - VFMA.F32 and VMLA.F32: 3.
# - VLDR, VLDM and LDR: 2, or 1 right after another load.
# - VSTR, VSTM and STR: 2.
# - The backward branch: 3, which is 1 plus the pipeline refill.
# - Anything else (VMUL, VADD, VSUB, VMOV, ADD, SUBS): 1.
# It ignores wait states and bus contention. Branches around flag-dependent
# code are counted on both sides, so for the generic loop the estimate is an
# upper bound for any one set of flags.
estimate() {
    awk -F'\t' -v start="$1" -v call="$call" '
        function hex(s,    i, v) {
            v = 0
            for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
            return v
        }
        function is_load(o) { return o ~ /^(vldr|vldm|ldr|ldm|vpop|pop)/ }
        function cost(o, previous) {
            if (o ~ /^(vsqrt|vdiv)/) return 1
            if (o ~ /^(vfma|vfms|vmla|vmls|vfnm|vnml)/) return 3
            if (is_load(o)) return is_load(previous) ? 1 : 2
            if (o ~ /^(vstr|vstm|str|stm|vpush|push)/) return 2
            return 1
        }
        {
            gsub(/[ :]/, "", $1)
            a[NR] = hex($1); op[NR] = $2; args[NR] = $3
            if ($2 ~ /^b/ && $2 !~ call && match($3, /^[0-9a-f]+/)) {
                t = hex(substr($3, RSTART, RLENGTH))
                if (t < a[NR] && t >= hex(start)) { loops++; lo[loops] = t; hi[loops] = a[NR] }
            }
        }
        END {
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
                n = 0; clock = 0; ready = 0; pending = ""; previous = ""
                for (i = 1; i <= NR; i++) {
                    if (a[i] < mlo[k] || a[i] > mhi[k]) continue
                    n++
                    o = op[i]
                    # Wait for a VSQRT or VDIV result that this instruction
                    # uses, or for the unit when it starts another one.
                    if (clock < ready) {
                        waits = (o ~ /^(vsqrt|vdiv)/)
                        rest = args[i]
                        while (!waits && match(rest, /[sd][0-9]+/)) {
                            if (substr(rest, RSTART, RLENGTH) == pending) waits = 1
                            rest = substr(rest, RSTART + RLENGTH)
                        }
                        if (waits) clock = ready
                    }
                    if (o ~ /^(vsqrt|vdiv)/) {
                        match(args[i], /[sd][0-9]+/)
                        pending = substr(args[i], RSTART, RLENGTH)
                        ready = clock + 14
                    }
                    clock += cost(o, previous)
                    if (o ~ /^b/ && a[i] == mhi[k]) clock += 2
                    previous = o
                }
                if (clock < ready) clock = ready
                printf "  loop at %x: %d instructions, estimate %d cycles per element\n", mlo[k], n, clock
            }
        }'
}

mapfile -t symbols < <(arm-none-eabi-nm -S "$elf" |
    awk '$4 ~ /kernel10apply_mode|cortex_m10plain_loop/ { print $1, $2, $4 }')

status=0
total=0
declare -A count=()
for entry in "${symbols[@]}"; do
    read -r address size name <<<"$entry"
    bytes=$((16#$size))
    total=$((total + bytes))
    body=$(listing "$address" "$size")

    function=apply_mode
    [[ $name == *plain_loop* ]] && function=plain_loop
    kind=unfused
    grep -qP '\tvfma\.f32' <<<"$body" && kind=fused
    count[$function $kind]=$((${count[$function $kind]:-0} + 1))
    echo "$function ($kind): $bytes bytes ($name)"

    for mnemonic in vsqrt.f32 vdiv.f32; do
        if ! grep -qP "\t$mnemonic" <<<"$body"; then
            echo "  FAILED: no $mnemonic"
            status=1
        fi
    done
    # apply_mode may call plain_loop; nothing else is called.
    calls=$(awk -F'\t' -v call="$call" '$2 ~ call || $3 ~ /__aeabi_|sqrtf|fmaf/' <<<"$body" |
        grep -vP '\tbl[a-z]*\t[0-9a-f]+ <[^>]*cortex_m10plain_loop[^+]*>$' || true)
    if [ -n "$calls" ]; then
        echo "  FAILED: calls or software float routines in the step:"
        sed 's/^/    /' <<<"$calls"
        status=1
    fi
    estimate "$address" <<<"$body"
done

echo "step functions total: $total bytes (limit $max_bytes)"
if [ $total -gt $max_bytes ]; then
    echo "FAILED: the step functions are larger than $max_bytes bytes"
    status=1
fi
for key in "apply_mode fused" "apply_mode unfused" "plain_loop fused" "plain_loop unfused"; do
    if [ "${count[$key]:-0}" -ne 1 ]; then
        echo "FAILED: expected one $key function (VFMA.F32 in exactly the fused ones), found ${count[$key]:-0}"
        status=1
    fi
done
exit $status
