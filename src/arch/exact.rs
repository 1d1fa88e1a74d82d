//! A fused multiply-add for targets without one, computed exactly with `f64`
//! arithmetic and no branches, so that 8 lanes vectorise.
//!
//! The product of two `f32` values is exact in `f64` (24 + 24 bits < 53
//! bits, and the exponent range of `f64` contains every product, subnormals
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

    // Round to odd: where `sum` is inexact, set its last bit, after first
    // stepping one unit towards zero if the exact value is nearer zero. For
    // an odd `sum` that step and the set bit cancel; for an even one they
    // give the odd neighbour on the exact value's side.
    //
    // `error * sum` is negative when the exact value is nearer zero than
    // `sum`, positive when it is farther, 0 when `sum` is exact and NaN when
    // `sum` is not finite. It cannot underflow to 0: every value here is a
    // multiple of 2^-298, the unit of a product of two `f32` subnormals, so a
    // nonzero `error` is at least 2^-298 and `sum` is then at least 2^-245.
    let direction = error * sum;
    let towards_zero = (direction < 0.0) as u64;
    // Unlike `direction != 0.0`, this is false for NaN.
    let inexact = (direction.abs() > 0.0) as u64;
    let odd = f64::from_bits(sum.to_bits().wrapping_sub(towards_zero) | inexact);

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

#[cfg(test)]
mod tests {
    use super::{fma, fma8};
    use wide::f32x8;

    /// Multiplies and adds in `f64` and rounds twice: the double-rounding
    /// mistake that round-to-odd avoids.
    fn fma_rounded_twice(a: f32, b: f32, c: f32) -> f32 {
        (a as f64 * b as f64 + c as f64) as f32
    }

    fn assert_same_bits(got: f32, expected: f32, inputs: (f32, f32, f32)) {
        let same = got.to_bits() == expected.to_bits() || (got.is_nan() && expected.is_nan());
        assert!(
            same,
            "fma({:#010x}, {:#010x}, {:#010x}) = {:#010x}, expected {:#010x}",
            inputs.0.to_bits(),
            inputs.1.to_bits(),
            inputs.2.to_bits(),
            got.to_bits(),
            expected.to_bits()
        );
    }

    #[test]
    fn fma_just_below_midpoint_rounds_down() {
        // a * b = 2^-24 - 2^-70 and c = 1 + 2^-23, so the exact sum lies
        // 2^-70 below the midpoint 1 + 2^-23 + 2^-24 of two f32 neighbours.
        // Rounded once it gives the lower neighbour 1 + 2^-23; rounded to f64
        // first it lands on the midpoint, which ties to the even 1 + 2^-22.
        let a = f32::from_bits(0x3f80_0001); // 1 + 2^-23
        let b = f32::from_bits(0x337f_fffe); // 2^-24 * (1 - 2^-23)
        let c = f32::from_bits(0x3f80_0001); // 1 + 2^-23

        assert_same_bits(fma(a, b, c), f32::from_bits(0x3f80_0001), (a, b, c));
        assert_eq!(fma_rounded_twice(a, b, c).to_bits(), 0x3f80_0002);
    }

    #[test]
    fn fma_special_values_follow_ieee() {
        let cases = [
            (f32::INFINITY, 0.0, 1.0),
            (f32::INFINITY, 2.0, f32::NEG_INFINITY),
            (f32::NAN, 1.0, 1.0),
            (f32::MAX, 2.0, -f32::MAX),
            (f32::MAX, f32::MAX, 0.0),
            (-0.0, 0.0, -0.0),
            (0.0, -1.0, 0.0),
            (1e-30, 1e-30, -0.0),
            (f32::from_bits(1), 0.5, 0.0),
            (f32::from_bits(3), 0.5, 0.0),
            (f32::MIN_POSITIVE, -0.5, f32::from_bits(1)),
        ];
        for (a, b, c) in cases {
            assert_same_bits(fma(a, b, c), libm::fmaf(a, b, c), (a, b, c));
        }
    }

    #[test]
    fn fma_matches_libm_on_random_bits() {
        // libm::fmaf is correctly rounded (an FMA instruction where the CPU
        // has one, an exact software routine elsewhere).
        let mut state = 0x9e37_79b9u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for _ in 0..200_000 {
            // Exponents near each other make cancellation and ties likely.
            let a = f32::from_bits(next());
            let b = f32::from_bits((next() & 0x807f_ffff) | 0x3f00_0000);
            let c = f32::from_bits((next() & 0x80ff_ffff) | (a.to_bits() & 0x7f00_0000));
            assert_same_bits(fma(a, b, c), libm::fmaf(a, b, c), (a, b, c));
        }
    }

    #[test]
    fn fma8_matches_one_lane_fma() {
        let a = [
            1.5f32,
            -2.0,
            3.25,
            1e-40,
            f32::NAN,
            f32::INFINITY,
            0.1,
            -0.0,
        ];
        let b = [0.3f32, 7.0, -1e20, 1e-3, 1.0, 0.0, 0.7, 0.0];
        let c = [1.0f32, -14.0, 3e20, 0.0, 2.0, 1.0, -0.07, -0.0];
        let lanes = fma8(f32x8::new(a), f32x8::new(b), f32x8::new(c)).to_array();
        for i in 0..8 {
            assert_same_bits(lanes[i], fma(a[i], b[i], c[i]), (a[i], b[i], c[i]));
        }
    }
}
