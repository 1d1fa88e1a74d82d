//! Target-specific arithmetic: the only module that names the instructions
//! a target has.
//!
//! Every backend provides the same items with the same results:
//!
//! - `fma` and `fma8`: a fused multiply-add, rounded once (IEEE 754
//!   `fusedMultiplyAdd`), for one `f32` and for 8 lanes.
//! - `sqrt` and `sqrt8`: the correctly rounded square root.
//! - `SIMD`: whether the kernel runs its 8-lane body. Targets without vector
//!   registers run the one-lane loop alone, which gives the same bits with
//!   less code.
//! - `BACKEND`: a name for the chosen backend, for reports.
//! - `run_plain`: the whole step for the common flags as one loop of the
//!   backend's own. It returns false, writing nothing, where the backend has
//!   no such loop, which is everywhere but on Cortex-M.
//!
//! `wide::f32x8::mul_add` is not used outside the FMA backends because it
//! falls back to a multiply and an add, rounded twice, when the `fma` target
//! feature is off.
//!
//! On x86-64 without the `fma` target feature, `x86_dispatch` checks the CPU
//! at run time, and the kernel runs its 8-lane body with AVX2 and FMA3 where
//! they are present. The portable backend still provides the items above,
//! and `apply_scalar` always uses them. Building with
//! `RUSTFLAGS="--cfg adamw_no_runtime_dispatch"` leaves the check out, so
//! that tests run the portable backend on any x86-64 CPU.

// The portable backend uses the emulation; the unit tests check it on every
// target against `libm::fmaf`.
#[cfg_attr(
    any(
        all(
            any(target_arch = "x86_64", target_arch = "x86"),
            target_feature = "fma"
        ),
        all(target_arch = "aarch64", target_feature = "neon"),
        all(target_arch = "arm", target_abi = "eabihf", target_os = "none"),
    ),
    allow(dead_code)
)]
pub(crate) mod exact;

#[cfg(all(
    any(target_arch = "x86_64", target_arch = "x86"),
    target_feature = "fma"
))]
mod x86_fma;
#[cfg(all(
    any(target_arch = "x86_64", target_arch = "x86"),
    target_feature = "fma"
))]
pub(crate) use x86_fma::*;

#[cfg(all(
    target_arch = "x86_64",
    not(target_feature = "fma"),
    not(adamw_no_runtime_dispatch)
))]
mod x86_dispatch;
#[cfg(all(
    target_arch = "x86_64",
    not(target_feature = "fma"),
    not(adamw_no_runtime_dispatch)
))]
pub(crate) use x86_dispatch::{F32x8Fma, has_fma_avx2};

/// Returns the name of the backend that `StepScalars::apply` uses on this
/// CPU: `BACKEND`, or the run-time FMA3 path where the kernel selects it.
pub(crate) fn backend() -> &'static str {
    #[cfg(all(
        target_arch = "x86_64",
        not(target_feature = "fma"),
        not(adamw_no_runtime_dispatch)
    ))]
    if has_fma_avx2() {
        return x86_dispatch::DISPATCH_BACKEND;
    }
    BACKEND
}

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub(crate) use aarch64::*;

// Bare-metal hard-float Arm targets: thumbv7em-none-eabihf (FPv4-SP) and
// thumbv8m.main-none-eabihf (FPv5-SP), both with VFMA.F32 and VSQRT.F32.
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
mod cortex_m;
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
pub(crate) use cortex_m::*;

#[cfg(not(any(
    all(
        any(target_arch = "x86_64", target_arch = "x86"),
        target_feature = "fma"
    ),
    all(target_arch = "aarch64", target_feature = "neon"),
    all(target_arch = "arm", target_abi = "eabihf", target_os = "none"),
)))]
mod portable;
#[cfg(not(any(
    all(
        any(target_arch = "x86_64", target_arch = "x86"),
        target_feature = "fma"
    ),
    all(target_arch = "aarch64", target_feature = "neon"),
    all(target_arch = "arm", target_abi = "eabihf", target_os = "none"),
)))]
pub(crate) use portable::*;
