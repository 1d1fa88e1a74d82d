//! Reader for the golden vectors that `tests/gen_golden.py` writes from
//! `torch.optim.AdamW`, and the gradient generator of their trajectories.
//!
//! The reader uses only `core`, never panics and never allocates, because a
//! `#![no_std]` bare-metal test compiles it too and embeds `compact.bin`.
//! Every malformed input gives a [`FormatError`].
//!
//! # File format, version 1
//!
//! All integers and floats are little-endian.
//!
//! ```text
//! header: magic b"ADWG", u32 version = 1, u32 case_count
//! each case:
//!     u32 name_len, name (UTF-8, name_len bytes)
//!     u8 rounding (0 fused, 1 unfused)
//!     u8 kind (0 single step from saved state, 1 trajectory)
//!     f64 lr, beta1, beta2, eps, weight_decay
//!     u8 amsgrad, u8 maximize
//!     u64 t, u32 n
//!     kind 0: t is the step number torch used (its f32 counter rounds past
//!         2^24); f32 arrays of n: param_in, grad, exp_avg_in, exp_avg_sq_in,
//!         [max_exp_avg_sq_in if amsgrad], param_out, exp_avg_out,
//!         exp_avg_sq_out, [max_exp_avg_sq_out if amsgrad]
//!     kind 1: t steps from zero state, step 1 first; u32 seed, f32
//!         grad_scale (a power of two), f32 param_in[n], u32
//!         checkpoint_count, per checkpoint u64 step and f32 param[n] after
//!         that step, then the final f32 exp_avg[n], exp_avg_sq[n],
//!         [max_exp_avg_sq[n] if amsgrad]
//! ```
//!
//! A trajectory's gradients come from [`GradGen`].
#![allow(dead_code)]

use adamw::{Hyperparams, Rounding, WeightDecay};

const MAGIC: [u8; 4] = *b"ADWG";
const VERSION: u32 = 1;

/// What is wrong with a golden file, and at which byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The file does not start with `b"ADWG"`.
    BadMagic,
    /// The version is not 1.
    UnsupportedVersion(u32),
    /// A field runs past the end of the file.
    Truncated { offset: usize },
    /// A case name is not UTF-8.
    NameNotUtf8 { offset: usize },
    /// The rounding byte is neither 0 nor 1.
    BadRounding { offset: usize, value: u8 },
    /// The kind byte is neither 0 nor 1.
    BadKind { offset: usize, value: u8 },
    /// A flag byte is neither 0 nor 1.
    BadFlag { offset: usize, value: u8 },
    /// Bytes follow the last case.
    TrailingBytes { offset: usize },
    /// A caller's buffer does not have `n` elements.
    WrongBufferLength { expected: usize, found: usize },
    /// The requested array is not in this case (for example
    /// `max_exp_avg_sq` without AMSGrad, or an index past the checkpoints).
    NoSuchArray,
    /// The trajectory's seed is 0, which xorshift32 never leaves.
    ZeroSeed,
}

/// A little-endian reader over a byte slice that reports where it failed.
#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], FormatError> {
        let truncated = FormatError::Truncated {
            offset: self.offset,
        };
        let end = self.offset.checked_add(len).ok_or(truncated)?;
        let slice = self.bytes.get(self.offset..end).ok_or(truncated)?;
        self.offset = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let offset = self.offset;
        let slice = self.take(N)?;
        <[u8; N]>::try_from(slice).map_err(|_| FormatError::Truncated { offset })
    }

    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn f32(&mut self) -> Result<f32, FormatError> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, FormatError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn flag(&mut self) -> Result<bool, FormatError> {
        let offset = self.offset;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(FormatError::BadFlag { offset, value }),
        }
    }

    /// Takes `n` f32 values as raw bytes.
    fn f32_array(&mut self, n: usize) -> Result<F32Array<'a>, FormatError> {
        let len = n.checked_mul(4).ok_or(FormatError::Truncated {
            offset: self.offset,
        })?;
        Ok(F32Array(self.take(len)?))
    }
}

/// `n` little-endian f32 values inside the file.
#[derive(Clone, Copy, Debug)]
pub struct F32Array<'a>(&'a [u8]);

impl F32Array<'_> {
    /// Returns the number of values.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// Copies the values into `out`, which must have [`Self::len`] elements.
    pub fn copy_to(&self, out: &mut [f32]) -> Result<(), FormatError> {
        if out.len() != self.len() {
            return Err(FormatError::WrongBufferLength {
                expected: self.len(),
                found: out.len(),
            });
        }
        for (value, bytes) in out.iter_mut().zip(self.0.chunks_exact(4)) {
            // `chunks_exact(4)` yields 4 bytes, so the conversion succeeds;
            // `try_from` keeps the panic path of `copy_from_slice` out.
            let le = <[u8; 4]>::try_from(bytes).map_err(|_| FormatError::NoSuchArray)?;
            *value = f32::from_le_bytes(le);
        }
        Ok(())
    }
}

/// A golden file: the header checked, the cases read on iteration.
#[derive(Clone, Copy, Debug)]
pub struct GoldenFile<'a> {
    bytes: &'a [u8],
    case_count: u32,
}

impl<'a> GoldenFile<'a> {
    /// Checks the header and every case, so that iteration cannot fail.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        let mut reader = Reader { bytes, offset: 0 };
        if reader.array::<4>()? != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = reader.u32()?;
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version));
        }
        let case_count = reader.u32()?;
        for _ in 0..case_count {
            Case::read(&mut reader)?;
        }
        if reader.offset != bytes.len() {
            return Err(FormatError::TrailingBytes {
                offset: reader.offset,
            });
        }
        Ok(GoldenFile { bytes, case_count })
    }

    /// Returns the number of cases in the file.
    pub fn case_count(&self) -> u32 {
        self.case_count
    }

    /// Returns an iterator over the cases in file order. [`Self::parse`]
    /// read every case, so the iterator yields `case_count` cases. It would
    /// stop early only at a case that fails to read.
    pub fn cases(&self) -> Cases<'a> {
        Cases {
            reader: Reader {
                bytes: self.bytes,
                offset: 12,
            },
            remaining: self.case_count,
        }
    }
}

/// Iterator over the cases of a [`GoldenFile`].
pub struct Cases<'a> {
    reader: Reader<'a>,
    remaining: u32,
}

impl<'a> Iterator for Cases<'a> {
    type Item = Case<'a>;

    fn next(&mut self) -> Option<Case<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Case::read(&mut self.reader).ok()
    }
}

/// The two kinds of case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One step from saved state.
    SingleStep,
    /// `t` steps from zero state with generated gradients.
    Trajectory,
}

/// The arrays of a single-step case, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Array {
    ParamIn,
    Grad,
    ExpAvgIn,
    ExpAvgSqIn,
    MaxExpAvgSqIn,
    ParamOut,
    ExpAvgOut,
    ExpAvgSqOut,
    MaxExpAvgSqOut,
}

/// The arrays of a single-step case.
#[derive(Clone, Copy, Debug)]
struct SingleStep<'a> {
    param_in: F32Array<'a>,
    grad: F32Array<'a>,
    exp_avg_in: F32Array<'a>,
    exp_avg_sq_in: F32Array<'a>,
    max_exp_avg_sq_in: Option<F32Array<'a>>,
    param_out: F32Array<'a>,
    exp_avg_out: F32Array<'a>,
    exp_avg_sq_out: F32Array<'a>,
    max_exp_avg_sq_out: Option<F32Array<'a>>,
}

/// The recorded values of a trajectory.
#[derive(Clone, Copy, Debug)]
struct Trajectory<'a> {
    seed: u32,
    grad_scale: f32,
    param_in: F32Array<'a>,
    checkpoint_count: u32,
    /// `checkpoint_count` records of a u64 step and `n` f32.
    checkpoints: &'a [u8],
    exp_avg: F32Array<'a>,
    exp_avg_sq: F32Array<'a>,
    max_exp_avg_sq: Option<F32Array<'a>>,
}

#[derive(Clone, Copy, Debug)]
enum Body<'a> {
    SingleStep(SingleStep<'a>),
    Trajectory(Trajectory<'a>),
}

/// One case: torch's hyperparameters, inputs and outputs.
#[derive(Clone, Copy, Debug)]
pub struct Case<'a> {
    /// The case name, which names the condition the case pins.
    pub name: &'a str,
    /// The rounding of the torch kernels that produced the case.
    pub rounding: Rounding,
    /// Single step or trajectory.
    pub kind: Kind,
    /// The hyperparameters, with `rounding` set and decoupled weight decay.
    pub hyper: Hyperparams,
    /// The step number torch used (single step), or the number of steps
    /// (trajectory).
    pub t: u64,
    /// The number of elements of each array.
    pub n: usize,
    body: Body<'a>,
}

impl<'a> Case<'a> {
    fn read(reader: &mut Reader<'a>) -> Result<Self, FormatError> {
        let name_len = reader.u32()? as usize;
        let name_offset = reader.offset;
        let name =
            core::str::from_utf8(reader.take(name_len)?).map_err(|_| FormatError::NameNotUtf8 {
                offset: name_offset,
            })?;

        let offset = reader.offset;
        let rounding = match reader.u8()? {
            0 => Rounding::Fused,
            1 => Rounding::Unfused,
            value => return Err(FormatError::BadRounding { offset, value }),
        };
        let offset = reader.offset;
        let kind = match reader.u8()? {
            0 => Kind::SingleStep,
            1 => Kind::Trajectory,
            value => return Err(FormatError::BadKind { offset, value }),
        };

        let lr = reader.f64()?;
        let beta1 = reader.f64()?;
        let beta2 = reader.f64()?;
        let eps = reader.f64()?;
        let weight_decay = reader.f64()?;
        let amsgrad = reader.flag()?;
        let maximize = reader.flag()?;
        let hyper = Hyperparams {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
            maximize,
            rounding,
            decay_mode: WeightDecay::Decoupled,
        };

        let t = reader.u64()?;
        let n = reader.u32()? as usize;
        let body = match kind {
            Kind::SingleStep => Body::SingleStep(SingleStep::read(reader, n, amsgrad)?),
            Kind::Trajectory => Body::Trajectory(Trajectory::read(reader, n, amsgrad)?),
        };

        Ok(Case {
            name,
            rounding,
            kind,
            hyper,
            t,
            n,
            body,
        })
    }

    /// Copies one array of a single-step case into `out` (`n` elements).
    pub fn read_array(&self, array: Array, out: &mut [f32]) -> Result<(), FormatError> {
        let Body::SingleStep(s) = &self.body else {
            return Err(FormatError::NoSuchArray);
        };
        let source = match array {
            Array::ParamIn => Some(s.param_in),
            Array::Grad => Some(s.grad),
            Array::ExpAvgIn => Some(s.exp_avg_in),
            Array::ExpAvgSqIn => Some(s.exp_avg_sq_in),
            Array::MaxExpAvgSqIn => s.max_exp_avg_sq_in,
            Array::ParamOut => Some(s.param_out),
            Array::ExpAvgOut => Some(s.exp_avg_out),
            Array::ExpAvgSqOut => Some(s.exp_avg_sq_out),
            Array::MaxExpAvgSqOut => s.max_exp_avg_sq_out,
        };
        source.ok_or(FormatError::NoSuchArray)?.copy_to(out)
    }

    fn trajectory(&self) -> Result<&Trajectory<'a>, FormatError> {
        match &self.body {
            Body::Trajectory(trajectory) => Ok(trajectory),
            Body::SingleStep(_) => Err(FormatError::NoSuchArray),
        }
    }

    /// Returns the gradient generator of a trajectory, at its first step.
    pub fn grad_gen(&self) -> Result<GradGen, FormatError> {
        let trajectory = self.trajectory()?;
        GradGen::new(trajectory.seed, trajectory.grad_scale)
    }

    /// Copies a trajectory's initial parameters into `out` (`n` elements).
    pub fn trajectory_param_in(&self, out: &mut [f32]) -> Result<(), FormatError> {
        self.trajectory()?.param_in.copy_to(out)
    }

    /// Returns the number of checkpoints of a trajectory.
    pub fn checkpoint_count(&self) -> Result<usize, FormatError> {
        Ok(self.trajectory()?.checkpoint_count as usize)
    }

    /// Copies the parameters after checkpoint `index` into `out` (`n`
    /// elements) and returns the step number of the checkpoint.
    pub fn checkpoint(&self, index: usize, out: &mut [f32]) -> Result<u64, FormatError> {
        let trajectory = self.trajectory()?;
        if index >= trajectory.checkpoint_count as usize {
            return Err(FormatError::NoSuchArray);
        }
        // `Trajectory::read` checked these sizes, so the arithmetic cannot
        // overflow; it is checked again so that no path can panic.
        let offset = self
            .n
            .checked_mul(4)
            .and_then(|bytes| bytes.checked_add(8))
            .and_then(|record| record.checked_mul(index))
            .ok_or(FormatError::NoSuchArray)?;
        let mut reader = Reader {
            bytes: trajectory.checkpoints,
            offset,
        };
        let step = reader.u64()?;
        reader.f32_array(self.n)?.copy_to(out)?;
        Ok(step)
    }

    /// Copies a trajectory's final `exp_avg` into `out`.
    pub fn final_exp_avg(&self, out: &mut [f32]) -> Result<(), FormatError> {
        self.trajectory()?.exp_avg.copy_to(out)
    }

    /// Copies a trajectory's final `exp_avg_sq` into `out`.
    pub fn final_exp_avg_sq(&self, out: &mut [f32]) -> Result<(), FormatError> {
        self.trajectory()?.exp_avg_sq.copy_to(out)
    }

    /// Copies a trajectory's final `max_exp_avg_sq` into `out` (AMSGrad only).
    pub fn final_max_exp_avg_sq(&self, out: &mut [f32]) -> Result<(), FormatError> {
        self.trajectory()?
            .max_exp_avg_sq
            .ok_or(FormatError::NoSuchArray)?
            .copy_to(out)
    }
}

impl<'a> SingleStep<'a> {
    fn read(reader: &mut Reader<'a>, n: usize, amsgrad: bool) -> Result<Self, FormatError> {
        let param_in = reader.f32_array(n)?;
        let grad = reader.f32_array(n)?;
        let exp_avg_in = reader.f32_array(n)?;
        let exp_avg_sq_in = reader.f32_array(n)?;
        let max_exp_avg_sq_in = if amsgrad {
            Some(reader.f32_array(n)?)
        } else {
            None
        };
        let param_out = reader.f32_array(n)?;
        let exp_avg_out = reader.f32_array(n)?;
        let exp_avg_sq_out = reader.f32_array(n)?;
        let max_exp_avg_sq_out = if amsgrad {
            Some(reader.f32_array(n)?)
        } else {
            None
        };
        Ok(SingleStep {
            param_in,
            grad,
            exp_avg_in,
            exp_avg_sq_in,
            max_exp_avg_sq_in,
            param_out,
            exp_avg_out,
            exp_avg_sq_out,
            max_exp_avg_sq_out,
        })
    }
}

impl<'a> Trajectory<'a> {
    fn read(reader: &mut Reader<'a>, n: usize, amsgrad: bool) -> Result<Self, FormatError> {
        let seed = reader.u32()?;
        let grad_scale = reader.f32()?;
        let param_in = reader.f32_array(n)?;
        let checkpoint_count = reader.u32()?;

        let offset = reader.offset;
        let overflow = FormatError::Truncated { offset };
        let record = n
            .checked_mul(4)
            .and_then(|bytes| bytes.checked_add(8))
            .ok_or(overflow)?;
        let checkpoints_len = record
            .checked_mul(checkpoint_count as usize)
            .ok_or(overflow)?;
        let checkpoints = reader.take(checkpoints_len)?;

        let exp_avg = reader.f32_array(n)?;
        let exp_avg_sq = reader.f32_array(n)?;
        let max_exp_avg_sq = if amsgrad {
            Some(reader.f32_array(n)?)
        } else {
            None
        };
        Ok(Trajectory {
            seed,
            grad_scale,
            param_in,
            checkpoint_count,
            checkpoints,
            exp_avg,
            exp_avg_sq,
            max_exp_avg_sq,
        })
    }
}

/// The gradients of a trajectory: xorshift32 (shifts 13, 17, 5) with state
/// `x = seed`, one state per element per step, each mapped to
/// `g = (f32(x >> 8) * 2^-23 - 1) * grad_scale`.
///
/// Each operation is exact in `f32`: `x >> 8 < 2^24` converts exactly,
/// the product by 2^-23 is a power-of-two scaling, the difference is a
/// multiple of 2^-23 below 1 in magnitude, and `grad_scale` is a power of
/// two. So these are the bits that numpy computed for torch.
#[derive(Clone, Copy, Debug)]
pub struct GradGen {
    state: u32,
    scale: f32,
}

impl GradGen {
    /// Creates a generator at its first value.
    pub fn new(seed: u32, scale: f32) -> Result<Self, FormatError> {
        if seed == 0 {
            return Err(FormatError::ZeroSeed);
        }
        Ok(GradGen { state: seed, scale })
    }

    /// Advances the state and returns the next gradient value.
    pub fn next_grad(&mut self) -> f32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        ((x >> 8) as f32 * (1.0 / 8_388_608.0) - 1.0) * self.scale
    }

    /// Fills `out` with the gradients of one step.
    pub fn fill(&mut self, out: &mut [f32]) {
        for g in out.iter_mut() {
            *g = self.next_grad();
        }
    }
}
