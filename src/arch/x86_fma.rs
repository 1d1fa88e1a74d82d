//! x86 and x86-64 built with the `fma` target feature (for example
//! `-C target-cpu=x86-64-v3`): VFMADD and SQRTPS.

use wide::f32x8;

#[cfg(target_arch = "x86")]
use core::arch::x86::{_MM_HINT_T0, _mm_cvtss_f32, _mm_fmadd_ss, _mm_prefetch, _mm_set_ss};
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::{_MM_HINT_T0, _mm_cvtss_f32, _mm_fmadd_ss, _mm_prefetch, _mm_set_ss};

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

/// How far ahead of the element in use the 8-lane loop prefetches each of
/// its four input arrays. It was measured on an AMD EPYC (Zen 4, 2 vCPUs
/// under KVM) with an x86-64-v3 build, best of 7 runs in thread CPU time. At
/// 16M elements, distances of 256 to 512 bytes made the step 8 to 12%
/// faster and 4096 bytes made it 5% slower. The times at 4K, 64K and 1M
/// elements did not change.
pub(crate) const PREFETCH_BYTES: usize = 512;

/// Prefetches the cache line at `address` into all cache levels.
#[inline(always)]
pub(crate) fn prefetch(address: *const u8) {
    // SAFETY: this module is compiled only with the `fma` target feature,
    // which implies SSE and so PREFETCHT0. The instruction reads no memory
    // architecturally and never faults, so any address is sound.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(address.cast::<i8>()) }
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
