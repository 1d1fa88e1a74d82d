//! A fused multiply-add for targets without one, computed exactly with `f64`
//! arithmetic and no branches, so that 8 lanes vectorise.
//!
//! The product of two `f32` values is exact in `f64` (24 + 24 bits < 53
//! bits, and the exponent range of `f64` holds every product, subnormals
//! included). The sum is then computed with round-to-odd: round to nearest,
//! recover the rounding error exactly with Knuth's TwoSum, and where the sum
//! was inexact and its last bit is even, step one unit towards the exact
//! value. A value rounded to odd with at least two more bits than the target
//! format rounds to nearest without double-rounding error (Boldo and
//! Melquiond, "Emulation of FMA and correctly-rounded sums: proved algorithms
//! using rounding to odd", IEEE Transactions on Computers, 2008), and
//! 53 >= 24 + 2.

use wide::f32x8;

/// `a * b + c` rounded once to `f32`.
#[inline(always)]
pub(crate) fn fma(a: f32, b: f32, c: f32) -> f32 {
    let product = a as f64 * b as f64;
    let addend = c as f64;
    let sum = product + addend;

    // TwoSum: `error` is the exact rounding error of `sum`; it is NaN when
    // `sum` is infinite or NaN, and then no adjustment is made.
    let addend_part = sum - product;
    let error = (product - (sum - addend_part)) + (addend - addend_part);

    // Round to odd. `sum` is not 0 when `error` is not 0.
    let bits = sum.to_bits();
    let even = bits & 1 == 0;
    let away_from_zero = (error > 0.0 && sum > 0.0) || (error < 0.0 && sum < 0.0);
    let towards_zero = (error > 0.0 && sum < 0.0) || (error < 0.0 && sum > 0.0);
    let step = (even && away_from_zero) as u64;
    let back = (even && towards_zero) as u64;
    let odd = f64::from_bits(bits.wrapping_add(step).wrapping_sub(back));

    odd as f32
}

/// Eight lanes of [`fma`].
#[inline(always)]
pub(crate) fn fma8(a: f32x8, b: f32x8, c: f32x8) -> f32x8 {
    let (a, b, c) = (a.to_array(), b.to_array(), c.to_array());
    let mut out = [0.0f32; 8];
    for i in 0..8 {
        out[i] = fma(a[i], b[i], c[i]);
    }
    f32x8::new(out)
}
