//! The MLP 64-32-10 with ReLU and softmax cross-entropy: forward and backward
//! pass written out in `f32`.
//!
//! The operations follow torch's order where that is cheap, so that the loss
//! stays close to `examples/train_torch.py`'s. `z = x W^T + b` sums the dot
//! product first and adds the bias last, `log_softmax` subtracts the
//! maximum, and the gradient of the mean loss is scaled by `1 / B`.
//! Only `+`, `*`, `/`, comparisons and `libm`'s `expf` and `logf` are used,
//! so every target computes the same bits.

use crate::data::{self, PIXELS};

/// Inputs of the first layer: the 8x8 pixels.
pub const INPUTS: usize = PIXELS;
/// Units of the hidden layer.
pub const HIDDEN: usize = 32;
/// Outputs: one logit per digit.
pub const CLASSES: usize = 10;
/// Largest mini-batch.
pub const BATCH: usize = 32;

/// One `f32` per parameter of the model, in torch's layout: weights are
/// `[out][in]`, row by row. The same type stores parameters, gradients and
/// each optimizer moment.
#[derive(Clone)]
pub struct Mlp {
    pub w1: [f32; HIDDEN * INPUTS],
    pub b1: [f32; HIDDEN],
    pub w2: [f32; CLASSES * HIDDEN],
    pub b2: [f32; CLASSES],
}

impl Mlp {
    /// Number of `f32` in one `Mlp`.
    pub const LEN: usize = HIDDEN * INPUTS + HIDDEN + CLASSES * HIDDEN + CLASSES;

    pub const fn zeros() -> Self {
        Mlp {
            w1: [0.0; HIDDEN * INPUTS],
            b1: [0.0; HIDDEN],
            w2: [0.0; CLASSES * HIDDEN],
            b2: [0.0; CLASSES],
        }
    }
}

/// The parameters as the forward pass reads them, wherever they are stored.
#[derive(Clone, Copy)]
pub struct Params<'a> {
    pub w1: &'a [f32],
    pub b1: &'a [f32],
    pub w2: &'a [f32],
    pub b2: &'a [f32],
}

impl Params<'_> {
    /// FNV-1a (64 bits) over the little-endian bytes of every value, in the
    /// order `w1`, `b1`, `w2`, `b2`: equal digests mean equal bits.
    pub fn digest(&self) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for tensor in [self.w1, self.b1, self.w2, self.b2] {
            for value in tensor {
                for byte in value.to_bits().to_le_bytes() {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
        }
        hash
    }
}

/// The activations of one sample, kept from the forward pass for the
/// backward pass.
#[derive(Clone, Copy)]
pub struct Activations {
    /// The hidden layer after ReLU.
    pub hidden: [f32; HIDDEN],
    /// `log_softmax` of the logits.
    pub log_probs: [f32; CLASSES],
}

impl Activations {
    pub const ZERO: Activations = Activations {
        hidden: [0.0; HIDDEN],
        log_probs: [0.0; CLASSES],
    };
}

/// `out[o] = sum_i(input[i] * weight[o][i]) + bias[o]`, summed from `i = 0`.
fn linear<const IN: usize, const OUT: usize>(
    input: &[f32; IN],
    weight: &[f32],
    bias: &[f32],
    out: &mut [f32; OUT],
) {
    for ((out, row), bias) in out.iter_mut().zip(weight.chunks_exact(IN)).zip(bias) {
        let mut sum = 0.0f32;
        for (x, w) in input.iter().zip(row) {
            sum += x * w;
        }
        *out = sum + bias;
    }
}

/// Runs the model on one sample and returns the predicted digit (the first
/// largest logit, as `torch.argmax` picks).
pub fn forward(params: Params<'_>, input: &[f32; INPUTS], act: &mut Activations) -> usize {
    let mut hidden = [0.0f32; HIDDEN];
    linear(input, params.w1, params.b1, &mut hidden);
    for h in &mut hidden {
        *h = if *h > 0.0 { *h } else { 0.0 };
    }
    act.hidden = hidden;

    let mut logits = [0.0f32; CLASSES];
    linear(&hidden, params.w2, params.b2, &mut logits);

    let mut max = logits[0];
    let mut predicted = 0;
    for (class, &z) in logits.iter().enumerate() {
        if z > max {
            max = z;
            predicted = class;
        }
    }

    let mut sum_exp = 0.0f32;
    for &z in &logits {
        sum_exp += libm::expf(z - max);
    }
    let log_sum_exp = libm::logf(sum_exp);
    for (lp, &z) in act.log_probs.iter_mut().zip(&logits) {
        *lp = (z - max) - log_sum_exp;
    }
    predicted
}

/// Runs the forward pass over the samples of a batch and accumulates the
/// gradient of the mean cross-entropy into `grads`, which it zeroes first.
/// Returns the mean loss.
///
/// `samples` contains indices into the data set, at most [`BATCH`]. Images are
/// read again from the data set for the backward pass rather than kept, and
/// the backward pass runs one sample at a time, so that the only per-sample
/// buffers are the activations. Each gradient element is still summed over
/// the samples in batch order, as torch's matrix products sum it.
pub fn forward_backward(
    params: Params<'_>,
    samples: &[u16],
    acts: &mut [Activations; BATCH],
    grads: &mut Mlp,
) -> f32 {
    let batch = samples.len();
    let acts = &mut acts[..batch];

    let mut loss_sum = 0.0f32;
    for (&sample, act) in samples.iter().zip(acts.iter_mut()) {
        let sample = usize::from(sample);
        forward(params, &data::image(sample), act);
        loss_sum += -act.log_probs[usize::from(data::label(sample))];
    }
    let loss = loss_sum / batch as f32;

    grads.w1.fill(0.0);
    grads.b1.fill(0.0);
    grads.w2.fill(0.0);
    grads.b2.fill(0.0);

    let scale = 1.0 / batch as f32;
    for (&sample, act) in samples.iter().zip(acts.iter()) {
        let sample = usize::from(sample);
        let label = usize::from(data::label(sample));

        // d loss / d logits = (softmax - one_hot) / B, in torch's form:
        // `exp(log_probs) * (1 / B)`, minus `1 / B` at the label.
        let mut d_logits = [0.0f32; CLASSES];
        for (class, (d, &lp)) in d_logits.iter_mut().zip(&act.log_probs).enumerate() {
            let p = libm::expf(lp) * scale;
            *d = if class == label { p - scale } else { p };
        }

        // Second layer: dW2 += d_logits^T h, db2 += d_logits.
        for (class, &d_class) in d_logits.iter().enumerate() {
            let row = class * HIDDEN..(class + 1) * HIDDEN;
            for (g, &h) in grads.w2[row].iter_mut().zip(&act.hidden) {
                *g += d_class * h;
            }
            grads.b2[class] += d_class;
        }

        // The hidden layer's gradient, d_logits W2, where ReLU passed its
        // input on, then the first layer: dW1 += d_hidden^T x, db1 += d_hidden.
        let input = data::image(sample);
        for unit in 0..HIDDEN {
            if act.hidden[unit] <= 0.0 {
                // ReLU blocked this unit: its row would add `0 * x = +0`
                // (pixels are not negative), which leaves every sum as it is.
                continue;
            }
            let mut d_unit = 0.0f32;
            for (class, &d_class) in d_logits.iter().enumerate() {
                d_unit += d_class * params.w2[class * HIDDEN + unit];
            }
            let row = unit * INPUTS..(unit + 1) * INPUTS;
            for (g, &x) in grads.w1[row].iter_mut().zip(&input) {
                *g += d_unit * x;
            }
            grads.b1[unit] += d_unit;
        }
    }

    loss
}
