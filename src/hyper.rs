//! Hyperparameters with torch's names, defaults and validation rules.

use crate::Error;

/// The rounding of the fused multiply-adds in torch's CPU kernels.
///
/// Both modes give the same bits on every supported target. They differ from
/// each other in the last bit of `exp_avg` and `exp_avg_sq` for some inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Rounding {
    /// One rounding for the lerp of `exp_avg` and for the update of
    /// `exp_avg_sq`: what torch computes on CPUs with AVX2 or AVX-512.
    #[default]
    Fused = 0,
    /// A multiply and an add, each rounded: what torch computes on its generic
    /// CPU path (`ATEN_CPU_CAPABILITY=default`).
    Unfused = 1,
}

/// The place in the step where the weight decay is applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum WeightDecay {
    /// AdamW: `param *= 1 - lr * weight_decay` before the moments are
    /// updated, as `torch.optim.AdamW` does.
    #[default]
    Decoupled = 0,
    /// Adam with L2 regularisation: `grad += weight_decay * param` before the
    /// moments, as `torch.optim.Adam` does with `weight_decay > 0`. This is
    /// the classic mistake when AdamW is meant; it is here for models trained
    /// with `torch.optim.Adam`.
    CoupledL2 = 1,
}

/// The hyperparameters of `torch.optim.AdamW`, with its defaults.
///
/// They are `f64`, as Python floats are, because torch computes the per-step
/// scalars in double precision and rounds each to `f32` once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyperparams {
    /// Learning rate, `lr >= 0`. Default 1e-3.
    pub lr: f64,
    /// Decay of the first moment, `0 <= beta1 < 1`. Default 0.9.
    pub beta1: f64,
    /// Decay of the second moment, `0 <= beta2 < 1`. Default 0.999.
    pub beta2: f64,
    /// Added to the denominator, `eps >= 0`. Default 1e-8.
    pub eps: f64,
    /// Weight decay, `weight_decay >= 0`. Default 1e-2.
    pub weight_decay: f64,
    /// Use the running maximum of `exp_avg_sq` in the denominator. Default false.
    pub amsgrad: bool,
    /// Ascend the objective instead of descending it. Default false.
    pub maximize: bool,
    /// Rounding of the moment updates. Default [`Rounding::Fused`].
    pub rounding: Rounding,
    /// Decoupled (AdamW) or coupled (Adam with L2) weight decay. Default
    /// [`WeightDecay::Decoupled`].
    pub decay_mode: WeightDecay,
}

impl Default for Hyperparams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Hyperparams {
    /// torch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
    /// weight_decay 1e-2, amsgrad and maximize off.
    pub const DEFAULT: Hyperparams = Hyperparams {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 1e-2,
        amsgrad: false,
        maximize: false,
        rounding: Rounding::Fused,
        decay_mode: WeightDecay::Decoupled,
    };

    /// Checks every field against torch's rules, and that it is finite.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] names the first invalid field, its
    /// value and the accepted range.
    pub fn validate(&self) -> Result<(), Error> {
        check_at_least_zero("lr", self.lr)?;
        check_beta("beta1", self.beta1)?;
        check_beta("beta2", self.beta2)?;
        check_at_least_zero("eps", self.eps)?;
        check_at_least_zero("weight_decay", self.weight_decay)
    }
}

fn check_at_least_zero(name: &'static str, value: f64) -> Result<(), Error> {
    // Written so that NaN fails the test.
    if value >= 0.0 && value.is_finite() {
        return Ok(());
    }
    Err(Error::InvalidHyperparameter {
        name,
        value,
        allowed: "finite and >= 0",
    })
}

fn check_beta(name: &'static str, value: f64) -> Result<(), Error> {
    if (0.0..1.0).contains(&value) {
        return Ok(());
    }
    Err(Error::InvalidHyperparameter {
        name,
        value,
        allowed: "0 <= beta < 1",
    })
}
