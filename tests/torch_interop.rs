//! Resuming a torch.optim.AdamW run in this crate.
//!
//! `tests/gen_optimizer.py` trains a small model (Linear(6, 12), tanh,
//! Linear(12, 3), MSE loss, fixed seed and data) for 50 steps with
//! `torch.optim.AdamW(foreach=False)` in two parameter groups: the weights
//! with `weight_decay = 0.05`, the biases with `weight_decay = 0` and
//! AMSGrad. `tests/torch_state_convert.py` converts the state after step 50
//! and after step 100 to this crate's checkpoint format, and the gradients
//! of steps 51 to 100 are committed. This test restores step 50, applies
//! those gradients and compares with torch's step 100.
//!
//! The gradients are fixed input data here, so the moments depend on them
//! alone and must match bit for bit. The parameters follow the kernel's
//! contract, one ulp per step, and a difference can carry into later
//! steps; the bound below is measured.

mod optimizer_support;

use adamw::{Contents, Hyperparams, Optimizer, WeightDecay};
use optimizer_support::{Arrays, Buffers, assert_bits_eq, ulp_distance};

const STEP50: &[u8] = include_bytes!("golden/optimizer/interop_step50.adwc");
const STEP100: &[u8] = include_bytes!("golden/optimizer/interop_step100.adwc");
const GRADS: &[u8] = include_bytes!("golden/optimizer/interop_grads.bin");

/// torch's parameter numbering: hidden.weight, out.weight (group 0),
/// hidden.bias, out.bias (group 1).
const SIZES: [usize; 4] = [72, 36, 12, 3];
const GROUP_OF: [usize; 4] = [0, 0, 1, 1];
const AMSGRAD: [bool; 4] = [false, false, true, true];

fn registered<'a>(buffers: &'a mut Buffers) -> Optimizer<'a, 4, 2> {
    let mut opt = Optimizer::new();
    // Placeholders: restore replaces the hyperparameters with torch's. Only
    // amsgrad must match, because the AMSGrad buffers depend on it.
    opt.add_group(Hyperparams::DEFAULT).unwrap();
    opt.add_group(Hyperparams {
        amsgrad: true,
        ..Hyperparams::DEFAULT
    })
    .unwrap();
    buffers.register(&mut opt, &GROUP_OF);
    opt
}

fn fresh_buffers() -> Buffers {
    Buffers::new(SIZES.iter().map(|&n| vec![0.0; n]).collect(), &AMSGRAD)
}

#[test]
fn torch_checkpoint_restores_hyperparams_and_counts() {
    let mut buffers = fresh_buffers();
    let mut opt = registered(&mut buffers);

    let contents = opt.restore(STEP50).unwrap();

    assert_eq!(contents, Contents::StateAndParams);
    let weights = opt.hyperparams(0).unwrap();
    assert_eq!(weights.lr, 5e-3, "group 0 lr");
    assert_eq!(
        (weights.beta1, weights.beta2),
        (0.9, 0.999),
        "group 0 betas"
    );
    assert_eq!(weights.eps, 1e-8, "group 0 eps");
    assert_eq!(weights.weight_decay, 0.05, "group 0 weight_decay");
    assert!(!weights.amsgrad, "group 0 amsgrad");
    assert_eq!(
        weights.decay_mode,
        WeightDecay::Decoupled,
        "AdamW decays decoupled"
    );
    let biases = opt.hyperparams(1).unwrap();
    assert_eq!(biases.weight_decay, 0.0, "group 1 weight_decay");
    assert!(biases.amsgrad, "group 1 amsgrad");
    for i in 0..SIZES.len() {
        assert_eq!(opt.step_count(i).unwrap(), 50, "tensor {i} step count");
    }
}

/// Saving what was restored gives the converter's bytes back: the Rust
/// writer and the Python writer agree on every byte, checksum included.
#[test]
fn torch_checkpoint_saves_back_byte_identical() {
    let mut buffers = fresh_buffers();
    let mut opt = registered(&mut buffers);
    opt.restore(STEP50).unwrap();

    let mut out = vec![0u8; opt.checkpoint_size(Contents::StateAndParams)];
    opt.save(&mut out, Contents::StateAndParams).unwrap();

    assert_eq!(out.len(), STEP50.len(), "size");
    let first_difference = out.iter().zip(STEP50).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "first differing byte");
}

/// The gradients and torch's parameters of steps 51 to 100.
struct Continuation {
    grads: Vec<f32>,
    params_after: Vec<f32>,
}

const TOTAL: usize = 72 + 36 + 12 + 3;

impl Continuation {
    fn load() -> Continuation {
        let data = Arrays::parse(GRADS);
        assert_eq!(
            data.u64("sizes"),
            SIZES.map(|n| n as u64),
            "tensor sizes of the committed run"
        );
        let grads = data.f32("grads");
        let params_after = data.f32("params_after");
        assert_eq!(grads.len(), 50 * TOTAL, "50 steps of gradients");
        assert_eq!(params_after.len(), 50 * TOTAL, "50 steps of parameters");
        Continuation {
            grads,
            params_after,
        }
    }

    /// Returns row `step` (0 for step 51) of `array`, split per tensor.
    fn split(array: &[f32], step: usize) -> Vec<&[f32]> {
        let mut row = &array[step * TOTAL..(step + 1) * TOTAL];
        SIZES
            .iter()
            .map(|&n| {
                let (tensor, rest) = row.split_at(n);
                row = rest;
                tensor
            })
            .collect()
    }

    fn grads(&self, step: usize) -> Vec<Option<&[f32]>> {
        Self::split(&self.grads, step)
            .into_iter()
            .map(Some)
            .collect()
    }

    fn params_after(&self, step: usize) -> Vec<&[f32]> {
        Self::split(&self.params_after, step)
    }
}

/// Returns the unit in the last place of `x` (of the smallest normal for
/// 0 and subnormals).
fn ulp(x: f32) -> f32 {
    let x = x.abs().max(f32::MIN_POSITIVE);
    let next = f32::from_bits(x.to_bits() + 1);
    next - x
}

/// Each step, started from torch's parameters, is close to torch's in units
/// of the larger operand of the final addition `p * decay + update`. Both
/// operands are at most `|p_in| + |p_out|` in magnitude (the update exceeds
/// both when the sign changes), so the unit is one ulp of that sum.
///
/// torch takes its square root from MKL, one ulp off the correctly rounded
/// one for some inputs, and the crate documents a parameter difference of
/// one or two ulp where that happens. Measured with torch 2.15 (AVX-512):
/// 34 of these 6150 results differ, one of them by two ulp (step 83,
/// tensor 0, element 54, where the parameter changes sign).
const STEP_BOUND_ULPS: f32 = 2.0;

#[test]
fn each_step_from_torch_params_is_within_two_ulp() {
    let run = Continuation::load();
    let mut buffers = fresh_buffers();
    let mut opt = registered(&mut buffers);
    opt.restore(STEP50).unwrap();

    let (mut differing, mut above_one) = (0, 0);
    for step in 0..50 {
        if step > 0 {
            for (i, torch) in run.params_after(step - 1).into_iter().enumerate() {
                opt.param_mut(i).unwrap().copy_from_slice(torch);
            }
        }
        let inputs: Vec<Vec<f32>> = (0..SIZES.len())
            .map(|i| opt.param(i).unwrap().to_vec())
            .collect();
        opt.step(&run.grads(step)).unwrap();

        for (i, torch) in run.params_after(step).into_iter().enumerate() {
            let actual = opt.param(i).unwrap();
            for (j, ((&a, &e), &p)) in actual.iter().zip(torch).zip(&inputs[i]).enumerate() {
                let unit = ulp(p.abs() + e.abs());
                assert!(
                    (a - e).abs() <= STEP_BOUND_ULPS * unit,
                    "step {}: tensor {i} param[{j}]: got {a:e} ({:#010x}), torch {e:e} ({:#010x}), input {p:e}",
                    step + 51,
                    a.to_bits(),
                    e.to_bits()
                );
                differing += (a != e) as usize;
                above_one += ((a - e).abs() > unit) as usize;
            }
        }
    }
    println!(
        "single steps from torch's parameters: {differing} of {} results differ, {above_one} by more than one ulp",
        50 * TOTAL
    );
}

/// The bound on a parameter's difference from torch after 50 free-running
/// steps, relative to the largest parameter magnitude of its tensor: 2^-22,
/// two ulp at that magnitude. An element-wise relative bound does not fit,
/// because parameters that cross zero end small, with a difference carried
/// from when they were large. Measured with torch 2.15 (AVX-512) on x86-64:
/// 8.2e-8 at most (64 ulp of a parameter near zero).
const NORMWISE_BOUND: f64 = 2.384185791015625e-7;

#[test]
fn continuing_torch_run_matches_torch() {
    let run = Continuation::load();
    let mut buffers = fresh_buffers();
    let mut opt = registered(&mut buffers);
    opt.restore(STEP50).unwrap();
    for step in 0..50 {
        opt.step(&run.grads(step)).unwrap();
    }

    let mut expected_buffers = fresh_buffers();
    let mut expected = registered(&mut expected_buffers);
    expected.restore(STEP100).unwrap();

    for (i, &amsgrad) in AMSGRAD.iter().enumerate() {
        assert_eq!(opt.step_count(i).unwrap(), 100, "tensor {i} step count");
        assert_bits_eq(
            &format!("tensor {i} exp_avg"),
            opt.exp_avg(i).unwrap(),
            expected.exp_avg(i).unwrap(),
        );
        assert_bits_eq(
            &format!("tensor {i} exp_avg_sq"),
            opt.exp_avg_sq(i).unwrap(),
            expected.exp_avg_sq(i).unwrap(),
        );
        if amsgrad {
            assert_bits_eq(
                &format!("tensor {i} max_exp_avg_sq"),
                opt.max_exp_avg_sq(i).unwrap().unwrap(),
                expected.max_exp_avg_sq(i).unwrap().unwrap(),
            );
        }
    }

    // The parameters after step 100 in the checkpoint are the same as the
    // last row of the committed run.
    for (i, torch) in run.params_after(49).into_iter().enumerate() {
        assert_bits_eq(
            &format!("tensor {i} checkpoint param"),
            expected.param(i).unwrap(),
            torch,
        );
    }

    for i in 0..SIZES.len() {
        let actual = opt.param(i).unwrap();
        let torch = expected.param(i).unwrap();
        let scale = torch.iter().fold(0.0f32, |m, x| m.max(x.abs())) as f64;
        let (mut worst, mut worst_index, mut max_ulp) = (0.0f64, 0, 0);
        for (j, (&a, &e)) in actual.iter().zip(torch).enumerate() {
            let difference = (a as f64 - e as f64).abs() / scale;
            if difference > worst {
                (worst, worst_index) = (difference, j);
            }
            max_ulp = max_ulp.max(ulp_distance(a, e));
        }
        println!(
            "tensor {i}: max difference {worst:e} of max |param| {scale:e}, max {max_ulp} ulp"
        );
        assert!(
            worst <= NORMWISE_BOUND,
            "tensor {i} param[{worst_index}]: got {:e}, torch {:e}: difference {worst:e} of max |param| {scale:e}",
            actual[worst_index],
            torch[worst_index]
        );
    }
}
