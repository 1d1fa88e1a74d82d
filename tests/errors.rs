//! Every rejected input: the error names the field and value, its message
//! reads as documented, and no buffer changes.

use adamw::{Error, Hyperparams, StepScalars, WeightDecay, adamw_step, step};

const N: usize = 5;

/// Buffers with distinct values, including a NaN with a payload, so that any
/// write, even of the same value to another cell, changes some bits.
#[derive(Clone)]
struct Buffers {
    param: Vec<f32>,
    grad: Vec<f32>,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
    max_exp_avg_sq: Vec<f32>,
}

impl Buffers {
    fn new() -> Self {
        Buffers {
            param: vec![0.5, -1.25, 3.0, f32::from_bits(0x7fc0_1234), -0.0],
            grad: vec![0.1, -0.2, 0.3, -0.4, 0.5],
            exp_avg: vec![0.01, 0.02, -0.03, 0.04, -0.05],
            exp_avg_sq: vec![1e-4, 2e-4, 3e-4, 4e-4, 5e-4],
            max_exp_avg_sq: vec![2e-4, 1e-4, 4e-4, 3e-4, 6e-4],
        }
    }

    fn bits(&self) -> Vec<Vec<u32>> {
        [
            &self.param,
            &self.grad,
            &self.exp_avg,
            &self.exp_avg_sq,
            &self.max_exp_avg_sq,
        ]
        .iter()
        .map(|b| b.iter().map(|x| x.to_bits()).collect())
        .collect()
    }
}

/// The entry points that take slices, each run on fresh buffers.
#[derive(Clone, Copy, Debug)]
enum Entry {
    Apply,
    ApplyScalar,
    Step,
}

const ENTRIES: [Entry; 3] = [Entry::Apply, Entry::ApplyScalar, Entry::Step];

/// Runs `entry` with the lengths cut to the given sizes and with or without
/// the AMSGrad buffer, and checks that the buffers kept their bits.
fn run_unchanged(
    entry: Entry,
    hyper: &Hyperparams,
    t: u64,
    lengths: [usize; 4],
    with_max: Option<usize>,
) -> Result<(), Error> {
    let mut b = Buffers::new();
    let before = b.bits();
    let [g, m, v, p] = lengths;
    let max = with_max.map(|len| &mut b.max_exp_avg_sq[..len]);
    let (param, grad) = (&mut b.param[..p], &b.grad[..g]);
    let (exp_avg, exp_avg_sq) = (&mut b.exp_avg[..m], &mut b.exp_avg_sq[..v]);

    let result = match entry {
        Entry::Apply => {
            StepScalars::new(hyper, t).and_then(|s| s.apply(param, grad, exp_avg, exp_avg_sq, max))
        }
        Entry::ApplyScalar => StepScalars::new(hyper, t)
            .and_then(|s| s.apply_scalar(param, grad, exp_avg, exp_avg_sq, max)),
        Entry::Step => step(hyper, t, param, grad, exp_avg, exp_avg_sq, max),
    };
    assert_eq!(b.bits(), before, "{entry:?}: buffers changed ({result:?})");
    result
}

/// Runs every entry point with full-length buffers, and the AMSGrad buffer
/// when `hyper.amsgrad` is set, expecting the same error from each.
fn expect_error_everywhere(hyper: &Hyperparams, t: u64, expected: Error) {
    let with_max = hyper.amsgrad.then_some(N);
    for entry in ENTRIES {
        let result = run_unchanged(entry, hyper, t, [N; 4], with_max);
        assert_eq!(result, Err(expected), "{entry:?}");
    }
}

fn invalid(name: &'static str, value: f64, allowed: &'static str) -> Error {
    Error::InvalidHyperparameter {
        name,
        value,
        allowed,
    }
}

/// torch's defaults with one hyperparameter set by its torch name.
fn with_field(name: &str, value: f64) -> Hyperparams {
    with(Hyperparams::DEFAULT, name, value)
}

/// `hyper` with one hyperparameter set by its torch name.
fn with(mut hyper: Hyperparams, name: &str, value: f64) -> Hyperparams {
    match name {
        "lr" => hyper.lr = value,
        "beta1" => hyper.beta1 = value,
        "beta2" => hyper.beta2 = value,
        "eps" => hyper.eps = value,
        "weight_decay" => hyper.weight_decay = value,
        _ => panic!("unknown hyperparameter {name}"),
    }
    hyper
}

const AT_LEAST_ZERO: &str = "finite and >= 0";
const BETA: &str = "0 <= beta < 1";

#[test]
fn non_negative_fields_reject_negative_nan_and_infinite() {
    let cases = [
        (-1.0, "-1e0"),
        (-1e-300, "-1e-300"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ];
    for name in ["lr", "eps", "weight_decay"] {
        for (value, shown) in cases {
            let hyper = with_field(name, value);
            let error = hyper.validate().unwrap_err();
            // NaN != NaN, so the value is compared by bits.
            let Error::InvalidHyperparameter {
                name: got_name,
                value: got_value,
                allowed,
            } = error
            else {
                panic!("{name} = {value}: {error:?}");
            };
            assert_eq!(got_name, name, "{name} = {value}: name");
            assert_eq!(
                got_value.to_bits(),
                value.to_bits(),
                "{name} = {value}: value"
            );
            assert_eq!(allowed, AT_LEAST_ZERO, "{name} = {value}: allowed");
            assert_eq!(
                error.to_string(),
                format!("invalid {name}: {shown}; allowed: finite and >= 0"),
                "{name} = {value}: message"
            );
            if !value.is_nan() {
                expect_error_everywhere(&hyper, 1, invalid(name, value, AT_LEAST_ZERO));
            }
        }
    }
}

#[test]
fn betas_reject_one_negative_nan_and_infinite() {
    let cases = [
        (1.0, "1e0"),
        (1.5, "1.5e0"),
        (-0.1, "-1e-1"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ];
    for name in ["beta1", "beta2"] {
        for (value, shown) in cases {
            let hyper = with_field(name, value);
            let error = hyper.validate().unwrap_err();
            let Error::InvalidHyperparameter {
                name: got_name,
                value: got_value,
                allowed,
            } = error
            else {
                panic!("{name} = {value}: {error:?}");
            };
            assert_eq!(got_name, name, "{name} = {value}: name");
            assert_eq!(
                got_value.to_bits(),
                value.to_bits(),
                "{name} = {value}: value"
            );
            assert_eq!(allowed, BETA, "{name} = {value}: allowed");
            assert_eq!(
                error.to_string(),
                format!("invalid {name}: {shown}; allowed: 0 <= beta < 1"),
                "{name} = {value}: message"
            );
            if !value.is_nan() {
                expect_error_everywhere(&hyper, 1, invalid(name, value, BETA));
            }
        }
    }
}

#[test]
fn nan_hyperparameter_leaves_buffers_unchanged() {
    // Error contains an f64, so NaN errors cannot be compared with `==`;
    // this checks the buffers and the field name instead.
    for name in ["lr", "beta1", "beta2", "eps", "weight_decay"] {
        let hyper = with_field(name, f64::NAN);
        for entry in ENTRIES {
            let result = run_unchanged(entry, &hyper, 1, [N; 4], None);
            let Err(Error::InvalidHyperparameter { name: got, .. }) = result else {
                panic!("{name} = NaN, {entry:?}: {result:?}");
            };
            assert_eq!(got, name, "{name} = NaN, {entry:?}");
        }
    }
}

#[test]
fn boundary_hyperparameters_are_accepted() {
    // torch accepts lr, eps and weight_decay of 0 and betas of 0 and just
    // below 1.
    let largest_below_one = 1.0 - f64::EPSILON / 2.0;
    for (name, value) in [
        ("lr", 0.0),
        ("eps", 0.0),
        ("weight_decay", 0.0),
        ("beta1", 0.0),
        ("beta1", largest_below_one),
        ("beta2", 0.0),
        ("beta2", largest_below_one),
    ] {
        let hyper = with_field(name, value);
        assert_eq!(hyper.validate(), Ok(()), "{name} = {value:e}");
    }
}

#[test]
fn step_zero_is_rejected() {
    let error = StepScalars::new(&Hyperparams::DEFAULT, 0).unwrap_err();
    assert_eq!(error, Error::StepZero);
    assert_eq!(error.to_string(), "invalid step 0: steps count from 1");
    expect_error_everywhere(&Hyperparams::DEFAULT, 0, Error::StepZero);
}

#[test]
fn each_length_mismatch_names_its_buffer() {
    // [grad, exp_avg, exp_avg_sq, param] lengths; param keeps N.
    let cases = [
        ("grad", [N - 1, N, N, N], N - 1),
        ("exp_avg", [N, N - 1, N, N], N - 1),
        ("exp_avg_sq", [N, N, N - 1, N], N - 1),
        ("grad", [0, N, N, N], 0),
    ];
    for (name, lengths, found) in cases {
        let expected = Error::LengthMismatch {
            name,
            expected: N,
            found,
        };
        for entry in ENTRIES {
            let result = run_unchanged(entry, &Hyperparams::DEFAULT, 1, lengths, None);
            assert_eq!(result, Err(expected), "{name}, {entry:?}");
        }
        assert_eq!(
            expected.to_string(),
            format!("length mismatch: {name} has {found} elements but param has {N}")
        );
    }
}

#[test]
fn longer_buffer_than_param_is_rejected() {
    // param is cut to N - 1; every other buffer keeps N.
    let expected = Error::LengthMismatch {
        name: "grad",
        expected: N - 1,
        found: N,
    };
    for entry in ENTRIES {
        let result = run_unchanged(entry, &Hyperparams::DEFAULT, 1, [N, N, N, N - 1], None);
        assert_eq!(result, Err(expected), "{entry:?}");
    }
    assert_eq!(
        expected.to_string(),
        "length mismatch: grad has 5 elements but param has 4"
    );
}

#[test]
fn max_exp_avg_sq_length_mismatch_is_rejected() {
    let hyper = Hyperparams {
        amsgrad: true,
        ..Hyperparams::DEFAULT
    };
    let expected = Error::LengthMismatch {
        name: "max_exp_avg_sq",
        expected: N,
        found: N - 2,
    };
    for entry in ENTRIES {
        let result = run_unchanged(entry, &hyper, 1, [N; 4], Some(N - 2));
        assert_eq!(result, Err(expected), "{entry:?}");
    }
    assert_eq!(
        expected.to_string(),
        "length mismatch: max_exp_avg_sq has 3 elements but param has 5"
    );
}

#[test]
fn amsgrad_without_max_buffer_is_rejected() {
    let hyper = Hyperparams {
        amsgrad: true,
        ..Hyperparams::DEFAULT
    };
    let expected = Error::MaxExpAvgSqMismatch { amsgrad: true };
    for entry in ENTRIES {
        let result = run_unchanged(entry, &hyper, 1, [N; 4], None);
        assert_eq!(result, Err(expected), "{entry:?}");
    }
    assert_eq!(
        expected.to_string(),
        "amsgrad is on, so a max_exp_avg_sq buffer is required"
    );
}

#[test]
fn max_buffer_without_amsgrad_is_rejected() {
    let expected = Error::MaxExpAvgSqMismatch { amsgrad: false };
    for entry in ENTRIES {
        let result = run_unchanged(entry, &Hyperparams::DEFAULT, 1, [N; 4], Some(N));
        assert_eq!(result, Err(expected), "{entry:?}");
    }
    assert_eq!(
        expected.to_string(),
        "a max_exp_avg_sq buffer was given but amsgrad is off; pass None or enable amsgrad"
    );
}

#[test]
fn coupled_l2_rejects_like_decoupled() {
    let hyper = Hyperparams {
        weight_decay: -0.5,
        decay_mode: WeightDecay::CoupledL2,
        ..Hyperparams::DEFAULT
    };
    expect_error_everywhere(&hyper, 1, invalid("weight_decay", -0.5, AT_LEAST_ZERO));
}

#[test]
fn adamw_step_rejects_without_writing() {
    // adamw_step takes torch's positional hyperparameters; the cases set
    // them through Hyperparams and pass its fields.
    let valid = Hyperparams {
        weight_decay: 0.0,
        ..Hyperparams::DEFAULT
    };
    let exp_avg_sq_short = Error::LengthMismatch {
        name: "exp_avg_sq",
        expected: N,
        found: N - 1,
    };
    let cases = [
        (
            with(valid, "lr", -1e-3),
            1,
            N,
            invalid("lr", -1e-3, AT_LEAST_ZERO),
        ),
        (with(valid, "beta1", 1.0), 1, N, invalid("beta1", 1.0, BETA)),
        (with(valid, "beta2", 1.0), 1, N, invalid("beta2", 1.0, BETA)),
        (
            with(valid, "eps", -1e-8),
            1,
            N,
            invalid("eps", -1e-8, AT_LEAST_ZERO),
        ),
        (
            with(valid, "weight_decay", f64::INFINITY),
            1,
            N,
            invalid("weight_decay", f64::INFINITY, AT_LEAST_ZERO),
        ),
        (valid, 0, N, Error::StepZero),
        (valid, 1, N - 1, exp_avg_sq_short),
    ];
    for (hyper, t, exp_avg_sq_len, expected) in cases {
        let mut b = Buffers::new();
        let before = b.bits();
        let result = adamw_step(
            &mut b.param,
            &b.grad,
            &mut b.exp_avg,
            &mut b.exp_avg_sq[..exp_avg_sq_len],
            t,
            hyper.lr,
            hyper.beta1,
            hyper.beta2,
            hyper.eps,
            hyper.weight_decay,
        );
        assert_eq!(result, Err(expected));
        assert_eq!(b.bits(), before, "{expected:?}: buffers changed");
    }
}
