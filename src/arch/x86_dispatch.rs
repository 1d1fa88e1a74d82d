//! Run-time selection of FMA3 and AVX2 for x86-64 builds without the `fma`
//! target feature, such as the default `x86_64-unknown-linux-gnu` target.
//!
//! The detection uses CPUID and XGETBV directly, so it needs no `std`. When
//! the CPU and the operating system support AVX, AVX2 and FMA3, the kernel
//! runs its 8-lane body on [`F32x8Fma`] inside a
//! `#[target_feature(enable = "avx,avx2,fma")]` function. Every operation of
//! that type is the IEEE 754 operation rounded to nearest, and its `fma` is
//! VFMADD, rounded once, so it gives the bits of the portable backend's exact
//! emulation.

use core::ops::{Add, Div, Mul, Neg, Sub};
use core::sync::atomic::{AtomicU8, Ordering};

use core::arch::x86_64::{
    __cpuid_count, __m256, _CMP_GT_OQ, _CMP_UNORD_Q, _mm256_add_ps, _mm256_blendv_ps,
    _mm256_cmp_ps, _mm256_div_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_or_ps,
    _mm256_set1_ps, _mm256_sqrt_ps, _mm256_storeu_ps, _mm256_sub_ps, _mm256_xor_ps, _xgetbv,
    CpuidResult,
};

use crate::lanes::Lanes;

/// The name that `crate::backend` reports when the kernel uses this path.
pub(crate) const DISPATCH_BACKEND: &str = "x86-64 FMA3 and AVX2, selected at run time";

const UNKNOWN: u8 = 0;
const SUPPORTED: u8 = 1;
const UNSUPPORTED: u8 = 2;

/// The result of [`detect`], computed on first use. Two threads that race
/// on the first use both compute the same value, so relaxed ordering is
/// enough.
static FMA_AVX2: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Returns whether this CPU runs AVX, AVX2 and FMA3 instructions and the
/// operating system saves the YMM registers across context switches.
#[inline]
pub(crate) fn has_fma_avx2() -> bool {
    match FMA_AVX2.load(Ordering::Relaxed) {
        SUPPORTED => true,
        UNSUPPORTED => false,
        _ => {
            let supported = detect();
            let state = if supported { SUPPORTED } else { UNSUPPORTED };
            FMA_AVX2.store(state, Ordering::Relaxed);
            supported
        }
    }
}

#[cold]
fn detect() -> bool {
    // CPUID leaf 1, ECX: bit 12 FMA, bit 27 OSXSAVE, bit 28 AVX.
    const FMA: u32 = 1 << 12;
    const OSXSAVE: u32 = 1 << 27;
    const AVX: u32 = 1 << 28;
    // XCR0: bit 1 XMM state, bit 2 YMM state, both enabled by the OS.
    const XMM_YMM_STATE: u64 = 0b110;
    // CPUID leaf 7, subleaf 0, EBX: bit 5 AVX2.
    const AVX2: u32 = 1 << 5;

    let max_leaf = cpuid(0, 0).eax;
    if max_leaf < 7 {
        return false;
    }

    let ecx = cpuid(1, 0).ecx;
    if ecx & (FMA | OSXSAVE | AVX) != FMA | OSXSAVE | AVX {
        return false;
    }

    // SAFETY: CPUID reported OSXSAVE just above, so the OS has enabled
    // XSAVE and XGETBV exists and can be run in user mode.
    let xcr0 = unsafe { _xgetbv(0) };
    if xcr0 & XMM_YMM_STATE != XMM_YMM_STATE {
        return false;
    }

    cpuid(7, 0).ebx & AVX2 != 0
}

/// Runs CPUID for `leaf` and `subleaf`.
// `__cpuid_count` is an unsafe function in older Rust releases, including
// this crate's minimum 1.88, and a safe one in newer releases.
#[allow(unused_unsafe)]
fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    // SAFETY: every x86-64 CPU has the CPUID instruction, and a leaf beyond
    // the maximum only returns unrelated values, which the caller rules out
    // by checking the maximum leaf first.
    unsafe { __cpuid_count(leaf, subleaf) }
}

/// Eight `f32` lanes in an AVX register.
///
/// Its operations run AVX and FMA3 instructions. The kernel uses it only
/// inside a `#[target_feature(enable = "avx,avx2,fma")]` function that it
/// calls after [`has_fma_avx2`] returned true, and every method here is
/// `#[inline(always)]`, so it compiles into that function. No other code may
/// create a value of this type.
#[derive(Clone, Copy)]
pub(crate) struct F32x8Fma(__m256);

impl F32x8Fma {
    #[inline(always)]
    pub(crate) fn load(array: &[f32; 8]) -> Self {
        // SAFETY: the pointer comes from a reference to 8 `f32`, so it is
        // valid for a 32-byte unaligned read. The CPU has AVX: see the type's
        // documentation.
        F32x8Fma(unsafe { _mm256_loadu_ps(array.as_ptr()) })
    }

    #[inline(always)]
    pub(crate) fn store(self, array: &mut [f32; 8]) {
        // SAFETY: the pointer comes from a unique reference to 8 `f32`, so it
        // is valid for a 32-byte unaligned write. The CPU has AVX: see the
        // type's documentation.
        unsafe { _mm256_storeu_ps(array.as_mut_ptr(), self.0) }
    }
}

/// Implements a binary operator with one AVX instruction.
macro_rules! avx_operator {
    ($operator:ident, $method:ident, $intrinsic:ident) => {
        impl $operator for F32x8Fma {
            type Output = F32x8Fma;

            #[inline(always)]
            fn $method(self, other: F32x8Fma) -> F32x8Fma {
                // SAFETY: a value of this type exists only where the CPU has
                // AVX; see the type's documentation.
                F32x8Fma(unsafe { $intrinsic(self.0, other.0) })
            }
        }
    };
}

avx_operator!(Add, add, _mm256_add_ps);
avx_operator!(Sub, sub, _mm256_sub_ps);
avx_operator!(Mul, mul, _mm256_mul_ps);
avx_operator!(Div, div, _mm256_div_ps);

impl Neg for F32x8Fma {
    type Output = F32x8Fma;

    /// Flips the sign bit, as `-x` does for an `f32`, because `0 - x` would
    /// give +0 for +0.
    #[inline(always)]
    fn neg(self) -> F32x8Fma {
        // SAFETY: a value of this type exists only where the CPU has AVX;
        // see the type's documentation.
        F32x8Fma(unsafe { _mm256_xor_ps(self.0, _mm256_set1_ps(-0.0)) })
    }
}

impl Lanes for F32x8Fma {
    #[inline(always)]
    fn splat(x: f32) -> Self {
        // SAFETY: this is called only where the CPU has AVX; see the type's
        // documentation.
        F32x8Fma(unsafe { _mm256_set1_ps(x) })
    }

    #[inline(always)]
    fn fma(self, b: Self, c: Self) -> Self {
        // SAFETY: a value of this type exists only where the CPU has FMA3;
        // see the type's documentation.
        F32x8Fma(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        // SAFETY: a value of this type exists only where the CPU has AVX;
        // see the type's documentation.
        F32x8Fma(unsafe { _mm256_sqrt_ps(self.0) })
    }

    #[inline(always)]
    fn max_nan(self, other: Self) -> Self {
        // SAFETY: a value of this type exists only where the CPU has AVX;
        // see the type's documentation.
        unsafe {
            // The ordered comparison is false when either value is NaN, so
            // a NaN `other` is taken through the blend's false side.
            let self_nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, self.0);
            let greater = _mm256_cmp_ps::<_CMP_GT_OQ>(self.0, other.0);
            let take_self = _mm256_or_ps(self_nan, greater);
            F32x8Fma(_mm256_blendv_ps(other.0, self.0, take_self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{F32x8Fma, has_fma_avx2};
    use crate::lanes::Lanes;

    /// Inputs whose results depend on signed zeros, NaN, infinities,
    /// subnormals and a fused multiply-add's single rounding.
    const A: [f32; 8] = [
        0.0,
        -0.0,
        f32::NAN,
        f32::INFINITY,
        1e-40,
        1.0 + f32::EPSILON,
        -3.5,
        2.0,
    ];
    const B: [f32; 8] = [
        -0.0,
        -0.0,
        1.0,
        -1.0,
        1e-3,
        1.0 - f32::EPSILON,
        f32::NAN,
        0.5,
    ];
    const C: [f32; 8] = [0.0, 0.0, 2.0, f32::INFINITY, -0.0, -1.0, 7.0, -1.0];

    fn same_bits(got: f32, expected: f32) -> bool {
        got.to_bits() == expected.to_bits() || (got.is_nan() && expected.is_nan())
    }

    /// Runs `vector` on `F32x8Fma` and `scalar` on each lane as `f32`, and
    /// asserts that every lane has the same bits.
    #[target_feature(enable = "avx,avx2,fma")]
    fn check_lanes(
        name: &str,
        vector: fn(F32x8Fma, F32x8Fma, F32x8Fma) -> F32x8Fma,
        scalar: fn(f32, f32, f32) -> f32,
    ) {
        let mut out = [0.0f32; 8];
        vector(F32x8Fma::load(&A), F32x8Fma::load(&B), F32x8Fma::load(&C)).store(&mut out);
        for i in 0..8 {
            let expected = scalar(A[i], B[i], C[i]);
            assert!(
                same_bits(out[i], expected),
                "{name} lane {i}: ({:#010x}, {:#010x}, {:#010x}) gave {:#010x}, \
                 the f32 path {:#010x}",
                A[i].to_bits(),
                B[i].to_bits(),
                C[i].to_bits(),
                out[i].to_bits(),
                expected.to_bits()
            );
        }
    }

    #[test]
    fn avx_lanes_match_f32_lanes() {
        if !has_fma_avx2() {
            // NOTE: on a CPU without AVX2 and FMA3 this test checks nothing,
            // and the kernel runs the portable path there instead.
            return;
        }
        // SAFETY: `has_fma_avx2` returned true.
        unsafe {
            check_lanes("add", |a, b, _| a + b, |a, b, _| a + b);
            check_lanes("sub", |a, b, _| a - b, |a, b, _| a - b);
            check_lanes("mul", |a, b, _| a * b, |a, b, _| a * b);
            check_lanes("div", |a, b, _| a / b, |a, b, _| a / b);
            check_lanes("neg", |a, _, _| -a, |a, _, _| -a);
            check_lanes("fma", |a, b, c| a.fma(b, c), |a, b, c| a.fma(b, c));
            check_lanes("sqrt", |a, _, _| a.sqrt(), |a, _, _| a.sqrt());
            check_lanes("max_nan", |a, b, _| a.max_nan(b), |a, b, _| a.max_nan(b));
            check_lanes("splat", |_, _, _| F32x8Fma::splat(-0.0), |_, _, _| -0.0);
        }
    }
}
