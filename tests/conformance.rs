//! Conformance run for every supported target.
//!
//! Runs the crate's checks that need no `std`: torch's single-step golden
//! cases of both rounding modes (`tests/golden/compact.bin`), checked against
//! the numerics contract; a deterministic stress grid
//! over every flag, both rounding modes and awkward values; apply against
//! apply_scalar at every length 0..=33 and offset 0..8; apply against
//! apply_scalar with the common flags over about 12,800 elements with edge
//! values, which checks the Cortex-M `asm!` loop against the generic path;
//! and every error path.
//! It prints the backend, a digest of the bits of every output, and a
//! closing `N passed, N failed` line, and exits non-zero on any failure.
//!
//! The digest is FNV-1a 64 over the little-endian bits of every output
//! element, with every NaN replaced by one pattern because NaN payloads are
//! not part of the crate's contract. Equal digests on two targets mean equal
//! results for every case.
//!
//! On hosted targets this is an ordinary program (`harness = false`). On
//! bare-metal targets it is a `no_std` image that QEMU runs with
//! semihosting for output and exit status. `.cargo/config.toml` names the
//! runners, so `cargo test --target <triple> --test conformance` runs it
//! (add `--release` on bare metal: see `.ci/targets.sh`).

#![cfg_attr(target_os = "none", no_std, no_main)]

use adamw::{Error, Hyperparams, Rounding, StepScalars, WeightDecay};

#[path = "common/golden.rs"]
mod golden;

use golden::{Array, Case, GoldenFile, Kind};

/// Single-step cases of both rounding modes from `torch.optim.AdamW`, with at
/// most 40 elements each, written by `tests/gen_golden.py`.
static COMPACT: &[u8] = include_bytes!("golden/compact.bin");

#[cfg(not(target_os = "none"))]
macro_rules! say {
    ($($arg:tt)*) => { std::println!($($arg)*) };
}

#[cfg(target_os = "none")]
macro_rules! say {
    ($($arg:tt)*) => { semihosting::println!($($arg)*) };
}

/// Largest tensor of the stress grid and the sweep, with room for guards.
const CAPACITY: usize = 48;
/// Maximum slice length of the position sweep.
const SWEEP_MAX_LEN: usize = 33;
/// Offsets 0..SWEEP_OFFSETS of the position sweep.
const SWEEP_OFFSETS: usize = 8;
/// Elements per case in the stress grid: four 8-lane chunks and a tail of 5.
const STRESS_LEN: usize = 37;
/// The NaN pattern that the digest records for every NaN.
const CANONICAL_NAN: u32 = 0x7fc0_0000;
/// Failures printed in full; later ones are only counted.
const MAX_PRINTED_FAILURES: u32 = 20;

// ---------------------------------------------------------------------------
// Digest and tally

/// FNV-1a 64 over the bits of `f32` values.
#[derive(Clone, Copy)]
struct Digest(u64);

impl Digest {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Digest(Self::OFFSET_BASIS)
    }

    fn add_u32(&mut self, word: u32) {
        for byte in word.to_le_bytes() {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn add_slice(&mut self, values: &[f32]) {
        for &x in values {
            self.add_u32(canonical_bits(x));
        }
    }
}

fn canonical_bits(x: f32) -> u32 {
    if x.is_nan() {
        CANONICAL_NAN
    } else {
        x.to_bits()
    }
}

/// Pass and fail counts; the first failures are printed.
struct Tally {
    passed: u32,
    failed: u32,
}

impl Tally {
    fn check(&mut self, ok: bool, describe: impl FnOnce()) {
        if ok {
            self.passed += 1;
            return;
        }
        self.failed += 1;
        if self.failed <= MAX_PRINTED_FAILURES {
            describe();
        }
    }
}

/// Equal bits, or both NaN.
fn same_result(a: f32, b: f32) -> bool {
    canonical_bits(a) == canonical_bits(b)
}

// ---------------------------------------------------------------------------
// Deterministic inputs

/// SplitMix64: a fixed sequence on every target, from integer arithmetic
/// alone.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(bound)) >> 32) as u32
    }

    /// Returns a finite value with a random sign, a random 24-bit significand and an
    /// exponent in `[min_exp, max_exp]`, built from bits so that no float
    /// arithmetic of the target is involved.
    fn finite(&mut self, min_exp: i32, max_exp: i32) -> f32 {
        let span = (max_exp - min_exp + 1) as u32;
        let exponent = min_exp + self.below(span) as i32;
        let biased = (exponent + 127) as u32;
        let bits = self.next_u64();
        let sign = (bits as u32 >> 31) << 31;
        let mantissa = (bits >> 32) as u32 & 0x007f_ffff;
        f32::from_bits(sign | biased << 23 | mantissa)
    }

    /// Returns a gradient or parameter: mostly ordinary magnitudes, one in eight an
    /// edge value (zeros, subnormals, extremes, infinities, NaN).
    fn value(&mut self) -> f32 {
        if self.below(8) != 0 {
            return self.finite(-20, 3);
        }
        const EDGES: [u32; 12] = [
            0x0000_0000, // +0
            0x8000_0000, // -0
            0x0000_0001, // smallest subnormal
            0x807f_ffff, // largest subnormal, negative
            0x0080_0000, // smallest normal
            0x7f7f_ffff, // largest finite
            0xff7f_ffff, // most negative finite
            0x7f80_0000, // +inf
            0xff80_0000, // -inf
            0x7fc0_0000, // NaN
            0x1e3c_e508, // 1e-20
            0x5f80_0000, // 2^64
        ];
        f32::from_bits(EDGES[self.below(EDGES.len() as u32) as usize])
    }

    /// Returns a second moment: non-negative, from 0 through large values.
    fn second_moment(&mut self) -> f32 {
        match self.below(16) {
            0 => 0.0,
            1 => f32::from_bits(0x0000_0003),
            2 => f32::INFINITY,
            _ => self.finite(-60, 10).abs(),
        }
    }
}

/// One tensor's buffers, with room for the largest case.
#[derive(Clone, Copy)]
struct Tensor {
    param: [f32; CAPACITY],
    grad: [f32; CAPACITY],
    exp_avg: [f32; CAPACITY],
    exp_avg_sq: [f32; CAPACITY],
    max_exp_avg_sq: [f32; CAPACITY],
}

impl Tensor {
    fn zeros() -> Self {
        Tensor {
            param: [0.0; CAPACITY],
            grad: [0.0; CAPACITY],
            exp_avg: [0.0; CAPACITY],
            exp_avg_sq: [0.0; CAPACITY],
            max_exp_avg_sq: [0.0; CAPACITY],
        }
    }

    fn random(rng: &mut Rng) -> Self {
        let mut tensor = Tensor::zeros();
        for i in 0..CAPACITY {
            tensor.param[i] = rng.value();
            tensor.grad[i] = rng.value();
            tensor.exp_avg[i] = rng.finite(-30, 0);
            tensor.exp_avg_sq[i] = rng.second_moment();
            tensor.max_exp_avg_sq[i] = rng.second_moment();
        }
        tensor
    }

    fn new_gradient(&mut self, rng: &mut Rng) {
        for g in &mut self.grad {
            *g = rng.value();
        }
    }

    /// Runs `apply` (or `apply_scalar`) on elements `start..start + len`.
    fn step(
        &mut self,
        scalars: &StepScalars,
        start: usize,
        len: usize,
        scalar_path: bool,
    ) -> Result<(), Error> {
        let range = start..start + len;
        let max = if scalars.amsgrad {
            Some(&mut self.max_exp_avg_sq[range.clone()])
        } else {
            None
        };
        let run = if scalar_path {
            StepScalars::apply_scalar
        } else {
            StepScalars::apply
        };
        run(
            scalars,
            &mut self.param[range.clone()],
            &self.grad[range.clone()],
            &mut self.exp_avg[range.clone()],
            &mut self.exp_avg_sq[range],
            max,
        )
    }

    fn digest_range(&self, digest: &mut Digest, start: usize, len: usize, amsgrad: bool) {
        let range = start..start + len;
        digest.add_slice(&self.param[range.clone()]);
        digest.add_slice(&self.exp_avg[range.clone()]);
        digest.add_slice(&self.exp_avg_sq[range.clone()]);
        if amsgrad {
            digest.add_slice(&self.max_exp_avg_sq[range]);
        }
    }

    /// Finds the first cell whose bits differ, counting any two NaNs as equal.
    fn first_difference(&self, other: &Tensor) -> Option<(&'static str, usize, f32, f32)> {
        let pairs = [
            ("param", &self.param, &other.param),
            ("grad", &self.grad, &other.grad),
            ("exp_avg", &self.exp_avg, &other.exp_avg),
            ("exp_avg_sq", &self.exp_avg_sq, &other.exp_avg_sq),
            (
                "max_exp_avg_sq",
                &self.max_exp_avg_sq,
                &other.max_exp_avg_sq,
            ),
        ];
        for (name, ours, theirs) in pairs {
            for i in 0..CAPACITY {
                if !same_result(ours[i], theirs[i]) {
                    return Some((name, i, ours[i], theirs[i]));
                }
            }
        }
        None
    }

    /// Checks that every cell has exactly the bits of `other`'s, NaN payloads
    /// included, for buffers that must not have been written.
    fn bit_identical(&self, other: &Tensor) -> bool {
        let pairs = [
            (&self.param, &other.param),
            (&self.grad, &other.grad),
            (&self.exp_avg, &other.exp_avg),
            (&self.exp_avg_sq, &other.exp_avg_sq),
            (&self.max_exp_avg_sq, &other.max_exp_avg_sq),
        ];
        pairs.iter().all(|(a, b)| {
            a.iter()
                .zip(b.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits())
        })
    }
}

// ---------------------------------------------------------------------------
// Golden cases

/// torch's outputs of one single-step case.
struct TorchOutputs {
    param: [f32; CAPACITY],
    exp_avg: [f32; CAPACITY],
    exp_avg_sq: [f32; CAPACITY],
    max_exp_avg_sq: [f32; CAPACITY],
}

/// Step 6 of the numerics contract with a given square root of the second
/// moment, in this target's `f32` arithmetic:
/// `p * decay + (neg_step_size * m) / (sqrt_v / bc2 + eps)`.
fn param_with_sqrt(scalars: &StepScalars, param_in: f32, m: f32, sqrt_v: f32) -> f32 {
    let p_decayed = param_in * scalars.decay;
    let denom = sqrt_v / scalars.bias_correction2_sqrt + scalars.eps;
    p_decayed + (scalars.neg_step_size * m) / denom
}

/// Returns whether torch's parameter is what step 6 gives with a square root one
/// ulp above or below the correctly rounded `root`, and finite.
///
/// torch 2.15 takes the `f32` square root on the CPU from MKL's `vmsSqrt`,
/// which is one ulp off the correctly rounded root for about one input in
/// five. Every other operation of the step is a correctly rounded IEEE
/// operation in both implementations, so a parameter that differs from
/// torch's must be explained by a neighbouring root, exactly.
fn torch_root_explains(
    scalars: &StepScalars,
    param_in: f32,
    m: f32,
    root: f32,
    torch: f32,
) -> bool {
    let neighbours = [root.next_down(), root.next_up()];
    torch.is_finite()
        && neighbours
            .iter()
            .any(|&r| same_result(param_with_sqrt(scalars, param_in, m, r), torch))
}

/// Reads one single-step case into our buffers and torch's outputs.
fn load_case(case: &Case<'_>) -> Result<(Tensor, TorchOutputs), golden::FormatError> {
    let n = case.n;
    let mut inputs = Tensor::zeros();
    let mut torch = TorchOutputs {
        param: [0.0; CAPACITY],
        exp_avg: [0.0; CAPACITY],
        exp_avg_sq: [0.0; CAPACITY],
        max_exp_avg_sq: [0.0; CAPACITY],
    };
    case.read_array(Array::ParamIn, &mut inputs.param[..n])?;
    case.read_array(Array::Grad, &mut inputs.grad[..n])?;
    case.read_array(Array::ExpAvgIn, &mut inputs.exp_avg[..n])?;
    case.read_array(Array::ExpAvgSqIn, &mut inputs.exp_avg_sq[..n])?;
    case.read_array(Array::ParamOut, &mut torch.param[..n])?;
    case.read_array(Array::ExpAvgOut, &mut torch.exp_avg[..n])?;
    case.read_array(Array::ExpAvgSqOut, &mut torch.exp_avg_sq[..n])?;
    if case.hyper.amsgrad {
        case.read_array(Array::MaxExpAvgSqIn, &mut inputs.max_exp_avg_sq[..n])?;
        case.read_array(Array::MaxExpAvgSqOut, &mut torch.max_exp_avg_sq[..n])?;
    }
    Ok((inputs, torch))
}

/// Runs every single-step case of `compact.bin` and checks it against torch.
/// `exp_avg`, `exp_avg_sq` and `max_exp_avg_sq` must match bit for bit. Our
/// `param` must be step 6 of the contract with the correctly rounded root,
/// and torch's `param` must be ours or step 6 with a neighbouring root.
fn golden_cases(tally: &mut Tally, digest: &mut Digest) {
    let file = match GoldenFile::parse(COMPACT) {
        Ok(file) => file,
        Err(error) => {
            tally.check(false, || {
                say!("FAIL compact.bin: invalid golden file: {error:?}")
            });
            return;
        }
    };
    let mut counts = [0u32; 2];
    for case in file.cases() {
        if case.kind != Kind::SingleStep || case.n > CAPACITY {
            tally.check(false, || {
                say!(
                    "FAIL {}: expected a single step of at most {CAPACITY} elements",
                    case.name
                );
            });
            continue;
        }
        counts[case.rounding as usize] += 1;
        golden_case(tally, digest, &case);
    }
    tally.check(counts[0] > 0 && counts[1] > 0, || {
        say!(
            "FAIL compact.bin: fused cases {}, unfused cases {}",
            counts[0],
            counts[1]
        );
    });
    say!(
        "golden: {} fused and {} unfused single-step cases",
        counts[0],
        counts[1]
    );
}

// One index runs over five parallel arrays here.
#[allow(clippy::needless_range_loop)]
fn golden_case(tally: &mut Tally, digest: &mut Digest, case: &Case<'_>) {
    let n = case.n;
    let name = case.name;
    let (inputs, torch) = match load_case(case) {
        Ok(loaded) => loaded,
        Err(error) => {
            tally.check(false, || say!("FAIL {name}: {error:?}"));
            return;
        }
    };
    let scalars = match StepScalars::new(&case.hyper, case.t) {
        Ok(scalars) => scalars,
        Err(error) => {
            tally.check(false, || say!("FAIL {name}: StepScalars::new: {error}"));
            return;
        }
    };
    let mut ours = inputs;
    let result = ours.step(&scalars, 0, n, false);
    tally.check(result.is_ok(), || say!("FAIL {name}: apply: {result:?}"));
    ours.digest_range(digest, 0, n, case.hyper.amsgrad);

    let mut moments = [
        ("exp_avg", &ours.exp_avg, &torch.exp_avg),
        ("exp_avg_sq", &ours.exp_avg_sq, &torch.exp_avg_sq),
        (
            "max_exp_avg_sq",
            &ours.max_exp_avg_sq,
            &torch.max_exp_avg_sq,
        ),
    ]
    .into_iter()
    .take(if case.hyper.amsgrad { 3 } else { 2 });
    for (array, ours, torch) in &mut moments {
        for i in 0..n {
            tally.check(same_result(ours[i], torch[i]), || {
                say!(
                    "FAIL {name}: {array}[{i}] ours {:#010x}, torch {:#010x}",
                    ours[i].to_bits(),
                    torch[i].to_bits()
                );
            });
        }
    }

    let second_moment = if case.hyper.amsgrad {
        &torch.max_exp_avg_sq
    } else {
        &torch.exp_avg_sq
    };
    for i in 0..n {
        let (param_in, m) = (inputs.param[i], torch.exp_avg[i]);
        let (o, t) = (ours.param[i], torch.param[i]);
        let describe = |reason: &str| {
            say!(
                "FAIL {name}: param[{i}] {reason}: ours {:#010x}, torch {:#010x}; inputs param \
                 {:#010x} grad {:#010x} exp_avg {:#010x} exp_avg_sq {:#010x}",
                o.to_bits(),
                t.to_bits(),
                param_in.to_bits(),
                inputs.grad[i].to_bits(),
                inputs.exp_avg[i].to_bits(),
                inputs.exp_avg_sq[i].to_bits()
            );
        };

        // libm's `sqrtf` is correctly rounded on every target.
        let root = libm::sqrtf(second_moment[i]);
        let model = param_with_sqrt(&scalars, param_in, m, root);
        tally.check(same_result(o, model), || {
            describe("is not step 6's value with the correctly rounded root");
            say!("  step 6 gives {:#010x}", model.to_bits());
        });

        let explained = same_result(o, t)
            || (o.is_finite() && torch_root_explains(&scalars, param_in, m, root, t));
        tally.check(explained, || {
            describe(
                "differs from torch's, and a square root one ulp from the correctly rounded \
                 one does not give torch's value",
            );
        });
    }
}

// ---------------------------------------------------------------------------
// Stress grid

/// Hyperparameter sets that reach each branch of the kernel: both lerp
/// formulas (`1 - beta1` below 0.5 and at least 0.5), `beta1 = 0`, `eps = 0`
/// and no weight decay.
const HYPER_SETS: [(f64, f64, f64, f64, f64); 4] = [
    // lr, beta1, beta2, eps, weight_decay
    (1e-3, 0.9, 0.999, 1e-8, 1e-2),
    (1e-1, 0.5, 0.9, 1e-6, 1e-1),
    (3e-4, 0.0, 0.99999, 0.0, 0.0),
    (2.5e-2, 0.99, 0.95, 1e-12, 5e-1),
];

/// The step numbers each case runs in order on one state: the first steps,
/// where the bias corrections matter most, a typical step, and one past
/// 2^24 where an `f32` counter would stop counting.
const STEPS: [u64; 5] = [1, 2, 3, 1000, (1 << 24) + 3];

fn stress_grid(tally: &mut Tally, digest: &mut Digest) {
    let mut rng = Rng(0x5eed_ada3);
    for (set, &(lr, beta1, beta2, eps, weight_decay)) in HYPER_SETS.iter().enumerate() {
        for flags in 0..16u32 {
            let hyper = Hyperparams {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                rounding: if flags & 1 == 0 {
                    Rounding::Fused
                } else {
                    Rounding::Unfused
                },
                amsgrad: flags & 2 != 0,
                maximize: flags & 4 != 0,
                decay_mode: if flags & 8 == 0 {
                    WeightDecay::Decoupled
                } else {
                    WeightDecay::CoupledL2
                },
            };
            let mut tensor = Tensor::random(&mut rng);
            for &t in &STEPS {
                tensor.new_gradient(&mut rng);
                let result = StepScalars::new(&hyper, t)
                    .and_then(|scalars| tensor.step(&scalars, 0, STRESS_LEN, false));
                tally.check(result.is_ok(), || {
                    say!("FAIL stress set {set} flags {flags:#06b} t {t}: {result:?}");
                });
                tensor.digest_range(digest, 0, STRESS_LEN, hyper.amsgrad);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Position sweep

/// `apply` on every window `offset..offset + len` of a buffer must give the
/// bits that `apply_scalar` gives, and leave the cells outside the window
/// alone. This holds the 8-lane body and the tail to one formula wherever
/// an element sits.
fn position_sweep(tally: &mut Tally, digest: &mut Digest) {
    let mut rng = Rng(0x0ff5_e7ed);
    let rounding_modes = [Rounding::Fused, Rounding::Unfused];
    for rounding in rounding_modes {
        for amsgrad in [false, true] {
            let hyper = Hyperparams {
                rounding,
                amsgrad,
                lr: 1e-2,
                ..Hyperparams::DEFAULT
            };
            let scalars = match StepScalars::new(&hyper, 5) {
                Ok(scalars) => scalars,
                Err(error) => {
                    tally.check(false, || say!("FAIL sweep scalars: {error}"));
                    continue;
                }
            };
            for len in 0..=SWEEP_MAX_LEN {
                for offset in 0..SWEEP_OFFSETS {
                    let before = Tensor::random(&mut rng);
                    let mut vector = before;
                    let mut scalar = before;
                    let vector_result = vector.step(&scalars, offset, len, false);
                    let scalar_result = scalar.step(&scalars, offset, len, true);
                    tally.check(vector_result.is_ok() && scalar_result.is_ok(), || {
                        say!(
                            "FAIL sweep {rounding:?} amsgrad {amsgrad} len {len} offset {offset}: \
                             apply {vector_result:?}, apply_scalar {scalar_result:?}"
                        );
                    });

                    let difference = vector.first_difference(&scalar);
                    tally.check(difference.is_none(), || {
                        if let Some((name, i, ours, reference)) = difference {
                            say!(
                                "FAIL sweep {rounding:?} amsgrad {amsgrad} len {len} offset \
                                 {offset}: {name}[{i}] apply {:#010x}, apply_scalar {:#010x}",
                                ours.to_bits(),
                                reference.to_bits()
                            );
                        }
                    });

                    let outside_untouched = outside_window_unchanged(&before, &vector, offset, len);
                    tally.check(outside_untouched, || {
                        say!(
                            "FAIL sweep {rounding:?} amsgrad {amsgrad} len {len} offset {offset}: \
                             a cell outside the window changed"
                        );
                    });

                    vector.digest_range(digest, offset, len, amsgrad);
                }
            }
        }
    }
}

fn outside_window_unchanged(before: &Tensor, after: &Tensor, offset: usize, len: usize) -> bool {
    let buffers = [
        (&before.param, &after.param),
        (&before.grad, &after.grad),
        (&before.exp_avg, &after.exp_avg),
        (&before.exp_avg_sq, &after.exp_avg_sq),
        (&before.max_exp_avg_sq, &after.max_exp_avg_sq),
    ];
    buffers.iter().all(|(b, a)| {
        (0..CAPACITY)
            .filter(|i| !(offset..offset + len).contains(i))
            .all(|i| a[i].to_bits() == b[i].to_bits())
    })
}

// ---------------------------------------------------------------------------
// Common-flag loop

/// Largest slice of the common-flag check. Small buffers keep the check
/// within the 16 KiB of RAM of the Cortex-M0 board.
const PLAIN_MAX_LEN: usize = 64;
/// Calls per set of scalars and rounding mode in the common-flag check:
/// with lengths 1..=64 that is about 1000 elements per set and mode.
const PLAIN_CALLS: u32 = 32;

/// The buffers of one common-flag call.
#[derive(Clone, Copy)]
struct PlainBuffers {
    param: [f32; PLAIN_MAX_LEN],
    grad: [f32; PLAIN_MAX_LEN],
    exp_avg: [f32; PLAIN_MAX_LEN],
    exp_avg_sq: [f32; PLAIN_MAX_LEN],
}

impl PlainBuffers {
    /// Returns edge values in one element in eight of each array (zeros,
    /// subnormals, extremes, infinities, NaN), and one second moment in
    /// eight from the signed values, so that its root is sometimes NaN.
    fn random(rng: &mut Rng) -> Self {
        let mut buffers = PlainBuffers {
            param: [0.0; PLAIN_MAX_LEN],
            grad: [0.0; PLAIN_MAX_LEN],
            exp_avg: [0.0; PLAIN_MAX_LEN],
            exp_avg_sq: [0.0; PLAIN_MAX_LEN],
        };
        for i in 0..PLAIN_MAX_LEN {
            buffers.param[i] = rng.value();
            buffers.grad[i] = rng.value();
            buffers.exp_avg[i] = rng.value();
            buffers.exp_avg_sq[i] = if rng.below(8) == 0 {
                rng.value()
            } else {
                rng.second_moment()
            };
        }
        buffers
    }

    fn step(&mut self, scalars: &StepScalars, len: usize, scalar_path: bool) -> Result<(), Error> {
        let run = if scalar_path {
            StepScalars::apply_scalar
        } else {
            StepScalars::apply
        };
        run(
            scalars,
            &mut self.param[..len],
            &self.grad[..len],
            &mut self.exp_avg[..len],
            &mut self.exp_avg_sq[..len],
            None,
        )
    }

    /// Finds the first cell whose bits differ, counting any two NaNs as equal.
    fn first_difference(&self, other: &PlainBuffers) -> Option<(&'static str, usize, f32, f32)> {
        let pairs = [
            ("param", &self.param, &other.param),
            ("grad", &self.grad, &other.grad),
            ("exp_avg", &self.exp_avg, &other.exp_avg),
            ("exp_avg_sq", &self.exp_avg_sq, &other.exp_avg_sq),
        ];
        for (name, ours, theirs) in pairs {
            for i in 0..PLAIN_MAX_LEN {
                if !same_result(ours[i], theirs[i]) {
                    return Some((name, i, ours[i], theirs[i]));
                }
            }
        }
        None
    }
}

/// Returns step scalars with the common flags: no `maximize`, decoupled
/// decay, `1 - beta1 < 0.5` and no AMSGrad. The last two are built by hand,
/// as any caller may, with extreme constants that drive the formula into
/// overflow, underflow and subnormal results.
fn plain_scalar_sets() -> [Result<StepScalars, Error>; 6] {
    let hyper = |lr, beta1, beta2, eps, weight_decay| Hyperparams {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        ..Hyperparams::DEFAULT
    };
    let by_hand = |decay, lerp_weight, beta2, bias_correction2_sqrt, neg_step_size, eps| {
        Ok(StepScalars {
            decay,
            l2: 0.0,
            lerp_weight,
            beta2,
            one_minus_beta2: 1.0 - beta2,
            bias_correction2_sqrt,
            neg_step_size,
            eps,
            amsgrad: false,
            maximize: false,
            rounding: Rounding::Fused,
        })
    };
    [
        StepScalars::new(&hyper(1e-3, 0.9, 0.999, 1e-8, 1e-2), 1),
        StepScalars::new(&hyper(1e-2, 0.9, 0.999, 1e-8, 1e-2), 1000),
        StepScalars::new(&hyper(2.5e-2, 0.99, 0.95, 0.0, 0.0), 3),
        StepScalars::new(&hyper(1e-1, 0.6, 0.9, 1e-6, 1e-1), 2),
        by_hand(1.0, 0.25, 0.5, 1e-30, -1e30, 0.0),
        by_hand(
            0.999,
            0.4999,
            0.75,
            1.0,
            -f32::MIN_POSITIVE,
            f32::from_bits(1),
        ),
    ]
}

/// `apply` with the common flags, which on the Cortex-M4F and M33 runs the
/// backend's `asm!` loop, must give the bits of `apply_scalar`, which runs
/// the generic one-lane `update` everywhere. Elements past the slice must
/// stay as they were, which the comparison also checks because both runs
/// start from the same buffers.
fn plain_loop_check(tally: &mut Tally) {
    let mut rng = Rng(0x00c0_47e4);
    let mut elements = 0u32;
    for (set, scalars) in plain_scalar_sets().into_iter().enumerate() {
        let scalars = match scalars {
            Ok(scalars) => scalars,
            Err(error) => {
                tally.check(false, || say!("FAIL common-flag set {set}: {error}"));
                continue;
            }
        };
        for rounding in [Rounding::Fused, Rounding::Unfused] {
            let scalars = StepScalars {
                rounding,
                ..scalars
            };
            for call in 0..PLAIN_CALLS {
                let len = 1 + rng.below(PLAIN_MAX_LEN as u32) as usize;
                let before = PlainBuffers::random(&mut rng);
                let (mut fast, mut generic) = (before, before);
                let fast_result = fast.step(&scalars, len, false);
                let generic_result = generic.step(&scalars, len, true);
                tally.check(fast_result.is_ok() && generic_result.is_ok(), || {
                    say!(
                        "FAIL common-flag set {set} {rounding:?} call {call}: apply \
                         {fast_result:?}, apply_scalar {generic_result:?}"
                    );
                });

                let difference = fast.first_difference(&generic);
                tally.check(difference.is_none(), || {
                    if let Some((name, i, ours, reference)) = difference {
                        say!(
                            "FAIL common-flag set {set} {rounding:?} call {call} len {len}: \
                             {name}[{i}] apply {:#010x}, apply_scalar {:#010x}; inputs param \
                             {:#010x} grad {:#010x} exp_avg {:#010x} exp_avg_sq {:#010x}",
                            ours.to_bits(),
                            reference.to_bits(),
                            before.param[i].to_bits(),
                            before.grad[i].to_bits(),
                            before.exp_avg[i].to_bits(),
                            before.exp_avg_sq[i].to_bits()
                        );
                    }
                });
                elements += len as u32;
            }
        }
    }
    say!("common-flag loop: {elements} elements compared with apply_scalar");
}

// ---------------------------------------------------------------------------
// Error paths

/// Every invalid hyperparameter is rejected with its own name and value.
fn invalid_hyperparameters(tally: &mut Tally) {
    let base = Hyperparams::DEFAULT;
    let cases: [(&str, Hyperparams, f64); 12] = [
        ("lr", Hyperparams { lr: -1e-3, ..base }, -1e-3),
        (
            "lr",
            Hyperparams {
                lr: f64::NAN,
                ..base
            },
            f64::NAN,
        ),
        (
            "lr",
            Hyperparams {
                lr: f64::INFINITY,
                ..base
            },
            f64::INFINITY,
        ),
        ("beta1", Hyperparams { beta1: 1.0, ..base }, 1.0),
        (
            "beta1",
            Hyperparams {
                beta1: -0.1,
                ..base
            },
            -0.1,
        ),
        (
            "beta1",
            Hyperparams {
                beta1: f64::NAN,
                ..base
            },
            f64::NAN,
        ),
        ("beta2", Hyperparams { beta2: 1.0, ..base }, 1.0),
        (
            "beta2",
            Hyperparams {
                beta2: -1e-9,
                ..base
            },
            -1e-9,
        ),
        ("eps", Hyperparams { eps: -1e-8, ..base }, -1e-8),
        (
            "eps",
            Hyperparams {
                eps: f64::NEG_INFINITY,
                ..base
            },
            f64::NEG_INFINITY,
        ),
        (
            "weight_decay",
            Hyperparams {
                weight_decay: -0.01,
                ..base
            },
            -0.01,
        ),
        (
            "weight_decay",
            Hyperparams {
                weight_decay: f64::NAN,
                ..base
            },
            f64::NAN,
        ),
    ];
    for (expected_name, hyper, expected_value) in cases {
        let result = StepScalars::new(&hyper, 1);
        let ok = matches!(
            result,
            Err(Error::InvalidHyperparameter { name, value, .. })
                if name == expected_name && value.to_bits() == expected_value.to_bits()
        );
        tally.check(ok, || {
            say!("FAIL invalid {expected_name} = {expected_value:e}: got {result:?}");
        });
    }

    let result = StepScalars::new(&Hyperparams::DEFAULT, 0);
    tally.check(result == Err(Error::StepZero), || {
        say!("FAIL step 0: expected StepZero, got {result:?}");
    });
}

/// Every length error is reported for the right buffer, by both entry
/// points, and leaves every buffer as it was.
fn length_errors(tally: &mut Tally) {
    let mut rng = Rng(0x00ba_d1e4);
    let plain = Hyperparams::DEFAULT;
    let amsgrad = Hyperparams {
        amsgrad: true,
        ..plain
    };
    let (plain, amsgrad) = match (StepScalars::new(&plain, 3), StepScalars::new(&amsgrad, 3)) {
        (Ok(p), Ok(a)) => (p, a),
        (p, a) => {
            tally.check(false, || say!("FAIL error-path scalars: {p:?} {a:?}"));
            return;
        }
    };

    // The short buffer has 9 elements where param has 10.
    const N: usize = 10;
    let wrong = [
        ("grad", plain),
        ("exp_avg", plain),
        ("exp_avg_sq", plain),
        ("max_exp_avg_sq", amsgrad),
    ];
    for scalar_path in [false, true] {
        for (buffer, scalars) in wrong {
            let before = Tensor::random(&mut rng);
            let mut t = before;
            let s = &mut t;
            let mut max = if scalars.amsgrad {
                Some(&mut s.max_exp_avg_sq[..N])
            } else {
                None
            };
            let grad = if buffer == "grad" {
                &s.grad[..N - 1]
            } else {
                &s.grad[..N]
            };
            let m = if buffer == "exp_avg" {
                &mut s.exp_avg[..N - 1]
            } else {
                &mut s.exp_avg[..N]
            };
            let v = if buffer == "exp_avg_sq" {
                &mut s.exp_avg_sq[..N - 1]
            } else {
                &mut s.exp_avg_sq[..N]
            };
            if buffer == "max_exp_avg_sq" {
                max = max.map(|slice| &mut slice[..N - 1]);
            }
            let run = if scalar_path {
                StepScalars::apply_scalar
            } else {
                StepScalars::apply
            };
            let result = run(&scalars, &mut s.param[..N], grad, m, v, max);
            let expected = Err(Error::LengthMismatch {
                name: buffer,
                expected: N,
                found: N - 1,
            });
            tally.check(result == expected, || {
                say!("FAIL short {buffer} (scalar path {scalar_path}): got {result:?}");
            });
            tally.check(t.bit_identical(&before), || {
                say!("FAIL short {buffer} (scalar path {scalar_path}): a buffer was written");
            });
        }
    }

    // The AMSGrad buffer is required exactly when amsgrad is on.
    for (scalars, with_max) in [(amsgrad, false), (plain, true)] {
        let before = Tensor::random(&mut rng);
        let mut t = before;
        let max = if with_max {
            Some(&mut t.max_exp_avg_sq[..N])
        } else {
            None
        };
        let result = scalars.apply(
            &mut t.param[..N],
            &t.grad[..N],
            &mut t.exp_avg[..N],
            &mut t.exp_avg_sq[..N],
            max,
        );
        let expected = Err(Error::MaxExpAvgSqMismatch {
            amsgrad: scalars.amsgrad,
        });
        tally.check(result == expected, || {
            say!(
                "FAIL amsgrad {} with buffer {with_max}: got {result:?}",
                scalars.amsgrad
            );
        });
        tally.check(t.bit_identical(&before), || {
            say!(
                "FAIL amsgrad {} with buffer {with_max}: a buffer was written",
                scalars.amsgrad
            );
        });
    }

    // The torch-shaped entry point checks the step number and lengths too.
    let before = Tensor::random(&mut rng);
    let mut t = before;
    let result = adamw::adamw_step(
        &mut t.param[..N],
        &t.grad[..N],
        &mut t.exp_avg[..N],
        &mut t.exp_avg_sq[..N - 1],
        0,
        1e-3,
        0.9,
        0.999,
        1e-8,
        0.0,
    );
    tally.check(result == Err(Error::StepZero), || {
        say!("FAIL adamw_step t = 0: expected StepZero first, got {result:?}");
    });
    tally.check(t.bit_identical(&before), || {
        say!("FAIL adamw_step t = 0: a buffer was written");
    });
}

// ---------------------------------------------------------------------------
// Entry points

/// Runs every section and returns the process exit status.
fn run() -> i32 {
    let mut tally = Tally {
        passed: 0,
        failed: 0,
    };
    say!("backend: {}", adamw::backend());
    say!(
        "target features: fma {}, neon {}, simd128 {}",
        cfg!(target_feature = "fma"),
        cfg!(target_feature = "neon"),
        cfg!(target_feature = "simd128")
    );

    let mut total = Digest::new();
    type Section = fn(&mut Tally, &mut Digest);
    let sections: [(&str, Section); 3] = [
        ("golden", golden_cases),
        ("stress grid", stress_grid),
        ("position sweep", position_sweep),
    ];
    for (name, section) in sections {
        let mut digest = Digest::new();
        section(&mut tally, &mut digest);
        say!("digest {name}: {:016x}", digest.0);
        total.add_u32(digest.0 as u32);
        total.add_u32((digest.0 >> 32) as u32);
    }

    // Not part of the digest: it compares two paths on one target.
    plain_loop_check(&mut tally);
    invalid_hyperparameters(&mut tally);
    length_errors(&mut tally);

    say!("digest: {:016x}", total.0);
    say!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 { 0 } else { 1 }
}

#[cfg(not(target_os = "none"))]
fn main() {
    std::process::exit(run());
}

#[cfg(target_os = "none")]
mod bare_metal {
    use semihosting::process::exit;

    #[cfg(target_arch = "arm")]
    #[cortex_m_rt::entry]
    fn main() -> ! {
        exit(super::run())
    }

    // A fault exits QEMU with a failure status instead of spinning forever.
    #[cfg(target_arch = "arm")]
    #[cortex_m_rt::exception]
    unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
        semihosting::eprintln!("HardFault at pc {:#010x}", frame.pc());
        exit(3)
    }

    #[cfg(target_arch = "arm")]
    #[cortex_m_rt::exception]
    unsafe fn DefaultHandler(irqn: i16) {
        semihosting::eprintln!("unexpected exception or interrupt {irqn}");
        exit(3)
    }

    #[cfg(target_arch = "riscv32")]
    #[riscv_rt::entry]
    fn main() -> ! {
        exit(super::run())
    }

    // riscv-rt sends every exception and interrupt without its own handler,
    // and a hart it does not run, to `abort`.
    #[cfg(target_arch = "riscv32")]
    #[unsafe(no_mangle)]
    extern "C" fn abort() -> ! {
        let cause: usize;
        let pc: usize;
        // SAFETY: reading the machine trap CSRs has no side effect, and
        // riscv-rt runs this code in machine mode, where they are readable.
        unsafe {
            core::arch::asm!("csrr {0}, mcause", "csrr {1}, mepc", out(reg) cause, out(reg) pc);
        }
        semihosting::eprintln!("trap: mcause {cause:#x}, mepc {pc:#x}");
        exit(3)
    }
}
