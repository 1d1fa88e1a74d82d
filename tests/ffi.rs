//! The C ABI called from Rust: every error code, the order of the checks,
//! untouched buffers after each error, and results bit-identical to the Rust
//! API. Run with `cargo test --features ffi`.

#![cfg(feature = "ffi")]

use std::ffi::CStr;
use std::ptr;

use adamw::ffi::*;
use adamw::{Hyperparams, Rounding, StepScalars, WeightDecay};

/// Every return code that src/ffi.rs defines, with its name in the header.
const ALL_CODES: [(&str, i32); 29] = [
    ("ADAMW_OK", ADAMW_OK),
    ("ADAMW_ERR_NULL_PARAM", ADAMW_ERR_NULL_PARAM),
    ("ADAMW_ERR_NULL_GRAD", ADAMW_ERR_NULL_GRAD),
    ("ADAMW_ERR_NULL_EXP_AVG", ADAMW_ERR_NULL_EXP_AVG),
    ("ADAMW_ERR_NULL_EXP_AVG_SQ", ADAMW_ERR_NULL_EXP_AVG_SQ),
    (
        "ADAMW_ERR_NULL_MAX_EXP_AVG_SQ",
        ADAMW_ERR_NULL_MAX_EXP_AVG_SQ,
    ),
    ("ADAMW_ERR_NULL_CONFIG", ADAMW_ERR_NULL_CONFIG),
    ("ADAMW_ERR_NULL_SCALARS", ADAMW_ERR_NULL_SCALARS),
    ("ADAMW_ERR_NULL_OUT", ADAMW_ERR_NULL_OUT),
    (
        "ADAMW_ERR_UNEXPECTED_MAX_EXP_AVG_SQ",
        ADAMW_ERR_UNEXPECTED_MAX_EXP_AVG_SQ,
    ),
    ("ADAMW_ERR_MISALIGNED_PARAM", ADAMW_ERR_MISALIGNED_PARAM),
    ("ADAMW_ERR_MISALIGNED_GRAD", ADAMW_ERR_MISALIGNED_GRAD),
    ("ADAMW_ERR_MISALIGNED_EXP_AVG", ADAMW_ERR_MISALIGNED_EXP_AVG),
    (
        "ADAMW_ERR_MISALIGNED_EXP_AVG_SQ",
        ADAMW_ERR_MISALIGNED_EXP_AVG_SQ,
    ),
    (
        "ADAMW_ERR_MISALIGNED_MAX_EXP_AVG_SQ",
        ADAMW_ERR_MISALIGNED_MAX_EXP_AVG_SQ,
    ),
    ("ADAMW_ERR_LEN_TOO_LARGE", ADAMW_ERR_LEN_TOO_LARGE),
    ("ADAMW_ERR_OVERLAP", ADAMW_ERR_OVERLAP),
    ("ADAMW_ERR_STEP_ZERO", ADAMW_ERR_STEP_ZERO),
    ("ADAMW_ERR_INVALID_LR", ADAMW_ERR_INVALID_LR),
    ("ADAMW_ERR_INVALID_BETA1", ADAMW_ERR_INVALID_BETA1),
    ("ADAMW_ERR_INVALID_BETA2", ADAMW_ERR_INVALID_BETA2),
    ("ADAMW_ERR_INVALID_EPS", ADAMW_ERR_INVALID_EPS),
    (
        "ADAMW_ERR_INVALID_WEIGHT_DECAY",
        ADAMW_ERR_INVALID_WEIGHT_DECAY,
    ),
    ("ADAMW_ERR_INVALID_AMSGRAD", ADAMW_ERR_INVALID_AMSGRAD),
    ("ADAMW_ERR_INVALID_MAXIMIZE", ADAMW_ERR_INVALID_MAXIMIZE),
    ("ADAMW_ERR_INVALID_ROUNDING", ADAMW_ERR_INVALID_ROUNDING),
    ("ADAMW_ERR_INVALID_DECAY_MODE", ADAMW_ERR_INVALID_DECAY_MODE),
    ("ADAMW_ERR_INTERNAL", ADAMW_ERR_INTERNAL),
    // Not an error code, but a `#define` of the header all the same.
    ("ADAMW_ROUNDING_UNFUSED", ADAMW_ROUNDING_UNFUSED as i32),
];

const LEN: usize = 11;

/// Five buffers of `LEN` floats with distinct, recognisable contents, so
/// that any write shows.
#[derive(Clone, Debug, PartialEq)]
struct Buffers {
    param: Vec<f32>,
    grad: Vec<f32>,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
    max_exp_avg_sq: Vec<f32>,
}

impl Buffers {
    fn new() -> Self {
        let ramp = |start: f32, scale: f32| -> Vec<f32> {
            (0..LEN).map(|i| start + scale * i as f32).collect()
        };
        Buffers {
            param: ramp(0.5, -0.125),
            grad: ramp(-0.25, 0.0625),
            exp_avg: ramp(0.01, 0.001),
            exp_avg_sq: ramp(0.002, 0.0005),
            max_exp_avg_sq: ramp(0.003, 0.0005),
        }
    }

    fn bits(&self) -> [Vec<u32>; 5] {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect();
        [
            bits(&self.param),
            bits(&self.grad),
            bits(&self.exp_avg),
            bits(&self.exp_avg_sq),
            bits(&self.max_exp_avg_sq),
        ]
    }

    /// `adamw_step_config` over these buffers; `with_max` passes the AMSGrad
    /// buffer, else NULL.
    fn step_config(&mut self, config: &Config, step: u64, with_max: bool) -> i32 {
        let max = if with_max {
            self.max_exp_avg_sq.as_mut_ptr()
        } else {
            ptr::null_mut()
        };
        // SAFETY: every pointer is NULL or a live Vec of LEN floats.
        unsafe {
            adamw_step_config(
                config,
                step,
                self.param.as_mut_ptr(),
                self.grad.as_ptr(),
                self.exp_avg.as_mut_ptr(),
                self.exp_avg_sq.as_mut_ptr(),
                max,
                LEN,
            )
        }
    }

    /// The basic `adamw_step` over these buffers.
    fn step_seed(&mut self, step: u64, lr: f64, weight_decay: f64) -> i32 {
        // SAFETY: every pointer is a live Vec of LEN floats.
        unsafe {
            adamw_step(
                self.param.as_mut_ptr(),
                self.grad.as_ptr(),
                self.exp_avg.as_mut_ptr(),
                self.exp_avg_sq.as_mut_ptr(),
                LEN,
                step,
                lr,
                0.9,
                0.999,
                1e-8,
                weight_decay,
            )
        }
    }
}

fn message(code: i32) -> String {
    // SAFETY: `adamw_strerror` returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(adamw_strerror(code)) }
        .to_str()
        .expect("messages are ASCII")
        .to_owned()
}

/// Asserts the code, with both messages printed on failure.
#[track_caller]
fn assert_code(found: i32, expected: i32) {
    assert_eq!(
        found,
        expected,
        "returned {found} ({}), expected {expected} ({})",
        message(found),
        message(expected)
    );
}

/// Asserts that no buffer changed, comparing bits.
#[track_caller]
fn assert_unchanged(after: &Buffers, before: &Buffers) {
    let names = ["param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    for ((name, a), b) in names.iter().zip(after.bits()).zip(before.bits()) {
        assert_eq!(a, b, "{name} changed although an error was returned");
    }
}

fn hex(v: &[f32]) -> Vec<String> {
    v.iter().map(|x| format!("{:08x}", x.to_bits())).collect()
}

#[test]
fn codes_are_distinct_and_have_messages() {
    for (i, &(name, code)) in ALL_CODES.iter().enumerate() {
        if name.starts_with("ADAMW_ROUNDING") {
            continue;
        }
        assert!(code <= 0, "{name} = {code} is positive");
        assert_ne!(message(code), "unknown error code", "{name} has no message");
        for &(other_name, other) in &ALL_CODES[i + 1..] {
            if !other_name.starts_with("ADAMW_ROUNDING") {
                assert_ne!(code, other, "{name} and {other_name} share {code}");
                assert_ne!(
                    message(code),
                    message(other),
                    "{name} and {other_name} share a message"
                );
            }
        }
    }
}

#[test]
fn strerror_of_unknown_code() {
    for code in [1, -10, -99, -101, i32::MIN, i32::MAX] {
        assert_eq!(message(code), "unknown error code", "code {code}");
    }
}

/// The header's `#define`s against the Rust constants: a stale header shows
/// here even where cbindgen is not installed.
#[test]
fn header_defines_match_rust_constants() {
    let header = include_str!("../include/adamw.h");
    let defines: Vec<(&str, i32)> = header
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("#define ADAMW_")?.split_whitespace();
            let name = words.next()?;
            let value = words.next()?.parse().ok()?;
            Some((&line[8..8 + name.len() + 6], value))
        })
        .collect();
    let errors: Vec<_> = defines
        .iter()
        .filter(|(name, _)| name.starts_with("ADAMW_ERR_") || *name == "ADAMW_OK")
        .collect();
    let expected_errors: Vec<_> = ALL_CODES
        .iter()
        .filter(|(name, _)| !name.starts_with("ADAMW_ROUNDING"))
        .collect();
    assert_eq!(
        errors, expected_errors,
        "header error codes differ from src/ffi.rs"
    );

    let modes = [
        ("ADAMW_ROUNDING_FUSED", ADAMW_ROUNDING_FUSED),
        ("ADAMW_ROUNDING_UNFUSED", ADAMW_ROUNDING_UNFUSED),
        ("ADAMW_DECAY_DECOUPLED", ADAMW_DECAY_DECOUPLED),
        ("ADAMW_DECAY_COUPLED_L2", ADAMW_DECAY_COUPLED_L2),
    ];
    for (name, value) in modes {
        assert!(
            defines.contains(&(name, i32::from(value))),
            "header lacks #define {name} {value}"
        );
    }
    for function in [
        "adamw_config_default(",
        "adamw_step(",
        "adamw_step_config(",
        "adamw_prepare(",
        "adamw_apply(",
        "adamw_strerror(",
    ] {
        assert!(header.contains(function), "header lacks {function}");
    }
}

#[test]
fn config_default_is_hyperparams_default() {
    let config = adamw_config_default();
    let h = Hyperparams::DEFAULT;
    assert_eq!(config.lr.to_bits(), h.lr.to_bits(), "lr");
    assert_eq!(config.beta1.to_bits(), h.beta1.to_bits(), "beta1");
    assert_eq!(config.beta2.to_bits(), h.beta2.to_bits(), "beta2");
    assert_eq!(config.eps.to_bits(), h.eps.to_bits(), "eps");
    assert_eq!(
        config.weight_decay.to_bits(),
        h.weight_decay.to_bits(),
        "weight_decay"
    );
    assert_eq!(config.amsgrad, 0, "amsgrad");
    assert_eq!(config.maximize, 0, "maximize");
    assert_eq!(config.rounding, ADAMW_ROUNDING_FUSED, "rounding");
    assert_eq!(config.decay_mode, ADAMW_DECAY_DECOUPLED, "decay_mode");
}

#[test]
fn seed_step_matches_rust_adamw_step() {
    let mut c = Buffers::new();
    let mut rust = Buffers::new();
    for t in 1..=5 {
        assert_code(c.step_seed(t, 1e-2, 0.1), ADAMW_OK);
        adamw::adamw_step(
            &mut rust.param,
            &rust.grad,
            &mut rust.exp_avg,
            &mut rust.exp_avg_sq,
            t,
            1e-2,
            0.9,
            0.999,
            1e-8,
            0.1,
        )
        .expect("valid step");
    }
    assert_eq!(hex(&c.param), hex(&rust.param), "param");
    assert_eq!(hex(&c.exp_avg), hex(&rust.exp_avg), "exp_avg");
    assert_eq!(hex(&c.exp_avg_sq), hex(&rust.exp_avg_sq), "exp_avg_sq");
    assert_ne!(
        hex(&c.param),
        hex(&Buffers::new().param),
        "the step changed nothing"
    );
}

/// Every combination of the flags and modes, against `apply_scalar`.
#[test]
fn step_config_matches_apply_scalar() {
    for bits in 0..16u8 {
        let config = Config {
            lr: 3e-2,
            weight_decay: 0.25,
            amsgrad: bits & 1,
            maximize: (bits >> 1) & 1,
            rounding: (bits >> 2) & 1,
            decay_mode: (bits >> 3) & 1,
            ..adamw_config_default()
        };
        let hyper = Hyperparams {
            lr: 3e-2,
            weight_decay: 0.25,
            amsgrad: config.amsgrad == 1,
            maximize: config.maximize == 1,
            rounding: if config.rounding == 1 {
                Rounding::Unfused
            } else {
                Rounding::Fused
            },
            decay_mode: if config.decay_mode == 1 {
                WeightDecay::CoupledL2
            } else {
                WeightDecay::Decoupled
            },
            ..Hyperparams::DEFAULT
        };
        let amsgrad = hyper.amsgrad;
        let mut c = Buffers::new();
        let mut rust = Buffers::new();
        for t in 1..=3 {
            assert_code(c.step_config(&config, t, amsgrad), ADAMW_OK);
            let max = amsgrad.then_some(&mut rust.max_exp_avg_sq[..]);
            StepScalars::new(&hyper, t)
                .and_then(|s| {
                    s.apply_scalar(
                        &mut rust.param,
                        &rust.grad,
                        &mut rust.exp_avg,
                        &mut rust.exp_avg_sq,
                        max,
                    )
                })
                .expect("valid step");
        }
        assert_eq!(c.bits(), rust.bits(), "config {config:?}");
    }
}

#[test]
fn prepare_matches_step_scalars_new() {
    let config = Config {
        amsgrad: 1,
        maximize: 1,
        rounding: ADAMW_ROUNDING_UNFUSED,
        decay_mode: ADAMW_DECAY_COUPLED_L2,
        ..adamw_config_default()
    };
    let hyper = Hyperparams {
        amsgrad: true,
        maximize: true,
        rounding: Rounding::Unfused,
        decay_mode: WeightDecay::CoupledL2,
        ..Hyperparams::DEFAULT
    };
    let mut out = Scalars::from(StepScalars::new(&Hyperparams::DEFAULT, 1).expect("valid"));
    // SAFETY: both pointers are to live locals.
    assert_code(unsafe { adamw_prepare(&config, 7, &mut out) }, ADAMW_OK);
    let expected = Scalars::from(StepScalars::new(&hyper, 7).expect("valid"));
    assert_eq!(out, expected);
}

/// `adamw_apply` with one set of scalars on two tensors, as a C model with a
/// weight and a bias tensor would call it.
#[test]
fn apply_to_two_tensors_matches_apply_scalar() {
    let config = adamw_config_default();
    let scalars_rust = StepScalars::new(&Hyperparams::DEFAULT, 2).expect("valid");
    let mut scalars = Scalars::from(scalars_rust);
    // SAFETY: both pointers are to live locals.
    assert_code(unsafe { adamw_prepare(&config, 2, &mut scalars) }, ADAMW_OK);

    let mut c = Buffers::new();
    let mut rust = Buffers::new();
    let (c_w, c_b) = c.param.split_at_mut(7);
    let (c_gw, c_gb) = c.grad.split_at(7);
    let (c_mw, c_mb) = c.exp_avg.split_at_mut(7);
    let (c_vw, c_vb) = c.exp_avg_sq.split_at_mut(7);
    for (p, g, m, v) in [(c_w, c_gw, c_mw, c_vw), (c_b, c_gb, c_mb, c_vb)] {
        // SAFETY: four disjoint live slices of one length.
        let code = unsafe {
            adamw_apply(
                &scalars,
                p.as_mut_ptr(),
                g.as_ptr(),
                m.as_mut_ptr(),
                v.as_mut_ptr(),
                ptr::null_mut(),
                p.len(),
            )
        };
        assert_code(code, ADAMW_OK);
    }
    scalars_rust
        .apply_scalar(
            &mut rust.param,
            &rust.grad,
            &mut rust.exp_avg,
            &mut rust.exp_avg_sq,
            None,
        )
        .expect("valid step");
    assert_eq!(c.bits(), rust.bits());
}

#[test]
fn len_zero_accepts_null_and_misaligned_pointers() {
    let misaligned = ptr::without_provenance_mut::<f32>(3);
    let config = Config {
        amsgrad: 1,
        ..adamw_config_default()
    };
    // SAFETY: with len 0 no pointer is dereferenced.
    unsafe {
        let null = ptr::null_mut();
        assert_code(
            adamw_step(null, null, null, null, 0, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0),
            ADAMW_OK,
        );
        assert_code(
            adamw_step(
                misaligned, misaligned, misaligned, misaligned, 0, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0,
            ),
            ADAMW_OK,
        );
        assert_code(
            adamw_step_config(&config, 1, null, null, null, null, null, 0),
            ADAMW_OK,
        );
    }
}

#[test]
fn len_zero_still_checks_hyperparameters_and_step() {
    let null = ptr::null_mut();
    // SAFETY: with len 0 no pointer is dereferenced.
    unsafe {
        assert_code(
            adamw_step(null, null, null, null, 0, 0, 1e-3, 0.9, 0.999, 1e-8, 0.0),
            ADAMW_ERR_STEP_ZERO,
        );
        assert_code(
            adamw_step(null, null, null, null, 0, 1, -1.0, 0.9, 0.999, 1e-8, 0.0),
            ADAMW_ERR_INVALID_LR,
        );
    }
}

/// Each invalid hyperparameter of the seed entry point, one at a time.
#[test]
fn seed_step_rejects_each_hyperparameter() {
    type Case = (&'static str, f64, f64, f64, f64, f64, i32);
    let cases: [Case; 10] = [
        (
            "negative lr",
            -1e-3,
            0.9,
            0.999,
            1e-8,
            0.0,
            ADAMW_ERR_INVALID_LR,
        ),
        (
            "NaN lr",
            f64::NAN,
            0.9,
            0.999,
            1e-8,
            0.0,
            ADAMW_ERR_INVALID_LR,
        ),
        (
            "infinite lr",
            f64::INFINITY,
            0.9,
            0.999,
            1e-8,
            0.0,
            ADAMW_ERR_INVALID_LR,
        ),
        (
            "beta1 = 1",
            1e-3,
            1.0,
            0.999,
            1e-8,
            0.0,
            ADAMW_ERR_INVALID_BETA1,
        ),
        (
            "negative beta1",
            1e-3,
            -0.1,
            0.999,
            1e-8,
            0.0,
            ADAMW_ERR_INVALID_BETA1,
        ),
        (
            "beta2 = 1",
            1e-3,
            0.9,
            1.0,
            1e-8,
            0.0,
            ADAMW_ERR_INVALID_BETA2,
        ),
        (
            "NaN beta2",
            1e-3,
            0.9,
            f64::NAN,
            1e-8,
            0.0,
            ADAMW_ERR_INVALID_BETA2,
        ),
        (
            "negative eps",
            1e-3,
            0.9,
            0.999,
            -1e-8,
            0.0,
            ADAMW_ERR_INVALID_EPS,
        ),
        (
            "infinite eps",
            1e-3,
            0.9,
            0.999,
            f64::INFINITY,
            0.0,
            ADAMW_ERR_INVALID_EPS,
        ),
        (
            "negative weight_decay",
            1e-3,
            0.9,
            0.999,
            1e-8,
            -0.5,
            ADAMW_ERR_INVALID_WEIGHT_DECAY,
        ),
    ];
    for (what, lr, beta1, beta2, eps, weight_decay, expected) in cases {
        let before = Buffers::new();
        let mut b = before.clone();
        // SAFETY: every pointer is a live Vec of LEN floats.
        let code = unsafe {
            adamw_step(
                b.param.as_mut_ptr(),
                b.grad.as_ptr(),
                b.exp_avg.as_mut_ptr(),
                b.exp_avg_sq.as_mut_ptr(),
                LEN,
                1,
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            )
        };
        assert_eq!(
            code,
            expected,
            "{what}: returned {} ({})",
            code,
            message(code)
        );
        assert_unchanged(&b, &before);
    }
}

#[test]
fn step_zero_is_rejected() {
    let before = Buffers::new();
    let mut b = before.clone();
    assert_code(b.step_seed(0, 1e-3, 0.0), ADAMW_ERR_STEP_ZERO);
    assert_unchanged(&b, &before);
    assert_code(
        b.step_config(&adamw_config_default(), 0, false),
        ADAMW_ERR_STEP_ZERO,
    );
    assert_unchanged(&b, &before);
}

/// Bytes of the config that C may set to any value.
#[test]
fn config_rejects_invalid_flag_and_mode_bytes() {
    let default = adamw_config_default();
    let cases = [
        (
            "amsgrad = 2",
            Config {
                amsgrad: 2,
                ..default
            },
            ADAMW_ERR_INVALID_AMSGRAD,
        ),
        (
            "amsgrad = 255",
            Config {
                amsgrad: 255,
                ..default
            },
            ADAMW_ERR_INVALID_AMSGRAD,
        ),
        (
            "maximize = 2",
            Config {
                maximize: 2,
                ..default
            },
            ADAMW_ERR_INVALID_MAXIMIZE,
        ),
        (
            "rounding = 7",
            Config {
                rounding: 7,
                ..default
            },
            ADAMW_ERR_INVALID_ROUNDING,
        ),
        (
            "rounding = 2",
            Config {
                rounding: 2,
                ..default
            },
            ADAMW_ERR_INVALID_ROUNDING,
        ),
        (
            "decay_mode = 2",
            Config {
                decay_mode: 2,
                ..default
            },
            ADAMW_ERR_INVALID_DECAY_MODE,
        ),
        (
            "lr = -inf",
            Config {
                lr: f64::NEG_INFINITY,
                ..default
            },
            ADAMW_ERR_INVALID_LR,
        ),
        (
            "beta1 = NaN",
            Config {
                beta1: f64::NAN,
                ..default
            },
            ADAMW_ERR_INVALID_BETA1,
        ),
        (
            "beta2 = 1.5",
            Config {
                beta2: 1.5,
                ..default
            },
            ADAMW_ERR_INVALID_BETA2,
        ),
        (
            "eps = NaN",
            Config {
                eps: f64::NAN,
                ..default
            },
            ADAMW_ERR_INVALID_EPS,
        ),
        (
            "weight_decay = inf",
            Config {
                weight_decay: f64::INFINITY,
                ..default
            },
            ADAMW_ERR_INVALID_WEIGHT_DECAY,
        ),
    ];
    for (what, config, expected) in cases {
        let before = Buffers::new();
        let mut b = before.clone();
        let code = b.step_config(&config, 1, false);
        assert_eq!(
            code,
            expected,
            "step_config, {what}: returned {code} ({})",
            message(code)
        );
        assert_unchanged(&b, &before);

        let sentinel = Scalars::from(StepScalars::new(&Hyperparams::DEFAULT, 9).expect("valid"));
        let mut out = sentinel;
        // SAFETY: both pointers are to live locals.
        let code = unsafe { adamw_prepare(&config, 1, &mut out) };
        assert_eq!(
            code,
            expected,
            "prepare, {what}: returned {code} ({})",
            message(code)
        );
        assert_eq!(out, sentinel, "prepare, {what}: out changed");
    }
}

#[test]
fn null_config_scalars_and_out_are_rejected() {
    let config = adamw_config_default();
    let mut out = Scalars::from(StepScalars::new(&Hyperparams::DEFAULT, 1).expect("valid"));
    let before = Buffers::new();
    let mut b = before.clone();
    // SAFETY: NULL is checked first; the other pointers are live locals.
    unsafe {
        assert_code(
            adamw_prepare(ptr::null(), 1, &mut out),
            ADAMW_ERR_NULL_CONFIG,
        );
        assert_code(
            adamw_prepare(&config, 1, ptr::null_mut()),
            ADAMW_ERR_NULL_OUT,
        );
        assert_code(
            adamw_prepare(ptr::null(), 0, ptr::null_mut()),
            ADAMW_ERR_NULL_CONFIG,
        );
        assert_code(
            adamw_step_config(
                ptr::null(),
                1,
                b.param.as_mut_ptr(),
                b.grad.as_ptr(),
                b.exp_avg.as_mut_ptr(),
                b.exp_avg_sq.as_mut_ptr(),
                ptr::null_mut(),
                LEN,
            ),
            ADAMW_ERR_NULL_CONFIG,
        );
        assert_code(
            adamw_apply(
                ptr::null(),
                b.param.as_mut_ptr(),
                b.grad.as_ptr(),
                b.exp_avg.as_mut_ptr(),
                b.exp_avg_sq.as_mut_ptr(),
                ptr::null_mut(),
                LEN,
            ),
            ADAMW_ERR_NULL_SCALARS,
        );
    }
    assert_unchanged(&b, &before);
}

/// A scalars struct that C changed after `adamw_prepare`.
#[test]
fn apply_rejects_invalid_scalars_bytes() {
    let valid = Scalars::from(StepScalars::new(&Hyperparams::DEFAULT, 1).expect("valid"));
    let cases = [
        (
            "amsgrad = 3",
            Scalars {
                amsgrad: 3,
                ..valid
            },
            ADAMW_ERR_INVALID_AMSGRAD,
        ),
        (
            "maximize = 9",
            Scalars {
                maximize: 9,
                ..valid
            },
            ADAMW_ERR_INVALID_MAXIMIZE,
        ),
        (
            "rounding = 7",
            Scalars {
                rounding: 7,
                ..valid
            },
            ADAMW_ERR_INVALID_ROUNDING,
        ),
    ];
    for (what, scalars, expected) in cases {
        let before = Buffers::new();
        let mut b = before.clone();
        // SAFETY: every pointer is a live local or Vec of LEN floats.
        let code = unsafe {
            adamw_apply(
                &scalars,
                b.param.as_mut_ptr(),
                b.grad.as_ptr(),
                b.exp_avg.as_mut_ptr(),
                b.exp_avg_sq.as_mut_ptr(),
                ptr::null_mut(),
                LEN,
            )
        };
        assert_eq!(
            code,
            expected,
            "{what}: returned {code} ({})",
            message(code)
        );
        assert_unchanged(&b, &before);
    }
}

/// Config and scalars may sit at any address, as in a packed C struct.
#[test]
fn misaligned_config_and_scalars_are_read() {
    let config = Config {
        lr: 0.05,
        ..adamw_config_default()
    };
    let mut bytes = [0u8; size_of::<Config>() + size_of::<Scalars>() + 2];
    let config_at = bytes.as_mut_ptr().wrapping_add(1).cast::<Config>();
    // SAFETY: `bytes` has room for a Config at offset 1; unaligned write.
    unsafe { config_at.write_unaligned(config) };
    let scalars_at = bytes
        .as_mut_ptr()
        .wrapping_add(1 + size_of::<Config>())
        .cast::<Scalars>();
    // SAFETY: both pointers are in `bytes`; the functions accept any alignment.
    assert_code(unsafe { adamw_prepare(config_at, 4, scalars_at) }, ADAMW_OK);
    // SAFETY: as above.
    let out = unsafe { scalars_at.read_unaligned() };
    let hyper = Hyperparams {
        lr: 0.05,
        ..Hyperparams::DEFAULT
    };
    assert_eq!(
        out,
        Scalars::from(StepScalars::new(&hyper, 4).expect("valid"))
    );
}

#[test]
fn null_buffers_are_rejected_in_order() {
    let config = Config {
        amsgrad: 1,
        ..adamw_config_default()
    };
    let before = Buffers::new();
    let mut b = before.clone();
    let null = ptr::null_mut::<f32>();
    let (p, g, m, v, x) = (
        b.param.as_mut_ptr(),
        b.grad.as_ptr(),
        b.exp_avg.as_mut_ptr(),
        b.exp_avg_sq.as_mut_ptr(),
        b.max_exp_avg_sq.as_mut_ptr(),
    );
    // Each row sets one more pointer to NULL from the back, so the reported
    // code moves to the earliest NULL pointer.
    let cases = [
        ((p, g, m, v, null), ADAMW_ERR_NULL_MAX_EXP_AVG_SQ),
        ((p, g, m, null, null), ADAMW_ERR_NULL_EXP_AVG_SQ),
        ((p, g, null, null, null), ADAMW_ERR_NULL_EXP_AVG),
        (
            (p, null.cast_const(), null, null, null),
            ADAMW_ERR_NULL_GRAD,
        ),
        (
            (null, null.cast_const(), null, null, null),
            ADAMW_ERR_NULL_PARAM,
        ),
        ((null, g, m, v, x), ADAMW_ERR_NULL_PARAM),
    ];
    for ((p, g, m, v, x), expected) in cases {
        // SAFETY: every pointer is NULL or a live Vec of LEN floats.
        let code = unsafe { adamw_step_config(&config, 1, p, g, m, v, x, LEN) };
        assert_code(code, expected);
    }
    assert_unchanged(&b, &before);
}

#[test]
fn max_exp_avg_sq_without_amsgrad_is_rejected() {
    let before = Buffers::new();
    let mut b = before.clone();
    assert_code(
        b.step_config(&adamw_config_default(), 1, true),
        ADAMW_ERR_UNEXPECTED_MAX_EXP_AVG_SQ,
    );
    assert_unchanged(&b, &before);

    // Also with len 0: the mismatch is in the configuration, not the data.
    let mut x = 0.0f32;
    let null = ptr::null_mut();
    // SAFETY: with len 0 no buffer is dereferenced.
    let code = unsafe {
        adamw_step_config(
            &adamw_config_default(),
            1,
            null,
            null,
            null,
            null,
            &mut x,
            0,
        )
    };
    assert_code(code, ADAMW_ERR_UNEXPECTED_MAX_EXP_AVG_SQ);
}

#[test]
fn misaligned_buffers_are_rejected_in_order() {
    let config = Config {
        amsgrad: 1,
        ..adamw_config_default()
    };
    // Five disjoint runs of LEN floats in one u32 block, each shifted by one
    // byte when requested.
    let mut block = vec![0x3f80_0000u32; 5 * (LEN + 1)];
    let before = block.clone();
    let base = block.as_mut_ptr().cast::<u8>();
    let buffer = |i: usize, shift: bool| -> *mut f32 {
        base.wrapping_add(i * (LEN + 1) * 4 + usize::from(shift))
            .cast()
    };
    let codes = [
        ADAMW_ERR_MISALIGNED_PARAM,
        ADAMW_ERR_MISALIGNED_GRAD,
        ADAMW_ERR_MISALIGNED_EXP_AVG,
        ADAMW_ERR_MISALIGNED_EXP_AVG_SQ,
        ADAMW_ERR_MISALIGNED_MAX_EXP_AVG_SQ,
    ];
    for (first, &expected) in codes.iter().enumerate() {
        // Shift `first` and every buffer after it: the first one is reported.
        let p: Vec<_> = (0..5).map(|i| buffer(i, i >= first)).collect();
        // SAFETY: each pointer covers LEN * 4 bytes inside `block`; misaligned
        // ones are rejected before any access.
        let code = unsafe { adamw_step_config(&config, 1, p[0], p[1], p[2], p[3], p[4], LEN) };
        assert_code(code, expected);
    }
    assert_eq!(block, before, "a rejected call wrote to the block");
}

#[test]
fn overlapping_buffers_are_rejected() {
    let config = Config {
        amsgrad: 1,
        ..adamw_config_default()
    };
    let mut block = vec![0.25f32; 6 * LEN];
    let before = block.clone();
    let base = block.as_mut_ptr();
    let at = |element: usize| base.wrapping_add(element);
    let disjoint = [at(0), at(LEN), at(2 * LEN), at(3 * LEN), at(4 * LEN)];
    // Every ordered pair of the five buffers: buffer j moved onto buffer i,
    // fully (the same pointer) and by one element (j starts at i's last).
    for i in 0..5 {
        for j in 0..5 {
            if i == j {
                continue;
            }
            for shift in [0, LEN - 1] {
                let mut p = disjoint;
                p[j] = p[i].wrapping_add(shift);
                // SAFETY: every pointer covers LEN floats inside `block`.
                let code =
                    unsafe { adamw_step_config(&config, 1, p[0], p[1], p[2], p[3], p[4], LEN) };
                assert_eq!(
                    code,
                    ADAMW_ERR_OVERLAP,
                    "buffer {j} at buffer {i} + {shift} elements: returned {code} ({})",
                    message(code)
                );
            }
        }
    }
    assert_eq!(
        hex(&block),
        hex(&before),
        "a rejected call wrote to the block"
    );
}

#[test]
fn adjacent_buffers_are_accepted() {
    let mut block = vec![0.5f32; 4 * LEN];
    let base = block.as_mut_ptr();
    // SAFETY: four adjacent, disjoint runs of LEN floats inside `block`.
    let code = unsafe {
        adamw_step(
            base,
            base.wrapping_add(LEN),
            base.wrapping_add(2 * LEN),
            base.wrapping_add(3 * LEN),
            LEN,
            1,
            1e-3,
            0.9,
            0.999,
            1e-8,
            0.0,
        )
    };
    assert_code(code, ADAMW_OK);
}

#[test]
fn len_too_large_is_rejected() {
    let before = Buffers::new();
    let mut b = before.clone();
    let cases = [
        ("len * 4 overflows usize", usize::MAX / 4 + 1),
        ("len * 4 exceeds isize::MAX", isize::MAX as usize / 4 + 1),
        ("len = usize::MAX", usize::MAX),
    ];
    for (what, len) in cases {
        // SAFETY: the length is rejected before any access.
        let code = unsafe {
            adamw_step(
                b.param.as_mut_ptr(),
                b.grad.as_ptr(),
                b.exp_avg.as_mut_ptr(),
                b.exp_avg_sq.as_mut_ptr(),
                len,
                1,
                1e-3,
                0.9,
                0.999,
                1e-8,
                0.0,
            )
        };
        assert_eq!(
            code,
            ADAMW_ERR_LEN_TOO_LARGE,
            "{what}: returned {code} ({})",
            message(code)
        );
    }
    assert_unchanged(&b, &before);
}

#[test]
fn buffer_wrapping_the_address_space_is_rejected() {
    let mut b = Buffers::new();
    // Four floats from 8 bytes below the end of the address space.
    let wrapping = ptr::without_provenance_mut::<f32>(usize::MAX - 7);
    // SAFETY: the range is rejected before any access.
    let code = unsafe {
        adamw_step(
            b.param.as_mut_ptr(),
            b.grad.as_ptr(),
            wrapping,
            b.exp_avg_sq.as_mut_ptr(),
            4,
            1,
            1e-3,
            0.9,
            0.999,
            1e-8,
            0.0,
        )
    };
    assert_code(code, ADAMW_ERR_LEN_TOO_LARGE);
}

/// When several inputs are invalid, the first check in the documented order
/// wins: hyperparameters, step, then buffers.
#[test]
fn first_failing_check_is_reported() {
    let null = ptr::null_mut();
    // SAFETY: every call is rejected before any buffer access.
    unsafe {
        assert_code(
            adamw_step(null, null, null, null, 4, 0, -1.0, 2.0, 0.9, 0.0, 0.0),
            ADAMW_ERR_INVALID_LR,
        );
        assert_code(
            adamw_step(null, null, null, null, 4, 0, 1e-3, 2.0, 2.0, 0.0, 0.0),
            ADAMW_ERR_INVALID_BETA1,
        );
        assert_code(
            adamw_step(null, null, null, null, 4, 0, 1e-3, 0.9, 0.999, 0.0, 0.0),
            ADAMW_ERR_STEP_ZERO,
        );
        assert_code(
            adamw_step(null, null, null, null, 4, 1, 1e-3, 0.9, 0.999, 0.0, 0.0),
            ADAMW_ERR_NULL_PARAM,
        );

        let config = Config {
            amsgrad: 5,
            rounding: 7,
            lr: -1.0,
            ..adamw_config_default()
        };
        assert_code(
            adamw_step_config(&config, 0, null, null, null, null, null, 4),
            ADAMW_ERR_INVALID_AMSGRAD,
        );
        let config = Config {
            rounding: 7,
            lr: -1.0,
            ..adamw_config_default()
        };
        assert_code(
            adamw_step_config(&config, 0, null, null, null, null, null, 4),
            ADAMW_ERR_INVALID_ROUNDING,
        );
        let config = Config {
            decay_mode: 3,
            lr: -1.0,
            ..adamw_config_default()
        };
        assert_code(
            adamw_step_config(&config, 0, null, null, null, null, null, 4),
            ADAMW_ERR_INVALID_DECAY_MODE,
        );
    }
}

/// The training of examples/c/linreg.c, computed with the Rust API, must
/// print exactly examples/c/linreg.expected, which .ci/c_abi.sh compares
/// with the C program's output on the host and on the Cortex-M4.
#[test]
fn c_linreg_example_output_matches_rust_api() {
    let expected = include_str!("../examples/c/linreg.expected");
    let found = linreg::run();
    let (found_lines, expected_lines): (Vec<_>, Vec<_>) =
        (found.lines().collect(), expected.lines().collect());
    assert_eq!(
        found_lines.len(),
        expected_lines.len(),
        "line count\n{found}"
    );
    for (f, e) in found_lines.iter().zip(&expected_lines) {
        assert_eq!(f, e, "Rust API output differs from linreg.expected");
    }
}

/// A line-for-line port of examples/c/linreg.c to the Rust API. Every float
/// operation is written in the C program's order, one rounding each.
mod linreg {
    use std::fmt::Write;

    use adamw::ffi::{
        ADAMW_ERR_INVALID_ROUNDING, ADAMW_ERR_OVERLAP, ADAMW_ERR_STEP_ZERO, adamw_strerror,
    };
    use adamw::{Error, Hyperparams, Rounding, StepScalars, WeightDecay};

    const SAMPLES: usize = 64;
    const FEATURES: usize = 3;
    const STEPS: u64 = 200;

    struct Data {
        xs: [[f32; FEATURES]; SAMPLES],
        ys: [f32; SAMPLES],
    }

    fn make_data() -> Data {
        let mut xs = [[0.0f32; FEATURES]; SAMPLES];
        let mut ys = [0.0f32; SAMPLES];
        for i in 0..SAMPLES as i32 {
            for d in 0..FEATURES as i32 {
                xs[i as usize][d as usize] = ((i * (7 + 2 * d) + 3 * d) % 17 - 8) as f32 / 8.0;
            }
            let noise = ((i * 5) % 11 - 5) as f32 / 64.0;
            let x = xs[i as usize];
            ys[i as usize] = 1.5 * x[0] - 2.0 * x[1] + 0.25 * x[2] + 0.75 + noise;
        }
        Data { xs, ys }
    }

    #[derive(Default)]
    struct Model {
        w: [f32; FEATURES],
        w_grad: [f32; FEATURES],
        w_m: [f32; FEATURES],
        w_v: [f32; FEATURES],
        w_max: [f32; FEATURES],
        b: [f32; 1],
        b_grad: [f32; 1],
        b_m: [f32; 1],
        b_v: [f32; 1],
        b_max: [f32; 1],
    }

    fn loss_and_grad(md: &mut Model, data: &Data) -> f32 {
        let mut sum_sq = 0.0f32;
        let mut gw = [0.0f32; FEATURES];
        let mut gb = 0.0f32;
        for (x, y) in data.xs.iter().zip(&data.ys) {
            let mut pred = md.w[0] * x[0];
            pred += md.w[1] * x[1];
            pred += md.w[2] * x[2];
            pred += md.b[0];
            let err = pred - y;
            sum_sq += err * err;
            for d in 0..FEATURES {
                gw[d] += err * x[d];
            }
            gb += err;
        }
        let scale = 2.0f32 / SAMPLES as f32;
        for (grad, sum) in md.w_grad.iter_mut().zip(gw) {
            *grad = sum * scale;
        }
        md.b_grad[0] = gb * scale;
        sum_sq / SAMPLES as f32
    }

    fn print_model(out: &mut String, name: &str, md: &Model, loss: f32) {
        for d in 0..FEATURES {
            writeln!(out, "{name} w[{d}] {:08x}", md.w[d].to_bits()).unwrap();
        }
        writeln!(out, "{name} b {:08x}", md.b[0].to_bits()).unwrap();
        writeln!(out, "{name} loss {:08x}", loss.to_bits()).unwrap();
    }

    fn print_error(out: &mut String, what: &str, code: i32) {
        // SAFETY: `adamw_strerror` returns a static NUL-terminated string.
        let message = unsafe { std::ffi::CStr::from_ptr(adamw_strerror(code)) };
        writeln!(out, "error {what} {code} {}", message.to_str().unwrap()).unwrap();
    }

    pub fn run() -> String {
        let data = make_data();
        let mut out = String::new();

        // A: prepare once per step, apply to both tensors, AMSGrad.
        let hyper = Hyperparams {
            lr: 0.05,
            amsgrad: true,
            ..Hyperparams::DEFAULT
        };
        let mut md = Model::default();
        for t in 1..=STEPS {
            loss_and_grad(&mut md, &data);
            let s = StepScalars::new(&hyper, t).unwrap();
            s.apply(
                &mut md.w,
                &md.w_grad,
                &mut md.w_m,
                &mut md.w_v,
                Some(&mut md.w_max),
            )
            .unwrap();
            s.apply(
                &mut md.b,
                &md.b_grad,
                &mut md.b_m,
                &mut md.b_v,
                Some(&mut md.b_max),
            )
            .unwrap();
        }
        let loss = loss_and_grad(&mut md, &data);
        print_model(&mut out, "A", &md, loss);

        // B: the basic step.
        let mut md = Model::default();
        for t in 1..=STEPS {
            loss_and_grad(&mut md, &data);
            adamw::adamw_step(
                &mut md.w,
                &md.w_grad,
                &mut md.w_m,
                &mut md.w_v,
                t,
                0.05,
                0.9,
                0.999,
                1e-8,
                0.0,
            )
            .unwrap();
            adamw::adamw_step(
                &mut md.b,
                &md.b_grad,
                &mut md.b_m,
                &mut md.b_v,
                t,
                0.05,
                0.9,
                0.999,
                1e-8,
                0.0,
            )
            .unwrap();
        }
        let loss = loss_and_grad(&mut md, &data);
        print_model(&mut out, "B", &md, loss);

        // C: unfused rounding and coupled L2 decay.
        let hyper = Hyperparams {
            lr: 0.05,
            weight_decay: 0.1,
            rounding: Rounding::Unfused,
            decay_mode: WeightDecay::CoupledL2,
            ..Hyperparams::DEFAULT
        };
        let mut md = Model::default();
        for t in 1..=STEPS {
            loss_and_grad(&mut md, &data);
            adamw::step(
                &hyper,
                t,
                &mut md.w,
                &md.w_grad,
                &mut md.w_m,
                &mut md.w_v,
                None,
            )
            .unwrap();
            adamw::step(
                &hyper,
                t,
                &mut md.b,
                &md.b_grad,
                &mut md.b_m,
                &mut md.b_v,
                None,
            )
            .unwrap();
        }
        let loss = loss_and_grad(&mut md, &data);
        print_model(&mut out, "C", &md, loss);

        // The rejected calls, as the Rust API reports them, in C codes.
        let step0 = StepScalars::new(&Hyperparams::DEFAULT, 0);
        assert_eq!(step0, Err(Error::StepZero));
        print_error(&mut out, "step0", ADAMW_ERR_STEP_ZERO);
        // `Rounding` cannot hold 7 in Rust, and slices cannot overlap, so
        // these two lines exist only in C.
        print_error(&mut out, "rounding7", ADAMW_ERR_INVALID_ROUNDING);
        print_error(&mut out, "overlap", ADAMW_ERR_OVERLAP);
        out
    }
}
