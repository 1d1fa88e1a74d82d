//! The arithmetic that the update formula needs, for one `f32` and for
//! `wide::f32x8`, so that the formula is written once for both.

use core::ops::{Add, Div, Mul, Neg, Sub};

use wide::f32x8;

use crate::arch;

/// A value of one or more `f32` lanes. Every operation is the IEEE 754
/// operation on each lane, rounded to nearest, so one lane of `f32x8` and an
/// `f32` give the same bits.
pub(crate) trait Lanes:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    fn splat(x: f32) -> Self;

    /// `self * b + c`, rounded once.
    fn fma(self, b: Self, c: Self) -> Self;

    fn sqrt(self) -> Self;

    /// Returns the larger of two values, or NaN when either is NaN, as
    /// `torch.maximum` does.
    fn max_nan(self, other: Self) -> Self;
}

impl Lanes for f32 {
    #[inline(always)]
    fn splat(x: f32) -> Self {
        x
    }

    #[inline(always)]
    fn fma(self, b: Self, c: Self) -> Self {
        arch::fma(self, b, c)
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        arch::sqrt(self)
    }

    #[inline(always)]
    fn max_nan(self, other: Self) -> Self {
        if self.is_nan() || self > other {
            self
        } else if other.is_nan() {
            other
        } else {
            // Equal values, or `other` larger. For +0 and -0 this returns
            // `other`, as torch's CPU `maximum` does.
            other
        }
    }
}

impl Lanes for f32x8 {
    #[inline(always)]
    fn splat(x: f32) -> Self {
        f32x8::splat(x)
    }

    #[inline(always)]
    fn fma(self, b: Self, c: Self) -> Self {
        arch::fma8(self, b, c)
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        arch::sqrt8(self)
    }

    #[inline(always)]
    fn max_nan(self, other: Self) -> Self {
        let take_self = self.is_nan() | self.simd_gt(other);
        take_self.select(self, other)
    }
}
