//! Property tests of every step entry point against
//! `StepScalars::apply_scalar`, the one-lane reference.
//!
//! Arbitrary lengths, offsets into larger buffers (so the 8-lane body starts
//! at every alignment), hyperparameters (valid and invalid), step numbers
//! and `f32` bit patterns (NaN, infinities, subnormals, signed zeros) drive
//! the Rust entry points and, with `--features ffi`, the C entry points
//! called through their `extern "C"` functions. Each output is compared bit
//! for bit, except that any NaN matches any NaN (see `Compare`). Guard cells
//! around each buffer must keep their bits, and every error must leave all
//! buffers unchanged, bit for bit.
//!
//! `CASES` keeps the run near 25 s in a debug build on a 2-core x86-64
//! machine; `PROPTEST_CASES=100000 cargo test --release` runs longer.

use adamw::{Error, Hyperparams, Rounding, StepScalars, WeightDecay};
use proptest::prelude::*;

const CASES: u32 = 512;

fn runner_config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig::with_cases(cases)
}

/// How computed elements are compared.
///
/// Rust, like LLVM, leaves open which input NaN's payload and sign a NaN
/// result carries (RFC 3514), and an optimised build may commute an
/// addition. So the 8-lane body and the one-lane reference can return
/// different NaNs for one element: in a release build, `apply` returned
/// exp_avg's NaN 0xffe5e5e5 where `apply_scalar` returned grad's
/// 0x7fffffff. Computed elements therefore compare NaN as a class; guard
/// cells and the buffers of a rejected call compare exactly.
#[derive(Clone, Copy, PartialEq)]
enum Compare {
    Exact,
    AnyNanMatches,
}
/// Cells after each buffer that no call may change.
const GUARD: usize = 3;
const MAX_LEN: usize = 40;

/// Values that stress the formula: NaN of both signs, infinities, signed
/// zeros, the smallest and largest subnormals, the normal extremes and
/// values near 1.
const SPECIAL_F32: [f32; 14] = [
    f32::NAN,
    -f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    0.0,
    -0.0,
    f32::from_bits(1),
    f32::from_bits(0x8000_0001),
    f32::from_bits(0x007f_ffff),
    f32::MIN_POSITIVE,
    f32::MAX,
    f32::MIN,
    1.0,
    -0.999_999_94,
];

fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => any::<u32>().prop_map(f32::from_bits),
        3 => -4.0f32..4.0,
        2 => prop::sample::select(&SPECIAL_F32[..]),
    ]
}

/// A hyperparameter: mostly in `range`, sometimes one of `invalid`.
fn hyper_f64(range: std::ops::Range<f64>, invalid: &'static [f64]) -> impl Strategy<Value = f64> {
    prop_oneof![
        12 => range,
        1 => prop::sample::select(invalid),
    ]
}

const INVALID_NON_NEGATIVE: &[f64] = &[
    -1e-3,
    -0.0 - 1e-300,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
];
const INVALID_BETA: &[f64] = &[1.0, 1.5, -1e-9, f64::NAN, f64::INFINITY];

fn hyperparams() -> impl Strategy<Value = Hyperparams> {
    (
        hyper_f64(0.0..1.0, INVALID_NON_NEGATIVE),
        hyper_f64(0.0..1.0, INVALID_BETA),
        hyper_f64(0.0..1.0, INVALID_BETA),
        hyper_f64(0.0..1e-2, INVALID_NON_NEGATIVE),
        hyper_f64(0.0..1.0, INVALID_NON_NEGATIVE),
        any::<[bool; 4]>(),
    )
        .prop_map(
            |(lr, beta1, beta2, eps, weight_decay, [amsgrad, maximize, unfused, coupled])| {
                Hyperparams {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    amsgrad,
                    maximize,
                    rounding: if unfused {
                        Rounding::Unfused
                    } else {
                        Rounding::Fused
                    },
                    decay_mode: if coupled {
                        WeightDecay::CoupledL2
                    } else {
                        WeightDecay::Decoupled
                    },
                }
            },
        )
}

fn step_number() -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => 1u64..10_000,
        1 => Just(0u64),
        1 => any::<u64>(),
    ]
}

/// One buffer: `len` elements at `offset` inside a larger vector, with
/// `GUARD` cells after them.
#[derive(Clone, Debug)]
struct Region {
    cells: Vec<f32>,
    offset: usize,
    len: usize,
}

impl Region {
    fn slice(&mut self) -> &mut [f32] {
        &mut self.cells[self.offset..self.offset + self.len]
    }

    fn view(&self) -> &[f32] {
        &self.cells[self.offset..self.offset + self.len]
    }

    /// The bits of every cell; with `AnyNanMatches`, each NaN element (not
    /// guard cell) becomes the default NaN 0x7fc00000.
    fn bits(&self, compare: Compare) -> Vec<u32> {
        let elements = self.offset..self.offset + self.len;
        self.cells
            .iter()
            .enumerate()
            .map(|(i, x)| {
                if compare == Compare::AnyNanMatches && x.is_nan() && elements.contains(&i) {
                    0x7fc0_0000
                } else {
                    x.to_bits()
                }
            })
            .collect()
    }
}

/// The five buffers of one tensor.
#[derive(Clone, Debug)]
struct Tensor {
    param: Region,
    grad: Region,
    exp_avg: Region,
    exp_avg_sq: Region,
    max_exp_avg_sq: Region,
}

impl Tensor {
    fn bits(&self, compare: Compare) -> [Vec<u32>; 5] {
        [
            self.param.bits(compare),
            self.grad.bits(compare),
            self.exp_avg.bits(compare),
            self.exp_avg_sq.bits(compare),
            self.max_exp_avg_sq.bits(compare),
        ]
    }

    /// `apply_scalar` over this tensor: the expected outputs.
    fn apply_scalar(&mut self, scalars: &StepScalars) -> Result<(), Error> {
        let max = scalars.amsgrad.then(|| self.max_exp_avg_sq.slice());
        scalars.apply_scalar(
            self.param.slice(),
            self.grad.view(),
            self.exp_avg.slice(),
            self.exp_avg_sq.slice(),
            max,
        )
    }
}

fn region(len: usize) -> impl Strategy<Value = Region> {
    (0usize..8).prop_flat_map(move |offset| {
        prop::collection::vec(any_f32(), offset + len + GUARD).prop_map(move |cells| Region {
            cells,
            offset,
            len,
        })
    })
}

fn tensor() -> impl Strategy<Value = Tensor> {
    (0..=MAX_LEN).prop_flat_map(|len| {
        (
            region(len),
            region(len),
            region(len),
            region(len),
            region(len),
        )
            .prop_map(
                |(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)| Tensor {
                    param,
                    grad,
                    exp_avg,
                    exp_avg_sq,
                    max_exp_avg_sq,
                },
            )
    })
}

fn hex(bits: &[Vec<u32>; 5]) -> Vec<Vec<String>> {
    bits.iter()
        .map(|v| v.iter().map(|b| format!("{b:08x}")).collect())
        .collect()
}

/// Asserts equal bits, printing every buffer in hex on failure.
fn prop_assert_bits(
    found: &Tensor,
    expected: &Tensor,
    compare: Compare,
    what: &str,
) -> Result<(), TestCaseError> {
    let (found, expected) = (found.bits(compare), expected.bits(compare));
    prop_assert!(
        found == expected,
        "{what}: outputs differ\n   found {:?}\nexpected {:?}",
        hex(&found),
        hex(&expected)
    );
    Ok(())
}

proptest! {
    #![proptest_config(runner_config())]

    #[test]
    fn step_matches_apply_scalar(hyper in hyperparams(), t in step_number(), tensor in tensor()) {
        let mut expected = tensor.clone();
        let reference = StepScalars::new(&hyper, t).and_then(|s| expected.apply_scalar(&s));

        let mut found = tensor.clone();
        let max = hyper.amsgrad.then(|| found.max_exp_avg_sq.slice());
        let result = adamw::step(
            &hyper,
            t,
            found.param.slice(),
            found.grad.view(),
            found.exp_avg.slice(),
            found.exp_avg_sq.slice(),
            max,
        );
        // Compared as text because an error that carries a NaN value is
        // not equal to itself.
        prop_assert_eq!(format!("{result:?}"), format!("{reference:?}"));
        // On error `expected` is the untouched input.
        let compare = if reference.is_ok() { Compare::AnyNanMatches } else { Compare::Exact };
        prop_assert_bits(&found, &expected, compare, "adamw::step")?;
    }

    #[test]
    fn apply_matches_apply_scalar(hyper in hyperparams(), t in step_number(), tensor in tensor()) {
        let Ok(scalars) = StepScalars::new(&hyper, t) else {
            return Ok(());
        };
        let mut expected = tensor.clone();
        expected.apply_scalar(&scalars).expect("matching lengths");

        let mut found = tensor.clone();
        let max = scalars.amsgrad.then(|| found.max_exp_avg_sq.slice());
        scalars
            .apply(found.param.slice(), found.grad.view(), found.exp_avg.slice(), found.exp_avg_sq.slice(), max)
            .expect("matching lengths");
        prop_assert_bits(&found, &expected, Compare::AnyNanMatches, "StepScalars::apply")?;
    }

    #[test]
    fn adamw_step_matches_apply_scalar(hyper in hyperparams(), t in step_number(), tensor in tensor()) {
        let seed = Hyperparams {
            amsgrad: false,
            maximize: false,
            rounding: Rounding::Fused,
            decay_mode: WeightDecay::Decoupled,
            ..hyper
        };
        let mut expected = tensor.clone();
        let reference = StepScalars::new(&seed, t).and_then(|s| expected.apply_scalar(&s));

        let mut found = tensor.clone();
        let result = adamw::adamw_step(
            found.param.slice(),
            found.grad.view(),
            found.exp_avg.slice(),
            found.exp_avg_sq.slice(),
            t,
            hyper.lr,
            hyper.beta1,
            hyper.beta2,
            hyper.eps,
            hyper.weight_decay,
        );
        // Compared as text because an error that carries a NaN value is
        // not equal to itself.
        prop_assert_eq!(format!("{result:?}"), format!("{reference:?}"));
        let compare = if reference.is_ok() { Compare::AnyNanMatches } else { Compare::Exact };
        prop_assert_bits(&found, &expected, compare, "adamw::adamw_step")?;
    }

    /// A shorter `grad`, `exp_avg`, `exp_avg_sq` or `param` is rejected and
    /// nothing is written.
    #[test]
    fn length_mismatch_writes_nothing(
        hyper in hyperparams(),
        tensor in tensor(),
        short_index in 0usize..4,
        shorter_by in 1usize..4,
    ) {
        let Ok(scalars) = StepScalars::new(&hyper, 1) else {
            return Ok(());
        };
        let len = tensor.param.len;
        let Some(short) = len.checked_sub(shorter_by) else {
            return Ok(());
        };
        let mut lens = [len; 4];
        lens[short_index] = short;
        let [p, g, m, v] = lens;

        let mut found = tensor.clone();
        let max = scalars.amsgrad.then(|| found.max_exp_avg_sq.slice());
        let result = scalars.apply(
            &mut found.param.slice()[..p],
            &found.grad.view()[..g],
            &mut found.exp_avg.slice()[..m],
            &mut found.exp_avg_sq.slice()[..v],
            max,
        );
        let is_mismatch = matches!(result, Err(Error::LengthMismatch { .. }));
        prop_assert!(is_mismatch, "returned {:?}", result);
        prop_assert_bits(&found, &tensor, Compare::Exact, "StepScalars::apply with a short slice")?;
    }
}

#[cfg(feature = "ffi")]
mod c_abi {
    use std::ptr;

    use adamw::ffi::*;

    use super::*;

    /// The code that the C layer must return for `error`.
    fn expected_code(error: Error) -> i32 {
        match error {
            Error::InvalidHyperparameter { name: "lr", .. } => ADAMW_ERR_INVALID_LR,
            Error::InvalidHyperparameter { name: "beta1", .. } => ADAMW_ERR_INVALID_BETA1,
            Error::InvalidHyperparameter { name: "beta2", .. } => ADAMW_ERR_INVALID_BETA2,
            Error::InvalidHyperparameter { name: "eps", .. } => ADAMW_ERR_INVALID_EPS,
            Error::InvalidHyperparameter {
                name: "weight_decay",
                ..
            } => ADAMW_ERR_INVALID_WEIGHT_DECAY,
            Error::StepZero => ADAMW_ERR_STEP_ZERO,
            other => panic!("no C code expected for {other:?}"),
        }
    }

    /// A config from C: valid bytes mostly, any byte sometimes.
    fn config() -> impl Strategy<Value = Config> {
        let byte = || prop_oneof![12 => 0u8..=1, 1 => any::<u8>()];
        (hyperparams(), byte(), byte(), byte(), byte()).prop_map(
            |(h, amsgrad, maximize, rounding, decay_mode)| Config {
                lr: h.lr,
                beta1: h.beta1,
                beta2: h.beta2,
                eps: h.eps,
                weight_decay: h.weight_decay,
                amsgrad,
                maximize,
                rounding,
                decay_mode,
            },
        )
    }

    /// The Rust view of a config, or the code of its first invalid byte.
    fn hyper_of(c: &Config) -> Result<Hyperparams, i32> {
        let flag = |value: u8, code: i32| match value {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(code),
        };
        Ok(Hyperparams {
            lr: c.lr,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            amsgrad: flag(c.amsgrad, ADAMW_ERR_INVALID_AMSGRAD)?,
            maximize: flag(c.maximize, ADAMW_ERR_INVALID_MAXIMIZE)?,
            rounding: match c.rounding {
                0 => Rounding::Fused,
                1 => Rounding::Unfused,
                _ => return Err(ADAMW_ERR_INVALID_ROUNDING),
            },
            decay_mode: match c.decay_mode {
                0 => WeightDecay::Decoupled,
                1 => WeightDecay::CoupledL2,
                _ => return Err(ADAMW_ERR_INVALID_DECAY_MODE),
            },
        })
    }

    /// Raw pointers to each buffer's elements.
    fn pointers(
        t: &mut Tensor,
        with_max: bool,
    ) -> (*mut f32, *const f32, *mut f32, *mut f32, *mut f32) {
        let max = if with_max {
            t.max_exp_avg_sq.slice().as_mut_ptr()
        } else {
            ptr::null_mut()
        };
        (
            t.param.slice().as_mut_ptr(),
            t.grad.view().as_ptr(),
            t.exp_avg.slice().as_mut_ptr(),
            t.exp_avg_sq.slice().as_mut_ptr(),
            max,
        )
    }

    /// A pointer fault of one call: which buffer, and what is wrong with it.
    #[derive(Clone, Copy, Debug)]
    enum Fault {
        Null(usize),
        Misaligned(usize),
        /// Buffer `.1` moved onto buffer `.0`, `.2` elements in.
        Overlap(usize, usize, usize),
    }

    fn fault() -> impl Strategy<Value = Fault> {
        prop_oneof![
            (0usize..5).prop_map(Fault::Null),
            (0usize..5).prop_map(Fault::Misaligned),
            (0usize..5, 0usize..5, 0usize..MAX_LEN)
                .prop_filter("two buffers", |(i, j, _)| i != j)
                .prop_map(|(i, j, k)| Fault::Overlap(i, j, k)),
        ]
    }

    proptest! {
        #![proptest_config(runner_config())]

        #[test]
        fn c_step_config_matches_apply_scalar(config in config(), t in step_number(), tensor in tensor()) {
            let mut expected = tensor.clone();
            let expected_code = match hyper_of(&config) {
                Err(code) => code,
                Ok(hyper) => match StepScalars::new(&hyper, t) {
                    Err(error) => expected_code(error),
                    Ok(scalars) => {
                        expected.apply_scalar(&scalars).expect("matching lengths");
                        ADAMW_OK
                    }
                },
            };

            let mut found = tensor.clone();
            let with_max = config.amsgrad == 1;
            let (p, g, m, v, x) = pointers(&mut found, with_max);
            // SAFETY: each pointer is NULL or `len` live floats of its own
            // vector.
            let code = unsafe { adamw_step_config(&config, t, p, g, m, v, x, found.param.len) };
            prop_assert_eq!(code, expected_code, "{}", config_message(code));
            let compare = if expected_code == ADAMW_OK { Compare::AnyNanMatches } else { Compare::Exact };
            prop_assert_bits(&found, &expected, compare, "adamw_step_config")?;
        }

        #[test]
        fn c_adamw_step_matches_apply_scalar(hyper in hyperparams(), t in step_number(), tensor in tensor()) {
            let seed = Hyperparams {
                amsgrad: false,
                maximize: false,
                rounding: Rounding::Fused,
                decay_mode: WeightDecay::Decoupled,
                ..hyper
            };
            let mut expected = tensor.clone();
            let expected_code = match StepScalars::new(&seed, t) {
                Err(error) => expected_code(error),
                Ok(scalars) => {
                    expected.apply_scalar(&scalars).expect("matching lengths");
                    ADAMW_OK
                }
            };

            let mut found = tensor.clone();
            let (p, g, m, v, _) = pointers(&mut found, false);
            // SAFETY: each pointer is `len` live floats of its own vector.
            let code = unsafe {
                adamw_step(p, g, m, v, found.param.len, t, hyper.lr, hyper.beta1, hyper.beta2, hyper.eps, hyper.weight_decay)
            };
            prop_assert_eq!(code, expected_code, "{}", config_message(code));
            let compare = if expected_code == ADAMW_OK { Compare::AnyNanMatches } else { Compare::Exact };
            prop_assert_bits(&found, &expected, compare, "adamw_step")?;
        }

        /// Prepare once, apply to two tensors.
        #[test]
        fn c_prepare_apply_matches_apply_scalar(
            config in config(),
            t in step_number(),
            first in tensor(),
            second in tensor(),
        ) {
            let Ok(hyper) = hyper_of(&config) else {
                return Ok(());
            };
            let sentinel = Scalars::from(StepScalars::new(&Hyperparams::DEFAULT, 3).expect("valid"));
            let mut out = sentinel;
            // SAFETY: both pointers are to live locals.
            let code = unsafe { adamw_prepare(&config, t, &mut out) };
            let scalars = match StepScalars::new(&hyper, t) {
                Err(error) => {
                    prop_assert_eq!(code, expected_code(error));
                    prop_assert_eq!(out, sentinel, "out changed on error");
                    return Ok(());
                }
                Ok(scalars) => scalars,
            };
            prop_assert_eq!(code, ADAMW_OK, "{}", config_message(code));
            prop_assert_eq!(out, Scalars::from(scalars));

            for tensor in [first, second] {
                let mut expected = tensor.clone();
                expected.apply_scalar(&scalars).expect("matching lengths");
                let mut found = tensor;
                let (p, g, m, v, x) = pointers(&mut found, scalars.amsgrad);
                // SAFETY: each pointer is NULL or `len` live floats of its
                // own vector.
                let code = unsafe { adamw_apply(&out, p, g, m, v, x, found.param.len) };
                prop_assert_eq!(code, ADAMW_OK, "{}", config_message(code));
                prop_assert_bits(&found, &expected, Compare::AnyNanMatches, "adamw_apply")?;
            }
        }

        /// NULL, misaligned and overlapping buffers: the matching code, and
        /// no write to any buffer.
        #[test]
        fn c_bad_pointers_write_nothing(tensor in tensor(), fault in fault()) {
            let len = tensor.param.len;
            if len == 0 {
                return Ok(());
            }
            let config = Config { amsgrad: 1, ..adamw_config_default() };
            let mut found = tensor.clone();
            let (p, g, m, v, x) = pointers(&mut found, true);
            let mut ptrs = [p, g.cast_mut(), m, v, x];
            let expected_code = match fault {
                Fault::Null(i) => {
                    ptrs[i] = ptr::null_mut();
                    [
                        ADAMW_ERR_NULL_PARAM,
                        ADAMW_ERR_NULL_GRAD,
                        ADAMW_ERR_NULL_EXP_AVG,
                        ADAMW_ERR_NULL_EXP_AVG_SQ,
                        ADAMW_ERR_NULL_MAX_EXP_AVG_SQ,
                    ][i]
                }
                Fault::Misaligned(i) => {
                    ptrs[i] = ptrs[i].cast::<u8>().wrapping_add(1).cast();
                    [
                        ADAMW_ERR_MISALIGNED_PARAM,
                        ADAMW_ERR_MISALIGNED_GRAD,
                        ADAMW_ERR_MISALIGNED_EXP_AVG,
                        ADAMW_ERR_MISALIGNED_EXP_AVG_SQ,
                        ADAMW_ERR_MISALIGNED_MAX_EXP_AVG_SQ,
                    ][i]
                }
                Fault::Overlap(i, j, k) => {
                    ptrs[j] = ptrs[i].wrapping_add(k % len);
                    ADAMW_ERR_OVERLAP
                }
            };
            // SAFETY: every call is rejected before any access. A moved
            // pointer may point past its vector's end, which is never read
            // because the overlap check runs first.
            let code = unsafe { adamw_step_config(&config, 1, ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], len) };
            prop_assert_eq!(code, expected_code, "{:?}: {}", fault, config_message(code));
            prop_assert_bits(&found, &tensor, Compare::Exact, "adamw_step_config with a bad pointer")?;
        }
    }

    fn config_message(code: i32) -> String {
        // SAFETY: `adamw_strerror` returns a static NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(adamw_strerror(code)) }
            .to_string_lossy()
            .into_owned()
    }
}
