//! The multi-tensor optimizer: parameter groups, skipped tensors and
//! per-tensor step counters against torch 2.15, and its input checks.

mod optimizer_support;

use adamw::{
    Hyperparams, Optimizer, OptimizerError, Rounding, StepOutcome, StepScalars, TensorBuffers,
    WeightDecay,
};
use optimizer_support::{Arrays, Buffers, assert_bits_eq, snapshot, ulp_distance};

fn hyper_from(values: &[f64]) -> Hyperparams {
    Hyperparams {
        lr: values[0],
        beta1: values[1],
        beta2: values[2],
        eps: values[3],
        weight_decay: values[4],
        amsgrad: values[5] != 0.0,
        maximize: values[6] != 0.0,
        rounding: Rounding::Fused,
        decay_mode: if values[7] != 0.0 {
            WeightDecay::CoupledL2
        } else {
            WeightDecay::Decoupled
        },
    }
}

/// Replays a torch run from `tests/gen_optimizer.py` and checks the final
/// state: step counters and moments bit for bit, parameters within
/// `PARAM_ULP_BOUND`. Returns the largest parameter distance in ulp.
fn replay_torch_run(bytes: &[u8], name: &str) -> u32 {
    let data = Arrays::parse(bytes);
    let meta = data.u64("meta");
    let (groups, tensors, steps) = (meta[0] as usize, meta[1] as usize, meta[2] as usize);
    let hypers: Vec<Hyperparams> = (0..groups)
        .map(|g| hyper_from(&data.f64(&format!("group{g}.hyper"))))
        .collect();
    let group_of: Vec<usize> = (0..tensors)
        .map(|i| data.u64(&format!("tensor{i}.group"))[0] as usize)
        .collect();
    let params: Vec<Vec<f32>> = (0..tensors)
        .map(|i| data.f32(&format!("tensor{i}.param_in")))
        .collect();
    let sizes: Vec<usize> = params.iter().map(Vec::len).collect();
    let amsgrad: Vec<bool> = group_of.iter().map(|&g| hypers[g].amsgrad).collect();
    let grads = data.f32("grads");
    let mask = data.u64("grad_mask");

    let mut buffers = Buffers::new(params, &amsgrad);
    let mut opt = Optimizer::<4, 2>::new();
    for hyper in &hypers {
        opt.add_group(*hyper).unwrap();
    }
    buffers.register(&mut opt, &group_of);

    let total: usize = sizes.iter().sum();
    for step in 0..steps {
        let row = &grads[step * total..(step + 1) * total];
        let mut offset = 0;
        let mut step_grads: Vec<Option<&[f32]>> = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let present = mask[step * tensors + i] == 1;
            step_grads.push(present.then(|| &row[offset..offset + n]));
            offset += n;
        }
        opt.step(&step_grads).unwrap();
    }

    let mut max_ulp = 0;
    for i in 0..tensors {
        let expected_step = data.u64(&format!("tensor{i}.step_out"))[0];
        assert_eq!(
            opt.step_count(i).unwrap(),
            expected_step,
            "{name}: tensor {i} step count"
        );
        assert_bits_eq(
            &format!("{name}: tensor {i} exp_avg"),
            opt.exp_avg(i).unwrap(),
            &data.f32(&format!("tensor{i}.exp_avg_out")),
        );
        assert_bits_eq(
            &format!("{name}: tensor {i} exp_avg_sq"),
            opt.exp_avg_sq(i).unwrap(),
            &data.f32(&format!("tensor{i}.exp_avg_sq_out")),
        );
        let max_name = format!("tensor{i}.max_exp_avg_sq_out");
        if data.has(&max_name) {
            assert_bits_eq(
                &format!("{name}: tensor {i} max_exp_avg_sq"),
                opt.max_exp_avg_sq(i).unwrap().expect("amsgrad buffer"),
                &data.f32(&max_name),
            );
        }
        let expected = data.f32(&format!("tensor{i}.param_out"));
        for (j, (&a, &e)) in opt.param(i).unwrap().iter().zip(&expected).enumerate() {
            let ulp = ulp_distance(a, e);
            assert!(
                ulp <= PARAM_ULP_BOUND,
                "{name}: tensor {i} param[{j}]: got {a:e} ({:#010x}), torch {e:e} ({:#010x}), {ulp} ulp",
                a.to_bits(),
                e.to_bits()
            );
            max_ulp = max_ulp.max(ulp);
        }
    }
    max_ulp
}

/// The parameters may differ from torch's by the kernel's one-ulp bound per
/// step (torch's `f32` square root is not always correctly rounded), and a
/// difference can carry into later steps. Measured with torch 2.15 on
/// AVX-512: 1 ulp at most in both runs below.
const PARAM_ULP_BOUND: u32 = 2;

#[test]
fn groups_and_skipped_tensors_match_torch_adamw() {
    let max_ulp = replay_torch_run(include_bytes!("golden/optimizer/groups.bin"), "groups");
    println!("groups.bin: max parameter distance {max_ulp} ulp");
}

#[test]
fn coupled_l2_matches_torch_adam() {
    let max_ulp = replay_torch_run(include_bytes!("golden/optimizer/adam_l2.bin"), "adam_l2");
    println!("adam_l2.bin: max parameter distance {max_ulp} ulp");
}

const HYPER: Hyperparams = Hyperparams {
    lr: 1e-2,
    ..Hyperparams::DEFAULT
};
const AMSGRAD: Hyperparams = Hyperparams {
    lr: 3e-3,
    weight_decay: 0.0,
    amsgrad: true,
    ..Hyperparams::DEFAULT
};

fn ramp(n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 - 3.5) * scale).collect()
}

#[test]
fn skipped_tensor_keeps_state_and_counter() {
    let mut buffers = Buffers::new(vec![ramp(9, 0.1), ramp(4, 0.2)], &[false, false]);
    let mut opt = Optimizer::<2, 1>::new();
    opt.add_group(HYPER).unwrap();
    buffers.register(&mut opt, &[0, 0]);

    let (g0, g1) = (ramp(9, 0.01), ramp(4, -0.03));
    opt.step(&[Some(&g0), Some(&g1)]).unwrap();
    let param = opt.param(1).unwrap().to_vec();
    let exp_avg = opt.exp_avg(1).unwrap().to_vec();
    let exp_avg_sq = opt.exp_avg_sq(1).unwrap().to_vec();

    opt.step(&[Some(&g0), None]).unwrap();

    assert_bits_eq("skipped param", opt.param(1).unwrap(), &param);
    assert_bits_eq("skipped exp_avg", opt.exp_avg(1).unwrap(), &exp_avg);
    assert_bits_eq(
        "skipped exp_avg_sq",
        opt.exp_avg_sq(1).unwrap(),
        &exp_avg_sq,
    );
    assert_eq!(opt.step_count(1).unwrap(), 1, "skipped tensor's counter");
    assert_eq!(opt.step_count(0).unwrap(), 2, "stepped tensor's counter");
}

/// Tensors of one group at different step counts must each get the scalars
/// of their own count. The reference is the single-tensor kernel with that
/// count.
#[test]
fn group_tensors_at_different_counts_use_own_scalars() {
    let sizes = [11, 3, 8];
    let params: Vec<Vec<f32>> = sizes.iter().map(|&n| ramp(n, 0.05)).collect();
    let mut reference = Buffers::new(params.clone(), &[true, true, true]);
    let mut buffers = Buffers::new(params, &[true, true, true]);
    let mut opt = Optimizer::<3, 1>::new();
    opt.add_group(AMSGRAD).unwrap();
    buffers.register(&mut opt, &[0, 0, 0]);

    // Tensor 1 skips steps 0 and 2, tensor 2 skips step 3.
    let present = [
        [true, false, true],
        [true, true, true],
        [true, false, true],
        [true, true, false],
    ];
    let mut counts = [0u64; 3];
    for (step, row) in present.iter().enumerate() {
        let grads: Vec<Vec<f32>> = sizes
            .iter()
            .map(|&n| ramp(n, 0.01 * (step as f32 + 1.0)))
            .collect();
        let step_grads: Vec<Option<&[f32]>> = grads
            .iter()
            .zip(row)
            .map(|(g, &p)| p.then_some(g.as_slice()))
            .collect();
        opt.step(&step_grads).unwrap();

        for i in 0..3 {
            if !row[i] {
                continue;
            }
            counts[i] += 1;
            StepScalars::new(&AMSGRAD, counts[i])
                .unwrap()
                .apply(
                    &mut reference.params[i],
                    &grads[i],
                    &mut reference.exp_avg[i],
                    &mut reference.exp_avg_sq[i],
                    reference.max_exp_avg_sq[i].as_deref_mut(),
                )
                .unwrap();
        }
    }

    assert_eq!(counts, [4, 2, 3], "reference counts");
    for (i, &count) in counts.iter().enumerate() {
        assert_eq!(opt.step_count(i).unwrap(), count, "tensor {i} count");
        assert_bits_eq(
            &format!("tensor {i} param"),
            opt.param(i).unwrap(),
            &reference.params[i],
        );
        assert_bits_eq(
            &format!("tensor {i} exp_avg"),
            opt.exp_avg(i).unwrap(),
            &reference.exp_avg[i],
        );
        assert_bits_eq(
            &format!("tensor {i} exp_avg_sq"),
            opt.exp_avg_sq(i).unwrap(),
            &reference.exp_avg_sq[i],
        );
        assert_bits_eq(
            &format!("tensor {i} max_exp_avg_sq"),
            opt.max_exp_avg_sq(i).unwrap().unwrap(),
            reference.max_exp_avg_sq[i].as_deref().unwrap(),
        );
    }
}

#[test]
fn checked_step_skips_on_nan_or_inf() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut buffers = Buffers::new(vec![ramp(9, 0.1), ramp(6, 0.2)], &[false, true]);
        let mut opt = Optimizer::<2, 2>::new();
        opt.add_group(HYPER).unwrap();
        opt.add_group(AMSGRAD).unwrap();
        buffers.register(&mut opt, &[0, 1]);
        let (g0, g1) = (ramp(9, 0.01), ramp(6, 0.02));
        opt.step(&[Some(&g0), Some(&g1)]).unwrap();
        let before = snapshot(&opt);

        let mut bad_grad = ramp(6, 0.02);
        bad_grad[4] = bad;
        let outcome = opt.step_checked(&[Some(&g0), Some(&bad_grad)]).unwrap();

        assert_eq!(
            outcome,
            StepOutcome::SkippedNonFinite {
                tensor: 1,
                index: 4
            },
            "outcome for {bad}"
        );
        assert!(
            snapshot(&opt) == before,
            "state changed by a skipped step ({bad})"
        );
    }
}

#[test]
fn checked_step_applies_finite_grads_like_step() {
    let params = vec![ramp(17, 0.1), ramp(5, 0.2)];
    let mut checked = Buffers::new(params.clone(), &[false, false]);
    let mut plain = Buffers::new(params, &[false, false]);
    let mut opt_checked = Optimizer::<2, 1>::new();
    let mut opt_plain = Optimizer::<2, 1>::new();
    opt_checked.add_group(HYPER).unwrap();
    opt_plain.add_group(HYPER).unwrap();
    checked.register(&mut opt_checked, &[0, 0]);
    plain.register(&mut opt_plain, &[0, 0]);

    let (g0, g1) = (ramp(17, 0.01), ramp(5, 0.3));
    let outcome = opt_checked.step_checked(&[Some(&g0), Some(&g1)]).unwrap();
    opt_plain.step(&[Some(&g0), Some(&g1)]).unwrap();

    assert_eq!(outcome, StepOutcome::Applied);
    assert!(
        snapshot(&opt_checked) == snapshot(&opt_plain),
        "checked and plain steps differ"
    );
}

#[test]
fn step_rejects_wrong_grad_count() {
    let mut buffers = Buffers::new(vec![ramp(4, 0.1), ramp(4, 0.1)], &[false, false]);
    let mut opt = Optimizer::<2, 1>::new();
    opt.add_group(HYPER).unwrap();
    buffers.register(&mut opt, &[0, 0]);
    let g = ramp(4, 0.1);
    let before = snapshot(&opt);

    let err = opt.step(&[Some(&g)]).unwrap_err();

    assert_eq!(
        err,
        OptimizerError::GradCountMismatch {
            expected: 2,
            found: 1
        }
    );
    assert!(snapshot(&opt) == before, "state changed by a rejected step");
}

/// The second tensor's gradient is too short; the first tensor, checked
/// and valid, must not have been stepped.
#[test]
fn step_rejects_short_grad_before_any_write() {
    let mut buffers = Buffers::new(vec![ramp(4, 0.1), ramp(5, 0.1)], &[false, false]);
    let mut opt = Optimizer::<2, 1>::new();
    opt.add_group(HYPER).unwrap();
    buffers.register(&mut opt, &[0, 0]);
    let (g0, g1) = (ramp(4, 0.1), ramp(4, 0.1));
    let before = snapshot(&opt);

    let err = opt.step(&[Some(&g0), Some(&g1)]).unwrap_err();
    let checked_err = opt.step_checked(&[Some(&g0), Some(&g1)]).unwrap_err();

    let expected = OptimizerError::LengthMismatch {
        tensor: 1,
        name: "grad",
        expected: 5,
        found: 4,
    };
    assert_eq!(err, expected, "step");
    assert_eq!(checked_err, expected, "step_checked");
    assert!(snapshot(&opt) == before, "state changed by a rejected step");
}

/// Registers one tensor with buffers of the given lengths in a fresh
/// optimizer with a plain group 0 and an AMSGrad group 1.
fn try_add_tensor(
    group: usize,
    len: usize,
    exp_avg_len: usize,
    exp_avg_sq_len: usize,
    max_len: Option<usize>,
) -> Result<usize, OptimizerError> {
    let mut param = vec![1.0f32; len];
    let mut exp_avg = vec![0.0f32; exp_avg_len];
    let mut exp_avg_sq = vec![0.0f32; exp_avg_sq_len];
    let mut max = max_len.map(|n| vec![0.0f32; n]);
    let mut opt = Optimizer::<2, 2>::new();
    opt.add_group(HYPER).unwrap();
    opt.add_group(AMSGRAD).unwrap();
    let result = opt.add_tensor(
        group,
        TensorBuffers {
            param: &mut param,
            exp_avg: &mut exp_avg,
            exp_avg_sq: &mut exp_avg_sq,
            max_exp_avg_sq: max.as_deref_mut(),
        },
    );
    if result.is_err() {
        assert_eq!(
            opt.tensor_count(),
            0,
            "tensor registered by a rejected call"
        );
    }
    result
}

#[test]
fn add_tensor_rejects_bad_buffers() {
    assert_eq!(try_add_tensor(0, 4, 4, 4, None), Ok(0), "valid buffers");
    assert_eq!(
        try_add_tensor(1, 4, 4, 4, Some(4)),
        Ok(0),
        "valid AMSGrad buffers"
    );
    assert_eq!(
        try_add_tensor(2, 4, 4, 4, None),
        Err(OptimizerError::UnknownGroup {
            group: 2,
            groups: 2
        })
    );
    assert_eq!(
        try_add_tensor(0, 4, 3, 4, None),
        Err(OptimizerError::LengthMismatch {
            tensor: 0,
            name: "exp_avg",
            expected: 4,
            found: 3
        })
    );
    assert_eq!(
        try_add_tensor(0, 4, 4, 5, None),
        Err(OptimizerError::LengthMismatch {
            tensor: 0,
            name: "exp_avg_sq",
            expected: 4,
            found: 5
        })
    );
    assert_eq!(
        try_add_tensor(0, 4, 4, 4, Some(4)),
        Err(OptimizerError::MaxExpAvgSqMismatch {
            tensor: 0,
            group: 0,
            amsgrad: false
        })
    );
    assert_eq!(
        try_add_tensor(1, 4, 4, 4, None),
        Err(OptimizerError::MaxExpAvgSqMismatch {
            tensor: 0,
            group: 1,
            amsgrad: true
        })
    );
    assert_eq!(
        try_add_tensor(1, 4, 4, 4, Some(3)),
        Err(OptimizerError::LengthMismatch {
            tensor: 0,
            name: "max_exp_avg_sq",
            expected: 4,
            found: 3
        })
    );
}

#[test]
fn capacity_full_is_an_error() {
    let (mut p0, mut m0, mut v0) = ([1.0f32; 2], [0.0f32; 2], [0.0f32; 2]);
    let (mut p1, mut m1, mut v1) = ([1.0f32; 2], [5.0f32; 2], [5.0f32; 2]);
    let mut opt = Optimizer::<1, 1>::new();
    opt.add_group(HYPER).unwrap();
    assert_eq!(
        opt.add_group(HYPER),
        Err(OptimizerError::GroupCapacityFull { capacity: 1 })
    );

    opt.add_tensor(
        0,
        TensorBuffers {
            param: &mut p0,
            exp_avg: &mut m0,
            exp_avg_sq: &mut v0,
            max_exp_avg_sq: None,
        },
    )
    .unwrap();
    let full = opt.add_tensor(
        0,
        TensorBuffers {
            param: &mut p1,
            exp_avg: &mut m1,
            exp_avg_sq: &mut v1,
            max_exp_avg_sq: None,
        },
    );
    assert_eq!(
        full,
        Err(OptimizerError::TensorCapacityFull { capacity: 1 })
    );
    drop(opt);
    // The rejected tensor's buffers were not zeroed.
    assert_eq!(m1, [5.0; 2], "exp_avg of the rejected tensor");
    assert_eq!(v1, [5.0; 2], "exp_avg_sq of the rejected tensor");
}

#[test]
fn add_group_rejects_invalid_hyperparams() {
    let mut opt = Optimizer::<1, 2>::new();
    let err = opt
        .add_group(Hyperparams { lr: -1.0, ..HYPER })
        .unwrap_err();
    assert!(
        matches!(
            err,
            OptimizerError::Hyperparams {
                group: 0,
                error: adamw::Error::InvalidHyperparameter { name: "lr", .. }
            }
        ),
        "got {err:?}"
    );
    assert_eq!(opt.group_count(), 0);
}

#[test]
fn add_tensor_zeroes_state_buffers() {
    let (mut p, mut m, mut v, mut max) = ([1.0f32; 3], [f32::NAN; 3], [7.0f32; 3], [-2.0f32; 3]);
    let mut opt = Optimizer::<1, 1>::new();
    opt.add_group(AMSGRAD).unwrap();
    let i = opt
        .add_tensor(
            0,
            TensorBuffers {
                param: &mut p,
                exp_avg: &mut m,
                exp_avg_sq: &mut v,
                max_exp_avg_sq: Some(&mut max),
            },
        )
        .unwrap();
    assert_bits_eq("exp_avg", opt.exp_avg(i).unwrap(), &[0.0; 3]);
    assert_bits_eq("exp_avg_sq", opt.exp_avg_sq(i).unwrap(), &[0.0; 3]);
    assert_bits_eq(
        "max_exp_avg_sq",
        opt.max_exp_avg_sq(i).unwrap().unwrap(),
        &[0.0; 3],
    );
    assert_bits_eq("param untouched", opt.param(i).unwrap(), &[1.0; 3]);
    assert_eq!(opt.step_count(i).unwrap(), 0);
}

#[test]
fn set_lr_changes_one_group() {
    let mut buffers = Buffers::new(vec![ramp(4, 0.1), ramp(4, 0.1)], &[false, false]);
    let mut opt = Optimizer::<2, 2>::new();
    opt.add_group(HYPER).unwrap();
    opt.add_group(HYPER).unwrap();
    buffers.register(&mut opt, &[0, 1]);

    opt.set_lr(1, 0.0).unwrap();
    let err = opt.set_lr(0, f64::NAN).unwrap_err();
    let g = ramp(4, 0.5);
    opt.step(&[Some(&g), Some(&g)]).unwrap();

    assert!(
        matches!(err, OptimizerError::Hyperparams { group: 0, .. }),
        "got {err:?}"
    );
    assert_eq!(
        opt.hyperparams(0).unwrap().lr,
        1e-2,
        "group 0 lr after a rejected set_lr"
    );
    assert_eq!(opt.hyperparams(1).unwrap().lr, 0.0, "group 1 lr");
    // lr 0: no update, no decay.
    assert_bits_eq(
        "group 1 param with lr 0",
        opt.param(1).unwrap(),
        &ramp(4, 0.1),
    );
    assert!(
        opt.param(0).unwrap() != ramp(4, 0.1).as_slice(),
        "group 0 param moved"
    );
}

#[test]
fn set_hyperparams_rejects_amsgrad_change_with_tensors() {
    let mut buffers = Buffers::new(vec![ramp(4, 0.1)], &[false]);
    let mut opt = Optimizer::<1, 1>::new();
    opt.add_group(HYPER).unwrap();
    buffers.register(&mut opt, &[0]);

    let err = opt
        .set_hyperparams(
            0,
            Hyperparams {
                amsgrad: true,
                ..HYPER
            },
        )
        .unwrap_err();

    assert_eq!(
        err,
        OptimizerError::MaxExpAvgSqMismatch {
            tensor: 0,
            group: 0,
            amsgrad: true
        }
    );
    assert!(!opt.hyperparams(0).unwrap().amsgrad, "amsgrad unchanged");
}

#[test]
fn unknown_tensor_is_an_error() {
    let opt = Optimizer::<1, 1>::new();
    assert_eq!(
        opt.param(0).err(),
        Some(OptimizerError::UnknownTensor {
            tensor: 0,
            tensors: 0
        })
    );
    assert_eq!(
        opt.step_count(3).err(),
        Some(OptimizerError::UnknownTensor {
            tensor: 3,
            tensors: 0
        })
    );
    assert_eq!(
        opt.hyperparams(0).err(),
        Some(OptimizerError::UnknownGroup {
            group: 0,
            groups: 0
        })
    );
}

#[test]
fn error_messages_name_values() {
    let message = OptimizerError::LengthMismatch {
        tensor: 2,
        name: "grad",
        expected: 5,
        found: 4,
    }
    .to_string();
    assert_eq!(
        message,
        "length mismatch in tensor 2: grad has 4 elements but param has 5"
    );
    let message = OptimizerError::TensorCapacityFull { capacity: 8 }.to_string();
    assert_eq!(
        message,
        "cannot add a tensor: all 8 tensor slots are in use; raise TENSORS"
    );
}

/// The README's optimizer loop is an excerpt of `examples/train_loop.rs`,
/// which `cargo test` compiles; the excerpt must match the file.
#[test]
fn readme_loop_matches_example() {
    let readme = include_str!("../README.md");
    let example = include_str!("../examples/train_loop.rs");
    let section = readme
        .split("\n## Optimizer\n")
        .nth(1)
        .expect("README.md has an Optimizer section");
    let block = section
        .split("```rust,ignore\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the Optimizer section has a rust,ignore code block");
    let indented: String = block
        .lines()
        .map(|line| {
            if line.is_empty() {
                "\n".to_string()
            } else {
                format!("    {line}\n")
            }
        })
        .collect();
    assert!(
        example.contains(&indented),
        "the README's loop differs from examples/train_loop.rs; copy the loop again"
    );
}
