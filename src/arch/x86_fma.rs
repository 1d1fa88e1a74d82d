//! x86 and x86-64 built with the `fma` target feature (for example
//! `-C target-cpu=x86-64-v3`): VFMADD and SQRTPS.

use wide::f32x8;

#[cfg(target_arch = "x86")]
use core::arch::x86::{_mm_cvtss_f32, _mm_fmadd_ss, _mm_set_ss};
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::{_mm_cvtss_f32, _mm_fmadd_ss, _mm_set_ss};

pub(crate) const SIMD: bool = true;
pub(crate) const BACKEND: &str = "x86 FMA3";

#[inline(always)]
pub(crate) fn fma(a: f32, b: f32, c: f32) -> f32 {
    // SAFETY: this module is compiled only with the `fma` target feature
    // (which implies SSE), so the instructions exist on the CPU.
    unsafe { _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c))) }
}

#[inline(always)]
pub(crate) fn fma8(a: f32x8, b: f32x8, c: f32x8) -> f32x8 {
    // `wide` emits VFMADD when the `fma` target feature is on, as it is here.
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
