#!/usr/bin/env bash
# Checks the C ABI end to end:
#   1. include/adamw.h is what cbindgen generates from src/ffi.rs now;
#   2. the header, examples/c/abi_check.c and the library's exported symbols
#      name the same functions and constants;
#   3. the Rust-side tests of the C functions, the property tests, and
#      clippy with the ffi feature;
#   4. the C programs on the host and on a Cortex-M4F under QEMU, whose
#      training output must equal examples/c/linreg.expected (which
#      tests/ffi.rs derives from the Rust API);
#   5. no panic path is left in the Cortex-M4 firmware images;
#   6. the cdylib loads from Python's ctypes.
# Needs what .ci/install.sh installs (thumbv7em-none-eabihf, gcc-arm-none-eabi,
# libnewlib-arm-none-eabi, qemu-system-arm) and installs cbindgen itself.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=target/c_abi
out="$target_dir/c"
cbindgen_version=0.29.4
start=$SECONDS

echo "== C ABI: header freshness (cbindgen $cbindgen_version)"
if ! cbindgen --version 2>/dev/null | grep -qx "cbindgen $cbindgen_version"; then
    cargo install cbindgen --locked --version "$cbindgen_version"
fi
mkdir -p "$target_dir"
cbindgen --quiet --config cbindgen.toml --output "$target_dir/adamw.h" src/ffi.rs
if ! diff -u include/adamw.h "$target_dir/adamw.h"; then
    echo "include/adamw.h is out of date: regenerate it with" >&2
    echo "  cbindgen --config cbindgen.toml --output include/adamw.h src/ffi.rs" >&2
    exit 1
fi

echo "== C ABI: libraries"
cargo rustc --target-dir "$target_dir" --release --lib --features ffi-panic-handler \
    --crate-type staticlib,cdylib
cargo rustc --target-dir "$target_dir" --release --lib --features ffi-panic-handler \
    --crate-type staticlib --target thumbv7em-none-eabihf
# The rlib with the C functions but without a panic handler, as a firmware
# that links other Rust code would use it.
cargo build --target-dir "$target_dir" --release --features ffi --target thumbv7em-none-eabihf

echo "== C ABI: header, abi_check.c and symbols agree"
header_functions=$(grep -E '^[a-z0-9_ ]*[ *]adamw_[a-z_]+\(' include/adamw.h \
    | sed -E 's/.*[ *](adamw_[a-z_]+)\(.*/\1/' | sort -u)
header_defines=$(grep -oE '^#define ADAMW_[A-Z0-9_]+' include/adamw.h \
    | awk '$2 != "ADAMW_H" {print $2}' | sort -u)
library_functions=$(nm --defined-only -g "$target_dir/release/libadamw.a" 2>/dev/null \
    | awk '$2 == "T" && $3 ~ /^adamw_/ {print $3}' | sort -u)
if [ "$header_functions" != "$library_functions" ]; then
    echo "header functions and exported symbols differ:" >&2
    diff <(echo "$header_functions") <(echo "$library_functions") >&2 || true
    exit 1
fi
missing=0
for name in $header_functions $header_defines; do
    if ! grep -qw "$name" examples/c/abi_check.c; then
        echo "examples/c/abi_check.c does not use $name" >&2
        missing=1
    fi
done
[ "$missing" -eq 0 ]
echo "$(echo "$header_functions" | wc -l) functions, $(echo "$header_defines" | wc -l) constants"

echo "== C ABI: Rust tests and lints of the C functions"
cargo test --features ffi --test ffi --test proptest_entry_points
# .ci/run lints without features, which leaves src/ffi.rs and tests/ffi.rs out.
cargo clippy --features ffi --all-targets -- -D warnings

echo "== C ABI: C programs on the host and on the Cortex-M4F"
make -C examples/c TARGET_DIR="$PWD/$target_dir" all
diff -u examples/c/linreg.expected "$out/linreg-host.txt"
diff -u examples/c/linreg.expected "$out/linreg-m4.txt"
echo "host and Cortex-M4 outputs equal examples/c/linreg.expected"

echo "== C ABI: no panic path in the firmware images"
for elf in "$out"/*-m4.elf; do
    if arm-none-eabi-nm -C "$elf" | grep -E 'rust_begin_unwind|core::panicking'; then
        echo "$elf keeps a Rust panic path (listed above)" >&2
        exit 1
    fi
done

echo "== C ABI: cdylib from Python ctypes"
python3 - "$target_dir/release/libadamw.so" <<'EOF'
import ctypes, struct, sys

lib = ctypes.CDLL(sys.argv[1])
lib.adamw_strerror.restype = ctypes.c_char_p
lib.adamw_strerror.argtypes = [ctypes.c_int32]
floats = ctypes.POINTER(ctypes.c_float)
lib.adamw_step.restype = ctypes.c_int32
lib.adamw_step.argtypes = [floats] * 4 + [ctypes.c_size_t, ctypes.c_uint64] + [ctypes.c_double] * 5

param = (ctypes.c_float * 1)(0.5)
grad = (ctypes.c_float * 1)(0.25)
exp_avg = (ctypes.c_float * 1)(0.0)
exp_avg_sq = (ctypes.c_float * 1)(0.0)
code = lib.adamw_step(param, grad, exp_avg, exp_avg_sq, 1, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0)
assert code == 0, (code, lib.adamw_strerror(code))
# Step 1 moves the parameter by lr against the gradient's sign, and
# exp_avg = (1 - beta1) * grad, rounded once to float.
assert abs(param[0] - 0.499) < 1e-6, param[0]
expected_m = struct.unpack("f", struct.pack("f", 0.1))[0] * 0.25
assert exp_avg[0] == struct.unpack("f", struct.pack("f", expected_m))[0], exp_avg[0]
code = lib.adamw_step(param, grad, exp_avg, exp_avg_sq, 1, 0, 1e-3, 0.9, 0.999, 1e-8, 0.0)
assert code == -30 and lib.adamw_strerror(code) == b"invalid step 0: steps count from 1", code
print("ctypes: adamw_step and adamw_strerror work")
EOF

echo "== C ABI: done in $((SECONDS - start)) s"
