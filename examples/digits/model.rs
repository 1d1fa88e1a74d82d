//! The MLP 64-32-10 with ReLU and softmax cross-entropy: forward and backward
//! pass written out in `f32`.
//!
//! The operations follow torch's order where that is cheap, so that the loss
//! stays close to `examples/train_torch.py`'s: `z = x W^T + b` with the dot
//! product summed first and the bias added last, `log_softmax` with the
//! maximum subtracted, and the gradient of the mean loss scaled by `1 / B`.
//! Only `+`, `*`, `/`, comparisons and `libm`'s `expf` and `logf` are used,
//! so every target computes the same bits.

use crate::data::PIXELS;

/// Inputs of the first layer: the 8x8 pixels.
pub const INPUTS: usize = PIXELS;
/// Units of the hidden layer.
pub const HIDDEN: usize = 32;
/// Outputs: one logit per digit.
pub const CLASSES: usize = 10;
/// Largest mini-batch.
pub const BATCH: usize = 32;

/// One `f32` per parameter of the model, in torch's layout: weights are
/// `[out][in]`, row by row. The same type holds parameters, gradients and
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

/// Runs the forward pass over a batch and accumulates the gradient of the
/// mean cross-entropy into `grads`, which it zeroes first. Returns the mean
/// loss.
///
/// `inputs` and `labels` have one entry per sample, at most [`BATCH`].
pub fn forward_backward(
    params: Params<'_>,
    inputs: &[[f32; INPUTS]],
    labels: &[u8],
    acts: &mut [Activations; BATCH],
    grads: &mut Mlp,
) -> f32 {
    let batch = inputs.len();
    let acts = &mut acts[..batch];

    let mut loss_sum = 0.0f32;
    for ((input, &label), act) in inputs.iter().zip(labels).zip(acts.iter_mut()) {
        forward(params, input, act);
        loss_sum += -act.log_probs[usize::from(label)];
    }
    let loss = loss_sum / batch as f32;

    // d loss / d logits = (softmax - one_hot) / B, in torch's form:
    // `exp(log_probs) * (1 / B)`, minus `1 / B` at the label.
    let scale = 1.0 / batch as f32;
    let mut d_logits = [[0.0f32; CLASSES]; BATCH];
    for ((d, act), &label) in d_logits.iter_mut().zip(acts.iter()).zip(labels) {
        for (class, (d, &lp)) in d.iter_mut().zip(&act.log_probs).enumerate() {
            let p = libm::expf(lp) * scale;
            *d = if class == usize::from(label) {
                p - scale
            } else {
                p
            };
        }
    }
    let d_logits = &d_logits[..batch];

    *grads = Mlp::zeros();

    // Second layer: dW2 = d_logits^T h, db2 = sum over the batch, and the
    // gradient of the hidden layer, d_hidden = d_logits W2, masked by ReLU.
    let mut d_hidden = [[0.0f32; HIDDEN]; BATCH];
    for ((d, act), d_h) in d_logits.iter().zip(acts.iter()).zip(d_hidden.iter_mut()) {
        for (class, &d_class) in d.iter().enumerate() {
            let row = class * HIDDEN..(class + 1) * HIDDEN;
            for (g, &h) in grads.w2[row.clone()].iter_mut().zip(&act.hidden) {
                *g += d_class * h;
            }
            grads.b2[class] += d_class;
        }
        for (j, d_h) in d_h.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            for (class, &d_class) in d.iter().enumerate() {
                sum += d_class * params.w2[class * HIDDEN + j];
            }
            // ReLU passes the gradient where its output was positive.
            *d_h = if act.hidden[j] > 0.0 { sum } else { 0.0 };
        }
    }

    // First layer: dW1 = d_hidden^T x, db1 = sum over the batch.
    for (d_h, input) in d_hidden[..batch].iter().zip(inputs) {
        for (unit, &d_unit) in d_h.iter().enumerate() {
            let row = unit * INPUTS..(unit + 1) * INPUTS;
            for (g, &x) in grads.w1[row].iter_mut().zip(input) {
                *g += d_unit * x;
            }
            grads.b1[unit] += d_unit;
        }
    }

    loss
}
