//! Per-step scalars derived by hand, and the kernel cases that depend on a
//! scalar's exact value.

use adamw::{Error, Hyperparams, StepScalars, WeightDecay};

fn bits(values: &[f32]) -> Vec<String> {
    values
        .iter()
        .map(|v| format!("{:#010x}", v.to_bits()))
        .collect()
}

#[test]
fn scalars_of_default_step_one() {
    let s = StepScalars::new(&Hyperparams::DEFAULT, 1).unwrap();

    // 1 - 1e-3 * 1e-2 = 0.99999 in f64, then rounded to f32.
    assert_eq!(s.decay.to_bits(), (0.99999f64 as f32).to_bits());
    // 1 - 0.9 = 0.09999999999999998 in f64.
    assert_eq!(s.lerp_weight.to_bits(), ((1.0f64 - 0.9) as f32).to_bits());
    // -1e-3 / (1 - 0.9^1) = -0.010000000000000002 in f64.
    assert_eq!(
        s.neg_step_size.to_bits(),
        (-0.010000000000000002f64 as f32).to_bits()
    );
    // sqrt(1 - 0.999) = sqrt(0.0010000000000000009) in f64.
    let bias_correction2_sqrt = (0.0010000000000000009f64).sqrt() as f32;
    assert_eq!(
        s.bias_correction2_sqrt.to_bits(),
        bias_correction2_sqrt.to_bits()
    );
    assert_eq!(s.eps.to_bits(), (1e-8f64 as f32).to_bits());
    assert_eq!(s.l2, 0.0);
}

#[test]
fn scalars_of_coupled_l2_keep_params_undecayed() {
    let hyper = Hyperparams {
        weight_decay: 0.25,
        decay_mode: WeightDecay::CoupledL2,
        ..Hyperparams::DEFAULT
    };
    let s = StepScalars::new(&hyper, 3).unwrap();

    assert_eq!(s.decay, 1.0);
    assert_eq!(s.l2, 0.25);
}

#[test]
fn beta1_zero_exp_avg_sign_of_zero() {
    // beta1 = 0 makes the lerp weight w = 1, so torch takes its large-weight
    // branch: exp_avg = g - (g - m) * (1 - w). With g = -0 and m = +0:
    // g - m = -0, (-0) * (+0) = -0, and -0 - (-0) = -0 + (+0) = +0 under
    // round to nearest. torch stores +0; computing with w - 1 = +0 in place
    // of -(1 - w) = -0 would give fma(+0, -0, -0) = -0.
    let hyper = Hyperparams {
        beta1: 0.0,
        beta2: 0.0,
        eps: 0.0,
        weight_decay: 0.0,
        ..Hyperparams::DEFAULT
    };
    for rounding in [adamw::Rounding::Fused, adamw::Rounding::Unfused] {
        let hyper = Hyperparams { rounding, ..hyper };
        let scalars = StepScalars::new(&hyper, 1).unwrap();
        let (mut p, g, mut m, mut v) = ([0.5f32], [-0.0f32], [0.0f32], [0.0f32]);

        scalars.apply(&mut p, &g, &mut m, &mut v, None).unwrap();

        assert_eq!(
            m[0].to_bits(),
            0x0000_0000,
            "{rounding:?}: exp_avg = {:?}, torch gives +0",
            bits(&m)
        );
    }
}

#[test]
fn lr_overflowing_f32_step_size_is_rejected() {
    // -1e38 / (1 - 0.9) = -1e39 does not fit in f32.
    let (mut p, g, mut m, mut v) = ([0.5f32], [0.1f32], [0.0f32], [0.0f32]);

    let result = adamw::adamw_step(&mut p, &g, &mut m, &mut v, 1, 1e38, 0.9, 0.999, 1e-8, 0.0);

    match result {
        Err(Error::InvalidHyperparameter { name, value, .. }) => {
            assert_eq!(name, "lr");
            assert_eq!(value, 1e38);
        }
        other => panic!("expected an invalid lr, got {other:?}"),
    }
    assert_eq!(p[0], 0.5, "param written after an error");
    assert_eq!(m[0], 0.0, "exp_avg written after an error");
}

#[test]
fn coupled_l2_weight_decay_overflowing_f32_is_rejected() {
    let hyper = Hyperparams {
        weight_decay: 1e39,
        decay_mode: WeightDecay::CoupledL2,
        ..Hyperparams::DEFAULT
    };

    let result = StepScalars::new(&hyper, 1);

    match result {
        Err(Error::InvalidHyperparameter { name, .. }) => assert_eq!(name, "weight_decay"),
        other => panic!("expected an invalid weight_decay, got {other:?}"),
    }
}

#[test]
fn decoupled_decay_overflowing_f32_is_rejected() {
    // 1 - 1e30 * 1e10 = -1e40 does not fit in f32.
    let hyper = Hyperparams {
        lr: 1e30,
        weight_decay: 1e10,
        ..Hyperparams::DEFAULT
    };

    let result = StepScalars::new(&hyper, 1);

    match result {
        Err(Error::InvalidHyperparameter { name, value, .. }) => {
            assert_eq!(name, "weight_decay");
            assert_eq!(value, 1e10);
        }
        other => panic!("expected an invalid weight_decay, got {other:?}"),
    }
}
