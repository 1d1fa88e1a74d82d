//! The training loop and its report, shared by the host and the bare-metal
//! entry points so that both run the same code.

use core::fmt::{self, Write};

use adamw::{Hyperparams, Optimizer, OptimizerError, TensorBuffers};

use crate::data::{self, SAMPLES, SplitMix64, TEST, TRAIN};
use crate::model::{self, Activations, BATCH, CLASSES, HIDDEN, INPUTS, Mlp, Params};

/// Seed of the generator that splits, initialises and shuffles.
pub const SEED: u64 = 2026;
/// Epochs of a full run, the length of the committed torch reference.
pub const EPOCHS: u32 = 20;

/// The weights' group: AdamW with torch's defaults except the learning rate.
pub const WEIGHTS: Hyperparams = Hyperparams {
    lr: 3e-3,
    weight_decay: 1e-2,
    ..Hyperparams::DEFAULT
};
/// The biases' group: as the weights, without weight decay.
pub const BIASES: Hyperparams = Hyperparams {
    weight_decay: 0.0,
    ..WEIGHTS
};

/// The losses and accuracies that `examples/train_torch.py` wrote for the
/// same model, data, initial weights, batches and hyperparameters.
static TORCH_REFERENCE: &str = include_str!("../data/digits_torch.csv");

/// The figures of one epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    pub epoch: u32,
    /// Mean over the epoch's mini-batches of each batch's mean loss, taken
    /// before that batch's step.
    pub loss: f64,
    /// Correctly classified training samples after the epoch.
    pub train_correct: u32,
    /// Correctly classified test samples after the epoch.
    pub test_correct: u32,
}

/// The model's buffers, which [`Trainer`] borrows: the parameters, their
/// gradients and both AdamW moments. Keeping them outside `Trainer` leaves
/// the caller to choose where they live, and keeps `Trainer` small enough to
/// be moved without a large copy on the stack.
pub struct State {
    params: Mlp,
    grads: Mlp,
    exp_avg: Mlp,
    exp_avg_sq: Mlp,
}

impl State {
    pub const fn new() -> Self {
        State {
            params: Mlp::zeros(),
            grads: Mlp::zeros(),
            exp_avg: Mlp::zeros(),
            exp_avg_sq: Mlp::zeros(),
        }
    }
}

/// Indices of the tensors in the optimizer, in registration order, which is
/// the order of the gradients passed to each step.
const W1: usize = 0;
const B1: usize = 1;
const W2: usize = 2;
const B2: usize = 3;

/// Everything that changes during training.
pub struct Trainer<'a> {
    optimizer: Optimizer<'a, 4, 2>,
    grads: &'a mut Mlp,
    rng: SplitMix64,
    /// A permutation of the data set: the first [`TRAIN`] indices are the
    /// training set, in this epoch's order, and the rest the test set.
    samples: [u16; SAMPLES],
    epoch: u32,
}

impl<'a> Trainer<'a> {
    /// Splits the data, initialises the weights in `state`, drawing in the
    /// order that `examples/train_torch.py` repeats (the split, then `w1`,
    /// `b1`, `w2`, `b2`), and registers the weights and the biases as two
    /// parameter groups.
    ///
    /// # Errors
    ///
    /// Whatever the optimizer's registration returns, which is nothing with
    /// these fixed shapes and hyperparameters.
    pub fn new(state: &'a mut State) -> Result<Self, OptimizerError> {
        let mut rng = SplitMix64::new(SEED);
        let samples = data::split(&mut rng);

        let State {
            params,
            grads,
            exp_avg: m,
            exp_avg_sq: v,
        } = state;
        rng.fill_uniform(&mut params.w1, INPUTS);
        rng.fill_uniform(&mut params.b1, INPUTS);
        rng.fill_uniform(&mut params.w2, HIDDEN);
        rng.fill_uniform(&mut params.b2, HIDDEN);

        let mut optimizer = Optimizer::new();
        let weights = optimizer.add_group(WEIGHTS)?;
        let biases = optimizer.add_group(BIASES)?;
        let tensors = [
            (weights, &mut params.w1[..], &mut m.w1[..], &mut v.w1[..]),
            (biases, &mut params.b1[..], &mut m.b1[..], &mut v.b1[..]),
            (weights, &mut params.w2[..], &mut m.w2[..], &mut v.w2[..]),
            (biases, &mut params.b2[..], &mut m.b2[..], &mut v.b2[..]),
        ];
        for (group, param, exp_avg, exp_avg_sq) in tensors {
            let buffers = TensorBuffers {
                param,
                exp_avg,
                exp_avg_sq,
                max_exp_avg_sq: None,
            };
            optimizer.add_tensor(group, buffers)?;
        }

        Ok(Trainer {
            optimizer,
            grads,
            rng,
            samples,
            epoch: 0,
        })
    }

    /// Returns the current parameters, read where the optimizer keeps them.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownTensor`], which the four registered tensors
    /// never give.
    pub fn params(&self) -> Result<Params<'_>, OptimizerError> {
        params(&self.optimizer)
    }

    /// Shuffles the training set, takes one optimizer step per mini-batch of
    /// [`BATCH`] samples (the last one has 29), then counts the correct
    /// predictions on both sets.
    ///
    /// # Errors
    ///
    /// Whatever the optimizer step returns, which is nothing with these
    /// fixed shapes and hyperparameters.
    pub fn epoch(&mut self) -> Result<EpochStats, OptimizerError> {
        self.rng.shuffle(&mut self.samples[..TRAIN]);

        let mut acts = [Activations::ZERO; BATCH];
        let mut loss_sum = 0.0f64;
        let mut batches = 0u32;

        for start in (0..TRAIN).step_by(BATCH) {
            let batch = &self.samples[start..TRAIN.min(start + BATCH)];
            let loss =
                model::forward_backward(params(&self.optimizer)?, batch, &mut acts, self.grads);

            let g = &*self.grads;
            // The order of registration: W1, B1, W2, B2.
            self.optimizer
                .step(&[Some(&g.w1), Some(&g.b1), Some(&g.w2), Some(&g.b2)])?;
            loss_sum += f64::from(loss);
            batches += 1;
        }

        self.epoch += 1;
        Ok(EpochStats {
            epoch: self.epoch,
            loss: loss_sum / f64::from(batches),
            train_correct: self.count_correct(&self.samples[..TRAIN])?,
            test_correct: self.count_correct(&self.samples[TRAIN..])?,
        })
    }

    fn count_correct(&self, indices: &[u16]) -> Result<u32, OptimizerError> {
        let params = self.params()?;
        let mut act = Activations::ZERO;
        let mut correct = 0;
        for &index in indices {
            let index = usize::from(index);
            let predicted = model::forward(params, &data::image(index), &mut act);
            if predicted == usize::from(data::label(index)) {
                correct += 1;
            }
        }
        Ok(correct)
    }
}

/// Returns the parameters registered in `optimizer`.
fn params<'o>(optimizer: &'o Optimizer<'_, 4, 2>) -> Result<Params<'o>, OptimizerError> {
    Ok(Params {
        w1: optimizer.param(W1)?,
        b1: optimizer.param(B1)?,
        w2: optimizer.param(W2)?,
        b2: optimizer.param(B2)?,
    })
}

/// The torch reference file: the digest of its initial weights, parsed once,
/// and its rows, which [`TorchReference::epoch`] scans on each call.
struct TorchReference {
    init_digest: Option<u64>,
}

impl TorchReference {
    fn parse() -> Self {
        let init_digest = TORCH_REFERENCE
            .lines()
            .find_map(|line| line.strip_prefix("# init_digest=0x"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
        TorchReference { init_digest }
    }

    /// Finds the row of `epoch`, `None` past the end of the file.
    fn epoch(&self, epoch: u32) -> Option<EpochStats> {
        TORCH_REFERENCE
            .lines()
            .filter(|line| !line.starts_with('#') && !line.starts_with("epoch"))
            .filter_map(parse_row)
            .find(|row| row.epoch == epoch)
    }
}

/// Parses `epoch,loss,train_correct,test_correct`.
fn parse_row(line: &str) -> Option<EpochStats> {
    let mut fields = line.split(',');
    let row = EpochStats {
        epoch: fields.next()?.trim().parse().ok()?,
        loss: fields.next()?.trim().parse().ok()?,
        train_correct: fields.next()?.trim().parse().ok()?,
        test_correct: fields.next()?.trim().parse().ok()?,
    };
    Some(row)
}

/// The error that stopped a run.
#[derive(Debug)]
pub enum RunError {
    Optimizer(OptimizerError),
    Output(fmt::Error),
}

impl From<OptimizerError> for RunError {
    fn from(e: OptimizerError) -> Self {
        RunError::Optimizer(e)
    }
}

impl From<fmt::Error> for RunError {
    fn from(e: fmt::Error) -> Self {
        RunError::Output(e)
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Optimizer(e) => write!(f, "optimizer failed: {e}"),
            RunError::Output(_) => f.write_str("writing the report failed"),
        }
    }
}

fn percent(correct: u32, total: usize) -> f64 {
    100.0 * f64::from(correct) / total as f64
}

/// Trains for `epochs` epochs and writes the report to `out`. Each epoch's
/// line shows the loss beside torch's, their relative difference and both
/// accuracies. The summary gives the test accuracy, the largest relative
/// loss difference, the digest of the final weights and the memory that the
/// training state takes.
///
/// # Errors
///
/// [`RunError::Output`] when `out` fails, [`RunError::Optimizer`] when the
/// optimizer rejects a call.
pub fn run(epochs: u32, out: &mut impl Write) -> Result<(), RunError> {
    let torch = TorchReference::parse();
    let mut state = State::new();
    let mut trainer = Trainer::new(&mut state)?;

    let init_digest = trainer.params()?.digest();
    write!(out, "initial weights: digest {init_digest:#018x}")?;
    match torch.init_digest {
        Some(d) if d == init_digest => writeln!(out, ", the same as torch's")?,
        Some(d) => writeln!(out, ", but torch's is {d:#018x}: the comparison is invalid")?,
        None => writeln!(out, ", torch's is missing from the reference file")?,
    }
    writeln!(
        out,
        "MLP {INPUTS}-{HIDDEN}-{CLASSES}, {} parameters, batch {BATCH}, AdamW lr {}, weight decay {} (weights) and 0 (biases)",
        Mlp::LEN,
        WEIGHTS.lr,
        WEIGHTS.weight_decay
    )?;
    writeln!(
        out,
        "{TRAIN} training and {TEST} test samples, {epochs} epochs"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "epoch  loss      torch loss  rel. diff  train acc  test acc"
    )?;

    let mut max_diff = 0.0f64;
    let mut last = None;
    for _ in 0..epochs {
        let stats = trainer.epoch()?;
        write!(out, "{:5}  {:.6}", stats.epoch, stats.loss)?;
        match torch.epoch(stats.epoch) {
            Some(reference) => {
                let diff = libm::fabs(stats.loss - reference.loss) / libm::fabs(reference.loss);
                max_diff = max_diff.max(diff);
                write!(out, "  {:.6}    {diff:.1e}", reference.loss)?;
            }
            None => write!(out, "  -           -      ")?,
        }
        writeln!(
            out,
            "    {:6.2} %   {:6.2} %",
            percent(stats.train_correct, TRAIN),
            percent(stats.test_correct, TEST)
        )?;
        last = Some(stats);
    }

    let Some(last) = last else {
        return Ok(());
    };

    let final_digest = trainer.params()?.digest();
    writeln!(out)?;
    writeln!(
        out,
        "test accuracy: {:.2} % ({} of {TEST})",
        percent(last.test_correct, TEST),
        last.test_correct
    )?;
    if let Some(reference) = torch.epoch(last.epoch) {
        writeln!(
            out,
            "torch test accuracy: {:.2} % ({} of {TEST})",
            percent(reference.test_correct, TEST),
            reference.test_correct
        )?;
    }
    writeln!(
        out,
        "largest relative loss difference to torch: {max_diff:.1e}"
    )?;
    writeln!(out, "final weights: digest {final_digest:#018x}")?;

    // The optimizer stores slice references, group hyperparameters and step
    // counters, so its size depends on the pointer width.
    let tensor_bytes = Mlp::LEN * size_of::<f32>();
    let optimizer_bytes = size_of::<Optimizer<'static, 4, 2>>();
    writeln!(
        out,
        "RAM: parameters {tensor_bytes} B, gradients {tensor_bytes} B, AdamW moments {} B, optimizer {optimizer_bytes} B, total {} B",
        2 * tensor_bytes,
        4 * tensor_bytes + optimizer_bytes
    )?;

    Ok(())
}
