//! Drives the C entry points with arbitrary configs, step numbers, lengths,
//! offsets, float bit patterns and pointer faults, and checks each call
//! against `StepScalars::apply_scalar`: the same return code as the Rust API
//! gives, the same output bits (any NaN matching any NaN, because Rust
//! leaves a NaN result's payload and sign open), and no write at all on
//! error.

#![no_main]

use std::ptr;

use adamw::ffi::*;
use adamw::{Error, Hyperparams, Rounding, StepScalars, WeightDecay};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

const MAX_LEN: usize = 70;
const GUARD: usize = 2;

/// One buffer: `len` floats at `offset` in a larger vector.
#[derive(Clone)]
struct Region {
    cells: Vec<f32>,
    offset: usize,
}

impl Region {
    fn new(u: &mut Unstructured<'_>, len: usize) -> arbitrary::Result<Self> {
        let offset = u.int_in_range(0..=7)?;
        let cells = (0..offset + len + GUARD)
            .map(|_| u32::arbitrary(u).map(f32::from_bits))
            .collect::<arbitrary::Result<_>>()?;
        Ok(Region { cells, offset })
    }

    fn ptr(&mut self) -> *mut f32 {
        self.cells.as_mut_ptr().wrapping_add(self.offset)
    }

    fn slice(&mut self, len: usize) -> &mut [f32] {
        &mut self.cells[self.offset..self.offset + len]
    }

    fn bits(&self) -> Vec<u32> {
        self.cells.iter().map(|x| x.to_bits()).collect()
    }

    /// The bits of every cell, each NaN among the `len` elements replaced
    /// by the default NaN; guard cells keep their exact bits.
    fn output_bits(&self, len: usize) -> Vec<u32> {
        let elements = self.offset..self.offset + len;
        let cells = self.cells.iter().enumerate();
        cells
            .map(|(i, x)| {
                if x.is_nan() && elements.contains(&i) {
                    0x7fc0_0000
                } else {
                    x.to_bits()
                }
            })
            .collect()
    }
}

/// Any `f64` one time in four, else a value in [0, 0.999] that every
/// hyperparameter accepts.
fn hyper_f64(u: &mut Unstructured<'_>) -> arbitrary::Result<f64> {
    Ok(match u.int_in_range(0..=3)? {
        0 => f64::arbitrary(u)?,
        _ => f64::from(u.int_in_range(0..=1000u32)?) / 1000.0 * 0.999,
    })
}

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

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    // Mostly valid bytes, so that most inputs reach the kernel.
    let byte = |u: &mut Unstructured<'_>| -> arbitrary::Result<u8> {
        Ok(if u.ratio(1, 16)? {
            u8::arbitrary(u)?
        } else {
            u.int_in_range(0..=1)?
        })
    };
    let config = Config {
        lr: hyper_f64(u)?,
        beta1: hyper_f64(u)?,
        beta2: hyper_f64(u)?,
        eps: hyper_f64(u)?,
        weight_decay: hyper_f64(u)?,
        amsgrad: byte(u)?,
        maximize: byte(u)?,
        rounding: byte(u)?,
        decay_mode: byte(u)?,
    };
    let step = if u.ratio(1, 16)? {
        u64::arbitrary(u)?
    } else {
        u.int_in_range(1..=100_000)?
    };
    let len = u.int_in_range(0..=MAX_LEN)?;
    let mut regions = (0..5)
        .map(|_| Region::new(u, len))
        .collect::<arbitrary::Result<Vec<_>>>()?;
    let before: Vec<Vec<u32>> = regions.iter().map(Region::bits).collect();
    let with_max = config.amsgrad == 1;

    // The expected outcome, from the Rust API.
    let mut expected = regions.clone();
    let expected_code = match hyper_of(&config) {
        Err(code) => code,
        Ok(hyper) => match StepScalars::new(&hyper, step) {
            Err(error) => expected_code(error),
            Ok(scalars) => {
                let [p, g, m, v, x] = &mut expected[..] else {
                    unreachable!()
                };
                let max = scalars.amsgrad.then(|| x.slice(len));
                scalars
                    .apply_scalar(p.slice(len), g.slice(len), m.slice(len), v.slice(len), max)
                    .expect("matching lengths");
                ADAMW_OK
            }
        },
    };

    // A pointer fault on top, in one call of eight.
    let mut ptrs: Vec<*mut f32> = regions.iter_mut().map(Region::ptr).collect();
    if !with_max {
        ptrs[4] = ptr::null_mut();
    }
    let mut fault_code = None;
    if len > 0 && expected_code == ADAMW_OK && u.ratio(1, 8)? {
        let i = u.int_in_range(0..=if with_max { 4 } else { 3 })?;
        match u.int_in_range(0..=2)? {
            0 => {
                ptrs[i] = ptr::null_mut();
                fault_code = Some(ADAMW_ERR_NULL_PARAM - i as i32);
            }
            1 => {
                ptrs[i] = ptrs[i]
                    .cast::<u8>()
                    .wrapping_add(u.int_in_range(1..=3)?)
                    .cast();
                fault_code = Some(ADAMW_ERR_MISALIGNED_PARAM - i as i32);
            }
            _ => {
                let j = (i + u.int_in_range(1..=3)?) % if with_max { 5 } else { 4 };
                ptrs[j] = ptrs[i].wrapping_add(u.int_in_range(0..=len - 1)?);
                fault_code = Some(ADAMW_ERR_OVERLAP);
            }
        }
    }

    let use_prepare = u.arbitrary::<bool>()?;
    // SAFETY: each pointer is NULL, or `len` floats of its own live vector,
    // or a faulty pointer that the library rejects before any access.
    let code = unsafe {
        if use_prepare {
            let mut scalars = Scalars::from(StepScalars::new(&Hyperparams::DEFAULT, 1).unwrap());
            match adamw_prepare(&config, step, &mut scalars) {
                ADAMW_OK => adamw_apply(&scalars, ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], len),
                code => code,
            }
        } else {
            adamw_step_config(
                &config, step, ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], len,
            )
        }
    };

    let after: Vec<Vec<u32>> = regions.iter().map(Region::bits).collect();
    match fault_code {
        Some(fault) => {
            assert_eq!(code, fault, "pointer fault");
            assert_eq!(after, before, "a rejected call wrote");
        }
        None => {
            assert_eq!(code, expected_code, "config {config:?}, step {step}");
            if code == ADAMW_OK {
                let found: Vec<Vec<u32>> = regions.iter().map(|r| r.output_bits(len)).collect();
                let expected: Vec<Vec<u32>> = expected.iter().map(|r| r.output_bits(len)).collect();
                assert_eq!(found, expected, "outputs differ from apply_scalar");
            } else {
                assert_eq!(after, before, "a rejected call wrote");
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
