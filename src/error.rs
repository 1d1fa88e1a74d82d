//! The crate's one error type.

use core::fmt;

/// The reason a step was rejected. Every check runs before the first write,
/// so a returned error means that no buffer was changed.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A hyperparameter is outside the range that `torch.optim.AdamW` accepts,
    /// or is not finite.
    InvalidHyperparameter {
        /// The field name, as torch spells it (`lr`, `beta1`, ...).
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// The accepted range, for the message.
        allowed: &'static str,
    },
    /// The step number was 0. Steps count from 1, as in torch, because the
    /// bias corrections `1 - beta^t` are 0 at t = 0.
    StepZero,
    /// A buffer's length differs from the parameter's length.
    LengthMismatch {
        /// The buffer's name (`grad`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`).
        name: &'static str,
        /// The parameter's length.
        expected: usize,
        /// The buffer's length.
        found: usize,
    },
    /// `amsgrad` is on but no `max_exp_avg_sq` buffer was given, or it is off
    /// and one was given.
    MaxExpAvgSqMismatch {
        /// The `amsgrad` setting of the step.
        amsgrad: bool,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::InvalidHyperparameter {
                name,
                value,
                allowed,
            } => write!(f, "invalid {name}: {value:e}; allowed: {allowed}"),
            Error::StepZero => f.write_str("invalid step 0: steps count from 1"),
            Error::LengthMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "length mismatch: {name} has {found} elements but param has {expected}"
            ),
            Error::MaxExpAvgSqMismatch { amsgrad: true } => {
                f.write_str("amsgrad is on, so a max_exp_avg_sq buffer is required")
            }
            Error::MaxExpAvgSqMismatch { amsgrad: false } => f.write_str(
                "a max_exp_avg_sq buffer was given but amsgrad is off; pass None or enable amsgrad",
            ),
        }
    }
}

impl core::error::Error for Error {}
