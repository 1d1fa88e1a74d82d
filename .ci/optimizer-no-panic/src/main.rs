//! Registers two tensors in two groups, then clips, steps (plain and
//! checked), runs a warmup-then-cosine schedule, saves and restores a
//! checkpoint, all on inputs hidden from the optimiser by `black_box`. The
//! panic handler calls an undefined function, so the link fails if any
//! panic path is still reachable from `_start` after optimisation.

#![no_std]
#![no_main]

use core::hint::black_box;

use adamw::{
    Contents, CosineAnnealingLr, Hyperparams, LinearLr, LrScheduler, Optimizer, Schedule,
    SequentialLr, TensorBuffers, clip_grad_norm,
};

const WEIGHTS: usize = 40;
const BIASES: usize = 5;

static mut WEIGHT: [[f32; WEIGHTS]; 3] = [[0.0; WEIGHTS]; 3];
static mut BIAS: [[f32; BIASES]; 4] = [[0.0; BIASES]; 4];
static mut GRADS: ([f32; WEIGHTS], [f32; BIASES]) = ([0.0; WEIGHTS], [0.0; BIASES]);
static mut CHECKPOINT: [u8; 1024] = [0; 1024];

/// The entry point that the linker keeps, with everything it reaches.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    // SAFETY: `_start` runs once on one core with no interrupts enabled, so
    // these are the only references to the buffers.
    let (weight, bias, grads, checkpoint) = unsafe {
        (
            &mut *(&raw mut WEIGHT),
            &mut *(&raw mut BIAS),
            &mut *(&raw mut GRADS),
            &mut *(&raw mut CHECKPOINT),
        )
    };
    let [w, w_m, w_v] = weight;
    let [b, b_m, b_v, b_max] = bias;

    let mut opt = Optimizer::<2, 2>::new();
    let plain = black_box(Hyperparams::DEFAULT);
    let amsgrad = black_box(Hyperparams {
        amsgrad: true,
        ..Hyperparams::DEFAULT
    });
    let g0 = opt.add_group(plain).unwrap_or(0);
    let g1 = opt.add_group(amsgrad).unwrap_or(1);
    let weight_buffers = TensorBuffers {
        param: black_box(&mut w[..]),
        exp_avg: black_box(&mut w_m[..]),
        exp_avg_sq: black_box(&mut w_v[..]),
        max_exp_avg_sq: None,
    };
    black_box(opt.add_tensor(black_box(g0), weight_buffers).is_ok());
    let bias_buffers = TensorBuffers {
        param: black_box(&mut b[..]),
        exp_avg: black_box(&mut b_m[..]),
        exp_avg_sq: black_box(&mut b_v[..]),
        max_exp_avg_sq: black_box(Some(&mut b_max[..])),
    };
    black_box(opt.add_tensor(black_box(g1), bias_buffers).is_ok());

    let warmup = LinearLr::new(black_box(1e-3), 0.1, 1.0, black_box(5));
    let decay = CosineAnnealingLr::new(black_box(1e-3), black_box(20), 0.0);
    let mut schedule = match (warmup, decay) {
        (Ok(warmup), Ok(decay)) => SequentialLr::<2>::new(
            [Schedule::Linear(warmup), Schedule::Cosine(decay)],
            black_box(&[5][..]),
        )
        .ok(),
        _ => None,
    };

    let (grad_w, grad_b) = grads;
    for _ in 0..black_box(3) {
        let mut clipped = [black_box(&mut grad_w[..]), black_box(&mut grad_b[..])];
        let norm = clip_grad_norm(&mut clipped, black_box(1.0), black_box(false));
        black_box(norm.is_ok());

        let step_grads = [Some(black_box(&grad_w[..])), black_box(Some(&grad_b[..]))];
        black_box(opt.step(black_box(&step_grads[..])).is_ok());
        black_box(opt.step_checked(black_box(&step_grads[..])).is_ok());

        if let Some(schedule) = schedule.as_mut() {
            let lr = schedule.step();
            black_box(opt.set_lr(black_box(0), lr).is_ok());
        }
        black_box(opt.param(black_box(0)).is_ok());
    }

    black_box(opt.checkpoint_size(black_box(Contents::StateAndParams)));
    let saved = opt.save(
        black_box(&mut checkpoint[..]),
        black_box(Contents::StateAndParams),
    );
    black_box(saved.is_ok());
    black_box(opt.restore(black_box(&checkpoint[..])).is_ok());

    loop {
        core::hint::spin_loop();
    }
}

unsafe extern "C" {
    /// Defined nowhere: a call that survives optimisation fails the link.
    fn adamw_optimizer_functions_reach_a_panic() -> !;
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: the function does not exist. The call is only sound because it
    // is never linked: a binary that still contains it fails to build.
    unsafe { adamw_optimizer_functions_reach_a_panic() }
}
