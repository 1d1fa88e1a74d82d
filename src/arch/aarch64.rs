//! aarch64 with NEON: FMLA and FSQRT.

use wide::f32x8;

pub(crate) const SIMD: bool = true;
pub(crate) const BACKEND: &str = "aarch64 NEON";

#[inline(always)]
pub(crate) fn fma(a: f32, b: f32, c: f32) -> f32 {
    // libm emits FMADD on aarch64.
    libm::fmaf(a, b, c)
}

#[inline(always)]
pub(crate) fn fma8(a: f32x8, b: f32x8, c: f32x8) -> f32x8 {
    // `wide` emits FMLA (`vfmaq_f32`) on aarch64 with NEON.
    a.mul_add(b, c)
}

#[inline(always)]
pub(crate) fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

#[inline(always)]
pub(crate) fn sqrt8(x: f32x8) -> f32x8 {
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
