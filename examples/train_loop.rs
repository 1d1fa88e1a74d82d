//! A training loop with the multi-tensor optimizer: two parameter groups, a
//! warmup-then-cosine schedule, gradient clipping, a checked step and a
//! checkpoint. The model is linear, y = w . x + b, fitted to
//! y = 2 x0 - x1 + 0.5 x2 + 3 with a mean squared error.
//!
//! Run with `cargo run --example train_loop`. README.md shows this file.

use adamw::{
    Contents, CosineAnnealingLr, Hyperparams, LinearLr, LrScheduler, Optimizer, Schedule,
    SequentialLr, StepOutcome, TensorBuffers, clip_grad_norm,
};

const FEATURES: usize = 3;
const BATCH: usize = 8;
const STEPS: usize = 200;
const BASE_LR: f64 = 0.05;

/// Input `n` of the data set: deterministic values in [-1, 1], one
/// frequency per feature so that the features are linearly independent.
fn sample(n: usize) -> [f32; FEATURES] {
    core::array::from_fn(|i| (n as f32 * (0.61 + 0.29 * i as f32) + i as f32).sin())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Parameters and optimizer state; on a device these are static arrays
    // in the RAM section of your choice.
    let (mut weight, mut weight_m, mut weight_v) =
        ([0.0f32; FEATURES], [0.0; FEATURES], [0.0; FEATURES]);
    let (mut bias, mut bias_m, mut bias_v) = ([0.0f32; 1], [0.0; 1], [0.0; 1]);

    // Weights decay, the bias does not: two groups, as in torch.
    let mut opt = Optimizer::<2, 2>::new();
    let decayed = opt.add_group(Hyperparams {
        lr: BASE_LR,
        weight_decay: 1e-2,
        ..Hyperparams::DEFAULT
    })?;
    let no_decay = opt.add_group(Hyperparams {
        lr: BASE_LR,
        weight_decay: 0.0,
        ..Hyperparams::DEFAULT
    })?;
    let w = opt.add_tensor(
        decayed,
        TensorBuffers {
            param: &mut weight,
            exp_avg: &mut weight_m,
            exp_avg_sq: &mut weight_v,
            max_exp_avg_sq: None,
        },
    )?;
    let b = opt.add_tensor(
        no_decay,
        TensorBuffers {
            param: &mut bias,
            exp_avg: &mut bias_m,
            exp_avg_sq: &mut bias_v,
            max_exp_avg_sq: None,
        },
    )?;

    // 20 steps of linear warmup from BASE_LR / 10, then cosine decay.
    let mut schedule = SequentialLr::<2>::new(
        [
            Schedule::Linear(LinearLr::new(BASE_LR, 0.1, 1.0, 20)?),
            Schedule::Cosine(CosineAnnealingLr::new(BASE_LR, (STEPS - 20) as u64, 1e-4)?),
        ],
        &[20],
    )?;
    opt.set_lr(decayed, schedule.lr())?;
    opt.set_lr(no_decay, schedule.lr())?;

    let mut checkpoint = [0u8; 256];
    let checkpoint_size = opt.checkpoint_size(Contents::StateAndParams);

    let mut loss = 0.0;
    for step in 0..STEPS {
        // Forward and backward pass over one batch; the forward pass reads
        // the parameters through the optimizer.
        let (mut grad_w, mut grad_b) = ([0.0f32; FEATURES], [0.0f32; 1]);
        loss = 0.0;
        for k in 0..BATCH {
            let x = sample(step * BATCH + k);
            let target = 2.0 * x[0] - x[1] + 0.5 * x[2] + 3.0;
            let prediction: f32 = opt
                .param(w)?
                .iter()
                .zip(&x)
                .map(|(w, x)| w * x)
                .sum::<f32>()
                + opt.param(b)?[0];
            let error = prediction - target;
            loss += error * error / BATCH as f32;
            for (g, x) in grad_w.iter_mut().zip(&x) {
                *g += 2.0 * error * x / BATCH as f32;
            }
            grad_b[0] += 2.0 * error / BATCH as f32;
        }

        // Clip the global gradient norm to 1, then step unless a gradient
        // is NaN or infinite.
        clip_grad_norm(&mut [&mut grad_w[..], &mut grad_b[..]], 1.0, false)?;
        if let StepOutcome::SkippedNonFinite { tensor, index } =
            opt.step_checked(&[Some(&grad_w), Some(&grad_b)])?
        {
            eprintln!("step {step}: gradient {tensor}[{index}] is not finite; step skipped");
        }

        // As in torch: optimizer step first, then the schedule.
        let lr = schedule.step();
        opt.set_lr(decayed, lr)?;
        opt.set_lr(no_decay, lr)?;

        if step % 50 == 49 {
            opt.save(&mut checkpoint[..checkpoint_size], Contents::StateAndParams)?;
        }
    }
    println!("loss after {STEPS} steps: {loss:.2e}");
    println!("weight {:?}, bias {:?}", opt.param(w)?, opt.param(b)?);
    let final_weight = opt.param(w)?.to_vec();
    drop(opt);

    // After a reset: register the same groups and tensors in the same
    // order, then restore the last checkpoint (step 200).
    let (mut weight, mut weight_m, mut weight_v) =
        ([0.0f32; FEATURES], [0.0; FEATURES], [0.0; FEATURES]);
    let (mut bias, mut bias_m, mut bias_v) = ([0.0f32; 1], [0.0; 1], [0.0; 1]);
    let mut resumed = Optimizer::<2, 2>::new();
    resumed.add_group(Hyperparams::DEFAULT)?;
    resumed.add_group(Hyperparams::DEFAULT)?;
    resumed.add_tensor(
        0,
        TensorBuffers {
            param: &mut weight,
            exp_avg: &mut weight_m,
            exp_avg_sq: &mut weight_v,
            max_exp_avg_sq: None,
        },
    )?;
    resumed.add_tensor(
        1,
        TensorBuffers {
            param: &mut bias,
            exp_avg: &mut bias_m,
            exp_avg_sq: &mut bias_v,
            max_exp_avg_sq: None,
        },
    )?;
    resumed.restore(&checkpoint[..checkpoint_size])?;
    assert_eq!(resumed.param(0)?, final_weight.as_slice());
    println!(
        "restored step {} from a {checkpoint_size}-byte checkpoint",
        resumed.step_count(0)?
    );
    Ok(())
}
