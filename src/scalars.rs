//! Per-step scalars: computed once per step in `f64`, rounded to `f32` once,
//! and shared by every tensor of a step.

use crate::{Error, Hyperparams, Rounding, WeightDecay};

/// The scalars of one AdamW step, ready for the kernel.
///
/// Each field is computed from the hyperparameters and the step number `t` in
/// double precision and rounded to `f32` once, the way torch turns a Python
/// float into the `f32` operand of a tensor operation.
///
/// The fields are public so that firmware can store or send a prepared step.
/// [`StepScalars::apply`] uses whatever values they hold without checking
/// them; only [`StepScalars::new`] gives torch's values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepScalars {
    /// `f32(1 - lr * weight_decay)` with decoupled decay, else 1.
    pub decay: f32,
    /// `f32(weight_decay)` with coupled L2 decay, else 0.
    pub l2: f32,
    /// The lerp weight of `exp_avg`: `f32(1 - beta1)`.
    pub lerp_weight: f32,
    /// `f32(beta2)`.
    pub beta2: f32,
    /// `f32(1 - beta2)`.
    pub one_minus_beta2: f32,
    /// `f32(sqrt(1 - beta2^t))`.
    pub bias_correction2_sqrt: f32,
    /// `f32(-lr / (1 - beta1^t))`.
    pub neg_step_size: f32,
    /// `f32(eps)`.
    pub eps: f32,
    /// Use the running maximum of `exp_avg_sq` (AMSGrad).
    pub amsgrad: bool,
    /// Negate the gradient first.
    pub maximize: bool,
    /// Rounding of the moment updates.
    pub rounding: Rounding,
}

impl StepScalars {
    /// Computes the scalars of step `t` (counting from 1).
    ///
    /// `t` is counted exactly up to 2^53. torch keeps its counter in an `f32`
    /// tensor, which stops at 2^24 = 16777216; from there on torch computes
    /// the bias corrections for step 2^24, while this function uses `t`.
    ///
    /// # Errors
    ///
    /// [`Error::StepZero`] when `t == 0`, and
    /// [`Error::InvalidHyperparameter`] from [`Hyperparams::validate`] or
    /// when `lr` or `weight_decay` is so large that a scalar overflows `f32`
    /// (torch raises an error there too).
    ///
    /// # Example
    ///
    /// ```
    /// use adamw::{Hyperparams, StepScalars};
    ///
    /// let scalars = StepScalars::new(&Hyperparams::DEFAULT, 1)?;
    /// // Step 1 corrects the first moment by 1 / (1 - 0.9).
    /// assert_eq!(scalars.neg_step_size, (-1e-3f64 / (1.0 - 0.9)) as f32);
    /// # Ok::<(), adamw::Error>(())
    /// ```
    pub fn new(hyper: &Hyperparams, t: u64) -> Result<Self, Error> {
        hyper.validate()?;
        if t == 0 {
            return Err(Error::StepZero);
        }

        let t = t as f64;
        let bias_correction1 = 1.0 - libm::pow(hyper.beta1, t);
        let bias_correction2 = 1.0 - libm::pow(hyper.beta2, t);

        let (decay, l2) = match hyper.decay_mode {
            WeightDecay::Decoupled => ((1.0 - hyper.lr * hyper.weight_decay) as f32, 0.0),
            WeightDecay::CoupledL2 => (1.0, hyper.weight_decay as f32),
        };

        let neg_step_size = (-(hyper.lr / bias_correction1)) as f32;

        // torch rejects a scalar that overflows f32 ("value cannot be
        // converted to type float without overflow"); an infinite scalar here
        // would turn every parameter into an infinity or NaN.
        check_fits_f32("lr", hyper.lr, neg_step_size)?;
        check_fits_f32("weight_decay", hyper.weight_decay, decay)?;
        check_fits_f32("weight_decay", hyper.weight_decay, l2)?;

        Ok(StepScalars {
            decay,
            l2,
            lerp_weight: (1.0 - hyper.beta1) as f32,
            beta2: hyper.beta2 as f32,
            one_minus_beta2: (1.0 - hyper.beta2) as f32,
            bias_correction2_sqrt: libm::sqrt(bias_correction2) as f32,
            neg_step_size,
            eps: hyper.eps as f32,
            amsgrad: hyper.amsgrad,
            maximize: hyper.maximize,
            rounding: hyper.rounding,
        })
    }
}

fn check_fits_f32(name: &'static str, value: f64, scalar: f32) -> Result<(), Error> {
    if scalar.is_finite() {
        return Ok(());
    }
    Err(Error::InvalidHyperparameter {
        name,
        value,
        allowed: "small enough that the step's f32 scalars stay finite (lr / (1 - beta1^t) and lr * weight_decay below 3.4e38)",
    })
}
