//! Calls `StepScalars::new`, `apply`, `apply_scalar` and `adamw_step` on
//! inputs hidden from the optimiser by `black_box`. The panic handler calls
//! an undefined function, so the link fails if any panic path is still
//! reachable from `_start` after optimisation.

#![no_std]
#![no_main]

use core::hint::black_box;

use adamw::{Hyperparams, Rounding, StepScalars, WeightDecay};

const LEN: usize = 64;

static mut PARAM: [f32; LEN] = [0.0; LEN];
static mut GRAD: [f32; LEN] = [0.0; LEN];
static mut EXP_AVG: [f32; LEN] = [0.0; LEN];
static mut EXP_AVG_SQ: [f32; LEN] = [0.0; LEN];
static mut MAX_EXP_AVG_SQ: [f32; LEN] = [0.0; LEN];

/// The entry point that the linker keeps, with everything it reaches.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    // SAFETY: `_start` runs once on one core with no interrupts enabled, so
    // these are the only references to the buffers.
    let (param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq) = unsafe {
        (
            &mut *(&raw mut PARAM),
            &*(&raw const GRAD),
            &mut *(&raw mut EXP_AVG),
            &mut *(&raw mut EXP_AVG_SQ),
            &mut *(&raw mut MAX_EXP_AVG_SQ),
        )
    };

    // `black_box` hides the lengths, the hyperparameters and the step number,
    // so no check can be decided at compile time.
    let param: &mut [f32] = black_box(param);
    let grad: &[f32] = black_box(grad);
    let exp_avg: &mut [f32] = black_box(exp_avg);
    let exp_avg_sq: &mut [f32] = black_box(exp_avg_sq);
    let max_exp_avg_sq: Option<&mut [f32]> = black_box(Some(max_exp_avg_sq));
    let hyper = black_box(Hyperparams {
        amsgrad: true,
        rounding: Rounding::Unfused,
        decay_mode: WeightDecay::CoupledL2,
        ..Hyperparams::DEFAULT
    });
    let t = black_box(7u64);

    if let Ok(scalars) = StepScalars::new(&hyper, t) {
        let applied = scalars.apply(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq);
        black_box(applied.is_ok());
        let (param, grad) = (black_box(&mut *param), black_box(grad));
        let (exp_avg, exp_avg_sq) = (black_box(&mut *exp_avg), black_box(&mut *exp_avg_sq));
        let applied = scalars.apply_scalar(param, grad, exp_avg, exp_avg_sq, black_box(None));
        black_box(applied.is_ok());
    }

    let stepped = adamw::adamw_step(
        black_box(&mut *param),
        black_box(grad),
        black_box(&mut *exp_avg),
        black_box(&mut *exp_avg_sq),
        black_box(3),
        black_box(1e-3),
        black_box(0.9),
        black_box(0.999),
        black_box(1e-8),
        black_box(1e-2),
    );
    black_box(stepped.is_ok());

    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    unsafe extern "C" {
        /// Defined nowhere: a reference to it that survives optimisation
        /// fails the link.
        fn adamw_step_functions_reach_a_panic() -> !;
    }
    // SAFETY: never runs, because the program does not link while this call
    // is reachable.
    unsafe { adamw_step_functions_reach_a_panic() }
}
