//! The public step functions: the one-call `adamw_step`, and
//! `StepScalars::apply` for many tensors with one set of scalars.

use crate::kernel::{self, Buffers};
use crate::{Error, Hyperparams, StepScalars};

impl StepScalars {
    /// Applies this step to one tensor, in place.
    ///
    /// `max_exp_avg_sq` is the AMSGrad running maximum: required when the
    /// scalars were made with `amsgrad`, and `None` otherwise. All slices must
    /// have `param.len()` elements.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] or [`Error::MaxExpAvgSqMismatch`]. Nothing is
    /// written when an error is returned.
    ///
    /// # Example
    ///
    /// ```
    /// use adamw::{Hyperparams, StepScalars};
    ///
    /// let hyper = Hyperparams { weight_decay: 0.0, ..Hyperparams::DEFAULT };
    /// let scalars = StepScalars::new(&hyper, 1)?;
    ///
    /// // Two tensors, one set of scalars.
    /// let (mut w, mut w_m, mut w_v) = ([1.0f32; 3], [0.0f32; 3], [0.0f32; 3]);
    /// let (mut b, mut b_m, mut b_v) = ([0.5f32], [0.0f32], [0.0f32]);
    /// scalars.apply(&mut w, &[0.1, -0.2, 0.0], &mut w_m, &mut w_v, None)?;
    /// scalars.apply(&mut b, &[0.3], &mut b_m, &mut b_v, None)?;
    ///
    /// // The first step moves each weight by lr in the direction against the
    /// // gradient's sign, and leaves a zero gradient's weight alone.
    /// assert!((w[0] - 0.999).abs() < 1e-6);
    /// assert!((w[1] - 1.001).abs() < 1e-6);
    /// assert_eq!(w[2], 1.0);
    /// # Ok::<(), adamw::Error>(())
    /// ```
    pub fn apply(
        &self,
        param: &mut [f32],
        grad: &[f32],
        exp_avg: &mut [f32],
        exp_avg_sq: &mut [f32],
        max_exp_avg_sq: Option<&mut [f32]>,
    ) -> Result<(), Error> {
        let buffers = Buffers::new(self, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)?;
        kernel::apply(self, buffers);
        Ok(())
    }

    /// Applies this step one element at a time, without the 8-lane body.
    ///
    /// The results are bit-identical to [`StepScalars::apply`]; this is the
    /// reference that tests hold the vector path to.
    ///
    /// # Errors
    ///
    /// As [`StepScalars::apply`].
    pub fn apply_scalar(
        &self,
        param: &mut [f32],
        grad: &[f32],
        exp_avg: &mut [f32],
        exp_avg_sq: &mut [f32],
        max_exp_avg_sq: Option<&mut [f32]>,
    ) -> Result<(), Error> {
        let buffers = Buffers::new(self, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)?;
        kernel::apply_scalar(self, buffers);
        Ok(())
    }
}

/// Runs step `t` (counting from 1) of AdamW over one tensor, in place, with
/// any [`Hyperparams`].
///
/// # Errors
///
/// [`Error::InvalidHyperparameter`], [`Error::StepZero`],
/// [`Error::LengthMismatch`] or [`Error::MaxExpAvgSqMismatch`]. Nothing is
/// written when an error is returned.
pub fn step(
    hyper: &Hyperparams,
    t: u64,
    param: &mut [f32],
    grad: &[f32],
    exp_avg: &mut [f32],
    exp_avg_sq: &mut [f32],
    max_exp_avg_sq: Option<&mut [f32]>,
) -> Result<(), Error> {
    StepScalars::new(hyper, t)?.apply(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)
}

/// Runs step `t` (counting from 1) of `torch.optim.AdamW` over one tensor, in
/// place, with amsgrad and maximize off and fused rounding.
///
/// `exp_avg` and `exp_avg_sq` start as zeros and carry the state from step to
/// step, as torch's optimizer state does.
///
/// # Errors
///
/// [`Error::InvalidHyperparameter`] for a value that torch rejects or that
/// is not finite, [`Error::StepZero`] for `t == 0`, and
/// [`Error::LengthMismatch`] when a slice's length differs from `param`'s.
/// Nothing is written when an error is returned.
///
/// # Example
///
/// ```
/// let mut param = [0.5f32, -1.0];
/// let grad = [0.25f32, 0.0];
/// let (mut exp_avg, mut exp_avg_sq) = ([0.0f32; 2], [0.0f32; 2]);
///
/// adamw::adamw_step(
///     &mut param, &grad, &mut exp_avg, &mut exp_avg_sq,
///     1, 1e-3, 0.9, 0.999, 1e-8, 0.0,
/// )?;
///
/// // Step 1 moves a parameter with a nonzero gradient by lr.
/// assert!((param[0] - 0.499).abs() < 1e-6);
/// assert_eq!(param[1], -1.0);
/// assert_eq!(exp_avg[0], 0.025);
/// # Ok::<(), adamw::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn adamw_step(
    param: &mut [f32],
    grad: &[f32],
    exp_avg: &mut [f32],
    exp_avg_sq: &mut [f32],
    t: u64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
) -> Result<(), Error> {
    let hyper = Hyperparams {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        ..Hyperparams::DEFAULT
    };
    step(&hyper, t, param, grad, exp_avg, exp_avg_sq, None)
}
