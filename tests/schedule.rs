//! Learning-rate schedules against the values that torch 2.15's schedulers
//! yield when stepped, from `tests/golden/optimizer/schedule.bin`.

mod optimizer_support;

use adamw::{CosineAnnealingLr, LinearLr, LrScheduler, Schedule, ScheduleError, SequentialLr};
use optimizer_support::Arrays;

/// The largest accepted difference from torch, in units of the `f64` value
/// (ulp). LinearLR uses only `+ - * /`, so its values must be torch's bits.
/// CosineAnnealingLR calls `cos`, where `libm::cos` and the C library's
/// `cos` that Python uses (glibc on the machine that generated the data)
/// may round differently, and the recursive form carries a difference to
/// later epochs. Measured: at most 3 ulp (cosine, warmup_cosine), and 0
/// for the other cases.
const COSINE_ULP_BOUND: u64 = 8;

fn torch_case(name: &str) -> (Vec<f64>, Vec<f64>) {
    let data = Arrays::parse(include_bytes!("golden/optimizer/schedule.bin"));
    (
        data.f64(&format!("{name}.params")),
        data.f64(&format!("{name}.lrs")),
    )
}

fn ulp_distance(a: f64, b: f64) -> u64 {
    if a == b {
        return 0;
    }
    if a.is_sign_negative() != b.is_sign_negative() || !a.is_finite() || !b.is_finite() {
        return u64::MAX;
    }
    a.to_bits().abs_diff(b.to_bits())
}

/// Steps `schedule` through torch's sequence (epoch 0 first) and checks
/// every value; returns the largest distance in ulp.
fn assert_follows(name: &str, mut schedule: impl LrScheduler, torch: &[f64], bound: u64) -> u64 {
    let mut max_ulp = 0;
    for (epoch, &expected) in torch.iter().enumerate() {
        if epoch > 0 {
            schedule.step();
        }
        let actual = schedule.lr();
        assert_eq!(schedule.last_epoch(), epoch as u64, "{name}: epoch");
        let ulp = ulp_distance(actual, expected);
        assert!(
            ulp <= bound,
            "{name} epoch {epoch}: got {actual:e} ({:#018x}), torch {expected:e} ({:#018x}), {ulp} ulp",
            actual.to_bits(),
            expected.to_bits()
        );
        max_ulp = max_ulp.max(ulp);
    }
    println!(
        "{name}: {} epochs, max {max_ulp} ulp from torch",
        torch.len()
    );
    max_ulp
}

#[test]
fn linear_warmup_matches_torch() {
    let (params, lrs) = torch_case("linear_warmup");
    assert_eq!(params, [0.1, 0.25, 1.0, 7.0], "case parameters");
    let schedule = LinearLr::new(0.1, 0.25, 1.0, 7).unwrap();
    assert_follows("linear_warmup", schedule, &lrs, 0);
}

#[test]
fn linear_decay_matches_torch() {
    let (params, lrs) = torch_case("linear_decay");
    assert_eq!(params, [0.03, 1.0, 0.1, 10.0], "case parameters");
    let schedule = LinearLr::new(0.03, 1.0, 0.1, 10).unwrap();
    assert_follows("linear_decay", schedule, &lrs, 0);
}

/// 45 epochs with T_max 10: down, up and down again, through torch's
/// special case at the epoch after each minimum.
#[test]
fn cosine_matches_torch_over_several_periods() {
    let (params, lrs) = torch_case("cosine");
    assert_eq!(params, [0.05, 10.0, 1e-3], "case parameters");
    let schedule = CosineAnnealingLr::new(0.05, 10, 1e-3).unwrap();
    assert_follows("cosine", schedule, &lrs, COSINE_ULP_BOUND);
}

#[test]
fn cosine_zero_min_matches_torch() {
    let (params, lrs) = torch_case("cosine_zero_min");
    assert_eq!(params, [0.001, 7.0, 0.0], "case parameters");
    let schedule = CosineAnnealingLr::new(0.001, 7, 0.0).unwrap();
    assert_follows("cosine_zero_min", schedule, &lrs, COSINE_ULP_BOUND);
}

#[test]
fn warmup_then_cosine_matches_torch() {
    let (params, lrs) = torch_case("warmup_cosine");
    assert_eq!(
        params,
        [1e-3, 0.1, 1.0, 5.0, 20.0, 1e-5, 5.0],
        "case parameters"
    );
    let schedule = SequentialLr::<2>::new(
        [
            Schedule::Linear(LinearLr::new(1e-3, 0.1, 1.0, 5).unwrap()),
            Schedule::Cosine(CosineAnnealingLr::new(1e-3, 20, 1e-5).unwrap()),
        ],
        &[5],
    )
    .unwrap();
    assert_follows("warmup_cosine", schedule, &lrs, COSINE_ULP_BOUND);
}

#[test]
fn three_phase_sequence_matches_torch() {
    let (params, lrs) = torch_case("three_phase");
    assert_eq!(
        params,
        [0.2, 0.5, 1.0, 3.0, 10.0, 0.0, 1.0, 0.2, 4.0, 3.0, 13.0],
        "case parameters"
    );
    let schedule = SequentialLr::<3>::new(
        [
            Schedule::Linear(LinearLr::new(0.2, 0.5, 1.0, 3).unwrap()),
            Schedule::Cosine(CosineAnnealingLr::new(0.2, 10, 0.0).unwrap()),
            Schedule::Linear(LinearLr::new(0.2, 1.0, 0.2, 4).unwrap()),
        ],
        &[3, 13],
    )
    .unwrap();
    assert_follows("three_phase", schedule, &lrs, COSINE_ULP_BOUND);
}

#[test]
fn sequential_reports_active_schedule() {
    let mut schedule = SequentialLr::<2>::new(
        [
            Schedule::Linear(LinearLr::new(1.0, 0.5, 1.0, 2).unwrap()),
            Schedule::Cosine(CosineAnnealingLr::new(1.0, 4, 0.0).unwrap()),
        ],
        &[2],
    )
    .unwrap();
    assert_eq!(schedule.current_schedule(), 0, "epoch 0");
    schedule.step();
    assert_eq!(schedule.current_schedule(), 0, "epoch 1");
    schedule.step();
    assert_eq!(schedule.current_schedule(), 1, "epoch 2, the milestone");
    // The cosine schedule restarts at its epoch 0: the base learning rate.
    assert_eq!(schedule.lr(), 1.0, "lr at the milestone");
}

#[test]
fn invalid_parameters_are_rejected() {
    let invalid = |result: Result<LinearLr, ScheduleError>, name: &str| match result {
        Err(ScheduleError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
        other => panic!("expected InvalidParameter {name}, got {other:?}"),
    };
    invalid(LinearLr::new(0.1, 0.0, 1.0, 5), "start_factor");
    invalid(LinearLr::new(0.1, 1.5, 1.0, 5), "start_factor");
    invalid(LinearLr::new(0.1, f64::NAN, 1.0, 5), "start_factor");
    invalid(LinearLr::new(0.1, 0.5, -0.1, 5), "end_factor");
    invalid(LinearLr::new(0.1, 0.5, 1.0, 0), "total_iters");
    invalid(LinearLr::new(-0.1, 0.5, 1.0, 5), "base_lr");
    invalid(LinearLr::new(f64::INFINITY, 0.5, 1.0, 5), "base_lr");

    let cosine = |result: Result<CosineAnnealingLr, ScheduleError>, name: &str| match result {
        Err(ScheduleError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
        other => panic!("expected InvalidParameter {name}, got {other:?}"),
    };
    cosine(CosineAnnealingLr::new(0.1, 0, 0.0), "T_max");
    cosine(CosineAnnealingLr::new(0.1, 10, -1e-3), "eta_min");
    cosine(CosineAnnealingLr::new(f64::NAN, 10, 0.0), "base_lr");
}

#[test]
fn sequential_rejects_bad_milestones() {
    let linear = Schedule::Linear(LinearLr::new(0.1, 0.5, 1.0, 3).unwrap());
    let cosine = Schedule::Cosine(CosineAnnealingLr::new(0.1, 10, 0.0).unwrap());

    let count = SequentialLr::<2>::new([linear, cosine], &[3, 5]).unwrap_err();
    assert_eq!(
        count,
        ScheduleError::MilestoneCountMismatch {
            expected: 1,
            found: 2
        }
    );

    let order = SequentialLr::<3>::new([linear, cosine, linear], &[5, 5]).unwrap_err();
    assert_eq!(order, ScheduleError::MilestonesNotIncreasing { index: 1 });

    let none = SequentialLr::<0>::new([], &[]).unwrap_err();
    assert_eq!(none, ScheduleError::NoSchedules);
}
