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
//! Steps with the common flags avoid those moves: `run_plain` runs the whole
//! step as one `asm!` loop that keeps every value in FPU registers.
//!
//! The results are IEEE 754 only in the FPSCR's reset state, which
//! cortex-m-rt keeps: round to nearest and flush-to-zero off (FZ = 0). With
//! FZ set, subnormal inputs and results become zero, and the results differ
//! from torch's and from the other targets'.

use core::arch::asm;
use wide::f32x8;

use crate::StepScalars;

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

/// The plain loop's `asm!` block over `n` elements of `p`, `g`, `m` and `v`.
/// `$m_update` computes `m = m + w * d` from `d` in s10 into s8, and
/// `$v_update` computes `v = t2 + t1 * g` from `t1` in s11, `t2` in s12 and
/// `g` in s7 into s12; the two rounding modes differ only there.
///
/// Registers s0..s6 hold the constants: decay, lerp weight, 1 - beta2,
/// beta2, bias correction 2 root, negated step size and eps. The others hold
/// s7 `g`, s8 `m`, s9 `v`, s10 `d = g - m`, s11 `t1 = (1 - beta2) * g`,
/// s12 `t2 = v * beta2` and then the new `v`, s13 the root and then the
/// denominator, s14 `p`, and s15 the update's numerator and then the update.
macro_rules! plain_loop {
    ($scalars:expr, $p:expr, $g:expr, $m:expr, $v:expr, $n:expr,
     [$($m_update:literal),+], [$($v_update:literal),+]) => {
        // SAFETY: this module is compiled only for bare-metal hard-float Arm
        // targets, whose FPU (FPv4-SP or FPv5) has VFMA.F32, VSQRT.F32 and
        // VDIV.F32. The caller guarantees `plain_loop`'s safety conditions:
        // `n >= 1`, and four arrays of `n` elements, of which no written one
        // overlaps another. The loop runs `n` times and each iteration reads
        // and writes one `f32` of each array with post-increment. It reads
        // element i + 1 of `g`, `m` and `v` only when `n` counts down to a
        // value above 0, so it accesses exactly elements 0..n. `$scalars` is a live `&StepScalars`
        // and the constants are read at its fields' offsets. Every core and
        // FPU register that the block writes is declared as an output or
        // clobber, the flags are clobbered by default, and the stack is not
        // touched.
        unsafe {
            core::arch::asm!(
                "vldr s0, [{k}, #{decay}]",
                "vldr s1, [{k}, #{lerp_weight}]",
                "vldr s2, [{k}, #{one_minus_beta2}]",
                "vldr s3, [{k}, #{beta2}]",
                "vldr s4, [{k}, #{bias_correction2_sqrt}]",
                "vldr s5, [{k}, #{neg_step_size}]",
                "vldr s6, [{k}, #{eps}]",
                // Element 0's v = fma(omb2 * g, g, v * beta2). The loop
                // computes each later element's v during the second VDIV of
                // the element before it.
                "vldmia {g}!, {{s7}}",
                "vldr s8, [{m}]",
                "vldr s9, [{v}]",
                "vmul.f32 s11, s2, s7",
                "vmul.f32 s12, s9, s3",
                $($v_update,)+
                "2:",
                // The root takes 14 cycles, while m and p * decay are
                // computed and v and m are stored.
                "vsqrt.f32 s13, s12",
                "vsub.f32 s10, s7, s8",
                $($m_update,)+
                "vldr s14, [{p}]",
                "vstmia {v}!, {{s12}}",
                "vmul.f32 s14, s14, s0",
                "vmul.f32 s15, s5, s8",
                "vstmia {m}!, {{s8}}",
                "subs {n}, {n}, #1",
                // den = sqrt(v) / bc2 + eps; update = (neg_step * m) / den.
                "vdiv.f32 s13, s13, s4",
                "vadd.f32 s13, s13, s6",
                "vdiv.f32 s15, s15, s13",
                "beq 3f",
                // The next element's v, while the second VDIV runs. The
                // pointers of g, m and v already point at that element.
                "vldmia {g}!, {{s7}}",
                "vldr s8, [{m}]",
                "vldr s9, [{v}]",
                "vmul.f32 s11, s2, s7",
                "vmul.f32 s12, s9, s3",
                $($v_update,)+
                // p = p * decay + update.
                "vadd.f32 s14, s14, s15",
                "vstmia {p}!, {{s14}}",
                "b 2b",
                "3:",
                "vadd.f32 s14, s14, s15",
                "vstmia {p}!, {{s14}}",
                k = in(reg) core::ptr::from_ref::<StepScalars>($scalars),
                decay = const core::mem::offset_of!(StepScalars, decay),
                lerp_weight = const core::mem::offset_of!(StepScalars, lerp_weight),
                one_minus_beta2 = const core::mem::offset_of!(StepScalars, one_minus_beta2),
                beta2 = const core::mem::offset_of!(StepScalars, beta2),
                bias_correction2_sqrt =
                    const core::mem::offset_of!(StepScalars, bias_correction2_sqrt),
                neg_step_size = const core::mem::offset_of!(StepScalars, neg_step_size),
                eps = const core::mem::offset_of!(StepScalars, eps),
                p = inout(reg) $p => _,
                g = inout(reg) $g => _,
                m = inout(reg) $m => _,
                v = inout(reg) $v => _,
                n = inout(reg) $n => _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                options(nostack),
            );
        }
    };
}

/// Runs the whole step over one tensor with one `asm!` loop, for steps with
/// the common flags, and returns whether it did. The caller checks the
/// flags: no `maximize`, no coupled L2 decay, `|lerp_weight| < 0.5` and no
/// AMSGrad.
///
/// The loop gives the generic `update`'s bits (NaN payloads aside) because
/// it runs the same IEEE operations on the same operands in the same order.
/// Only independent instructions are moved: m, p * decay and the stores run
/// during the 14 cycles of VSQRT.F32, and the next element's loads and v
/// during the second VDIV.F32.
///
/// Returns false, writing nothing, when the slices differ in length.
#[inline(always)]
pub(crate) fn run_plain<const FUSED: bool>(
    scalars: &StepScalars,
    param: &mut [f32],
    grad: &[f32],
    exp_avg: &mut [f32],
    exp_avg_sq: &mut [f32],
) -> bool {
    let n = param.len();
    if grad.len() != n || exp_avg.len() != n || exp_avg_sq.len() != n {
        return false;
    }
    if n > 0 {
        // SAFETY: `n >= 1`, and the four pointers come from slices of exactly
        // `n` elements each. Three are distinct `&mut` borrows and `grad` is
        // a shared borrow that is only read, so none overlaps another that is
        // written.
        unsafe {
            plain_loop::<FUSED>(
                scalars,
                param.as_mut_ptr(),
                grad.as_ptr(),
                exp_avg.as_mut_ptr(),
                exp_avg_sq.as_mut_ptr(),
                n,
            );
        }
    }
    true
}

/// The loop of [`run_plain`]: a function of its own (`inline(never)`), so
/// that `.ci/size.sh` can find, measure and time it by its symbol.
///
/// # Safety
///
/// `n >= 1`. `param`, `exp_avg` and `exp_avg_sq` must be valid for reads
/// and writes of `n` `f32`s each, and `grad` for reads of `n`. No array that
/// the loop writes may overlap another array.
#[inline(never)]
unsafe fn plain_loop<const FUSED: bool>(
    scalars: &StepScalars,
    param: *mut f32,
    grad: *const f32,
    exp_avg: *mut f32,
    exp_avg_sq: *mut f32,
    n: usize,
) {
    if FUSED {
        plain_loop!(
            scalars,
            param,
            grad,
            exp_avg,
            exp_avg_sq,
            n,
            ["vfma.f32 s8, s1, s10"],
            ["vfma.f32 s12, s11, s7"]
        );
    } else {
        plain_loop!(
            scalars,
            param,
            grad,
            exp_avg,
            exp_avg_sq,
            n,
            ["vmul.f32 s10, s1, s10", "vadd.f32 s8, s8, s10"],
            ["vmul.f32 s11, s11, s7", "vadd.f32 s12, s12, s11"]
        );
    }
}
