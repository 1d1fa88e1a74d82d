//! One AdamW optimizer step over `f32` slices, in place, with the same
//! results as PyTorch's `torch.optim.AdamW`, for microcontrollers, edge
//! devices and desktop SIMD.
//!
//! # Example
//!
//! ```
//! use adamw::{Hyperparams, StepScalars};
//!
//! let hyper = Hyperparams { lr: 1e-2, ..Hyperparams::DEFAULT };
//! let mut param = [0.5f32; 20];
//! let (mut exp_avg, mut exp_avg_sq) = ([0.0f32; 20], [0.0f32; 20]);
//!
//! for t in 1..=3 {
//!     let grad = [0.1f32; 20];
//!     StepScalars::new(&hyper, t)?.apply(&mut param, &grad, &mut exp_avg, &mut exp_avg_sq, None)?;
//! }
//! assert!(param[0] < 0.5);
//! # Ok::<(), adamw::Error>(())
//! ```
//!
//! # Guarantees
//!
//! - `#![no_std]`, no allocation, no panic path in the step functions.
//! - Every input is checked before the first write: an `Err` means that no
//!   buffer changed.
//! - An element's result does not depend on where it sits in its slice: the
//!   8-lane body and the one-lane tail run one formula in one order.
//! - The results are the same bits on every supported target (see the
//!   README for the list and the digest that proves it).
//! - Both promises cover every value but NaN, which stays NaN: the payload
//!   and sign of a NaN result may differ between lanes, targets and builds,
//!   because Rust leaves open which input NaN an operation passes on.
//!
//! # Numerics contract
//!
//! The scalars of step `t` are computed in `f64` from the `f64`
//! hyperparameters and rounded to `f32` once ([`StepScalars`]). Each element
//! then runs torch's single-tensor CPU path (`foreach=False, fused=False`):
//!
//! 1. with `maximize`, `g = -g`; with [`WeightDecay::CoupledL2`],
//!    `g = weight_decay * p + g`
//! 2. `p = p * f32(1 - lr * weight_decay)`
//! 3. `w = f32(1 - beta1)`; `m = fma(w, g - m, m)` when `|w| < 0.5`, else
//!    `m = fma(w - 1, g - m, g)` (torch's lerp)
//! 4. `v = fma(f32(1 - beta2) * g, g, v * f32(beta2))`
//! 5. with `amsgrad`, `max_v = max(max_v, v)` (NaN-propagating) replaces `v`
//!    below; `denom = sqrt(v) / f32(sqrt(1 - beta2^t)) + f32(eps)`
//! 6. `p = p + (f32(-lr / (1 - beta1^t)) * m) / denom`
//!
//! With [`Rounding::Fused`] (the default) each `fma` is rounded once, as
//! torch computes on AVX2 and AVX-512 CPUs. With [`Rounding::Unfused`] it is
//! a multiply and an add, each rounded, as torch's generic CPU path computes.
//! Square roots are correctly rounded.
//!
//! Measured against torch 2.15.0 (MKL 2024.2) on x86-64 with the golden
//! vectors committed under `tests/golden/`:
//!
//! - `m`, `v` and `max_v` match torch bit for bit. One exception: torch's
//!   `maximum(-0.0, +0.0)` gives `+0.0` in its vector loop and `-0.0` in its
//!   scalar remainder, and this crate gives `+0.0` everywhere.
//! - `p` matches bit for bit for 17,445 of 17,468 golden parameters in each
//!   mode. torch takes the `f32` square root from MKL's `vmsSqrt`, which is
//!   one unit in the last place (ulp) off the correctly rounded root for
//!   about one input in five. Each of the other 23 parameters is exactly what
//!   step 6 gives with the root one ulp up or down, and differs from this
//!   crate's by one or two ulp.
//! - Over 1000-step trajectories, the largest parameter difference is 3.9e-6
//!   (fused) and 5.8e-6 (unfused) relative to `max(|p|, lr)`, 2.4e-7
//!   absolute.
//!
//! torch keeps its step counter in an `f32` tensor, which stops counting at
//! 2^24; this crate takes `t` as a `u64` and counts on.
//!
//! # Targets
//!
//! The `arch` module picks the instructions at compile time. It uses FMA3 on
//! x86 with the `fma` target feature (build with `-C target-cpu=x86-64-v3`
//! or `native`), NEON on aarch64, and VFMA.F32 and VSQRT.F32 on Cortex-M4F,
//! M7 and M33. Everywhere else it uses an exact software fused multiply-add. A
//! fast-math flag or `-C target-feature=+fma` on a CPU without FMA breaks
//! these guarantees.
//!
//! x86-64 builds without the `fma` target feature, such as the default
//! `x86_64-unknown-linux-gnu` target, check the CPU once at run time with
//! CPUID. Where it has AVX2 and FMA3, the step runs its 8-lane body with
//! those instructions, with the same bits as the software fused
//! multiply-add; [`backend`] names the path in use. Building with
//! `RUSTFLAGS="--cfg adamw_no_runtime_dispatch"` turns the check off, so
//! that the software path can be tested on any x86-64 CPU.
//!
//! # Features
//!
//! None is on by default, and without them the crate is `no_std` and
//! allocates nothing.
//!
//! - `std`: `StepScalars::apply_parallel`, which splits one tensor across
//!   scoped threads with bit-identical results.
//! - `ffi`: the C ABI in the `ffi` module, declared in `include/adamw.h`.
//! - `ffi-panic-handler`: `ffi` plus the panic handler that a static or
//!   dynamic library built from this crate alone needs.

#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod arch;
pub mod checkpoint;
pub mod clip;
mod crc32;
mod error;
// `ffi` feature: the C ABI declared in include/adamw.h.
#[cfg(feature = "ffi")]
pub mod ffi;
mod hyper;
mod kernel;
mod lanes;
mod optimizer;
pub mod schedule;
// `std` feature: `StepScalars::apply_parallel`, which splits a tensor across threads.
#[cfg(feature = "std")]
mod parallel;
mod scalars;
mod step;

pub use checkpoint::{CHECKPOINT_VERSION, CheckpointError, Contents};
pub use clip::{
    ClipError, clip_coefficient, clip_grad_norm, clip_grads_with_norm, l2_norm, total_norm,
};
pub use error::Error;
pub use hyper::{Hyperparams, Rounding, WeightDecay};
pub use optimizer::{Optimizer, OptimizerError, StepOutcome, TensorBuffers};
pub use scalars::StepScalars;
pub use schedule::{
    CosineAnnealingLr, LinearLr, LrScheduler, Schedule, ScheduleError, SequentialLr,
};
pub use step::{adamw_step, step};

// Compiles the README's Rust examples as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The name of the arithmetic backend compiled for this target, for reports.
/// On x86-64 without the `fma` target feature the step may use FMA3 chosen
/// at run time instead; [`backend`] reports the path in use.
pub const BACKEND: &str = arch::BACKEND;

/// Returns the name of the arithmetic backend that [`StepScalars::apply`]
/// uses on this CPU, for reports: [`BACKEND`], or the AVX2 and FMA3 path
/// where an x86-64 build without the `fma` target feature selects it at run
/// time.
pub fn backend() -> &'static str {
    arch::backend()
}
