//! The training loop and its report, shared by the host and the bare-metal
//! entry points so that both run the same code.

use core::fmt::{self, Write};

use adamw::{Hyperparams, StepScalars};

use crate::data::{self, SplitMix64, TEST, TRAIN};
use crate::model::{self, Activations, BATCH, CLASSES, HIDDEN, INPUTS, Mlp};

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

/// Everything that changes during training.
pub struct Trainer {
    params: Mlp,
    grads: Mlp,
    optimizer: Optimizer,
    rng: SplitMix64,
    train: [u16; TRAIN],
    test: [u16; TEST],
    epoch: u32,
}

impl Trainer {
    /// Splits the data and initialises the weights, drawing in the order
    /// that `examples/train_torch.py` repeats: the split, then `w1`, `b1`,
    /// `w2`, `b2`.
    pub fn new() -> Self {
        let mut rng = SplitMix64::new(SEED);
        let (train, test) = data::split(&mut rng);

        let mut params = Mlp::zeros();
        rng.fill_uniform(&mut params.w1, INPUTS);
        rng.fill_uniform(&mut params.b1, INPUTS);
        rng.fill_uniform(&mut params.w2, HIDDEN);
        rng.fill_uniform(&mut params.b2, HIDDEN);

        Trainer {
            params,
            grads: Mlp::zeros(),
            optimizer: Optimizer::new(),
            rng,
            train,
            test,
            epoch: 0,
        }
    }

    pub fn params(&self) -> &Mlp {
        &self.params
    }

    /// Shuffles the training set, takes one optimizer step per mini-batch of
    /// [`BATCH`] samples (the last one has 29), then counts the correct
    /// predictions on both sets.
    ///
    /// # Errors
    ///
    /// Whatever the optimizer step returns; with these fixed shapes and
    /// hyperparameters it returns none.
    pub fn epoch(&mut self) -> Result<EpochStats, adamw::Error> {
        self.rng.shuffle(&mut self.train);

        let mut inputs = [[0.0f32; INPUTS]; BATCH];
        let mut labels = [0u8; BATCH];
        let mut acts = [Activations::ZERO; BATCH];
        let mut loss_sum = 0.0f64;
        let mut batches = 0u32;

        for batch in self.train.chunks(BATCH) {
            for ((input, label), &index) in inputs.iter_mut().zip(&mut labels).zip(batch) {
                *input = data::image(usize::from(index));
                *label = data::label(usize::from(index));
            }
            let n = batch.len();
            let loss = model::forward_backward(
                &self.params,
                &inputs[..n],
                &labels[..n],
                &mut acts,
                &mut self.grads,
            );
            self.optimizer.step(&mut self.params, &self.grads)?;
            loss_sum += f64::from(loss);
            batches += 1;
        }

        self.epoch += 1;
        Ok(EpochStats {
            epoch: self.epoch,
            loss: loss_sum / f64::from(batches),
            train_correct: self.count_correct(&self.train),
            test_correct: self.count_correct(&self.test),
        })
    }

    fn count_correct(&self, indices: &[u16]) -> u32 {
        let mut act = Activations::ZERO;
        let mut correct = 0;
        for &index in indices {
            let index = usize::from(index);
            let predicted = model::forward(&self.params, &data::image(index), &mut act);
            if predicted == usize::from(data::label(index)) {
                correct += 1;
            }
        }
        correct
    }
}

/// AdamW's state: both moments of every parameter and the step count.
pub struct Optimizer {
    exp_avg: Mlp,
    exp_avg_sq: Mlp,
    /// Steps taken so far.
    step: u64,
}

impl Optimizer {
    pub fn new() -> Self {
        Optimizer {
            exp_avg: Mlp::zeros(),
            exp_avg_sq: Mlp::zeros(),
            step: 0,
        }
    }

    /// One AdamW step over the four tensors, with weight decay on `w1` and
    /// `w2` only.
    pub fn step(&mut self, p: &mut Mlp, g: &Mlp) -> Result<(), adamw::Error> {
        self.step += 1;
        let weights = StepScalars::new(&WEIGHTS, self.step)?;
        let biases = StepScalars::new(&BIASES, self.step)?;

        let (m, v) = (&mut self.exp_avg, &mut self.exp_avg_sq);
        weights.apply(&mut p.w1, &g.w1, &mut m.w1, &mut v.w1, None)?;
        weights.apply(&mut p.w2, &g.w2, &mut m.w2, &mut v.w2, None)?;
        biases.apply(&mut p.b1, &g.b1, &mut m.b1, &mut v.b1, None)?;
        biases.apply(&mut p.b2, &g.b2, &mut m.b2, &mut v.b2, None)
    }
}

/// The torch reference: the digest of its initial weights and its epochs.
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

    /// The row of `epoch`, or `None` past the end of the file.
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

/// Why a run stopped early.
#[derive(Debug)]
pub enum RunError {
    Step(adamw::Error),
    Output(fmt::Error),
}

impl From<adamw::Error> for RunError {
    fn from(e: adamw::Error) -> Self {
        RunError::Step(e)
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
            RunError::Step(e) => write!(f, "optimizer step failed: {e}"),
            RunError::Output(_) => f.write_str("writing the report failed"),
        }
    }
}

fn percent(correct: u32, total: usize) -> f64 {
    100.0 * f64::from(correct) / total as f64
}

/// Trains for `epochs` epochs and writes the report to `out`: per epoch the
/// loss beside torch's, their relative difference and both accuracies, then
/// the test accuracy, the largest relative loss difference, the digest of
/// the final weights and the memory the training state takes.
///
/// # Errors
///
/// [`RunError::Output`] when `out` fails, [`RunError::Step`] when the
/// optimizer rejects a step.
pub fn run(epochs: u32, out: &mut impl Write) -> Result<(), RunError> {
    let torch = TorchReference::parse();
    let mut trainer = Trainer::new();

    let init_digest = trainer.params().digest();
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

    let final_digest = trainer.params().digest();
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

    let tensor_bytes = Mlp::LEN * core::mem::size_of::<f32>();
    writeln!(
        out,
        "RAM: parameters {tensor_bytes} B, gradients {tensor_bytes} B, AdamW state {} B, total {} B",
        2 * tensor_bytes,
        4 * tensor_bytes
    )?;

    Ok(())
}
