//! Throughput of one AdamW step against a memory roofline and a naive loop.
//!
//! A step reads `param`, `grad`, `exp_avg` and `exp_avg_sq` and writes
//! `param`, `exp_avg` and `exp_avg_sq`: 7 x 4 = 28 bytes per element. For
//! every size the same run times
//!
//! - `fused` and `unfused`: `StepScalars::apply` in both rounding modes,
//! - `naive`: the textbook formula as an obvious `f32` loop,
//! - `roofline`: a loop that streams the same seven arrays with one add per
//!   array, the memory-bound limit for this access pattern,
//! - `fused_2_threads` (with `--features std`): `apply_parallel` on 2 threads,
//!
//! and prints, after criterion's output, a table of medians with each
//! result's throughput as a fraction of the roofline's. A `subnormal` group
//! times subnormal gradients and moments against normal ones.
//!
//! ```text
//! cargo bench --features std --bench step
//! RUSTFLAGS="-C target-cpu=x86-64-v3" cargo bench --features std --bench step
//! ```

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use adamw::{Hyperparams, Rounding, StepScalars};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput};

/// Bytes moved per element: 4 arrays read and 3 written, 4 bytes each.
const BYTES_PER_ELEMENT: u64 = 28;

/// Tensor sizes and their names. Across the 7 arrays they take 28 KiB,
/// 112 KiB, 1.75 MiB, 28 MiB and 448 MiB: from the size of an L1 data cache
/// to far beyond any cache.
const SIZES: [(usize, &str); 5] = [
    (1 << 10, "1K"),
    (1 << 12, "4K"),
    (1 << 16, "64K"),
    (1 << 20, "1M"),
    (1 << 24, "16M"),
];

/// The step number the benches run: past the first step, so the bias
/// corrections are not trivial.
const STEP: u64 = 10;

/// The time this run started, to tell its results from older ones on disk.
static RUN_START: OnceLock<SystemTime> = OnceLock::new();

/// A fixed-seed xorshift generator, so every run times the same inputs.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // 24 random bits mapped to [-1, 1).
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| self.next_f32() * scale).collect()
    }
}

#[derive(Clone)]
struct Tensors {
    param: Vec<f32>,
    grad: Vec<f32>,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
}

impl Tensors {
    /// Values of the magnitudes found in training: weights near 1,
    /// gradients near 1e-2, moments accumulated from such gradients.
    fn random(len: usize) -> Self {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ len as u64);
        let exp_avg_sq = rng.vec(len, 1e-4).into_iter().map(f32::abs).collect();
        Tensors {
            param: rng.vec(len, 1.0),
            grad: rng.vec(len, 1e-2),
            exp_avg: rng.vec(len, 1e-3),
            exp_avg_sq,
        }
    }

    /// Gradients and moments scaled into the subnormal range (below 2^-126,
    /// about 1.2e-38), as selected by `subnormal_grad` and `subnormal_moments`.
    fn subnormal(len: usize, subnormal_grad: bool, subnormal_moments: bool) -> Self {
        let mut tensors = Tensors::random(len);
        // 2^-140: the gradients and moments above fall to about 1e-45..1e-42.
        let scale = f32::from_bits(0x0980_0000);
        if subnormal_grad {
            tensors.grad.iter_mut().for_each(|g| *g *= scale);
        }
        if subnormal_moments {
            tensors.exp_avg.iter_mut().for_each(|m| *m *= scale);
            tensors.exp_avg_sq.iter_mut().for_each(|v| *v *= scale);
        }
        tensors
    }

    fn apply(&mut self, scalars: &StepScalars) {
        let result = scalars.apply(
            black_box(&mut self.param),
            black_box(&self.grad),
            black_box(&mut self.exp_avg),
            black_box(&mut self.exp_avg_sq),
            None,
        );
        black_box(result).expect("the benches pass slices of one length");
    }

    fn apply_scalar(&mut self, scalars: &StepScalars) {
        let result = scalars.apply_scalar(
            &mut self.param,
            &self.grad,
            &mut self.exp_avg,
            &mut self.exp_avg_sq,
            None,
        );
        result.expect("the benches pass slices of one length");
    }
}

/// Runs the textbook AdamW step as an obvious loop in `f32`, with the bias
/// corrections computed with `powf` per element (LLVM may hoist them, since
/// they do not depend on the element).
#[inline(never)]
fn naive_step(hyper: &Hyperparams, t: u64, tensors: &mut Tensors) {
    let lr = hyper.lr as f32;
    let beta1 = hyper.beta1 as f32;
    let beta2 = hyper.beta2 as f32;
    let eps = hyper.eps as f32;
    let weight_decay = hyper.weight_decay as f32;
    let t = t as f32;

    let elements = tensors
        .param
        .iter_mut()
        .zip(&tensors.grad)
        .zip(&mut tensors.exp_avg)
        .zip(&mut tensors.exp_avg_sq);
    for (((p, &g), m), v) in elements {
        *p *= 1.0 - lr * weight_decay;
        *m = beta1 * *m + (1.0 - beta1) * g;
        *v = beta2 * *v + (1.0 - beta2) * g * g;
        let m_hat = *m / (1.0 - beta1.powf(t));
        let v_hat = *v / (1.0 - beta2.powf(t));
        *p -= lr * m_hat / (v_hat.sqrt() + eps);
    }
}

/// Streams the seven arrays of a step, reading four and writing three, with
/// one add per written element. As in the kernel, the elements before
/// `param`'s first 64-byte boundary run apart, so that the main loop's loads
/// do not straddle cache lines where the arrays share an offset.
#[inline(never)]
fn roofline(tensors: &mut Tensors) {
    let past_line = tensors.param.as_ptr() as usize % 64;
    let head = ((64 - past_line) % 64 / 4).min(tensors.param.len());
    let (p_head, p) = tensors.param.split_at_mut(head);
    let (g_head, g) = tensors.grad.split_at(head);
    let (m_head, m) = tensors.exp_avg.split_at_mut(head);
    let (v_head, v) = tensors.exp_avg_sq.split_at_mut(head);
    stream(p_head, g_head, m_head, v_head);
    stream(p, g, m, v);
}

#[inline(always)]
fn stream(param: &mut [f32], grad: &[f32], exp_avg: &mut [f32], exp_avg_sq: &mut [f32]) {
    let elements = param.iter_mut().zip(grad).zip(exp_avg).zip(exp_avg_sq);
    for (((p, &g), m), v) in elements {
        *p += g;
        *m += g;
        *v += g;
    }
}

fn bits(values: &[f32]) -> impl Iterator<Item = u32> + '_ {
    values.iter().map(|x| x.to_bits())
}

/// Panics unless `apply` and `apply_scalar` give the same bits for one step,
/// so that the timed code is the code the tests hold to the reference.
fn check_apply_matches_scalar(scalars: &StepScalars, initial: &Tensors) {
    let mut vector = initial.clone();
    let mut scalar = initial.clone();
    vector.apply(scalars);
    scalar.apply_scalar(scalars);
    for (name, a, b) in [
        ("param", &vector.param, &scalar.param),
        ("exp_avg", &vector.exp_avg, &scalar.exp_avg),
        ("exp_avg_sq", &vector.exp_avg_sq, &scalar.exp_avg_sq),
    ] {
        if let Some(i) = bits(a).zip(bits(b)).position(|(x, y)| x != y) {
            panic!(
                "{name}[{i}]: apply {:#010x}, apply_scalar {:#010x}",
                a[i].to_bits(),
                b[i].to_bits()
            );
        }
    }
}

/// Panics unless the naive loop's parameter updates agree with `apply`'s to
/// a relative 1e-3: they compute the same formula in another order, so they
/// differ in the last bits only.
fn check_naive_close(hyper: &Hyperparams, scalars: &StepScalars, initial: &Tensors) {
    let mut naive = initial.clone();
    let mut reference = initial.clone();
    naive_step(hyper, STEP, &mut naive);
    reference.apply(scalars);
    for i in 0..initial.param.len() {
        let naive_update = naive.param[i] - initial.param[i];
        let update = reference.param[i] - initial.param[i];
        let tolerance = 1e-3 * update.abs() + 1e-7;
        assert!(
            (naive_update - update).abs() <= tolerance,
            "param[{i}]: naive update {naive_update:e}, apply's {update:e}"
        );
    }
}

/// Panics unless the roofline loop wrote what it should, so the compiler
/// cannot have dropped any of its stores.
fn check_roofline(initial: &Tensors) {
    let mut tensors = initial.clone();
    roofline(&mut tensors);
    let last = initial.param.len() - 1;
    for (name, after, before) in [
        ("param", &tensors.param, &initial.param),
        ("exp_avg", &tensors.exp_avg, &initial.exp_avg),
        ("exp_avg_sq", &tensors.exp_avg_sq, &initial.exp_avg_sq),
    ] {
        let expected = before[last] + initial.grad[last];
        assert_eq!(after[last].to_bits(), expected.to_bits(), "roofline {name}");
    }
}

#[cfg(feature = "std")]
fn check_parallel_matches(scalars: &StepScalars, initial: &Tensors) {
    let mut parallel = initial.clone();
    let mut single = initial.clone();
    let threads = std::num::NonZeroUsize::new(2).expect("2 is nonzero");
    let result = scalars.apply_parallel(
        threads,
        &mut parallel.param,
        &parallel.grad,
        &mut parallel.exp_avg,
        &mut parallel.exp_avg_sq,
        None,
    );
    result.expect("the benches pass slices of one length");
    single.apply(scalars);
    assert!(
        bits(&parallel.param).eq(bits(&single.param)),
        "param on 2 threads"
    );
    assert!(
        bits(&parallel.exp_avg).eq(bits(&single.exp_avg)),
        "exp_avg on 2 threads"
    );
    assert!(
        bits(&parallel.exp_avg_sq).eq(bits(&single.exp_avg_sq)),
        "exp_avg_sq on 2 threads"
    );
}

#[cfg(feature = "std")]
fn bench_parallel<M: Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    scalars: &StepScalars,
    initial: &Tensors,
) {
    check_parallel_matches(scalars, initial);
    let threads = std::num::NonZeroUsize::new(2).expect("2 is nonzero");
    let mut tensors = initial.clone();
    group.bench_function("fused_2_threads", |b| {
        b.iter(|| {
            let t = &mut tensors;
            let result = scalars.apply_parallel(
                threads,
                black_box(&mut t.param),
                black_box(&t.grad),
                black_box(&mut t.exp_avg),
                black_box(&mut t.exp_avg_sq),
                None,
            );
            black_box(result).expect("the benches pass slices of one length");
        })
    });
}

#[cfg(not(feature = "std"))]
fn bench_parallel<M: Measurement>(_: &mut BenchmarkGroup<'_, M>, _: &StepScalars, _: &Tensors) {}

fn scalars_for(hyper: &Hyperparams) -> StepScalars {
    StepScalars::new(hyper, STEP).expect("torch's defaults are valid")
}

fn bench_sizes<M: Measurement>(c: &mut Criterion<M>, threads: bool) {
    let fused = Hyperparams::DEFAULT;
    let unfused = Hyperparams {
        rounding: Rounding::Unfused,
        ..Hyperparams::DEFAULT
    };

    for (len, name) in SIZES {
        let initial = Tensors::random(len);
        let mut group = c.benchmark_group(format!("step_{name}"));
        group.throughput(Throughput::ElementsAndBytes {
            elements: len as u64,
            bytes: BYTES_PER_ELEMENT * len as u64,
        });
        // 16M elements take tens of milliseconds per step: 10 samples keep
        // the run short.
        if len >= 1 << 20 {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(4));
        } else {
            group
                .sample_size(30)
                .measurement_time(Duration::from_secs(2));
        }
        group.warm_up_time(Duration::from_millis(500));

        for (label, hyper) in [("fused", &fused), ("unfused", &unfused)] {
            let scalars = scalars_for(hyper);
            check_apply_matches_scalar(&scalars, &initial);
            let mut tensors = initial.clone();
            group.bench_function(label, |b| b.iter(|| tensors.apply(&scalars)));
        }

        check_naive_close(&fused, &scalars_for(&fused), &initial);
        let mut tensors = initial.clone();
        group.bench_function("naive", |b| {
            b.iter(|| naive_step(black_box(&fused), STEP, black_box(&mut tensors)))
        });

        check_roofline(&initial);
        let mut tensors = initial.clone();
        group.bench_function("roofline", |b| b.iter(|| roofline(black_box(&mut tensors))));

        if threads && len >= 1 << 16 {
            bench_parallel(&mut group, &scalars_for(&fused), &initial);
        }
        group.finish();
    }
}

/// Times a fused step at 64K elements with normal, subnormal-gradient and
/// subnormal-moment inputs. Each iteration starts from a fresh copy, because
/// repeated steps would move the moments out of the subnormal range.
fn bench_subnormal<M: Measurement>(c: &mut Criterion<M>) {
    let len = 1 << 16;
    let scalars = scalars_for(&Hyperparams::DEFAULT);
    let mut group = c.benchmark_group("subnormal_64K");
    group.throughput(Throughput::ElementsAndBytes {
        elements: len as u64,
        bytes: BYTES_PER_ELEMENT * len as u64,
    });
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(2));
    group.warm_up_time(Duration::from_millis(500));

    let cases = [
        ("normal", false, false),
        ("subnormal_grad", true, false),
        ("subnormal_moments", false, true),
        ("subnormal_both", true, true),
    ];
    for (label, subnormal_grad, subnormal_moments) in cases {
        let initial = Tensors::subnormal(len, subnormal_grad, subnormal_moments);
        check_apply_matches_scalar(&scalars, &initial);
        group.bench_function(label, |b| {
            b.iter_batched_ref(
                || initial.clone(),
                |tensors| tensors.apply(&scalars),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// criterion's output directory, chosen as criterion 0.8 chooses its
/// default, and passed to criterion so that the summary reads what it wrote.
fn output_directory() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// Reads the median time of one iteration in nanoseconds from criterion's
/// `estimates.json`. Returns `None` when that benchmark did not run in this
/// invocation.
fn median_ns(directory: &Path, group: &str, function: &str) -> Option<f64> {
    let path = directory
        .join(group)
        .join(function)
        .join("new/estimates.json");
    // Results left by an earlier run, of a benchmark that this run's filter
    // skipped, are not this run's.
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < *RUN_START.get()? {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

/// Prints the medians of this run with throughputs and ratios to the
/// roofline of the same size.
fn print_summary(directory: &Path) {
    println!();
    println!("backend: {}", adamw::backend());
    println!(
        "{:<6} {:<16} {:>12} {:>10} {:>9} {:>9}",
        "size", "kernel", "time/step", "Gelem/s", "GB/s", "roofline"
    );
    for (len, name) in SIZES {
        let group = format!("step_{name}");
        let roofline_ns = median_ns(directory, &group, "roofline");
        let kernels = ["fused", "unfused", "naive", "roofline", "fused_2_threads"];
        for kernel in kernels {
            let Some(ns) = median_ns(directory, &group, kernel) else {
                continue;
            };
            let ratio = roofline_ns.map_or(String::from("-"), |r| format!("{:.2}", r / ns));
            println!(
                "{:<6} {:<16} {:>10.2}us {:>10.2} {:>9.1} {:>9}",
                name,
                kernel,
                ns / 1e3,
                len as f64 / ns,
                (BYTES_PER_ELEMENT as f64 * len as f64) / ns,
                ratio
            );
        }
    }
    let normal = median_ns(directory, "subnormal_64K", "normal");
    for case in ["subnormal_grad", "subnormal_moments", "subnormal_both"] {
        if let (Some(normal), Some(ns)) = (normal, median_ns(directory, "subnormal_64K", case)) {
            println!(
                "64K    {case:<18} {:>8.2}us, {:.2}x the normal inputs' time",
                ns / 1e3,
                ns / normal
            );
        }
    }
}

/// The CPU time of the calling thread, from `CLOCK_THREAD_CPUTIME_ID`.
///
/// Unlike wall time it excludes the time the thread waits while other
/// processes run, so it gives steadier figures on a shared machine. It does
/// not count other threads, so the 2-thread bench is left out under it.
#[cfg(unix)]
struct ThreadCpuTime;

#[cfg(unix)]
impl ThreadCpuTime {
    fn now_ns() -> u64 {
        let mut time = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `time` is a valid, writable timespec for the whole call.
        let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
        assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        time.tv_sec as u64 * 1_000_000_000 + time.tv_nsec as u64
    }
}

#[cfg(unix)]
impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        Self::now_ns()
    }

    fn end(&self, start: u64) -> u64 {
        Self::now_ns() - start
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Both measurements count nanoseconds, so wall time's units serve.
        WallTime.formatter()
    }
}

/// Runs every group under one measurement, then prints the summary table.
fn run<M: Measurement>(criterion: Criterion<M>, directory: &Path, threads: bool) {
    let mut criterion = criterion.output_directory(directory).configure_from_args();
    bench_sizes(&mut criterion, threads);
    bench_subnormal(&mut criterion);
    criterion.final_summary();
    print_summary(directory);
}

/// `ADAMW_BENCH_CLOCK=thread-cpu` measures the thread's CPU time in place of
/// wall time.
fn main() {
    RUN_START.get_or_init(SystemTime::now);
    let directory = output_directory();
    match std::env::var("ADAMW_BENCH_CLOCK").as_deref() {
        #[cfg(unix)]
        Ok("thread-cpu") => {
            let criterion = Criterion::default().with_measurement(ThreadCpuTime);
            run(criterion, &directory, false);
        }
        Ok("wall") | Err(_) => run(Criterion::default(), &directory, true),
        Ok(other) => panic!("invalid ADAMW_BENCH_CLOCK={other:?}: expected wall or thread-cpu"),
    }
}
