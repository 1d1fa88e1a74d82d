//! Gradient clipping by the global L2 norm, as `torch.nn.utils.clip_grad_norm_`.
//!
//! torch 2.15 computes, for the gradients `g_i` of all parameters:
//!
//! 1. `norm_i = ||g_i||_2` per tensor, in `f32`;
//! 2. `total_norm = ||(norm_1, norm_2, ...)||_2`, the norm of the norms;
//! 3. `clip_coef = max_norm / (total_norm + 1e-6)`, which torch evaluates
//!    as `reciprocal(total_norm + f32(1e-6)) * f32(max_norm)` (Python's
//!    `float / Tensor` is `Tensor.__rdiv__`);
//! 4. `clip_coef_clamped = min(clip_coef, 1.0)`, NaN staying NaN;
//! 5. every gradient element is multiplied by `clip_coef_clamped`, also when
//!    it is 1.0 (torch skips the comparison to avoid a device sync, and a
//!    multiplication by 1.0 changes no finite value).
//!
//! These functions do the same, in the same `f32` operations for steps 3 to
//! 5, so the scaling is bit-identical to torch's for a given `total_norm`.
//!
//! # Accumulation of the norms
//!
//! Each norm sums the squares in `f32` in 8 interleaved accumulators: while
//! 8 elements remain, element `i` goes to accumulator `i % 8` with a fused
//! multiply-add `acc = fma(g, g, acc)`. Then the accumulators are added in
//! order 0 to 7, the remaining elements are added one by one with `fma`, and
//! the square root is taken in `f32`. The fused multiply-add is exact on
//! every target (see the crate's `arch` module), so the norm is the same
//! bits on every target.
//!
//! Of the orders tried (8 or 16 lanes, fused or not), this one matched
//! `torch.linalg.vector_norm` of torch 2.15 on an AVX-512 x86-64 machine
//! most often: 49 of 50 random tensors gave the same bits. torch does not
//! document its order, so a norm can differ from torch's in the last bit;
//! `tests/clip.rs` states the tolerance measured against torch.
//!
//! A sum of squares that overflows `f32` (gradients above about 1.8e19)
//! gives an infinite norm, as in torch.

use crate::arch;

/// The reason a clipping call was rejected. Nothing is written when an
/// error is returned.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ClipError {
    /// `max_norm` is negative or NaN. torch accepts a negative `max_norm`
    /// and then flips the sign of every gradient; this crate rejects it.
    InvalidMaxNorm {
        /// The rejected value.
        value: f32,
    },
    /// The total norm is NaN or infinite and `error_if_nonfinite` was set,
    /// as torch raises with `error_if_nonfinite=True`.
    NonFiniteNorm {
        /// The total norm.
        norm: f32,
    },
}

impl core::fmt::Display for ClipError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ClipError::InvalidMaxNorm { value } => {
                write!(f, "invalid max_norm {value:e}: expected a value >= 0")
            }
            ClipError::NonFiniteNorm { norm } => write!(
                f,
                "the total gradient norm is {norm}, so the gradients cannot be clipped; skip this step or clear error_if_nonfinite to scale by it anyway"
            ),
        }
    }
}

impl core::error::Error for ClipError {}

/// Computes the L2 norm of one tensor: see the module documentation for the
/// order of the accumulation.
pub fn l2_norm(values: &[f32]) -> f32 {
    let (chunks, tail) = values.as_chunks::<8>();
    let mut acc = [0.0f32; 8];
    for chunk in chunks {
        for (a, &g) in acc.iter_mut().zip(chunk) {
            *a = arch::fma(g, g, *a);
        }
    }
    let mut sum = acc[0];
    for &a in acc.iter().skip(1) {
        sum += a;
    }
    for &g in tail {
        sum = arch::fma(g, g, sum);
    }
    arch::sqrt(sum)
}

/// Computes the global L2 norm of all gradients: the norm of the per-tensor
/// norms, as `torch.nn.utils.get_total_norm(grads, 2.0)`. Returns 0 for no
/// gradients.
pub fn total_norm<G: AsRef<[f32]>>(grads: &[G]) -> f32 {
    // The norms are accumulated as `l2_norm` would accumulate them from a
    // slice, without storing them.
    let (chunks, tail) = grads.as_chunks::<8>();
    let mut acc = [0.0f32; 8];
    for chunk in chunks {
        for (a, grad) in acc.iter_mut().zip(chunk) {
            let norm = l2_norm(grad.as_ref());
            *a = arch::fma(norm, norm, *a);
        }
    }
    let mut sum = acc[0];
    for &a in acc.iter().skip(1) {
        sum += a;
    }
    for grad in tail {
        let norm = l2_norm(grad.as_ref());
        sum = arch::fma(norm, norm, sum);
    }
    arch::sqrt(sum)
}

/// Computes the factor that [`clip_grads_with_norm`] multiplies every
/// gradient element by: `min(max_norm / (total_norm + 1e-6), 1)` in torch's
/// `f32` operations. NaN when `total_norm` is NaN, 0 when it is infinite.
///
/// # Errors
///
/// [`ClipError::InvalidMaxNorm`] when `max_norm` is negative or NaN.
pub fn clip_coefficient(max_norm: f32, total_norm: f32) -> Result<f32, ClipError> {
    check_max_norm(max_norm)?;
    let coef = (1.0 / (total_norm + 1e-6f32)) * max_norm;
    // `f32::min` would turn NaN into 1.0; torch.clamp keeps NaN.
    Ok(if coef.is_nan() { coef } else { coef.min(1.0) })
}

/// Scales every gradient by [`clip_coefficient`]`(max_norm, total_norm)`,
/// as `torch.nn.utils.clip_grads_with_norm_`.
///
/// # Errors
///
/// [`ClipError::InvalidMaxNorm`] when `max_norm` is negative or NaN. Nothing
/// is written then.
pub fn clip_grads_with_norm<G: AsMut<[f32]>>(
    grads: &mut [G],
    max_norm: f32,
    total_norm: f32,
) -> Result<(), ClipError> {
    let coef = clip_coefficient(max_norm, total_norm)?;
    for grad in grads.iter_mut() {
        for g in grad.as_mut() {
            *g *= coef;
        }
    }
    Ok(())
}

/// Clips the gradients in place so that their global L2 norm is at most
/// about `max_norm`, and returns the norm before clipping, as
/// `torch.nn.utils.clip_grad_norm_(params, max_norm, 2.0, error_if_nonfinite)`.
///
/// Pass only the gradients that exist: torch skips parameters whose `.grad`
/// is `None`. Without `error_if_nonfinite` a NaN norm turns every gradient
/// into NaN and an infinite norm scales every gradient by 0, as in torch;
/// [`crate::Optimizer::step_checked`] then skips the step (for the NaN
/// case) or applies zero gradients (for the infinite one).
///
/// # Errors
///
/// [`ClipError::InvalidMaxNorm`] when `max_norm` is negative or NaN, and
/// with `error_if_nonfinite`, [`ClipError::NonFiniteNorm`] when the norm is
/// NaN or infinite. Nothing is written when an error is returned.
///
/// # Example
///
/// ```
/// let mut weight_grad = [3.0f32, 0.0];
/// let mut bias_grad = [4.0f32];
/// let norm = adamw::clip_grad_norm(&mut [&mut weight_grad[..], &mut bias_grad[..]], 1.0, false)?;
/// assert_eq!(norm, 5.0);
/// assert!((weight_grad[0] - 0.6).abs() < 1e-6);
/// assert!((bias_grad[0] - 0.8).abs() < 1e-6);
/// # Ok::<(), adamw::ClipError>(())
/// ```
pub fn clip_grad_norm<G: AsMut<[f32]> + AsRef<[f32]>>(
    grads: &mut [G],
    max_norm: f32,
    error_if_nonfinite: bool,
) -> Result<f32, ClipError> {
    check_max_norm(max_norm)?;
    let norm = total_norm(grads);
    if error_if_nonfinite && !norm.is_finite() {
        return Err(ClipError::NonFiniteNorm { norm });
    }
    // torch returns before scaling when there are no gradients.
    if !grads.is_empty() {
        clip_grads_with_norm(grads, max_norm, norm)?;
    }
    Ok(norm)
}

fn check_max_norm(max_norm: f32) -> Result<(), ClipError> {
    // Written so that NaN fails the test.
    if max_norm >= 0.0 {
        Ok(())
    } else {
        Err(ClipError::InvalidMaxNorm { value: max_norm })
    }
}
