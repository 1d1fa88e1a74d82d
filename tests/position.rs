//! An element's result must not depend on where it sits in its slice.
//! `StepScalars::apply` (the 8-lane body and the one-lane tail) must give the
//! bits of `StepScalars::apply_scalar` (one lane throughout) for every
//! length, start offset and flag, with special values among the inputs.
//! A NaN matches any NaN: the crate does not promise NaN payloads or signs,
//! and on wasm32 the vector lanes return the canonical NaN `0x7fc00000`
//! where the scalar path returns `0xffc00000`.

use adamw::{Hyperparams, Rounding, StepScalars, WeightDecay};

const MAX_LEN: usize = 33;
const MAX_OFFSET: usize = 7;
const GUARD_LEN: usize = 8;
/// A NaN payload that no input contains, so a write to a guard cell shows.
const GUARD_BITS: u32 = 0x7fc0_beef;

/// Values that take the unusual paths of the formula: signed zeros,
/// subnormals, values whose square overflows or underflows, NaN and
/// infinities.
const SPECIALS: [f32; 14] = [
    0.0,
    -0.0,
    1e-40,
    -3e-42,
    f32::MIN_POSITIVE,
    1e-30,
    1e20,
    -1e20,
    f32::MAX,
    f32::MIN,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    1.0,
];

/// xorshift32, for inputs that are the same on every run.
struct Rng(u32);

impl Rng {
    fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }

    /// Returns a value in [-scale, scale), or one time in four a special value.
    fn value(&mut self, scale: f32) -> f32 {
        let x = self.next_u32();
        if x.is_multiple_of(4) {
            return SPECIALS[(x >> 8) as usize % SPECIALS.len()];
        }
        ((x >> 8) as f32 / 8_388_608.0 - 1.0) * scale
    }

    fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.value(scale)).collect()
    }
}

/// The buffers of one run: each input at `offset` inside a buffer of guard
/// NaNs.
#[derive(Clone)]
struct Buffers {
    param: Vec<f32>,
    grad: Vec<f32>,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
    max_exp_avg_sq: Option<Vec<f32>>,
}

impl Buffers {
    fn new(rng: &mut Rng, offset: usize, len: usize, amsgrad: bool) -> Self {
        let guard = f32::from_bits(GUARD_BITS);
        let mut embed = |scale: f32, absolute: bool| {
            let mut buffer = vec![guard; offset + len + GUARD_LEN];
            for (slot, value) in buffer[offset..offset + len]
                .iter_mut()
                .zip(rng.values(len, scale))
            {
                *slot = if absolute { value.abs() } else { value };
            }
            buffer
        };
        Buffers {
            param: embed(1.0, false),
            grad: embed(0.1, false),
            exp_avg: embed(0.05, false),
            exp_avg_sq: embed(0.01, true),
            max_exp_avg_sq: amsgrad.then(|| embed(0.01, true)),
        }
    }

    fn named(&self) -> Vec<(&'static str, &[f32])> {
        let mut named = vec![
            ("param", self.param.as_slice()),
            ("grad", self.grad.as_slice()),
            ("exp_avg", self.exp_avg.as_slice()),
            ("exp_avg_sq", self.exp_avg_sq.as_slice()),
        ];
        if let Some(max) = &self.max_exp_avg_sq {
            named.push(("max_exp_avg_sq", max.as_slice()));
        }
        named
    }
}

fn run(scalars: &StepScalars, buffers: &mut Buffers, offset: usize, len: usize, simd: bool) {
    let window = offset..offset + len;
    let max = buffers
        .max_exp_avg_sq
        .as_mut()
        .map(|b| &mut b[window.clone()]);
    let args = (
        &mut buffers.param[window.clone()],
        &buffers.grad[window.clone()],
        &mut buffers.exp_avg[window.clone()],
        &mut buffers.exp_avg_sq[window.clone()],
    );
    let result = if simd {
        scalars.apply(args.0, args.1, args.2, args.3, max)
    } else {
        scalars.apply_scalar(args.0, args.1, args.2, args.3, max)
    };
    result.unwrap_or_else(|e| panic!("length {len}, offset {offset}: {e}"));
}

/// Lists every hyperparameter combination that changes which operations run.
fn configurations() -> Vec<Hyperparams> {
    let mut all = Vec::new();
    for rounding in [Rounding::Fused, Rounding::Unfused] {
        for amsgrad in [false, true] {
            for maximize in [false, true] {
                for decay_mode in [WeightDecay::Decoupled, WeightDecay::CoupledL2] {
                    // beta1 0.9 and 0.5 take the two branches of torch's lerp.
                    for beta1 in [0.9, 0.5] {
                        all.push(Hyperparams {
                            lr: 1e-2,
                            beta1,
                            weight_decay: 0.1,
                            amsgrad,
                            maximize,
                            rounding,
                            decay_mode,
                            ..Hyperparams::DEFAULT
                        });
                    }
                }
            }
        }
    }
    all
}

#[test]
fn apply_matches_apply_scalar_at_every_position() {
    let mut rng = Rng(0x1234_5678);
    let mut compared = 0usize;
    let mut failures = Vec::new();

    for hyper in configurations() {
        for t in [1, 10] {
            let scalars = StepScalars::new(&hyper, t).unwrap();
            for len in 0..=MAX_LEN {
                for offset in 0..=MAX_OFFSET {
                    let inputs = Buffers::new(&mut rng, offset, len, hyper.amsgrad);
                    let mut vector = inputs.clone();
                    let mut scalar = inputs.clone();
                    run(&scalars, &mut vector, offset, len, true);
                    run(&scalars, &mut scalar, offset, len, false);

                    // Guard cells and the read-only grad compare equal too,
                    // because both runs started from the same buffers. The
                    // next test checks the guard cells bit for bit.
                    for ((name, v), (_, s)) in vector.named().into_iter().zip(scalar.named()) {
                        for (i, (a, b)) in v.iter().zip(s).enumerate() {
                            compared += 1;
                            let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                            if !same {
                                failures.push(format!(
                                    "{hyper:?}, t {t}, length {len}, offset {offset}: \
                                     {name} buffer index {i}: apply {:#010x}, \
                                     apply_scalar {:#010x}",
                                    a.to_bits(),
                                    b.to_bits()
                                ));
                            }
                        }
                    }
                }
            }
        }
    }

    println!("{compared} buffer cells compared");
    assert!(
        failures.is_empty(),
        "{} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn apply_leaves_guard_cells_alone() {
    let mut rng = Rng(0x9e37_79b9);
    for hyper in configurations() {
        let scalars = StepScalars::new(&hyper, 3).unwrap();
        for len in 0..=MAX_LEN {
            for offset in 0..=MAX_OFFSET {
                let mut buffers = Buffers::new(&mut rng, offset, len, hyper.amsgrad);
                run(&scalars, &mut buffers, offset, len, true);
                for (name, buffer) in buffers.named() {
                    let outside = buffer[..offset].iter().chain(&buffer[offset + len..]);
                    for value in outside {
                        assert_eq!(
                            value.to_bits(),
                            GUARD_BITS,
                            "{hyper:?}, length {len}, offset {offset}: {name} guard cell written"
                        );
                    }
                }
            }
        }
    }
}
