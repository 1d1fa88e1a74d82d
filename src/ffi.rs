//! The C ABI (`ffi` feature), declared in `include/adamw.h`.
//!
//! A thin layer over the safe API: each function checks its pointers, length
//! and hyperparameters, builds slices and calls [`StepScalars`]. Every check
//! runs before the first write, so a negative return code means that no
//! buffer and no output struct changed. No input makes a function panic or
//! abort. The only inputs that are not checked, because C gives no way to
//! check them, are pointers to memory other than what `# Safety` requires.
//!
//! The header is generated from this file with cbindgen (`cbindgen.toml`).
//! The documentation comments of the items are written for C readers
//! because they are copied into the header.

use core::ffi::c_char;
use core::ptr;

use crate::{Error, Hyperparams, Rounding, StepScalars, WeightDecay};

// With `ffi-panic-handler` the crate is built as a C library on its own, and
// rustc requires a panic handler in a staticlib or cdylib. Hosted targets
// take std's. Bare-metal targets get the one below.
#[cfg(all(feature = "ffi-panic-handler", not(target_os = "none")))]
extern crate std;

/// The panic handler of the bare-metal C library.
///
/// No function of the C ABI has a panic path: `.ci/c_abi.sh` links the
/// Cortex-M4 example with `--gc-sections` and fails when this handler is
/// still in the image. Should a later change add one, the handler traps with
/// a permanently undefined instruction on Arm, so the firmware's fault
/// handler runs, and spins elsewhere.
#[cfg(all(feature = "ffi-panic-handler", target_os = "none"))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    #[cfg(target_arch = "arm")]
    // SAFETY: `udf` only raises an UsageFault or HardFault exception. It
    // reads and writes no memory and never returns, as `noreturn` states.
    unsafe {
        core::arch::asm!("udf #0", options(noreturn, nomem, nostack))
    }
    #[cfg(not(target_arch = "arm"))]
    loop {
        core::hint::spin_loop();
    }
}

/// Success.
pub const ADAMW_OK: i32 = 0;
/// `param` is NULL and `len > 0`.
pub const ADAMW_ERR_NULL_PARAM: i32 = -1;
/// `grad` is NULL and `len > 0`.
pub const ADAMW_ERR_NULL_GRAD: i32 = -2;
/// `exp_avg` is NULL and `len > 0`.
pub const ADAMW_ERR_NULL_EXP_AVG: i32 = -3;
/// `exp_avg_sq` is NULL and `len > 0`.
pub const ADAMW_ERR_NULL_EXP_AVG_SQ: i32 = -4;
/// `amsgrad` is on, `max_exp_avg_sq` is NULL and `len > 0`.
pub const ADAMW_ERR_NULL_MAX_EXP_AVG_SQ: i32 = -5;
/// The `config` pointer is NULL.
pub const ADAMW_ERR_NULL_CONFIG: i32 = -6;
/// The `scalars` pointer is NULL.
pub const ADAMW_ERR_NULL_SCALARS: i32 = -7;
/// The `out` pointer is NULL.
pub const ADAMW_ERR_NULL_OUT: i32 = -8;
/// `amsgrad` is off but `max_exp_avg_sq` is not NULL. Pass NULL, or turn
/// `amsgrad` on. This check does not depend on `len`.
pub const ADAMW_ERR_UNEXPECTED_MAX_EXP_AVG_SQ: i32 = -9;
/// `param` is not aligned to 4 bytes (`_Alignof(float)`) and `len > 0`.
pub const ADAMW_ERR_MISALIGNED_PARAM: i32 = -11;
/// `grad` is not aligned to 4 bytes and `len > 0`.
pub const ADAMW_ERR_MISALIGNED_GRAD: i32 = -12;
/// `exp_avg` is not aligned to 4 bytes and `len > 0`.
pub const ADAMW_ERR_MISALIGNED_EXP_AVG: i32 = -13;
/// `exp_avg_sq` is not aligned to 4 bytes and `len > 0`.
pub const ADAMW_ERR_MISALIGNED_EXP_AVG_SQ: i32 = -14;
/// `max_exp_avg_sq` is not aligned to 4 bytes, `amsgrad` is on and `len > 0`.
pub const ADAMW_ERR_MISALIGNED_MAX_EXP_AVG_SQ: i32 = -15;
/// `len * sizeof(float)` exceeds `PTRDIFF_MAX`, or a buffer of `len` floats
/// would run past the end of the address space.
pub const ADAMW_ERR_LEN_TOO_LARGE: i32 = -20;
/// Two of the buffers share at least one byte: see "Overlap" at the top of
/// this header.
pub const ADAMW_ERR_OVERLAP: i32 = -21;
/// `step` is 0. Steps count from 1, as in torch, because the bias
/// corrections `1 - beta^step` are 0 at step 0.
pub const ADAMW_ERR_STEP_ZERO: i32 = -30;
/// `lr` is negative, NaN or infinite. Allowed: finite and `>= 0`.
pub const ADAMW_ERR_INVALID_LR: i32 = -31;
/// `beta1` is outside `[0, 1)` or NaN.
pub const ADAMW_ERR_INVALID_BETA1: i32 = -32;
/// `beta2` is outside `[0, 1)` or NaN.
pub const ADAMW_ERR_INVALID_BETA2: i32 = -33;
/// `eps` is negative, NaN or infinite. Allowed: finite and `>= 0`.
pub const ADAMW_ERR_INVALID_EPS: i32 = -34;
/// `weight_decay` is negative, NaN or infinite. Allowed: finite and `>= 0`.
pub const ADAMW_ERR_INVALID_WEIGHT_DECAY: i32 = -35;
/// The `amsgrad` field is neither 0 nor 1.
pub const ADAMW_ERR_INVALID_AMSGRAD: i32 = -36;
/// The `maximize` field is neither 0 nor 1.
pub const ADAMW_ERR_INVALID_MAXIMIZE: i32 = -37;
/// The `rounding` field is neither `ADAMW_ROUNDING_FUSED` nor
/// `ADAMW_ROUNDING_UNFUSED`.
pub const ADAMW_ERR_INVALID_ROUNDING: i32 = -38;
/// The `decay_mode` field is neither `ADAMW_DECAY_DECOUPLED` nor
/// `ADAMW_DECAY_COUPLED_L2`.
pub const ADAMW_ERR_INVALID_DECAY_MODE: i32 = -39;
/// The Rust core rejected an input that the C layer had accepted. This
/// version never returns it; it would mean that the two layers disagree.
pub const ADAMW_ERR_INTERNAL: i32 = -100;

/// `rounding`: each multiply-add of the moment updates rounded once, as torch
/// computes on CPUs with AVX2 or AVX-512. The default.
pub const ADAMW_ROUNDING_FUSED: u8 = 0;
/// `rounding`: a multiply and an add, each rounded, as torch's generic CPU
/// path computes (`ATEN_CPU_CAPABILITY=default`).
pub const ADAMW_ROUNDING_UNFUSED: u8 = 1;
/// `decay_mode`: AdamW, `param *= 1 - lr * weight_decay` before the moments
/// are updated, as `torch.optim.AdamW` does. The default.
pub const ADAMW_DECAY_DECOUPLED: u8 = 0;
/// `decay_mode`: Adam with L2 regularisation, `grad += weight_decay * param`
/// before the moments, as `torch.optim.Adam` does.
pub const ADAMW_DECAY_COUPLED_L2: u8 = 1;

/// The hyperparameters of one optimizer, with torch's names.
///
/// Start from `adamw_config_default()` and change the fields you need. The
/// flag and mode fields are bytes rather than `bool` and C enums so that any
/// value a C program stores can be checked: a value other than those listed
/// is rejected with its own error code.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Learning rate, finite and `>= 0`. Default 1e-3.
    pub lr: f64,
    /// Decay of the first moment, `0 <= beta1 < 1`. Default 0.9.
    pub beta1: f64,
    /// Decay of the second moment, `0 <= beta2 < 1`. Default 0.999.
    pub beta2: f64,
    /// Added to the denominator, finite and `>= 0`. Default 1e-8.
    pub eps: f64,
    /// Weight decay, finite and `>= 0`. Default 1e-2.
    pub weight_decay: f64,
    /// 1: use the running maximum `max_exp_avg_sq` (AMSGrad); 0: off. Default 0.
    pub amsgrad: u8,
    /// 1: ascend the objective instead of descending it; 0: off. Default 0.
    pub maximize: u8,
    /// `ADAMW_ROUNDING_FUSED` (default) or `ADAMW_ROUNDING_UNFUSED`.
    pub rounding: u8,
    /// `ADAMW_DECAY_DECOUPLED` (default) or `ADAMW_DECAY_COUPLED_L2`.
    pub decay_mode: u8,
}

/// The per-step scalars that `adamw_prepare` computes once and
/// `adamw_apply` applies to any number of tensors.
///
/// Fill it only with `adamw_prepare`. The fields are public so that C can
/// allocate the struct, and `adamw_apply` checks the flag and mode bytes
/// again. Changed float fields give a different, but still panic-free, step.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scalars {
    /// `(float)(1 - lr * weight_decay)` with decoupled decay, else 1.
    pub decay: f32,
    /// `(float)weight_decay` with coupled L2 decay, else 0.
    pub l2: f32,
    /// `(float)(1 - beta1)`.
    pub lerp_weight: f32,
    /// `(float)beta2`.
    pub beta2: f32,
    /// `(float)(1 - beta2)`.
    pub one_minus_beta2: f32,
    /// `(float)sqrt(1 - beta2^step)`.
    pub bias_correction2_sqrt: f32,
    /// `(float)(-lr / (1 - beta1^step))`.
    pub neg_step_size: f32,
    /// `(float)eps`.
    pub eps: f32,
    /// 1 with AMSGrad, else 0.
    pub amsgrad: u8,
    /// 1 when maximizing, else 0.
    pub maximize: u8,
    /// `ADAMW_ROUNDING_FUSED` or `ADAMW_ROUNDING_UNFUSED`.
    pub rounding: u8,
}

impl From<StepScalars> for Scalars {
    fn from(s: StepScalars) -> Self {
        Scalars {
            decay: s.decay,
            l2: s.l2,
            lerp_weight: s.lerp_weight,
            beta2: s.beta2,
            one_minus_beta2: s.one_minus_beta2,
            bias_correction2_sqrt: s.bias_correction2_sqrt,
            neg_step_size: s.neg_step_size,
            eps: s.eps,
            amsgrad: u8::from(s.amsgrad),
            maximize: u8::from(s.maximize),
            rounding: s.rounding as u8,
        }
    }
}

/// The torch defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay
/// 1e-2, amsgrad and maximize off, fused rounding, decoupled decay.
///
/// # Errors
///
/// None: this function cannot fail.
#[unsafe(no_mangle)]
pub extern "C" fn adamw_config_default() -> Config {
    let h = Hyperparams::DEFAULT;
    Config {
        lr: h.lr,
        beta1: h.beta1,
        beta2: h.beta2,
        eps: h.eps,
        weight_decay: h.weight_decay,
        amsgrad: u8::from(h.amsgrad),
        maximize: u8::from(h.maximize),
        rounding: h.rounding as u8,
        decay_mode: h.decay_mode as u8,
    }
}

/// Runs step `step` (counting from 1) of `torch.optim.AdamW` over one tensor
/// of `len` floats, in place, with amsgrad and maximize off and fused
/// rounding: the signature of the original C implementation.
///
/// `exp_avg` and `exp_avg_sq` start as zeros and carry the optimizer state
/// from step to step.
///
/// # Errors
///
/// Returns `ADAMW_OK` (0) or, with nothing written, the first failing check
/// in this order: `ADAMW_ERR_INVALID_LR`, `_BETA1`, `_BETA2`, `_EPS`,
/// `_WEIGHT_DECAY`, `ADAMW_ERR_STEP_ZERO`, then the buffer checks listed at
/// the top of this header.
///
/// # Safety
///
/// When `len > 0`, each of the four pointers, if not NULL and 4-byte
/// aligned, must point to `len` initialised floats that stay valid for the
/// call. `grad` must be readable and the others readable and writable, and
/// no other thread may access them during the call. NULL, misaligned and
/// overlapping pointers are detected and rejected.
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn adamw_step(
    param: *mut f32,
    grad: *const f32,
    exp_avg: *mut f32,
    exp_avg_sq: *mut f32,
    len: usize,
    step: u64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
) -> i32 {
    let hyper = Hyperparams {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        ..Hyperparams::DEFAULT
    };
    let scalars = match StepScalars::new(&hyper, step) {
        Ok(scalars) => scalars,
        Err(error) => return error_code(error),
    };
    let raw = RawBuffers {
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq: ptr::null_mut(),
    };
    // SAFETY: the caller upholds this function's `# Safety` contract, which
    // is `apply_raw`'s.
    unsafe { apply_raw(&scalars, &raw, len) }
}

/// Runs step `step` (counting from 1) over one tensor of `len` floats, in
/// place, with every setting of `config`. Equivalent to `adamw_prepare`
/// followed by `adamw_apply`.
///
/// `max_exp_avg_sq` is the AMSGrad running maximum, starting as zeros: it
/// must be a buffer of `len` floats when `config->amsgrad` is 1 (NULL is
/// accepted only with `len == 0`), and NULL when it is 0.
///
/// # Errors
///
/// Returns `ADAMW_OK` (0) or, with nothing written, the first failing check
/// in the order of `adamw_prepare` (without the check of `out`), then the
/// buffer checks listed at the top of this header.
///
/// # Safety
///
/// `config` must be NULL or point to a readable `adamw_config`; any
/// alignment is accepted. The buffer pointers follow the rules of
/// `adamw_step`, and `max_exp_avg_sq` the same rules as `exp_avg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn adamw_step_config(
    config: *const Config,
    step: u64,
    param: *mut f32,
    grad: *const f32,
    exp_avg: *mut f32,
    exp_avg_sq: *mut f32,
    max_exp_avg_sq: *mut f32,
    len: usize,
) -> i32 {
    // SAFETY: the caller guarantees that `config` is NULL or readable, which
    // is all `read_config` needs.
    let scalars = match unsafe { read_config(config) }.and_then(|hyper| prepare(&hyper, step)) {
        Ok(scalars) => scalars,
        Err(code) => return code,
    };
    let raw = RawBuffers {
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq,
    };
    // SAFETY: the caller upholds this function's `# Safety` contract, whose
    // buffer rules are `apply_raw`'s.
    unsafe { apply_raw(&scalars, &raw, len) }
}

/// Computes the scalars of step `step` (counting from 1) once, into `*out`,
/// for `adamw_apply` to apply to every tensor of the step.
///
/// # Errors
///
/// Returns `ADAMW_OK` (0) or, with `*out` unchanged, the first failing check
/// in this order: `ADAMW_ERR_NULL_CONFIG`, `ADAMW_ERR_NULL_OUT`,
/// `ADAMW_ERR_INVALID_AMSGRAD`, `_MAXIMIZE`, `_ROUNDING`, `_DECAY_MODE`,
/// `_LR`, `_BETA1`, `_BETA2`, `_EPS`, `_WEIGHT_DECAY`,
/// `ADAMW_ERR_STEP_ZERO`.
///
/// # Safety
///
/// `config` must be NULL or point to a readable `adamw_config`, and `out`
/// NULL or to a writable `adamw_scalars`; any alignment is accepted.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn adamw_prepare(config: *const Config, step: u64, out: *mut Scalars) -> i32 {
    if config.is_null() {
        return ADAMW_ERR_NULL_CONFIG;
    }
    if out.is_null() {
        return ADAMW_ERR_NULL_OUT;
    }
    // SAFETY: `config` is not NULL, and the caller guarantees that it is
    // readable.
    let scalars = match unsafe { read_config(config) }.and_then(|hyper| prepare(&hyper, step)) {
        Ok(scalars) => scalars,
        Err(code) => return code,
    };
    // SAFETY: `out` is not NULL, and the caller guarantees that it points to
    // writable memory of the size of `Scalars`. `write_unaligned` accepts
    // any alignment, and `Scalars` has no drop glue to run on the old value.
    unsafe { ptr::write_unaligned(out, Scalars::from(scalars)) };
    ADAMW_OK
}

/// Applies the scalars of one step, made by `adamw_prepare`, to one tensor
/// of `len` floats, in place.
///
/// `max_exp_avg_sq` follows `scalars->amsgrad` as in `adamw_step_config`.
///
/// # Errors
///
/// Returns `ADAMW_OK` (0) or, with nothing written, the first failing check
/// in this order: `ADAMW_ERR_NULL_SCALARS`, `ADAMW_ERR_INVALID_AMSGRAD`,
/// `_MAXIMIZE`, `_ROUNDING` (for a struct changed after `adamw_prepare`),
/// then the buffer checks listed at the top of this header.
///
/// # Safety
///
/// `scalars` must be NULL or point to a readable `adamw_scalars`; any
/// alignment is accepted. The buffer pointers follow the rules of
/// `adamw_step_config`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn adamw_apply(
    scalars: *const Scalars,
    param: *mut f32,
    grad: *const f32,
    exp_avg: *mut f32,
    exp_avg_sq: *mut f32,
    max_exp_avg_sq: *mut f32,
    len: usize,
) -> i32 {
    if scalars.is_null() {
        return ADAMW_ERR_NULL_SCALARS;
    }
    // SAFETY: `scalars` is not NULL, and the caller guarantees that it is
    // readable. `read_unaligned` accepts any alignment, and every bit
    // pattern is a valid `Scalars`: the fields are floats and bytes.
    let raw_scalars = unsafe { ptr::read_unaligned(scalars) };
    let scalars = match step_scalars(&raw_scalars) {
        Ok(scalars) => scalars,
        Err(code) => return code,
    };
    let raw = RawBuffers {
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq,
    };
    // SAFETY: the caller upholds this function's `# Safety` contract, whose
    // buffer rules are `apply_raw`'s.
    unsafe { apply_raw(&scalars, &raw, len) }
}

/// Returns a static, NUL-terminated English message for a return code of
/// this library, or "unknown error code" for any other value. The caller
/// must not free or change it.
///
/// # Errors
///
/// None: this function cannot fail.
#[unsafe(no_mangle)]
pub extern "C" fn adamw_strerror(code: i32) -> *const c_char {
    message(code).as_ptr()
}

/// The message of `adamw_strerror`, as a C string.
fn message(code: i32) -> &'static core::ffi::CStr {
    match code {
        ADAMW_OK => c"success",
        ADAMW_ERR_NULL_PARAM => c"param is NULL but len > 0",
        ADAMW_ERR_NULL_GRAD => c"grad is NULL but len > 0",
        ADAMW_ERR_NULL_EXP_AVG => c"exp_avg is NULL but len > 0",
        ADAMW_ERR_NULL_EXP_AVG_SQ => c"exp_avg_sq is NULL but len > 0",
        ADAMW_ERR_NULL_MAX_EXP_AVG_SQ => {
            c"amsgrad is on, so max_exp_avg_sq must not be NULL when len > 0"
        }
        ADAMW_ERR_NULL_CONFIG => c"config is NULL",
        ADAMW_ERR_NULL_SCALARS => c"scalars is NULL",
        ADAMW_ERR_NULL_OUT => c"out is NULL",
        ADAMW_ERR_UNEXPECTED_MAX_EXP_AVG_SQ => {
            c"amsgrad is off but max_exp_avg_sq is not NULL; pass NULL or turn amsgrad on"
        }
        ADAMW_ERR_MISALIGNED_PARAM => c"param is not aligned to 4 bytes",
        ADAMW_ERR_MISALIGNED_GRAD => c"grad is not aligned to 4 bytes",
        ADAMW_ERR_MISALIGNED_EXP_AVG => c"exp_avg is not aligned to 4 bytes",
        ADAMW_ERR_MISALIGNED_EXP_AVG_SQ => c"exp_avg_sq is not aligned to 4 bytes",
        ADAMW_ERR_MISALIGNED_MAX_EXP_AVG_SQ => c"max_exp_avg_sq is not aligned to 4 bytes",
        ADAMW_ERR_LEN_TOO_LARGE => {
            c"len is too large: a buffer of len floats exceeds PTRDIFF_MAX bytes or the address space"
        }
        ADAMW_ERR_OVERLAP => c"two buffers overlap; every buffer needs its own memory",
        ADAMW_ERR_STEP_ZERO => c"invalid step 0: steps count from 1",
        ADAMW_ERR_INVALID_LR => c"invalid lr: allowed finite and >= 0",
        ADAMW_ERR_INVALID_BETA1 => c"invalid beta1: allowed 0 <= beta1 < 1",
        ADAMW_ERR_INVALID_BETA2 => c"invalid beta2: allowed 0 <= beta2 < 1",
        ADAMW_ERR_INVALID_EPS => c"invalid eps: allowed finite and >= 0",
        ADAMW_ERR_INVALID_WEIGHT_DECAY => c"invalid weight_decay: allowed finite and >= 0",
        ADAMW_ERR_INVALID_AMSGRAD => c"invalid amsgrad: allowed 0 or 1",
        ADAMW_ERR_INVALID_MAXIMIZE => c"invalid maximize: allowed 0 or 1",
        ADAMW_ERR_INVALID_ROUNDING => {
            c"invalid rounding: allowed ADAMW_ROUNDING_FUSED (0) or ADAMW_ROUNDING_UNFUSED (1)"
        }
        ADAMW_ERR_INVALID_DECAY_MODE => {
            c"invalid decay_mode: allowed ADAMW_DECAY_DECOUPLED (0) or ADAMW_DECAY_COUPLED_L2 (1)"
        }
        ADAMW_ERR_INTERNAL => c"internal error: the Rust core rejected an input that the C layer accepted",
        _ => c"unknown error code",
    }
}

/// Maps an error of the safe API to its C code.
fn error_code(error: Error) -> i32 {
    match error {
        Error::InvalidHyperparameter { name, .. } => match name {
            "lr" => ADAMW_ERR_INVALID_LR,
            "beta1" => ADAMW_ERR_INVALID_BETA1,
            "beta2" => ADAMW_ERR_INVALID_BETA2,
            "eps" => ADAMW_ERR_INVALID_EPS,
            "weight_decay" => ADAMW_ERR_INVALID_WEIGHT_DECAY,
            _ => ADAMW_ERR_INTERNAL,
        },
        Error::StepZero => ADAMW_ERR_STEP_ZERO,
        Error::MaxExpAvgSqMismatch { amsgrad: true } => ADAMW_ERR_NULL_MAX_EXP_AVG_SQ,
        Error::MaxExpAvgSqMismatch { amsgrad: false } => ADAMW_ERR_UNEXPECTED_MAX_EXP_AVG_SQ,
        // `apply_raw` builds every slice with one length.
        Error::LengthMismatch { .. } => ADAMW_ERR_INTERNAL,
    }
}

/// Reads a C config and checks its flag and mode bytes.
///
/// # Safety
///
/// `config` is NULL or points to a readable `Config`, at any alignment.
unsafe fn read_config(config: *const Config) -> Result<Hyperparams, i32> {
    if config.is_null() {
        return Err(ADAMW_ERR_NULL_CONFIG);
    }
    // SAFETY: `config` is not NULL and readable by this function's
    // contract. `read_unaligned` accepts any alignment, and every bit
    // pattern is a valid `Config`: the fields are floats and bytes.
    let config = unsafe { ptr::read_unaligned(config) };
    Ok(Hyperparams {
        lr: config.lr,
        beta1: config.beta1,
        beta2: config.beta2,
        eps: config.eps,
        weight_decay: config.weight_decay,
        amsgrad: flag(config.amsgrad, ADAMW_ERR_INVALID_AMSGRAD)?,
        maximize: flag(config.maximize, ADAMW_ERR_INVALID_MAXIMIZE)?,
        rounding: rounding(config.rounding)?,
        decay_mode: match config.decay_mode {
            ADAMW_DECAY_DECOUPLED => WeightDecay::Decoupled,
            ADAMW_DECAY_COUPLED_L2 => WeightDecay::CoupledL2,
            _ => return Err(ADAMW_ERR_INVALID_DECAY_MODE),
        },
    })
}

fn prepare(hyper: &Hyperparams, step: u64) -> Result<StepScalars, i32> {
    StepScalars::new(hyper, step).map_err(error_code)
}

/// Turns C scalars back into `StepScalars`, checking the flag and mode bytes.
fn step_scalars(s: &Scalars) -> Result<StepScalars, i32> {
    Ok(StepScalars {
        decay: s.decay,
        l2: s.l2,
        lerp_weight: s.lerp_weight,
        beta2: s.beta2,
        one_minus_beta2: s.one_minus_beta2,
        bias_correction2_sqrt: s.bias_correction2_sqrt,
        neg_step_size: s.neg_step_size,
        eps: s.eps,
        amsgrad: flag(s.amsgrad, ADAMW_ERR_INVALID_AMSGRAD)?,
        maximize: flag(s.maximize, ADAMW_ERR_INVALID_MAXIMIZE)?,
        rounding: rounding(s.rounding)?,
    })
}

fn flag(value: u8, code: i32) -> Result<bool, i32> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(code),
    }
}

fn rounding(value: u8) -> Result<Rounding, i32> {
    // The header is generated from this file alone, so the mode constants
    // are literals. These assertions tie them to the Rust enums. They sit in
    // a function body, where cbindgen does not look.
    const _: () = assert!(ADAMW_ROUNDING_FUSED == Rounding::Fused as u8);
    const _: () = assert!(ADAMW_ROUNDING_UNFUSED == Rounding::Unfused as u8);
    const _: () = assert!(ADAMW_DECAY_DECOUPLED == WeightDecay::Decoupled as u8);
    const _: () = assert!(ADAMW_DECAY_COUPLED_L2 == WeightDecay::CoupledL2 as u8);

    match value {
        ADAMW_ROUNDING_FUSED => Ok(Rounding::Fused),
        ADAMW_ROUNDING_UNFUSED => Ok(Rounding::Unfused),
        _ => Err(ADAMW_ERR_INVALID_ROUNDING),
    }
}

/// The buffer pointers of one call, as C passed them.
struct RawBuffers {
    param: *mut f32,
    grad: *const f32,
    exp_avg: *mut f32,
    exp_avg_sq: *mut f32,
    max_exp_avg_sq: *mut f32,
}

/// Checks the buffer pointers, builds slices and applies `scalars`.
///
/// The checks, in order: NULL (param, grad, exp_avg, exp_avg_sq, then
/// max_exp_avg_sq against `amsgrad`), length, alignment (same order), overlap.
///
/// # Safety
///
/// When `len > 0`, every pointer that is not NULL and is 4-byte aligned
/// points to `len` initialised `f32` that stay valid for the call, readable
/// (`grad`) or readable and writable (the others), and that no other thread
/// accesses during the call. `max_exp_avg_sq` is only used with `amsgrad`.
unsafe fn apply_raw(scalars: &StepScalars, raw: &RawBuffers, len: usize) -> i32 {
    let max = if scalars.amsgrad {
        Some(raw.max_exp_avg_sq)
    } else if raw.max_exp_avg_sq.is_null() {
        None
    } else {
        return ADAMW_ERR_UNEXPECTED_MAX_EXP_AVG_SQ;
    };
    if len == 0 {
        // Nothing to read or write: the pointers are not used.
        return ADAMW_OK;
    }

    // Each buffer with its NULL and alignment codes, in the documented order.
    let buffers = [
        (
            raw.param.cast_const(),
            ADAMW_ERR_NULL_PARAM,
            ADAMW_ERR_MISALIGNED_PARAM,
        ),
        (raw.grad, ADAMW_ERR_NULL_GRAD, ADAMW_ERR_MISALIGNED_GRAD),
        (
            raw.exp_avg.cast_const(),
            ADAMW_ERR_NULL_EXP_AVG,
            ADAMW_ERR_MISALIGNED_EXP_AVG,
        ),
        (
            raw.exp_avg_sq.cast_const(),
            ADAMW_ERR_NULL_EXP_AVG_SQ,
            ADAMW_ERR_MISALIGNED_EXP_AVG_SQ,
        ),
        (
            max.unwrap_or(ptr::null_mut()).cast_const(),
            ADAMW_ERR_NULL_MAX_EXP_AVG_SQ,
            ADAMW_ERR_MISALIGNED_MAX_EXP_AVG_SQ,
        ),
    ];
    let used = if max.is_some() { 5 } else { 4 };
    let buffers = buffers.get(..used).unwrap_or(&[]);

    for &(pointer, null_code, _) in buffers {
        if pointer.is_null() {
            return null_code;
        }
    }

    // `from_raw_parts` requires the byte length to fit in `isize` and the
    // range not to wrap around the address space.
    let Some(bytes) = len
        .checked_mul(size_of::<f32>())
        .filter(|&bytes| bytes <= isize::MAX as usize)
    else {
        return ADAMW_ERR_LEN_TOO_LARGE;
    };
    for &(pointer, _, _) in buffers {
        if pointer.addr().checked_add(bytes).is_none() {
            return ADAMW_ERR_LEN_TOO_LARGE;
        }
    }

    for &(pointer, _, misaligned_code) in buffers {
        if !pointer.is_aligned() {
            return misaligned_code;
        }
    }

    for (i, &(a, _, _)) in buffers.iter().enumerate() {
        for &(b, _, _) in buffers.get(i + 1..).unwrap_or(&[]) {
            // Both ranges are `bytes` long and do not wrap, checked above.
            if a.addr() < b.addr() + bytes && b.addr() < a.addr() + bytes {
                return ADAMW_ERR_OVERLAP;
            }
        }
    }

    // SAFETY: each pointer is non-NULL, aligned, and its `len * 4` bytes fit
    // in `isize` and do not wrap (checked above). The caller guarantees that
    // the memory is initialised, valid for the call and not accessed by
    // other threads. No two ranges share a byte (checked above), so the
    // mutable slices do not alias each other or `grad`.
    let result = unsafe {
        let param = core::slice::from_raw_parts_mut(raw.param, len);
        let grad = core::slice::from_raw_parts(raw.grad, len);
        let exp_avg = core::slice::from_raw_parts_mut(raw.exp_avg, len);
        let exp_avg_sq = core::slice::from_raw_parts_mut(raw.exp_avg_sq, len);
        let max = max.map(|max| core::slice::from_raw_parts_mut(max, len));
        scalars.apply(param, grad, exp_avg, exp_avg_sq, max)
    };
    match result {
        Ok(()) => ADAMW_OK,
        Err(error) => error_code(error),
    }
}
