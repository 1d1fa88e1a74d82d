//! Saving and restoring the optimizer's state in a versioned byte format.
//!
//! # Format, version 1
//!
//! Every integer and float is little-endian. Offsets are in bytes.
//!
//! Header, 32 bytes:
//!
//! | offset | type    | field                                             |
//! |--------|---------|---------------------------------------------------|
//! | 0      | [u8; 4] | magic `b"ADWC"`                                   |
//! | 4      | u32     | format version, 1                                 |
//! | 8      | u64     | total size in bytes, checksum included            |
//! | 16     | u32     | number of parameter groups                        |
//! | 20     | u32     | number of tensors                                 |
//! | 24     | u32     | flags: bit 0 set when parameters are included     |
//! | 28     | u32     | reserved, 0                                       |
//!
//! Then one 48-byte record per group, in group order:
//!
//! | offset | type | field                                          |
//! |--------|------|------------------------------------------------|
//! | 0      | f64  | `lr`                                           |
//! | 8      | f64  | `beta1`                                        |
//! | 16     | f64  | `beta2`                                        |
//! | 24     | f64  | `eps`                                          |
//! | 32     | f64  | `weight_decay`                                 |
//! | 40     | u8   | `amsgrad`, 0 or 1                              |
//! | 41     | u8   | `maximize`, 0 or 1                             |
//! | 42     | u8   | `rounding`: 0 fused, 1 unfused                 |
//! | 43     | u8   | `decay_mode`: 0 decoupled (AdamW), 1 coupled L2 |
//! | 44     | u32  | reserved, 0                                    |
//!
//! Then, per tensor in registration order, a 24-byte record followed by its
//! data:
//!
//! | offset | type | field                                                  |
//! |--------|------|--------------------------------------------------------|
//! | 0      | u32  | group index                                            |
//! | 4      | u32  | flags: bit 0 set when `max_exp_avg_sq` follows          |
//! | 8      | u64  | number of elements `n`                                  |
//! | 16     | u64  | step counter                                           |
//! | 24     | f32 × n | the parameter, only when the header's bit 0 is set  |
//! |        | f32 × n | `exp_avg`                                           |
//! |        | f32 × n | `exp_avg_sq`                                        |
//! |        | f32 × n | `max_exp_avg_sq`, only when the record's bit 0 is set |
//!
//! Last, as a u32, the CRC-32 of every byte before it: zlib's and
//! Ethernet's CRC-32 (polynomial 0x04C11DB7, reflected, initial value and
//! final XOR 0xFFFFFFFF), which Python's `zlib.crc32` computes.
//!
//! `tests/torch_state_convert.py` converts a `torch.optim.AdamW` state dict
//! to this format and back.

use heapless::Vec;

use crate::crc32::crc32;
use crate::{Error, Hyperparams, Optimizer, Rounding, WeightDecay};

const MAGIC: [u8; 4] = *b"ADWC";
/// The format version that [`Optimizer::save`] writes and
/// [`Optimizer::restore`] reads.
pub const CHECKPOINT_VERSION: u32 = 1;

const HEADER_SIZE: usize = 32;
const GROUP_SIZE: usize = 48;
const TENSOR_HEADER_SIZE: usize = 24;
const CHECKSUM_SIZE: usize = 4;
const FLAG_PARAMS: u32 = 1;
const FLAG_MAX_EXP_AVG_SQ: u32 = 1;

/// The buffers a checkpoint contains besides the optimizer state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contents {
    /// The optimizer state alone: group hyperparameters, step counters and
    /// moments, like `torch.optim.Optimizer.state_dict()`. The parameters
    /// are saved elsewhere, as a model's `state_dict()` is in torch.
    State,
    /// The optimizer state and the parameters, so that one buffer resumes
    /// training.
    StateAndParams,
}

/// The reason a checkpoint could not be saved or restored. Every check runs
/// before the first write, so a returned error means that neither the
/// buffer (on save) nor the optimizer (on restore) changed.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The output buffer is smaller than [`Optimizer::checkpoint_size`].
    BufferTooSmall {
        /// The required size in bytes.
        required: usize,
        /// The buffer's size in bytes.
        found: usize,
    },
    /// The input does not start with the magic bytes `ADWC`.
    BadMagic {
        /// The first four bytes of the input (zero-padded when shorter).
        found: [u8; 4],
    },
    /// The input has a format version that this crate does not read.
    UnsupportedVersion {
        /// The version in the input.
        found: u32,
        /// The version this crate reads.
        supported: u32,
    },
    /// The input's length differs from the size recorded in its header, or
    /// from the size its records add up to.
    SizeMismatch {
        /// The size in bytes that the header or the records imply.
        expected: u64,
        /// The input's length in bytes.
        found: u64,
    },
    /// The CRC-32 stored in the input differs from the one computed over it.
    ChecksumMismatch {
        /// The stored checksum.
        stored: u32,
        /// The checksum of the input's bytes.
        computed: u32,
    },
    /// The number of groups in the input differs from the optimizer's.
    GroupCountMismatch {
        /// The optimizer's number of groups.
        expected: usize,
        /// The number in the input.
        found: u64,
    },
    /// The number of tensors in the input differs from the optimizer's.
    TensorCountMismatch {
        /// The optimizer's number of tensors.
        expected: usize,
        /// The number in the input.
        found: u64,
    },
    /// A tensor belongs to another group in the input than in the optimizer.
    TensorGroupMismatch {
        /// The tensor's index.
        tensor: usize,
        /// The group it is registered in.
        expected: usize,
        /// The group in the input.
        found: u64,
    },
    /// A tensor has another number of elements in the input than the
    /// registered one.
    TensorLengthMismatch {
        /// The tensor's index.
        tensor: usize,
        /// The registered number of elements.
        expected: usize,
        /// The number in the input.
        found: u64,
    },
    /// A tensor has a `max_exp_avg_sq` buffer in the input but not in the
    /// optimizer, or the other way round.
    MaxExpAvgSqMismatch {
        /// The tensor's index.
        tensor: usize,
        /// Whether the registered tensor has the buffer.
        expected: bool,
    },
    /// A group has `amsgrad` set differently in the input than in the
    /// optimizer, whose tensors were registered for the optimizer's setting.
    AmsgradMismatch {
        /// The group's index.
        group: usize,
        /// The optimizer's `amsgrad` setting for the group.
        expected: bool,
    },
    /// A group's hyperparameters in the input are invalid.
    InvalidHyperparameter {
        /// The group's index.
        group: usize,
        /// The kernel's error, naming the field and the accepted range.
        error: Error,
    },
    /// A flag, enum or reserved field contains a value that version 1 does
    /// not define.
    InvalidField {
        /// The field's name.
        name: &'static str,
        /// The field's offset in bytes from the start of the input.
        offset: usize,
        /// The value found.
        value: u32,
    },
}

impl core::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            CheckpointError::BufferTooSmall { required, found } => write!(
                f,
                "checkpoint buffer too small: {found} bytes, {required} required"
            ),
            CheckpointError::BadMagic { found } => write!(
                f,
                "not a checkpoint: magic bytes {found:02x?}, expected {MAGIC:02x?} (\"ADWC\")"
            ),
            CheckpointError::UnsupportedVersion { found, supported } => write!(
                f,
                "unsupported checkpoint version {found}; this build reads version {supported}"
            ),
            CheckpointError::SizeMismatch { expected, found } => write!(
                f,
                "checkpoint size mismatch: {found} bytes, {expected} expected; the data is truncated or corrupt"
            ),
            CheckpointError::ChecksumMismatch { stored, computed } => write!(
                f,
                "checkpoint checksum mismatch: stored {stored:#010x}, computed {computed:#010x}; the data is corrupt"
            ),
            CheckpointError::GroupCountMismatch { expected, found } => write!(
                f,
                "checkpoint has {found} parameter groups but the optimizer has {expected}"
            ),
            CheckpointError::TensorCountMismatch { expected, found } => write!(
                f,
                "checkpoint has {found} tensors but the optimizer has {expected}"
            ),
            CheckpointError::TensorGroupMismatch {
                tensor,
                expected,
                found,
            } => write!(
                f,
                "tensor {tensor} is in group {found} in the checkpoint but registered in group {expected}"
            ),
            CheckpointError::TensorLengthMismatch {
                tensor,
                expected,
                found,
            } => write!(
                f,
                "tensor {tensor} has {found} elements in the checkpoint but {expected} registered"
            ),
            CheckpointError::MaxExpAvgSqMismatch {
                tensor,
                expected: true,
            } => write!(
                f,
                "tensor {tensor} has no max_exp_avg_sq in the checkpoint but is registered with amsgrad"
            ),
            CheckpointError::MaxExpAvgSqMismatch {
                tensor,
                expected: false,
            } => write!(
                f,
                "tensor {tensor} has max_exp_avg_sq in the checkpoint but is registered without amsgrad"
            ),
            CheckpointError::AmsgradMismatch { group, expected } => write!(
                f,
                "group {group} has amsgrad {} in the checkpoint but {expected} in the optimizer",
                !expected
            ),
            CheckpointError::InvalidHyperparameter { group, error } => {
                write!(f, "checkpoint group {group}: {error}")
            }
            CheckpointError::InvalidField {
                name,
                offset,
                value,
            } => write!(
                f,
                "invalid checkpoint field {name} at byte {offset}: value {value} is not defined in version 1"
            ),
        }
    }
}

impl core::error::Error for CheckpointError {}

impl<const TENSORS: usize, const GROUPS: usize> Optimizer<'_, TENSORS, GROUPS> {
    /// Returns the size in bytes of a checkpoint of this optimizer, the
    /// minimum length of the buffer passed to [`Optimizer::save`].
    ///
    /// The size depends on the registered tensors and groups and on
    /// `contents`, not on the values, so firmware can reserve the buffer
    /// once. It saturates at `usize::MAX`, which no buffer reaches.
    pub fn checkpoint_size(&self, contents: Contents) -> usize {
        let mut size = HEADER_SIZE + GROUP_SIZE * self.groups.len() + CHECKSUM_SIZE;
        for slot in &self.slots {
            let buffers = buffer_count(contents, slot.max_exp_avg_sq.is_some());
            let data = slot.param.len().saturating_mul(4 * buffers);
            size = size.saturating_add(TENSOR_HEADER_SIZE).saturating_add(data);
        }
        size
    }

    /// Writes the whole state (group hyperparameters, step counters,
    /// moments and, with [`Contents::StateAndParams`], the parameters) to
    /// the start of `out` and returns the number of bytes written.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::BufferTooSmall`] when `out` is shorter than
    /// [`Optimizer::checkpoint_size`]. Nothing is written then.
    pub fn save(&self, out: &mut [u8], contents: Contents) -> Result<usize, CheckpointError> {
        let size = self.checkpoint_size(contents);
        let Some(out) = out.get_mut(..size) else {
            return Err(CheckpointError::BufferTooSmall {
                required: size,
                found: out.len(),
            });
        };

        let mut w = Writer { out, pos: 0 };
        w.bytes(&MAGIC);
        w.u32(CHECKPOINT_VERSION);
        w.u64(size as u64);
        w.u32(self.groups.len() as u32);
        w.u32(self.slots.len() as u32);
        w.u32(match contents {
            Contents::State => 0,
            Contents::StateAndParams => FLAG_PARAMS,
        });
        w.u32(0);

        for hyper in &self.groups {
            for value in [
                hyper.lr,
                hyper.beta1,
                hyper.beta2,
                hyper.eps,
                hyper.weight_decay,
            ] {
                w.bytes(&value.to_le_bytes());
            }
            w.bytes(&[
                hyper.amsgrad as u8,
                hyper.maximize as u8,
                hyper.rounding as u8,
                hyper.decay_mode as u8,
            ]);
            w.u32(0);
        }

        for slot in &self.slots {
            w.u32(slot.group as u32);
            w.u32(match slot.max_exp_avg_sq {
                Some(_) => FLAG_MAX_EXP_AVG_SQ,
                None => 0,
            });
            w.u64(slot.param.len() as u64);
            w.u64(slot.step);
            if contents == Contents::StateAndParams {
                w.floats(slot.param);
            }
            w.floats(slot.exp_avg);
            w.floats(slot.exp_avg_sq);
            if let Some(max) = slot.max_exp_avg_sq.as_deref() {
                w.floats(max);
            }
        }

        let body = size - CHECKSUM_SIZE;
        let checksum = crc32(w.out.get(..body).unwrap_or_default());
        w.u32(checksum);
        Ok(size)
    }

    /// Restores the state saved by [`Optimizer::save`] into this optimizer,
    /// which must have the same groups and tensors registered (same count,
    /// same lengths, same group of each tensor, AMSGrad buffers on the same
    /// tensors). Returns what the checkpoint contained: with
    /// [`Contents::StateAndParams`] the parameters are restored too.
    ///
    /// The group hyperparameters are replaced by the saved ones, as
    /// `torch.optim.Optimizer.load_state_dict` replaces `param_groups`.
    /// Resuming from a checkpoint gives the same bits as a run that was
    /// never interrupted.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::BadMagic`], [`CheckpointError::UnsupportedVersion`],
    /// [`CheckpointError::SizeMismatch`] and
    /// [`CheckpointError::ChecksumMismatch`] for input that is not an intact
    /// version-1 checkpoint; [`CheckpointError::GroupCountMismatch`],
    /// [`CheckpointError::TensorCountMismatch`],
    /// [`CheckpointError::TensorGroupMismatch`],
    /// [`CheckpointError::TensorLengthMismatch`] and
    /// [`CheckpointError::MaxExpAvgSqMismatch`] for a checkpoint of another
    /// model; [`CheckpointError::InvalidHyperparameter`] and
    /// [`CheckpointError::InvalidField`] for values that pass the checksum
    /// but are not valid. The whole input is checked before the first write,
    /// so the optimizer is unchanged when an error is returned.
    pub fn restore(&mut self, input: &[u8]) -> Result<Contents, CheckpointError> {
        let (contents, groups) = self.validate_checkpoint(input)?;

        self.groups = groups;
        let mut r = Reader {
            input,
            pos: HEADER_SIZE + GROUP_SIZE * self.groups.len(),
        };
        for slot in self.slots.iter_mut() {
            let _group = r.u32();
            let _flags = r.u32();
            let _len = r.u64();
            slot.step = r.u64();
            if contents == Contents::StateAndParams {
                r.floats_into(slot.param);
            }
            r.floats_into(slot.exp_avg);
            r.floats_into(slot.exp_avg_sq);
            if let Some(max) = slot.max_exp_avg_sq.as_deref_mut() {
                r.floats_into(max);
            }
        }
        Ok(contents)
    }

    /// Checks a checkpoint against this optimizer without writing anything
    /// and returns what it contains, with the decoded group hyperparameters.
    fn validate_checkpoint(
        &self,
        input: &[u8],
    ) -> Result<(Contents, Vec<Hyperparams, GROUPS>), CheckpointError> {
        let mut magic = [0u8; 4];
        for (dst, src) in magic.iter_mut().zip(input) {
            *dst = *src;
        }
        if magic != MAGIC {
            return Err(CheckpointError::BadMagic { found: magic });
        }
        if input.len() < HEADER_SIZE + CHECKSUM_SIZE {
            return Err(CheckpointError::SizeMismatch {
                expected: (HEADER_SIZE + CHECKSUM_SIZE) as u64,
                found: input.len() as u64,
            });
        }

        let mut r = Reader { input, pos: 4 };
        let version = r.u32();
        if version != CHECKPOINT_VERSION {
            return Err(CheckpointError::UnsupportedVersion {
                found: version,
                supported: CHECKPOINT_VERSION,
            });
        }
        let size = r.u64();
        if size != input.len() as u64 {
            return Err(CheckpointError::SizeMismatch {
                expected: size,
                found: input.len() as u64,
            });
        }

        let body = input.len() - CHECKSUM_SIZE;
        let computed = crc32(input.get(..body).unwrap_or_default());
        let stored = Reader { input, pos: body }.u32();
        if stored != computed {
            return Err(CheckpointError::ChecksumMismatch { stored, computed });
        }

        let groups = r.u32() as u64;
        let tensors = r.u32() as u64;
        let flags_offset = r.pos;
        let contents = match r.u32() {
            0 => Contents::State,
            FLAG_PARAMS => Contents::StateAndParams,
            value => {
                return Err(CheckpointError::InvalidField {
                    name: "flags",
                    offset: flags_offset,
                    value,
                });
            }
        };
        r.reserved("reserved")?;
        if groups != self.groups.len() as u64 {
            return Err(CheckpointError::GroupCountMismatch {
                expected: self.groups.len(),
                found: groups,
            });
        }
        if tensors != self.slots.len() as u64 {
            return Err(CheckpointError::TensorCountMismatch {
                expected: self.slots.len(),
                found: tensors,
            });
        }

        let groups = self.check_records(input, contents)?;

        // The records match the registered tensors, so they add up to the
        // size this optimizer saves; a longer input has bytes left over.
        let expected_size = self.checkpoint_size(contents) as u64;
        if expected_size != size {
            return Err(CheckpointError::SizeMismatch {
                expected: expected_size,
                found: size,
            });
        }
        Ok((contents, groups))
    }

    /// Checks every group and tensor record against the registered groups
    /// and tensors, and returns the decoded group hyperparameters.
    fn check_records(
        &self,
        input: &[u8],
        contents: Contents,
    ) -> Result<Vec<Hyperparams, GROUPS>, CheckpointError> {
        let mut r = Reader {
            input,
            pos: HEADER_SIZE,
        };
        let mut groups = Vec::new();
        for (group, registered) in self.groups.iter().enumerate() {
            let hyper = read_group(&mut r)?;
            hyper
                .validate()
                .map_err(|error| CheckpointError::InvalidHyperparameter { group, error })?;
            // The tensors' AMSGrad buffers were registered for the group's
            // current setting.
            if hyper.amsgrad != registered.amsgrad {
                return Err(CheckpointError::AmsgradMismatch {
                    group,
                    expected: registered.amsgrad,
                });
            }
            // Cannot fail: there are at most GROUPS registered groups.
            let _ = groups.push(hyper);
        }

        for (tensor, slot) in self.slots.iter().enumerate() {
            let group = r.u32() as u64;
            if group != slot.group as u64 {
                return Err(CheckpointError::TensorGroupMismatch {
                    tensor,
                    expected: slot.group,
                    found: group,
                });
            }
            let flags_offset = r.pos;
            let has_max = match r.u32() {
                0 => false,
                FLAG_MAX_EXP_AVG_SQ => true,
                value => {
                    return Err(CheckpointError::InvalidField {
                        name: "tensor flags",
                        offset: flags_offset,
                        value,
                    });
                }
            };
            let len = r.u64();
            if len != slot.param.len() as u64 {
                return Err(CheckpointError::TensorLengthMismatch {
                    tensor,
                    expected: slot.param.len(),
                    found: len,
                });
            }
            if has_max != slot.max_exp_avg_sq.is_some() {
                return Err(CheckpointError::MaxExpAvgSqMismatch {
                    tensor,
                    expected: slot.max_exp_avg_sq.is_some(),
                });
            }
            let _step = r.u64();
            let buffers = buffer_count(contents, has_max);
            r.pos = r
                .pos
                .saturating_add(slot.param.len().saturating_mul(4 * buffers));
            if r.pos > input.len() - CHECKSUM_SIZE {
                return Err(CheckpointError::SizeMismatch {
                    expected: self.checkpoint_size(contents) as u64,
                    found: input.len() as u64,
                });
            }
        }
        Ok(groups)
    }
}

/// Returns the number of `f32` buffers saved per tensor.
fn buffer_count(contents: Contents, has_max: bool) -> usize {
    2 + (contents == Contents::StateAndParams) as usize + has_max as usize
}

/// Reads one 48-byte group record. The hyperparameters are not validated.
fn read_group(r: &mut Reader<'_>) -> Result<Hyperparams, CheckpointError> {
    let lr = r.f64();
    let beta1 = r.f64();
    let beta2 = r.f64();
    let eps = r.f64();
    let weight_decay = r.f64();
    let amsgrad = r.flag("amsgrad")?;
    let maximize = r.flag("maximize")?;
    let rounding_offset = r.pos;
    let rounding = match r.u8() {
        0 => Rounding::Fused,
        1 => Rounding::Unfused,
        value => {
            return Err(CheckpointError::InvalidField {
                name: "rounding",
                offset: rounding_offset,
                value: value as u32,
            });
        }
    };
    let decay_offset = r.pos;
    let decay_mode = match r.u8() {
        0 => WeightDecay::Decoupled,
        1 => WeightDecay::CoupledL2,
        value => {
            return Err(CheckpointError::InvalidField {
                name: "decay_mode",
                offset: decay_offset,
                value: value as u32,
            });
        }
    };
    r.reserved("group reserved")?;
    Ok(Hyperparams {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
        amsgrad,
        maximize,
        rounding,
        decay_mode,
    })
}

/// Writes little-endian values at increasing offsets. The caller sized
/// `out` to the checkpoint, so every write fits; a write past the end would
/// be cut off rather than panic.
struct Writer<'b> {
    out: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, bytes: &[u8]) {
        if let Some(rest) = self.out.get_mut(self.pos..) {
            for (dst, src) in rest.iter_mut().zip(bytes) {
                *dst = *src;
            }
        }
        self.pos = self.pos.saturating_add(bytes.len());
    }

    fn u32(&mut self, value: u32) {
        self.bytes(&value.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    fn floats(&mut self, values: &[f32]) {
        for value in values {
            self.bytes(&value.to_le_bytes());
        }
    }
}

/// Reads little-endian values at increasing offsets. Reads past the end
/// return zeros instead of panicking; the callers check the size first.
struct Reader<'b> {
    input: &'b [u8],
    pos: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let bytes = self
            .input
            .get(self.pos..)
            .and_then(|rest| rest.first_chunk::<N>())
            .copied()
            .unwrap_or([0; N]);
        self.pos = self.pos.saturating_add(N);
        bytes
    }

    fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.array())
    }

    fn flag(&mut self, name: &'static str) -> Result<bool, CheckpointError> {
        let offset = self.pos;
        match self.u8() {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(CheckpointError::InvalidField {
                name,
                offset,
                value: value as u32,
            }),
        }
    }

    fn reserved(&mut self, name: &'static str) -> Result<(), CheckpointError> {
        let offset = self.pos;
        match self.u32() {
            0 => Ok(()),
            value => Err(CheckpointError::InvalidField {
                name,
                offset,
                value,
            }),
        }
    }

    fn floats_into(&mut self, values: &mut [f32]) {
        for value in values {
            *value = f32::from_le_bytes(self.array());
        }
    }
}
