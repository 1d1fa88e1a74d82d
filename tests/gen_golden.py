#!/usr/bin/env python3
"""Generate the golden vectors in tests/golden/ from torch.optim.AdamW.

Environment (outside the repository; tested with torch 2.15.0 and numpy 2.4.6):

    python3 -m venv /path/to/venv
    /path/to/venv/bin/pip install torch==2.15.0 numpy
    /path/to/venv/bin/python tests/gen_golden.py

The script runs every case twice. The parent process runs torch's default CPU
kernels (AVX2 or AVX-512 on current x86-64, where multiply-adds are fused)
and writes fused.bin. It then runs itself again in a child process with
ATEN_CPU_CAPABILITY=default, torch's generic kernels without fused
multiply-adds, which writes unfused.bin. Both files hold the same cases with
the same inputs. compact.bin contains the single-step cases with n <= 40 of both
files (small enough to embed in a test for a board with 256 KiB of flash), and
meta.json records the versions and CPU capabilities.

torch is driven as a user drives it: torch.optim.AdamW(..., foreach=False),
the single-tensor path. A single-step case sets opt.state[p] (the step as an
f32 tensor, exp_avg, exp_avg_sq, max_exp_avg_sq) and p.grad, calls
opt.step() once and reads everything back.

File format, version 1, all integers and floats little-endian:

    header: magic b"ADWG", u32 version = 1, u32 case_count
    each case:
        u32 name_len, name (UTF-8, name_len bytes)
        u8 rounding (0 fused, 1 unfused)
        u8 kind (0 single step from saved state, 1 trajectory)
        f64 lr, beta1, beta2, eps, weight_decay
        u8 amsgrad, u8 maximize
        u64 t, u32 n
        kind 0: t is the step number torch used (state['step'] after the
            step, which an f32 counter rounds past 2^24); f32 arrays of n:
            param_in, grad, exp_avg_in, exp_avg_sq_in,
            [max_exp_avg_sq_in if amsgrad],
            param_out, exp_avg_out, exp_avg_sq_out,
            [max_exp_avg_sq_out if amsgrad]
        kind 1: t steps from fresh (zero) state, step 1 first;
            u32 seed, f32 grad_scale (a power of two), f32 param_in[n],
            u32 checkpoint_count, per checkpoint u64 step and f32 param[n]
            after that step, then the final f32 exp_avg[n], exp_avg_sq[n],
            [max_exp_avg_sq[n] if amsgrad]

Trajectory gradients come from xorshift32 with state x = seed (nonzero). For
each step, for each element in order:

    x ^= x << 13; x ^= x >> 17; x ^= x << 5      (u32, wrapping)
    g = (f32(x >> 8) * 2^-23 - 1) * grad_scale

Every operation is exact in f32 (x >> 8 < 2^24, the difference is a multiple
of 2^-23 below 1 in magnitude, and grad_scale is a power of two), so any
language regenerates the same gradients.
"""

import datetime
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

MAGIC = b"ADWG"
VERSION = 1
FUSED, UNFUSED = 0, 1
SINGLE, TRAJECTORY = 0, 1
COMPACT_MAX_N = 40
# torch's elementwise CPU kernels run whole vectors, then a scalar loop over
# the remainder. Measured with torch.maximum, the scalar loop takes the last
# n % 16 elements, with AVX-512 and with the default capability alike.
SHORT_N = 17
WIDE_N = 67
COMPACT_MAX_BYTES = 120 * 1024
CHILD_ENV = "ADAMW_GOLDEN_CHILD"

OUT_DIR = Path(__file__).resolve().parent / "golden"

DEFAULTS = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2,
                amsgrad=False, maximize=False)
F32_MAX_STEP = 2.0**24


# ---------------------------------------------------------------------------
# Inputs


def rng_for(name):
    """Return a generator seeded from the case name, so that both processes
    build the same inputs whatever order the cases run in."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def random_state(rng, n, grad_exp=(-3.0, 0.0)):
    """Return param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq as f32 arrays
    of plausible training values. max_exp_avg_sq is spread around exp_avg_sq,
    so that after the step it is above the new exp_avg_sq for some elements
    and below for others."""
    f = np.float32
    param = rng.standard_normal(n).astype(f)
    grad = (rng.standard_normal(n) * 10.0 ** rng.uniform(*grad_exp, n)).astype(f)
    exp_avg = (rng.standard_normal(n) * 0.05).astype(f)
    exp_avg_sq = ((rng.standard_normal(n) * 0.05) ** 2).astype(f)
    max_exp_avg_sq = (exp_avg_sq * rng.uniform(0.5, 2.0, n)).astype(f)
    return dict(param=param, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
                max_exp_avg_sq=max_exp_avg_sq)


def f32_from_bits(values):
    return np.array(values, dtype=np.uint32).view(np.float32)


def sprinkle(rng, array, specials):
    """Overwrite distinct random positions of array with the special values."""
    idx = rng.choice(array.size, size=len(specials), replace=False)
    array[idx] = np.array(specials, dtype=np.float32)


# Special f32 values: signed zeros, subnormals, extremes, NaN and infinities.
NAN = float("nan")
INF = float("inf")
SUBNORMALS = [1e-40, -3e-42, 1.4e-45, -1.4e-45]
HUGE = [1e20, -1e20, 3.4e38, -3.4e38]


def single_step_cases():
    """Yield (name, hyperparameters, step_before, inputs) for every
    single-step case. step_before is the saved state['step']; torch adds 1."""
    cases = []

    def add_one(name, n, step_before, inputs, grad_exp, hyper):
        hp = dict(DEFAULTS, **hyper)
        rng = rng_for(name)
        state = random_state(rng, n, grad_exp)
        if inputs is not None:
            inputs(rng, state)
        cases.append((name, hp, step_before, state))

    def add(name, n=None, step_before=9, inputs=None, grad_exp=(-3.0, 0.0), **hyper):
        """Add a case of length n, or with n None, two cases: one of SHORT_N
        elements, short enough for compact.bin, and one of WIDE_N, with more
        of torch's vector loop and a longer scalar remainder."""
        if n is not None:
            add_one(name, n, step_before, inputs, grad_exp, hyper)
            return
        add_one(name, SHORT_N, step_before, inputs, grad_exp, hyper)
        add_one(f"{name}_n{WIDE_N}", WIDE_N, step_before, inputs, grad_exp, hyper)

    # Every length from 0 to 40 covers the crate's 8-lane body and tail, and
    # torch's vector loop and scalar remainder.
    for n in range(0, 41):
        add(f"len_{n}", n)

    # The remaining cases come in two lengths, see add().

    for t in (1, 2, 10, 100, 1000):
        add(f"step_{t}", step_before=t - 1)
    add("step_1_lr1e-2_wd0.1", step_before=0, lr=1e-2, weight_decay=0.1)
    add("step_1000_lr1e-2_wd0.1", step_before=999, lr=1e-2, weight_decay=0.1)

    # torch's f32 step counter: 2^24 - 1 + 1 = 2^24, 2^24 + 1 rounds back to
    # 2^24, and 2^24 + 10 + 1 rounds to 2^24 + 12.
    add("step_2p24", step_before=F32_MAX_STEP - 1)
    add("step_2p24_stuck", step_before=F32_MAX_STEP)
    add("step_2p24_plus10", step_before=F32_MAX_STEP + 10)
    add("step_2p24_beta2_near_1", step_before=F32_MAX_STEP - 1, beta2=1 - 1e-9)

    # beta1 = 0 and 0.5 give lerp weights 1 and 0.5, torch's `end - (end -
    # self) * (1 - w)` branch; 0.6 gives 0.4, the `self + w * (end - self)`
    # branch next to the switch.
    add("beta1_0", beta1=0.0)
    add("beta1_0.5", beta1=0.5)
    add("beta1_0.6", beta1=0.6)
    add("beta1_0.5_step_1", step_before=0, beta1=0.5)
    add("beta2_near_1_step_1", step_before=0, beta2=1 - 1e-9)
    add("beta2_near_1_step_1000", step_before=999, beta2=1 - 1e-9)
    add("beta2_0", beta2=0.0)

    def zero_moments(rng, s):
        s["exp_avg"][::3] = 0.0
        s["exp_avg_sq"][::3] = 0.0
        s["grad"][::3] = 0.0

    add("eps_0", eps=0.0, inputs=zero_moments)
    add("eps_0_nonzero", eps=0.0)
    add("lr_0", lr=0.0)
    add("wd_0", weight_decay=0.0)
    add("wd_1", weight_decay=1.0)
    add("lr1e-2_wd0.1", lr=1e-2, weight_decay=0.1)
    add("lr1e-2_wd0.1_step_10", step_before=9, lr=1e-2, weight_decay=0.1)

    add("amsgrad", amsgrad=True)
    add("amsgrad_step_1", step_before=0, amsgrad=True)

    def max_above(rng, s):
        s["max_exp_avg_sq"][:] = s["exp_avg_sq"] * 4.0 + 1e-3

    def max_below(rng, s):
        s["max_exp_avg_sq"][:] = s["exp_avg_sq"] * 0.25

    add("amsgrad_max_above", amsgrad=True, inputs=max_above)
    add("amsgrad_max_below", amsgrad=True, inputs=max_below)
    add("amsgrad_maximize", amsgrad=True, maximize=True)
    add("amsgrad_lr1e-2_wd0.1", amsgrad=True, lr=1e-2, weight_decay=0.1)

    def max_specials(rng, s):
        sprinkle(rng, s["max_exp_avg_sq"], [NAN, INF, 0.0, 1e-40, 3.4e38])

    add("amsgrad_max_specials", amsgrad=True, inputs=max_specials)

    def max_negative_zero(rng, s):
        s["grad"][:] = 0.0
        s["exp_avg_sq"][:] = 0.0
        s["max_exp_avg_sq"][:] = -0.0

    # torch.maximum(-0.0, +0.0) is +0 in torch's vector loop and -0 in its
    # scalar remainder (the last n % 16 elements). Only the long form, so
    # that compact.bin keeps to cases whose every bit is reproducible.
    add(f"amsgrad_max_negative_zero_n{WIDE_N}", WIDE_N, amsgrad=True, inputs=max_negative_zero)

    add("maximize", maximize=True)
    add("maximize_beta1_0.5", maximize=True, beta1=0.5)

    def grad_zero(rng, s):
        s["grad"][:] = 0.0

    def grad_signed_zero(rng, s):
        s["grad"][0::2] = 0.0
        s["grad"][1::2] = -0.0
        s["param"][::3] = -0.0
        s["param"][1::3] = 0.0
        s["exp_avg"][::4] = -0.0
        s["exp_avg_sq"][::5] = 0.0

    def grad_subnormal(rng, s):
        s["grad"][0::2] = 1e-40
        s["grad"][1::2] = -3e-42
        sprinkle(rng, s["exp_avg"], SUBNORMALS)
        sprinkle(rng, s["param"], SUBNORMALS)

    def grad_subnormal_zero_state(rng, s):
        grad_subnormal(rng, s)
        s["exp_avg"][:] = 0.0
        s["exp_avg_sq"][:] = 0.0

    def grad_huge(rng, s):
        s["grad"][0::2] = 1e20
        s["grad"][1::2] = -1e20
        sprinkle(rng, s["grad"], HUGE)

    def grad_mixed(rng, s):
        n = s["grad"].size
        signs = rng.choice([-1.0, 1.0], n)
        s["grad"][:] = (signs * 10.0 ** rng.uniform(-44, 38, n)).astype(np.float32)

    def grad_nonfinite(rng, s):
        sprinkle(rng, s["grad"], [NAN, INF, -INF, NAN, -INF])

    def param_nonfinite(rng, s):
        sprinkle(rng, s["param"], [NAN, INF, -INF, 3.4e38, -3.4e38])

    def moments_nonfinite(rng, s):
        sprinkle(rng, s["exp_avg"], [NAN, INF, -INF, 3.4e38])
        sprinkle(rng, s["exp_avg_sq"], [NAN, INF, 3.4e38, 1e-40])

    def state_tiny(rng, s):
        s["exp_avg_sq"][:] = f32_from_bits(rng.integers(0, 0x00800000, s["exp_avg_sq"].size))
        s["exp_avg"][:] = s["exp_avg"] * np.float32(1e-36)

    specials = [
        ("grad_zero", grad_zero),
        ("grad_signed_zero", grad_signed_zero),
        ("grad_subnormal", grad_subnormal),
        ("grad_subnormal_zero_state", grad_subnormal_zero_state),
        ("grad_huge", grad_huge),
        ("grad_mixed", grad_mixed),
        ("grad_nonfinite", grad_nonfinite),
        ("param_nonfinite", param_nonfinite),
        ("moments_nonfinite", moments_nonfinite),
        ("state_subnormal", state_tiny),
    ]
    for name, inputs in specials:
        add(name, inputs=inputs)
    for name, inputs in specials[2:5]:
        add(name + "_step_1", step_before=0, inputs=inputs)
    add("grad_nonfinite_amsgrad", amsgrad=True, inputs=grad_nonfinite)
    add("grad_huge_amsgrad_maximize", amsgrad=True, maximize=True, inputs=grad_huge)
    add("grad_large", grad_exp=(0.0, 8.0))
    add("grad_small", grad_exp=(-30.0, -8.0))

    # Long tensors: many 8-lane blocks, an odd tail, and torch's vector loop.
    add("large_4099", 4099)
    add("large_4099_amsgrad_lr1e-2_wd0.1", 4099, amsgrad=True, lr=1e-2, weight_decay=0.1)
    add("large_4099_maximize_beta1_0.5", 4099, step_before=0, maximize=True, beta1=0.5)
    return cases


TRAJECTORY_STEPS = 1000
TRAJECTORY_N = 257
CHECKPOINTS = (1, 10, 100, 500, 1000)


def trajectory_cases():
    """Yield (name, hyperparameters, seed, grad_scale) for the trajectories."""
    return [
        ("trajectory_default", dict(DEFAULTS), 0x9E3779B9, 1.0),
        ("trajectory_amsgrad", dict(DEFAULTS, amsgrad=True), 0x2545F491, 0.5),
        ("trajectory_maximize", dict(DEFAULTS, maximize=True), 0x68E31DA4, 2.0),
        ("trajectory_beta1_0.5", dict(DEFAULTS, beta1=0.5), 0x1B873593, 1.0),
        ("trajectory_lr1e-2_wd0.1", dict(DEFAULTS, lr=1e-2, weight_decay=0.1), 0xCC9E2D51, 0.25),
    ]


def xorshift32_grads(seed, steps, n, grad_scale):
    """Return the gradients of every step as an f32 array of shape (steps, n)."""
    x = seed
    total = steps * n
    states = np.empty(total, dtype=np.uint32)
    for i in range(total):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        states[i] = x
    f = np.float32
    grads = ((states >> np.uint32(8)).astype(f) * f(2.0**-23) - f(1.0)) * f(grad_scale)
    return grads.reshape(steps, n)


def check_xorshift():
    """Check the generator against values worked out by hand for seed 1.

    State 1: 1 ^ (1 << 13) = 0x2001, 0x2001 >> 17 = 0, 0x2001 ^ 0x40020 =
    0x42021, so g = (0x42021 >> 8) / 2^23 - 1 = 1056 / 2^23 - 1.
    State 2: 0x42021 ^ 0x84042000 = 0x84000021, ^ (>> 17 = 0x4200) =
    0x84004221, ^ (<< 5 = 0x80084420) = 0x04080601, so g = 0x40806 / 2^23 - 1.
    """
    g = xorshift32_grads(1, 1, 2, 1.0)
    assert g[0, 0] == np.float32(1056 / 2**23 - 1), g
    assert g[0, 1] == np.float32(0x40806 / 2**23 - 1), g


# ---------------------------------------------------------------------------
# torch


def make_optimizer(p, hp):
    return torch.optim.AdamW(
        [p], lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
        weight_decay=hp["weight_decay"], amsgrad=hp["amsgrad"],
        maximize=hp["maximize"], foreach=False)


def tensor(array):
    # from_numpy keeps every bit, NaN payloads included.
    return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))


def run_single_step(hp, step_before, s):
    p = tensor(s["param"]).requires_grad_(True)
    opt = make_optimizer(p, hp)
    p.grad = tensor(s["grad"])
    state = {
        "step": torch.tensor(step_before, dtype=torch.float32),
        "exp_avg": tensor(s["exp_avg"]),
        "exp_avg_sq": tensor(s["exp_avg_sq"]),
    }
    if hp["amsgrad"]:
        state["max_exp_avg_sq"] = tensor(s["max_exp_avg_sq"])
    opt.state[p] = state
    opt.step()

    step_used = state["step"].item()
    assert step_used == int(step_used), step_used
    assert step_used >= 1, step_used
    out = dict(param=p.detach().numpy().copy(),
               exp_avg=state["exp_avg"].numpy().copy(),
               exp_avg_sq=state["exp_avg_sq"].numpy().copy())
    if hp["amsgrad"]:
        out["max_exp_avg_sq"] = state["max_exp_avg_sq"].numpy().copy()
    return int(step_used), out


def run_trajectory(hp, seed, grad_scale, param_in):
    grads = xorshift32_grads(seed, TRAJECTORY_STEPS, param_in.size, grad_scale)
    p = tensor(param_in).requires_grad_(True)
    opt = make_optimizer(p, hp)
    checkpoints = []
    for step in range(1, TRAJECTORY_STEPS + 1):
        p.grad = tensor(grads[step - 1])
        opt.step()
        if step in CHECKPOINTS:
            checkpoints.append((step, p.detach().numpy().copy()))
    state = opt.state[p]
    assert state["step"].item() == TRAJECTORY_STEPS
    finals = [state["exp_avg"], state["exp_avg_sq"]]
    if hp["amsgrad"]:
        finals.append(state["max_exp_avg_sq"])
    return checkpoints, [f.numpy().copy() for f in finals]


# ---------------------------------------------------------------------------
# Encoding


def f32_bytes(array):
    array = np.asarray(array)
    assert array.dtype == np.float32, array.dtype
    return array.astype("<f4").tobytes()


def case_header(name, rounding, kind, hp, t, n):
    name_bytes = name.encode()
    return b"".join([
        struct.pack("<I", len(name_bytes)), name_bytes,
        struct.pack("<BB", rounding, kind),
        struct.pack("<5d", hp["lr"], hp["beta1"], hp["beta2"], hp["eps"], hp["weight_decay"]),
        struct.pack("<BB", hp["amsgrad"], hp["maximize"]),
        struct.pack("<QI", t, n),
    ])


def encode_single(name, rounding, hp, step_before, s):
    t, out = run_single_step(hp, step_before, s)
    n = s["param"].size
    arrays = [s["param"], s["grad"], s["exp_avg"], s["exp_avg_sq"]]
    if hp["amsgrad"]:
        arrays.append(s["max_exp_avg_sq"])
    arrays += [out["param"], out["exp_avg"], out["exp_avg_sq"]]
    if hp["amsgrad"]:
        arrays.append(out["max_exp_avg_sq"])
    return case_header(name, rounding, SINGLE, hp, t, n) + b"".join(f32_bytes(a) for a in arrays)


def encode_trajectory(name, rounding, hp, seed, grad_scale):
    param_in = rng_for(name).standard_normal(TRAJECTORY_N).astype(np.float32)
    checkpoints, finals = run_trajectory(hp, seed, grad_scale, param_in)
    parts = [
        case_header(name, rounding, TRAJECTORY, hp, TRAJECTORY_STEPS, TRAJECTORY_N),
        struct.pack("<If", seed, grad_scale),
        f32_bytes(param_in),
        struct.pack("<I", len(checkpoints)),
    ]
    for step, param in checkpoints:
        parts += [struct.pack("<Q", step), f32_bytes(param)]
    parts += [f32_bytes(f) for f in finals]
    return b"".join(parts)


def file_bytes(encoded_cases):
    header = MAGIC + struct.pack("<II", VERSION, len(encoded_cases))
    return header + b"".join(encoded_cases)


def split_cases(data):
    """Parse a file into (kind, n, encoded case) triples. This reads every
    field, so it also checks that the encoder followed the format."""
    assert data[:4] == MAGIC
    version, count = struct.unpack_from("<II", data, 4)
    assert version == VERSION
    pos = 12
    cases = []
    for _ in range(count):
        start = pos
        (name_len,) = struct.unpack_from("<I", data, pos)
        pos += 4 + name_len
        _rounding, kind = struct.unpack_from("<BB", data, pos)
        pos += 2 + 40
        amsgrad, _maximize = struct.unpack_from("<BB", data, pos)
        pos += 2
        _t, n = struct.unpack_from("<QI", data, pos)
        pos += 12
        if kind == SINGLE:
            pos += 4 * n * (7 + 2 * amsgrad)
        else:
            pos += 8 + 4 * n
            (checkpoint_count,) = struct.unpack_from("<I", data, pos)
            pos += 4 + checkpoint_count * (8 + 4 * n) + 4 * n * (2 + amsgrad)
        cases.append((kind, n, data[start:pos]))
    assert pos == len(data), (pos, len(data))
    return cases


def generate(rounding):
    check_xorshift()
    encoded = []
    for name, hp, step_before, s in single_step_cases():
        encoded.append(encode_single(name, rounding, hp, step_before, s))
    for name, hp, seed, grad_scale in trajectory_cases():
        encoded.append(encode_trajectory(name, rounding, hp, seed, grad_scale))
    return file_bytes(encoded)


def main():
    if os.environ.get(CHILD_ENV):
        # The child: torch's generic kernels, selected by the caller's
        # ATEN_CPU_CAPABILITY=default.
        (OUT_DIR / "unfused.bin").write_bytes(generate(UNFUSED))
        print(torch.backends.cpu.get_cpu_capability())
        return

    OUT_DIR.mkdir(exist_ok=True)
    if os.environ.get("ATEN_CPU_CAPABILITY"):
        sys.exit("unset ATEN_CPU_CAPABILITY: the parent process must run torch's default kernels")
    fused_capability = torch.backends.cpu.get_cpu_capability()
    if fused_capability not in ("AVX2", "AVX512"):
        sys.exit(f"CPU capability {fused_capability}: fused.bin needs AVX2 or AVX512")
    fused = generate(FUSED)
    (OUT_DIR / "fused.bin").write_bytes(fused)

    env = dict(os.environ, ATEN_CPU_CAPABILITY="default", **{CHILD_ENV: "1"})
    child = subprocess.run([sys.executable, __file__], env=env, check=True,
                           capture_output=True, text=True)
    unfused_capability = child.stdout.strip()
    if unfused_capability != "DEFAULT":
        sys.exit(f"child ran with CPU capability {unfused_capability}, expected DEFAULT")
    unfused = (OUT_DIR / "unfused.bin").read_bytes()

    compact = [c for kind, n, c in split_cases(fused) + split_cases(unfused)
               if kind == SINGLE and n <= COMPACT_MAX_N]
    compact_bytes = file_bytes(compact)
    if len(compact_bytes) > COMPACT_MAX_BYTES:
        sys.exit(f"compact.bin has {len(compact_bytes)} bytes, limit {COMPACT_MAX_BYTES}")
    (OUT_DIR / "compact.bin").write_bytes(compact_bytes)
    split_cases(compact_bytes)

    meta = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "cpu_capability": {"fused": fused_capability, "unfused": unfused_capability},
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python tests/gen_golden.py",
        "files": {name: len((OUT_DIR / name).read_bytes())
                  for name in ("fused.bin", "unfused.bin", "compact.bin")},
    }
    (OUT_DIR / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
