//! Every other target: x86-64 without the `fma` feature, wasm32, Cortex-M0,
//! RISC-V and the rest. The fused multiply-add is the exact `f64` emulation;
//! the square root is `libm::sqrtf`, correctly rounded (SQRTSS on x86, the
//! wasm `f32.sqrt` instruction, or software).

use wide::f32x8;

pub(crate) use super::exact::{fma, fma8};

/// The 8-lane body runs where `wide` has vector registers; elsewhere its
/// lanes would be a loop over the one-lane code, which costs flash.
pub(crate) const SIMD: bool = cfg!(any(target_feature = "sse2", target_feature = "simd128"));

pub(crate) const BACKEND: &str = "portable, exact f64 FMA emulation";

#[inline(always)]
pub(crate) fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

#[inline(always)]
pub(crate) fn sqrt8(x: f32x8) -> f32x8 {
    // SQRTPS on x86 and `f32x4.sqrt` on wasm are correctly rounded. `SIMD` is
    // false everywhere else, so the kernel does not call this there.
    x.sqrt()
}

/// Returns false without writing anything: this backend has no loop of its
/// own for the common flags, so the kernel runs the generic one.
#[inline(always)]
pub(crate) fn run_plain<const FUSED: bool>(
    _scalars: &crate::StepScalars,
    _param: &mut [f32],
    _grad: &[f32],
    _exp_avg: &mut [f32],
    _exp_avg_sq: &mut [f32],
) -> bool {
    false
}
