//! The crate against torch 2.15's `torch.optim.AdamW` (single-tensor path),
//! with the golden vectors that `tests/gen_golden.py` wrote:
//! `fused.bin` from torch's AVX-512 kernels, `unfused.bin` from its generic
//! kernels (`ATEN_CPU_CAPABILITY=default`), and `compact.bin`, their
//! single-step cases of at most 40 elements.
//!
//! The contract checked here, per element of every single-step case:
//! `exp_avg`, `exp_avg_sq` and `max_exp_avg_sq` are torch's bits (any NaN
//! matches any NaN; one exception in `max_mismatches`). `param` is the bits
//! of the crate's formula, and torch's `param` is the formula's value with
//! torch's square root, which is the correctly rounded root or one of its
//! two neighbours (see `param_mismatches`). The tests print how many
//! parameters differ from torch's and by how much.

#[path = "common/golden.rs"]
mod golden;

use adamw::{Rounding, StepScalars};
use golden::{Array, Case, FormatError, GoldenFile, GradGen, Kind};

static FUSED: &[u8] = include_bytes!("golden/fused.bin");
static UNFUSED: &[u8] = include_bytes!("golden/unfused.bin");
static COMPACT: &[u8] = include_bytes!("golden/compact.bin");

/// Bound on how far the crate's parameters drift from torch's over a
/// 1000-step trajectory, at any checkpoint and element, relative to
/// `max(|p|, lr)`.
///
/// Each step's parameter differs from torch's only where torch's square root
/// is one ulp off (see `param_mismatches`), by at most two ulp of the result
/// in the single-step cases. The moments do not depend on the parameters, so
/// these differences add up without feeding back, apart from the decay
/// factor below 1: after 1000 steps at most 2000 ulp of the largest parameter
/// magnitude, and a random walk in practice. Near a zero crossing the
/// difference relative to the parameter itself grows without bound, so the
/// scale is `max(|p|, lr)`: one step moves a parameter by about `lr`.
///
/// Measured on the committed vectors (printed by the tests): at most 2.4e-5
/// relative to `|p|` (at `p = -1.6e-3` with lr 1e-2), 5.8e-6 relative to
/// `max(|p|, lr)`, 2.4e-7 absolute. Rounding errors in the formula are too
/// small to show here; the single-step tests catch them bit for bit.
const TRAJECTORY_MAX_RELATIVE: f64 = 1e-5;

/// The value of the guard cells around the buffers of the offset runs: a NaN
/// with a payload that no input contains, so a write to a guard cell shows.
const GUARD_BITS: u32 = 0x7fc0_dead;
const GUARD_LEN: usize = 8;

fn parse(name: &str, bytes: &'static [u8]) -> GoldenFile<'static> {
    match GoldenFile::parse(bytes) {
        Ok(file) => file,
        Err(error) => panic!("{name}: invalid golden file: {error:?}"),
    }
}

/// Equal bits, or both NaN (the sign and payload of a NaN are not promised).
fn same_bits(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// Returns the distance between adjacent `f32` values at magnitude `x` (>= 0):
/// the ulp of the binade of `x`, and 2^-149 for subnormals and zero.
fn f32_ulp(x: f64) -> f64 {
    let min_normal = f64::from(f32::MIN_POSITIVE);
    if x < min_normal {
        return 2f64.powi(-149);
    }
    2f64.powi(x.log2().floor() as i32 - 23)
}

/// The inputs and torch's outputs of one single-step case.
struct SingleStep {
    param: Vec<f32>,
    grad: Vec<f32>,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
    max_exp_avg_sq: Option<Vec<f32>>,
    torch_param: Vec<f32>,
    torch_exp_avg: Vec<f32>,
    torch_exp_avg_sq: Vec<f32>,
    torch_max_exp_avg_sq: Option<Vec<f32>>,
}

impl SingleStep {
    fn load(case: &Case<'_>) -> Self {
        let read = |array| {
            let mut values = vec![0.0f32; case.n];
            case.read_array(array, &mut values)
                .unwrap_or_else(|e| panic!("{}: {array:?}: {e:?}", case.name));
            values
        };
        let amsgrad = case.hyper.amsgrad;
        SingleStep {
            param: read(Array::ParamIn),
            grad: read(Array::Grad),
            exp_avg: read(Array::ExpAvgIn),
            exp_avg_sq: read(Array::ExpAvgSqIn),
            max_exp_avg_sq: amsgrad.then(|| read(Array::MaxExpAvgSqIn)),
            torch_param: read(Array::ParamOut),
            torch_exp_avg: read(Array::ExpAvgOut),
            torch_exp_avg_sq: read(Array::ExpAvgSqOut),
            torch_max_exp_avg_sq: amsgrad.then(|| read(Array::MaxExpAvgSqOut)),
        }
    }
}

/// The crate's outputs for one case.
#[derive(Clone, PartialEq)]
struct Outputs {
    param: Vec<f32>,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
    max_exp_avg_sq: Option<Vec<f32>>,
}

fn step_scalars(case: &Case<'_>) -> StepScalars {
    StepScalars::new(&case.hyper, case.t)
        .unwrap_or_else(|e| panic!("{}: StepScalars::new: {e}", case.name))
}

/// Runs the crate on the case's inputs at the start of plain vectors.
fn run(case: &Case<'_>, inputs: &SingleStep) -> Outputs {
    let mut out = Outputs {
        param: inputs.param.clone(),
        exp_avg: inputs.exp_avg.clone(),
        exp_avg_sq: inputs.exp_avg_sq.clone(),
        max_exp_avg_sq: inputs.max_exp_avg_sq.clone(),
    };
    step_scalars(case)
        .apply(
            &mut out.param,
            &inputs.grad,
            &mut out.exp_avg,
            &mut out.exp_avg_sq,
            out.max_exp_avg_sq.as_deref_mut(),
        )
        .unwrap_or_else(|e| panic!("{}: apply: {e}", case.name));
    out
}

/// Checks `max_exp_avg_sq` bit for bit, except for one inconsistency of
/// torch's, which it counts.
///
/// `torch.maximum(-0.0, +0.0)` is +0 in torch's vector loop, because
/// `_mm512_max_ps` returns its second operand when both are zero. It is -0 in
/// the scalar loop over the last `n % 16` elements, because `std::max`
/// returns its first. The crate returns +0 for every element. So where
/// torch's result is -0, the crate's must be +0, the stored maximum -0 and
/// the new `exp_avg_sq` +0.
fn max_mismatches(
    case: &Case<'_>,
    inputs: &SingleStep,
    ours: &[f32],
    torch: &[f32],
) -> (Vec<String>, usize) {
    let stored = inputs.max_exp_avg_sq.as_deref().unwrap_or(&[]);
    let mut negative_zeros = 0;
    let mut checked_ours = ours.to_vec();
    for (i, value) in checked_ours.iter_mut().enumerate() {
        let torch_negative_zero = torch[i].to_bits() == (-0.0f32).to_bits()
            && value.to_bits() == 0
            && stored.get(i).map(|x| x.to_bits()) == Some((-0.0f32).to_bits())
            && inputs.torch_exp_avg_sq[i].to_bits() == 0;
        if torch_negative_zero {
            negative_zeros += 1;
            *value = -0.0;
        }
    }
    let errors = moment_mismatches(case, "max_exp_avg_sq", &checked_ours, torch);
    (errors, negative_zeros)
}

/// How the parameters of all cases compared with torch's.
#[derive(Default)]
struct ParamTally {
    /// Parameters with torch's bits.
    identical: usize,
    /// The other parameters by their distance from torch's in `f32` values
    /// (index 1: adjacent values, 2: one value between, 3: more).
    by_result_ulps: [usize; 4],
    /// The largest difference in ulp of the larger operand of the final
    /// addition.
    max_operand_ulps: f64,
}

/// Checks a moment buffer bit for bit and returns a description of each
/// mismatch.
fn moment_mismatches(case: &Case<'_>, name: &str, ours: &[f32], torch: &[f32]) -> Vec<String> {
    let mut mismatches = Vec::new();
    for (i, (&o, &t)) in ours.iter().zip(torch).enumerate() {
        if !same_bits(o, t) {
            mismatches.push(format!(
                "{}: {name}[{i}]: ours {o:e} ({:#010x}), torch {t:e} ({:#010x})",
                case.name,
                o.to_bits(),
                t.to_bits()
            ));
        }
    }
    mismatches
}

/// Computes the final parameter as the crate's formula does, given the square
/// root of the second moment: `p * decay + (neg_step_size * m) / (sqrt_v /
/// bias_correction2_sqrt + eps)`, each operation rounded to `f32` (Rust does
/// not contract `f32` expressions into fused multiply-adds).
fn param_with_sqrt(scalars: &StepScalars, param_in: f32, m: f32, sqrt_v: f32) -> f32 {
    let p_decayed = param_in * scalars.decay;
    let denom = sqrt_v / scalars.bias_correction2_sqrt + scalars.eps;
    p_decayed + (scalars.neg_step_size * m) / denom
}

/// Returns the magnitude of the larger operand of the final addition
/// `p_decayed + (neg_step_size * m) / denom`, recomputed in `f64` from the
/// step scalars and torch's `m` and second moment (which match ours bit for
/// bit). It is within a few `f32` ulp of either implementation's operand.
fn final_addition_operand(scalars: &StepScalars, param_in: f32, m: f32, second_moment: f32) -> f64 {
    let p_decayed = f64::from(param_in * scalars.decay);
    let denom = f64::from(second_moment).sqrt() / f64::from(scalars.bias_correction2_sqrt)
        + f64::from(scalars.eps);
    let update = f64::from(scalars.neg_step_size) * f64::from(m) / denom;
    p_decayed.abs().max(update.abs())
}

/// Checks the parameters of one case against torch's; tallies them and
/// returns a description of each element outside the contract.
///
/// torch 2.15 computes `exp_avg_sq.sqrt()` for `f32` on the CPU with Intel
/// MKL's `vmsSqrt` in its high-accuracy mode (`at::vml`), which is not
/// correctly rounded. Measured on an AMD EPYC with every ATen CPU
/// capability, about one result in five for random inputs is one ulp from the
/// correctly rounded root, and the error reaches 0.75 ulp. The crate rounds
/// the root correctly. Every other operation of the step is
/// a correctly rounded IEEE operation in both. So each parameter must be
/// torch's bits, or else torch's bits must be what the formula gives with the
/// root one ulp above or below the correctly rounded one. The second
/// condition is exact, so it catches any other difference.
#[allow(clippy::needless_range_loop)] // `i` indexes seven arrays and names the element.
fn param_mismatches(
    case: &Case<'_>,
    inputs: &SingleStep,
    ours: &Outputs,
    tally: &mut ParamTally,
) -> Vec<String> {
    let scalars = step_scalars(case);
    let second_moments = inputs
        .torch_max_exp_avg_sq
        .as_ref()
        .unwrap_or(&inputs.torch_exp_avg_sq);
    let mut mismatches = Vec::new();

    for i in 0..case.n {
        let (o, t) = (ours.param[i], inputs.torch_param[i]);
        let describe = |reason: &str| {
            format!(
                "{}: param[{i}] {reason}: param_in {:#010x} grad {:#010x} exp_avg_in {:#010x} \
                 exp_avg_sq_in {:#010x}; torch {t:e} ({:#010x}), ours {o:e} ({:#010x})",
                case.name,
                inputs.param[i].to_bits(),
                inputs.grad[i].to_bits(),
                inputs.exp_avg[i].to_bits(),
                inputs.exp_avg_sq[i].to_bits(),
                t.to_bits(),
                o.to_bits(),
            )
        };

        let m = inputs.torch_exp_avg[i];
        let root = second_moments[i].sqrt();
        let model = param_with_sqrt(&scalars, inputs.param[i], m, root);
        if !same_bits(o, model) {
            mismatches.push(describe(&format!(
                "is not the formula's value {model:e} ({:#010x})",
                model.to_bits()
            )));
            continue;
        }

        if same_bits(o, t) {
            tally.identical += 1;
            continue;
        }
        let torch_root_explains = [root.next_down(), root.next_up()]
            .iter()
            .any(|&r| same_bits(param_with_sqrt(&scalars, inputs.param[i], m, r), t));
        if !torch_root_explains || !t.is_finite() || !o.is_finite() {
            mismatches.push(describe(
                "differs, and a square root one ulp from the correctly rounded one \
                 does not give torch's value",
            ));
            continue;
        }

        let operand = final_addition_operand(&scalars, inputs.param[i], m, second_moments[i]);
        let in_operand_ulps = (f64::from(o) - f64::from(t)).abs() / f32_ulp(operand);
        tally.max_operand_ulps = tally.max_operand_ulps.max(in_operand_ulps);
        tally.by_result_ulps[ulp_distance(o, t).min(3) as usize] += 1;
    }
    mismatches
}

/// Returns how many `f32` steps separate two finite values (1 for adjacent
/// values; +0 and -0 count as one value).
fn ulp_distance(a: f32, b: f32) -> u64 {
    let ordered = |x: f32| {
        let bits = i64::from(x.to_bits());
        if bits & 0x8000_0000 != 0 {
            -(bits & 0x7fff_ffff)
        } else {
            bits
        }
    };
    ordered(a).abs_diff(ordered(b))
}

/// Runs the case at offsets 1 to 7 inside longer buffers whose other cells
/// are guard NaNs, and returns a description of each difference from the
/// offset-0 outputs and of each changed guard cell.
fn offset_mismatches(case: &Case<'_>, inputs: &SingleStep, at_zero: &Outputs) -> Vec<String> {
    let scalars = step_scalars(case);
    let guard = f32::from_bits(GUARD_BITS);
    let mut mismatches = Vec::new();

    for offset in 1..=7 {
        let embed = |values: &[f32]| {
            let mut buffer = vec![guard; offset + values.len() + GUARD_LEN];
            buffer[offset..offset + values.len()].copy_from_slice(values);
            buffer
        };
        let window = offset..offset + case.n;
        let mut param = embed(&inputs.param);
        let grad = embed(&inputs.grad);
        let mut exp_avg = embed(&inputs.exp_avg);
        let mut exp_avg_sq = embed(&inputs.exp_avg_sq);
        let mut max_exp_avg_sq = inputs.max_exp_avg_sq.as_deref().map(embed);

        scalars
            .apply(
                &mut param[window.clone()],
                &grad[window.clone()],
                &mut exp_avg[window.clone()],
                &mut exp_avg_sq[window.clone()],
                max_exp_avg_sq.as_mut().map(|b| &mut b[window.clone()]),
            )
            .unwrap_or_else(|e| panic!("{}: apply at offset {offset}: {e}", case.name));

        let mut check = |name: &str, buffer: &[f32], expected: &[f32]| {
            for (i, &value) in buffer.iter().enumerate() {
                let inside = window.contains(&i);
                let want = if inside { expected[i - offset] } else { guard };
                if value.to_bits() != want.to_bits() {
                    let what = if inside { "result" } else { "guard cell" };
                    mismatches.push(format!(
                        "{}: offset {offset}: {name} {what} at buffer index {i}: \
                         {:#010x}, expected {:#010x}",
                        case.name,
                        value.to_bits(),
                        want.to_bits()
                    ));
                }
            }
        };
        check("param", &param, &at_zero.param);
        check("grad", &grad, &inputs.grad);
        check("exp_avg", &exp_avg, &at_zero.exp_avg);
        check("exp_avg_sq", &exp_avg_sq, &at_zero.exp_avg_sq);
        if let (Some(buffer), Some(expected)) = (&max_exp_avg_sq, &at_zero.max_exp_avg_sq) {
            check("max_exp_avg_sq", buffer, expected);
        }
    }
    mismatches
}

/// Checks every single-step case of a file and returns the parameter tally.
fn check_single_steps(file_name: &str, bytes: &'static [u8], rounding: Rounding) -> ParamTally {
    let file = parse(file_name, bytes);
    let mut tally = ParamTally::default();
    let mut moment_errors = Vec::new();
    let mut param_errors = Vec::new();
    let mut offset_errors = Vec::new();
    let mut negative_zero_maxima = 0;
    let mut cases = 0;

    for case in file.cases().filter(|c| c.kind == Kind::SingleStep) {
        assert_eq!(
            case.rounding, rounding,
            "{file_name}: {}: rounding",
            case.name
        );
        cases += 1;
        let inputs = SingleStep::load(&case);
        let ours = run(&case, &inputs);

        moment_errors.extend(moment_mismatches(
            &case,
            "exp_avg",
            &ours.exp_avg,
            &inputs.torch_exp_avg,
        ));
        moment_errors.extend(moment_mismatches(
            &case,
            "exp_avg_sq",
            &ours.exp_avg_sq,
            &inputs.torch_exp_avg_sq,
        ));
        if let (Some(o), Some(t)) = (&ours.max_exp_avg_sq, &inputs.torch_max_exp_avg_sq) {
            let (errors, zeros) = max_mismatches(&case, &inputs, o, t);
            moment_errors.extend(errors);
            negative_zero_maxima += zeros;
        }
        param_errors.extend(param_mismatches(&case, &inputs, &ours, &mut tally));
        offset_errors.extend(offset_mismatches(&case, &inputs, &ours));
    }

    println!(
        "{file_name}: {cases} single-step cases, params: {} bit-identical, {} one ulp apart, \
         {} two ulp apart, {} further apart; max difference {} ulp of the larger operand",
        tally.identical,
        tally.by_result_ulps[1],
        tally.by_result_ulps[2],
        tally.by_result_ulps[3],
        tally.max_operand_ulps
    );
    println!(
        "{file_name}: {negative_zero_maxima} max_exp_avg_sq elements where torch's scalar \
         remainder gave maximum(-0, +0) = -0 and the crate +0"
    );
    assert!(cases > 100, "{file_name}: only {cases} single-step cases");
    assert!(
        moment_errors.is_empty(),
        "{file_name}: {} moment elements differ from torch:\n{}",
        moment_errors.len(),
        moment_errors.join("\n")
    );
    assert!(
        param_errors.is_empty(),
        "{file_name}: {} params outside the contract:\n{}",
        param_errors.len(),
        param_errors.join("\n")
    );
    assert!(
        offset_errors.is_empty(),
        "{file_name}: {} differences at offsets 1 to 7:\n{}",
        offset_errors.len(),
        offset_errors.join("\n")
    );
    tally
}

#[test]
fn single_steps_match_fused_torch() {
    check_single_steps("fused.bin", FUSED, Rounding::Fused);
}

#[test]
fn single_steps_match_unfused_torch() {
    check_single_steps("unfused.bin", UNFUSED, Rounding::Unfused);
}

/// The largest differences between the crate's and torch's parameters over
/// all checkpoints of all trajectories of a file.
#[derive(Default)]
struct Drift {
    /// `|ours - torch| / |torch|`.
    relative: f64,
    /// `|ours - torch| / max(|torch|, lr)`, see [`TRAJECTORY_MAX_RELATIVE`].
    relative_to_step: f64,
    /// `|ours - torch|`.
    absolute: f64,
}

impl Drift {
    fn add(&mut self, ours: f32, torch: f32, lr: f64) {
        let difference = (f64::from(ours) - f64::from(torch)).abs();
        let magnitude = f64::from(torch.abs());
        self.absolute = self.absolute.max(difference);
        self.relative = self
            .relative
            .max(difference / magnitude.max(f64::from(f32::MIN_POSITIVE)));
        self.relative_to_step = self.relative_to_step.max(difference / magnitude.max(lr));
    }

    fn merge(&mut self, other: &Drift) {
        self.relative = self.relative.max(other.relative);
        self.relative_to_step = self.relative_to_step.max(other.relative_to_step);
        self.absolute = self.absolute.max(other.absolute);
    }
}

/// Runs every trajectory of a file from zero state with the regenerated
/// gradients, checks the final moments bit for bit and returns the drift of
/// the parameters from torch's.
fn check_trajectories(file_name: &str, bytes: &'static [u8]) -> Drift {
    let file = parse(file_name, bytes);
    let mut drift = Drift::default();
    let mut trajectories = 0;

    for case in file.cases().filter(|c| c.kind == Kind::Trajectory) {
        trajectories += 1;
        let n = case.n;
        let fail = |e: FormatError| -> ! { panic!("{file_name}: {}: {e:?}", case.name) };
        let mut param = vec![0.0f32; n];
        case.trajectory_param_in(&mut param)
            .unwrap_or_else(|e| fail(e));
        let mut exp_avg = vec![0.0f32; n];
        let mut exp_avg_sq = vec![0.0f32; n];
        let mut max_exp_avg_sq = case.hyper.amsgrad.then(|| vec![0.0f32; n]);
        let mut grad = vec![0.0f32; n];
        let mut grads = case.grad_gen().unwrap_or_else(|e| fail(e));
        let mut torch_param = vec![0.0f32; n];
        let mut next_checkpoint = 0;
        let checkpoint_count = case.checkpoint_count().unwrap_or_else(|e| fail(e));

        for t in 1..=case.t {
            grads.fill(&mut grad);
            StepScalars::new(&case.hyper, t)
                .and_then(|s| {
                    s.apply(
                        &mut param,
                        &grad,
                        &mut exp_avg,
                        &mut exp_avg_sq,
                        max_exp_avg_sq.as_deref_mut(),
                    )
                })
                .unwrap_or_else(|e| panic!("{file_name}: {}: step {t}: {e}", case.name));

            if next_checkpoint == checkpoint_count {
                continue;
            }
            let checkpoint_step = case
                .checkpoint(next_checkpoint, &mut torch_param)
                .unwrap_or_else(|e| fail(e));
            if checkpoint_step != t {
                continue;
            }
            next_checkpoint += 1;

            let mut at_step = Drift::default();
            for (&o, &p) in param.iter().zip(&torch_param) {
                assert!(
                    o.is_finite() && p.is_finite(),
                    "{file_name}: {}: step {t}: non-finite param: ours {o:e}, torch {p:e}",
                    case.name
                );
                at_step.add(o, p, case.hyper.lr);
            }
            println!(
                "{file_name}: {}: step {t}: param difference max {:e} relative, \
                 {:e} relative to max(|p|, lr), {:e} absolute",
                case.name, at_step.relative, at_step.relative_to_step, at_step.absolute
            );
            drift.merge(&at_step);
        }
        assert_eq!(
            next_checkpoint, checkpoint_count,
            "{file_name}: {}: checkpoints reached",
            case.name
        );

        // The gradients do not depend on the parameters, so the moments see
        // torch's inputs at every step and must end with torch's bits.
        let mut torch_final = vec![0.0f32; n];
        case.final_exp_avg(&mut torch_final)
            .unwrap_or_else(|e| fail(e));
        let errors = moment_mismatches(&case, "final exp_avg", &exp_avg, &torch_final);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        case.final_exp_avg_sq(&mut torch_final)
            .unwrap_or_else(|e| fail(e));
        let errors = moment_mismatches(&case, "final exp_avg_sq", &exp_avg_sq, &torch_final);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        if let Some(max) = &max_exp_avg_sq {
            case.final_max_exp_avg_sq(&mut torch_final)
                .unwrap_or_else(|e| fail(e));
            let errors = moment_mismatches(&case, "final max_exp_avg_sq", max, &torch_final);
            assert!(errors.is_empty(), "{}", errors.join("\n"));
        }
    }

    assert_eq!(trajectories, 5, "{file_name}: trajectory count");
    println!(
        "{file_name}: all trajectories: param difference max {:e} relative, \
         {:e} relative to max(|p|, lr), {:e} absolute",
        drift.relative, drift.relative_to_step, drift.absolute
    );
    drift
}

#[test]
fn trajectories_track_fused_torch() {
    let drift = check_trajectories("fused.bin", FUSED);
    assert!(
        drift.relative_to_step < TRAJECTORY_MAX_RELATIVE,
        "max param difference relative to max(|p|, lr) {:e}, bound {TRAJECTORY_MAX_RELATIVE:e}",
        drift.relative_to_step
    );
}

#[test]
fn trajectories_track_unfused_torch() {
    let drift = check_trajectories("unfused.bin", UNFUSED);
    assert!(
        drift.relative_to_step < TRAJECTORY_MAX_RELATIVE,
        "max param difference relative to max(|p|, lr) {:e}, bound {TRAJECTORY_MAX_RELATIVE:e}",
        drift.relative_to_step
    );
}

/// Lists the name, rounding, kind, length and step of each case of a file.
fn case_summaries(bytes: &'static [u8]) -> Vec<(String, Rounding, Kind, usize, u64)> {
    parse("file", bytes)
        .cases()
        .map(|c| (c.name.to_string(), c.rounding, c.kind, c.n, c.t))
        .collect()
}

#[test]
fn compact_holds_short_single_steps_of_both_files() {
    let expected: Vec<_> = case_summaries(FUSED)
        .into_iter()
        .chain(case_summaries(UNFUSED))
        .filter(|&(_, _, kind, n, _)| kind == Kind::SingleStep && n <= 40)
        .collect();
    let compact = case_summaries(COMPACT);
    assert_eq!(compact.len(), expected.len(), "compact.bin case count");
    for (c, e) in compact.iter().zip(&expected) {
        assert_eq!(c, e, "compact.bin case");
    }
    assert!(
        COMPACT.len() <= 120 * 1024,
        "compact.bin has {} bytes",
        COMPACT.len()
    );
}

#[test]
fn compact_cases_equal_full_file_cases() {
    let full: Vec<Case<'static>> = parse("fused.bin", FUSED)
        .cases()
        .chain(parse("unfused.bin", UNFUSED).cases())
        .filter(|c| c.kind == Kind::SingleStep && c.n <= 40)
        .collect();
    for (c, f) in parse("compact.bin", COMPACT).cases().zip(&full) {
        for array in [
            Array::ParamIn,
            Array::Grad,
            Array::ParamOut,
            Array::ExpAvgSqOut,
        ] {
            let (mut a, mut b) = (vec![0.0f32; c.n], vec![0.0f32; f.n]);
            c.read_array(array, &mut a).unwrap();
            f.read_array(array, &mut b).unwrap();
            let (a, b): (Vec<u32>, Vec<u32>) = (
                a.iter().map(|x| x.to_bits()).collect(),
                b.iter().map(|x| x.to_bits()).collect(),
            );
            assert_eq!(a, b, "{}: {array:?}", c.name);
        }
        assert_eq!(c.hyper, f.hyper, "{}: hyperparameters", c.name);
    }
}

#[test]
fn step_past_2p24_is_what_torch_used() {
    // torch's f32 counter: 2^24 - 1 + 1 = 2^24; 2^24 + 1 rounds to 2^24
    // (ties to even); 2^24 + 11 rounds to 2^24 + 12.
    let steps: Vec<(String, u64)> = parse("fused.bin", FUSED)
        .cases()
        .filter(|c| c.name.starts_with("step_2p24"))
        .map(|c| (c.name.to_string(), c.t))
        .collect();
    let lookup = |name: &str| steps.iter().find(|(n, _)| n == name).map(|&(_, t)| t);
    assert_eq!(lookup("step_2p24"), Some(1 << 24));
    assert_eq!(lookup("step_2p24_stuck"), Some(1 << 24));
    assert_eq!(lookup("step_2p24_plus10"), Some((1 << 24) + 12));
}

#[test]
fn grad_gen_matches_hand_computed_values() {
    // Seed 1, worked out by hand: the first state is 0x42021 and the second
    // 0x04080601 (see tests/gen_golden.py), so g = (x >> 8) / 2^23 - 1.
    let mut grads = GradGen::new(1, 1.0).unwrap();
    let first = grads.next_grad();
    let second = grads.next_grad();
    assert_eq!(first.to_bits(), (1056.0f32 / 8_388_608.0 - 1.0).to_bits());
    assert_eq!(
        second.to_bits(),
        (264_198.0f32 / 8_388_608.0 - 1.0).to_bits()
    );

    let mut scaled = GradGen::new(1, 0.25).unwrap();
    assert_eq!(scaled.next_grad().to_bits(), (first * 0.25).to_bits());
}

#[test]
fn grad_gen_rejects_zero_seed() {
    assert_eq!(GradGen::new(0, 1.0).err(), Some(FormatError::ZeroSeed));
}

#[test]
fn parser_rejects_truncated_file() {
    // Every prefix of the first kilobyte, then a coarse sweep of the rest.
    let lengths = (0..1024).chain((1024..COMPACT.len()).step_by(4093));
    for len in lengths {
        let result = GoldenFile::parse(&COMPACT[..len]);
        assert!(
            matches!(result, Err(FormatError::Truncated { .. })),
            "prefix of {len} bytes: {result:?}"
        );
    }
}

#[test]
fn parser_rejects_bad_header_and_trailing_bytes() {
    let mut bad_magic = COMPACT.to_vec();
    bad_magic[0] = b'X';
    assert_eq!(
        GoldenFile::parse(&bad_magic).err(),
        Some(FormatError::BadMagic)
    );

    let mut bad_version = COMPACT.to_vec();
    bad_version[4] = 2;
    assert_eq!(
        GoldenFile::parse(&bad_version).err(),
        Some(FormatError::UnsupportedVersion(2))
    );

    let mut trailing = COMPACT.to_vec();
    trailing.push(0);
    assert_eq!(
        GoldenFile::parse(&trailing).err(),
        Some(FormatError::TrailingBytes {
            offset: COMPACT.len()
        })
    );
}

#[test]
fn parser_rejects_bad_rounding_byte() {
    // The first case starts at byte 12 with its u32 name length; the
    // rounding byte follows the name.
    let name_len = u32::from_le_bytes([COMPACT[12], COMPACT[13], COMPACT[14], COMPACT[15]]);
    let offset = 16 + name_len as usize;
    let mut bytes = COMPACT.to_vec();
    bytes[offset] = 7;
    assert_eq!(
        GoldenFile::parse(&bytes).err(),
        Some(FormatError::BadRounding { offset, value: 7 })
    );
}
