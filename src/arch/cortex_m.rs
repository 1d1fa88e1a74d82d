//! Cortex-M4F, M7 and M33 (`thumbv7em-none-eabihf`,
//! `thumbv8m.main-none-eabihf`): VFMA.F32 and VSQRT.F32.
//!
//! `libm::sqrtf` is a software routine on these targets, so the instructions
//! are written out. Stable Rust rejects the `sreg` operand class here (it
//! requires the `vfp2` target feature, which these single-precision targets
//! do not enable), so the operands travel through core registers and the FPU
//! scratch registers are named as clobbers. So `fma` costs eight VMOVs
//! between core and FPU registers on top of VFMA.F32 (three operands in and
//! the result out, on each side of the block), and `sqrt` costs four.
//!
//! The results are IEEE 754 only in the FPSCR's reset state, which
//! cortex-m-rt keeps: round to nearest and flush-to-zero off (FZ = 0). With
//! FZ set, subnormal inputs and results become zero, and the results differ
//! from torch's and from the other targets'.

use core::arch::asm;
use wide::f32x8;

pub(crate) const SIMD: bool = false;
pub(crate) const BACKEND: &str = "Cortex-M FPU (VFMA.F32, VSQRT.F32)";

#[inline(always)]
pub(crate) fn fma(a: f32, b: f32, c: f32) -> f32 {
    let out: u32;
    // SAFETY: this module is compiled only for bare-metal hard-float Arm
    // targets, whose FPU (FPv4-SP or FPv5) has VFMA.F32. The block reads and
    // writes only the named registers, touches no memory and leaves the FPSCR
    // flags alone apart from the IEEE exception bits.
    unsafe {
        asm!(
            "vmov s0, {a}",
            "vmov s1, {b}",
            "vmov s2, {c}",
            "vfma.f32 s2, s0, s1",
            "vmov {out}, s2",
            a = in(reg) a.to_bits(),
            b = in(reg) b.to_bits(),
            c = in(reg) c.to_bits(),
            out = lateout(reg) out,
            out("s0") _,
            out("s1") _,
            out("s2") _,
            options(pure, nomem, nostack),
        );
    }
    f32::from_bits(out)
}

#[inline(always)]
pub(crate) fn sqrt(x: f32) -> f32 {
    let out: u32;
    // SAFETY: as in `fma`: VSQRT.F32 exists on these FPUs, and the block
    // touches only the named registers.
    unsafe {
        asm!(
            "vmov s0, {x}",
            "vsqrt.f32 s0, s0",
            "vmov {out}, s0",
            x = in(reg) x.to_bits(),
            out = lateout(reg) out,
            out("s0") _,
            options(pure, nomem, nostack),
        );
    }
    f32::from_bits(out)
}

// The kernel does not call the 8-lane functions here (`SIMD` is false); they
// exist so that every backend has the same items.
#[inline(always)]
pub(crate) fn fma8(a: f32x8, b: f32x8, c: f32x8) -> f32x8 {
    let (a, b, c) = (a.to_array(), b.to_array(), c.to_array());
    f32x8::new(core::array::from_fn(|i| fma(a[i], b[i], c[i])))
}

#[inline(always)]
pub(crate) fn sqrt8(x: f32x8) -> f32x8 {
    let x = x.to_array();
    f32x8::new(core::array::from_fn(|i| sqrt(x[i])))
}
