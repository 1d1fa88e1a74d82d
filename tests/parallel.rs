//! `StepScalars::apply_parallel` against the one-thread `apply`: every size
//! and thread count must give the same bits. Run with
//! `cargo test --features std`.

#![cfg(feature = "std")]

use std::num::NonZeroUsize;

use adamw::{Error, Hyperparams, Rounding, StepScalars};

/// Awkward lengths around the 8-element chunk alignment, and large odd ones
/// whose chunks end in a tail. No chunk is shorter than 4096 elements, so
/// only the lengths from 4099 up are split.
const SIZES: [usize; 16] = [
    0, 1, 7, 8, 9, 15, 16, 17, 31, 63, 100, 1001, 4099, 12_345, 40_001, 65_543,
];
const THREADS: [usize; 6] = [1, 2, 3, 4, 7, 16];

/// A fixed-seed xorshift generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self, scale: f32) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // 24 random bits mapped to [-1, 1).
        let unit = (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
        unit * scale
    }

    fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| self.next_f32(scale)).collect()
    }
}

#[derive(Clone, PartialEq, Debug)]
struct State {
    param: Vec<f32>,
    grad: Vec<f32>,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
    max_exp_avg_sq: Option<Vec<f32>>,
}

impl State {
    fn random(len: usize, seed: u64, amsgrad: bool) -> Self {
        let mut rng = Rng(seed);
        let exp_avg_sq: Vec<f32> = rng.vec(len, 1e-3).iter().map(|x| x.abs()).collect();
        let max_exp_avg_sq = amsgrad.then(|| exp_avg_sq.iter().map(|x| x * 1.5).collect());
        State {
            param: rng.vec(len, 1.0),
            grad: rng.vec(len, 1e-1),
            exp_avg: rng.vec(len, 1e-2),
            exp_avg_sq,
            max_exp_avg_sq,
        }
    }
}

fn apply_one_thread(scalars: &StepScalars, state: &mut State) {
    let result = scalars.apply(
        &mut state.param,
        &state.grad,
        &mut state.exp_avg,
        &mut state.exp_avg_sq,
        state.max_exp_avg_sq.as_deref_mut(),
    );
    assert_eq!(result, Ok(()));
}

fn apply_threads(scalars: &StepScalars, threads: usize, state: &mut State) {
    let threads = NonZeroUsize::new(threads).expect("thread counts in the table are nonzero");
    let result = scalars.apply_parallel(
        threads,
        &mut state.param,
        &state.grad,
        &mut state.exp_avg,
        &mut state.exp_avg_sq,
        state.max_exp_avg_sq.as_deref_mut(),
    );
    assert_eq!(result, Ok(()));
}

/// Asserts that two buffers hold the same bits, naming the first element
/// that differs with both values in hex.
fn assert_same_bits(name: &str, case: &str, expected: &[f32], actual: &[f32]) {
    assert_eq!(expected.len(), actual.len(), "{case}: {name} length");
    let first_difference = expected
        .iter()
        .zip(actual)
        .position(|(e, a)| e.to_bits() != a.to_bits());
    if let Some(i) = first_difference {
        panic!(
            "{case}: {name}[{i}] differs: one thread {:#010x} ({}), threads {:#010x} ({})",
            expected[i].to_bits(),
            expected[i],
            actual[i].to_bits(),
            actual[i],
        );
    }
}

/// Runs two steps both ways over every size and thread count and compares
/// every buffer.
fn check_matches_one_thread(hyper: &Hyperparams) {
    for len in SIZES {
        for threads in THREADS {
            let case = format!("len {len}, {threads} threads, {hyper:?}");
            let initial = State::random(len, 0x9E37_79B9_7F4A_7C15 ^ len as u64, hyper.amsgrad);
            let mut expected = initial.clone();
            let mut actual = initial;
            for t in 1..=2 {
                let scalars = StepScalars::new(hyper, t).expect("valid hyperparameters");
                apply_one_thread(&scalars, &mut expected);
                apply_threads(&scalars, threads, &mut actual);
            }
            assert_same_bits("param", &case, &expected.param, &actual.param);
            assert_same_bits("exp_avg", &case, &expected.exp_avg, &actual.exp_avg);
            assert_same_bits(
                "exp_avg_sq",
                &case,
                &expected.exp_avg_sq,
                &actual.exp_avg_sq,
            );
            let no_max = Vec::new();
            assert_same_bits(
                "max_exp_avg_sq",
                &case,
                expected.max_exp_avg_sq.as_ref().unwrap_or(&no_max),
                actual.max_exp_avg_sq.as_ref().unwrap_or(&no_max),
            );
        }
    }
}

#[test]
fn parallel_fused_matches_one_thread() {
    check_matches_one_thread(&Hyperparams::DEFAULT);
}

#[test]
fn parallel_unfused_matches_one_thread() {
    check_matches_one_thread(&Hyperparams {
        rounding: Rounding::Unfused,
        ..Hyperparams::DEFAULT
    });
}

#[test]
fn parallel_amsgrad_maximize_matches_one_thread() {
    check_matches_one_thread(&Hyperparams {
        amsgrad: true,
        maximize: true,
        ..Hyperparams::DEFAULT
    });
}

#[test]
fn parallel_length_mismatch_writes_nothing() {
    let scalars = StepScalars::new(&Hyperparams::DEFAULT, 1).expect("valid hyperparameters");
    let initial = State::random(1000, 7, false);
    let mut state = initial.clone();
    state.exp_avg_sq.truncate(999);
    let threads = NonZeroUsize::new(4).expect("4 is nonzero");

    let result = scalars.apply_parallel(
        threads,
        &mut state.param,
        &state.grad,
        &mut state.exp_avg,
        &mut state.exp_avg_sq,
        None,
    );

    assert_eq!(
        result,
        Err(Error::LengthMismatch {
            name: "exp_avg_sq",
            expected: 1000,
            found: 999,
        })
    );
    assert_same_bits("param", "mismatch", &initial.param, &state.param);
    assert_same_bits("exp_avg", "mismatch", &initial.exp_avg, &state.exp_avg);
}

#[test]
fn parallel_missing_max_buffer_writes_nothing() {
    let hyper = Hyperparams {
        amsgrad: true,
        ..Hyperparams::DEFAULT
    };
    let scalars = StepScalars::new(&hyper, 1).expect("valid hyperparameters");
    let initial = State::random(100, 11, false);
    let mut state = initial.clone();
    let threads = NonZeroUsize::new(2).expect("2 is nonzero");

    let result = scalars.apply_parallel(
        threads,
        &mut state.param,
        &state.grad,
        &mut state.exp_avg,
        &mut state.exp_avg_sq,
        None,
    );

    assert_eq!(result, Err(Error::MaxExpAvgSqMismatch { amsgrad: true }));
    assert_same_bits("param", "missing max", &initial.param, &state.param);
    assert_same_bits("exp_avg", "missing max", &initial.exp_avg, &state.exp_avg);
    assert_same_bits(
        "exp_avg_sq",
        "missing max",
        &initial.exp_avg_sq,
        &state.exp_avg_sq,
    );
}

/// Tensors of 4096 elements or more run their first elements one lane at a
/// time, up to `param`'s first 64-byte boundary, so every start offset
/// within a cache line takes a different split. Each must match the
/// one-lane reference.
#[test]
fn apply_matches_scalar_at_every_line_offset() {
    let len = 5000;
    let scalars = StepScalars::new(&Hyperparams::DEFAULT, 3).expect("valid hyperparameters");
    for offset in 0..16 {
        let initial = State::random(offset + len, 0x5EED ^ offset as u64, false);
        let mut vector = initial.clone();
        let mut scalar = initial;
        let window = offset..offset + len;

        let result = scalars.apply(
            &mut vector.param[window.clone()],
            &vector.grad[window.clone()],
            &mut vector.exp_avg[window.clone()],
            &mut vector.exp_avg_sq[window.clone()],
            None,
        );
        assert_eq!(result, Ok(()));
        let result = scalars.apply_scalar(
            &mut scalar.param[window.clone()],
            &scalar.grad[window.clone()],
            &mut scalar.exp_avg[window.clone()],
            &mut scalar.exp_avg_sq[window],
            None,
        );
        assert_eq!(result, Ok(()));

        let case = format!("offset {offset} elements");
        assert_same_bits("param", &case, &scalar.param, &vector.param);
        assert_same_bits("exp_avg", &case, &scalar.exp_avg, &vector.exp_avg);
        assert_same_bits("exp_avg_sq", &case, &scalar.exp_avg_sq, &vector.exp_avg_sq);
    }
}

#[test]
fn parallel_huge_thread_count_matches_one_thread() {
    // A thread count far above the number of chunks must neither allocate a
    // slot per requested thread nor start a thread per 8 elements.
    let scalars = StepScalars::new(&Hyperparams::DEFAULT, 3).unwrap();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let len = 65_543;
    let param_in = rng.vec(len, 1.0);
    let grad = rng.vec(len, 0.1);

    let mut expected = param_in.clone();
    let (mut expected_m, mut expected_v) = (vec![0.0f32; len], vec![0.0f32; len]);
    scalars
        .apply(&mut expected, &grad, &mut expected_m, &mut expected_v, None)
        .unwrap();

    for threads in [usize::MAX, 1 << 40] {
        let mut param = param_in.clone();
        let (mut m, mut v) = (vec![0.0f32; len], vec![0.0f32; len]);
        let threads = NonZeroUsize::new(threads).unwrap();

        scalars
            .apply_parallel(threads, &mut param, &grad, &mut m, &mut v, None)
            .unwrap();

        let case = format!("{threads} threads");
        assert_same_bits("param", &case, &expected, &param);
        assert_same_bits("exp_avg", &case, &expected_m, &m);
        assert_same_bits("exp_avg_sq", &case, &expected_v, &v);
    }
}
