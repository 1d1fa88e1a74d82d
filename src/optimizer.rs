//! A multi-tensor AdamW optimizer with parameter groups, in fixed capacity.

use heapless::Vec;

use crate::{Error, Hyperparams, StepScalars};

/// The buffers of one tensor, handed to [`Optimizer::add_tensor`].
///
/// All slices must have the same length as `param`.
#[derive(Debug)]
pub struct TensorBuffers<'a> {
    /// The parameter, updated in place by each step.
    pub param: &'a mut [f32],
    /// The first moment, `exp_avg` in torch's state.
    pub exp_avg: &'a mut [f32],
    /// The second moment, `exp_avg_sq` in torch's state.
    pub exp_avg_sq: &'a mut [f32],
    /// The running maximum of `exp_avg_sq`: required when the tensor's
    /// group has `amsgrad`, and `None` otherwise.
    pub max_exp_avg_sq: Option<&'a mut [f32]>,
}

/// One registered tensor: its buffers, its group and its step counter.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    pub(crate) param: &'a mut [f32],
    pub(crate) exp_avg: &'a mut [f32],
    pub(crate) exp_avg_sq: &'a mut [f32],
    pub(crate) max_exp_avg_sq: Option<&'a mut [f32]>,
    pub(crate) group: usize,
    /// The number of steps applied to this tensor, as torch's `state["step"]`.
    pub(crate) step: u64,
}

/// The reason an optimizer call was rejected. Every check runs before the
/// first write, so a returned error means that nothing changed.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum OptimizerError {
    /// [`Optimizer::add_group`] was called with all `GROUPS` slots in use.
    GroupCapacityFull {
        /// The capacity, `GROUPS`.
        capacity: usize,
    },
    /// [`Optimizer::add_tensor`] was called with all `TENSORS` slots in use.
    TensorCapacityFull {
        /// The capacity, `TENSORS`.
        capacity: usize,
    },
    /// A group index is not one that [`Optimizer::add_group`] returned.
    UnknownGroup {
        /// The rejected index.
        group: usize,
        /// The number of registered groups.
        groups: usize,
    },
    /// A tensor index is not one that [`Optimizer::add_tensor`] returned.
    UnknownTensor {
        /// The rejected index.
        tensor: usize,
        /// The number of registered tensors.
        tensors: usize,
    },
    /// A buffer of a tensor (or its gradient) has a length that differs
    /// from the parameter's.
    LengthMismatch {
        /// The tensor's index (the index it would get, for `add_tensor`).
        tensor: usize,
        /// The buffer's name (`grad`, `exp_avg`, `exp_avg_sq`,
        /// `max_exp_avg_sq`).
        name: &'static str,
        /// The parameter's length.
        expected: usize,
        /// The buffer's length.
        found: usize,
    },
    /// A tensor has a `max_exp_avg_sq` buffer but its group has `amsgrad`
    /// off, or it has none and its group has `amsgrad` on.
    MaxExpAvgSqMismatch {
        /// The tensor's index (the index it would get, for `add_tensor`).
        tensor: usize,
        /// The group's index.
        group: usize,
        /// The `amsgrad` setting that the tensor's buffers would need.
        amsgrad: bool,
    },
    /// The number of gradients passed to a step differs from the number of
    /// registered tensors.
    GradCountMismatch {
        /// The number of registered tensors.
        expected: usize,
        /// The number of gradients passed.
        found: usize,
    },
    /// A group's hyperparameters were rejected by the kernel (for example a
    /// negative `lr`).
    Hyperparams {
        /// The group's index (the index it would get, for `add_group`).
        group: usize,
        /// The kernel's error, naming the field and the accepted range.
        error: Error,
    },
}

impl core::fmt::Display for OptimizerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            OptimizerError::GroupCapacityFull { capacity } => write!(
                f,
                "cannot add a parameter group: all {capacity} group slots are in use; raise GROUPS"
            ),
            OptimizerError::TensorCapacityFull { capacity } => write!(
                f,
                "cannot add a tensor: all {capacity} tensor slots are in use; raise TENSORS"
            ),
            OptimizerError::UnknownGroup { group, groups } => write!(
                f,
                "unknown parameter group {group}: {groups} groups are registered"
            ),
            OptimizerError::UnknownTensor { tensor, tensors } => write!(
                f,
                "unknown tensor {tensor}: {tensors} tensors are registered"
            ),
            OptimizerError::LengthMismatch {
                tensor,
                name,
                expected,
                found,
            } => write!(
                f,
                "length mismatch in tensor {tensor}: {name} has {found} elements but param has {expected}"
            ),
            OptimizerError::MaxExpAvgSqMismatch {
                tensor,
                group,
                amsgrad: true,
            } => write!(
                f,
                "tensor {tensor} has no max_exp_avg_sq buffer but group {group} has amsgrad on"
            ),
            OptimizerError::MaxExpAvgSqMismatch {
                tensor,
                group,
                amsgrad: false,
            } => write!(
                f,
                "tensor {tensor} has a max_exp_avg_sq buffer but group {group} has amsgrad off"
            ),
            OptimizerError::GradCountMismatch { expected, found } => write!(
                f,
                "expected one gradient (or None) per tensor, {expected} in all, but got {found}"
            ),
            OptimizerError::Hyperparams { group, error } => {
                write!(f, "parameter group {group}: {error}")
            }
        }
    }
}

impl core::error::Error for OptimizerError {}

/// The result of [`Optimizer::step_checked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum StepOutcome {
    /// Every gradient was finite and the step was applied.
    Applied,
    /// A gradient element was NaN or infinite, so the whole step was
    /// skipped: no parameter, moment or step counter changed. This is
    /// `found_inf` of `torch.amp.GradScaler`.
    SkippedNonFinite {
        /// The index of the first tensor with a non-finite gradient.
        tensor: usize,
        /// The index of the first non-finite element in that gradient.
        index: usize,
    },
}

/// AdamW (or Adam with coupled L2 decay, per group) over many tensors, with
/// parameter groups and per-tensor step counters, in fixed capacity.
///
/// [`Optimizer`] registers up to `TENSORS` tensors in up to `GROUPS`
/// parameter groups, as `torch.optim.AdamW` does with `param_groups`: each
/// group has its own [`Hyperparams`] (typically `weight_decay = 0` for
/// biases and norms), and each tensor has its own step counter.
///
/// # Who owns the memory
///
/// The caller provides every buffer as a borrowed `&mut [f32]`: the
/// parameter, `exp_avg`, `exp_avg_sq` and, with AMSGrad, `max_exp_avg_sq`.
/// The optimizer itself only stores slice references, the group
/// hyperparameters and the step counters, so its size depends on `TENSORS`
/// and `GROUPS` alone. Borrowed buffers serve firmware better than storage
/// owned by the optimizer, for three reasons:
///
/// - The caller places each buffer in the RAM section it chooses, for
///   example the moments in a large external SRAM and the parameters in
///   tightly coupled memory.
/// - Each buffer is exactly as long as its tensor. Owned storage with a
///   const-generic size would reserve the largest tensor's size for every
///   slot.
/// - Nothing is copied in or out, and the forward pass reads the parameters
///   where they live (through [`Optimizer::param`]).
///
/// # Who owns the gradients
///
/// The caller does, and passes them to [`Optimizer::step`] as one
/// `Option<&[f32]>` per tensor, in registration order. The backward pass
/// writes gradients into buffers the caller owns anyway, clipping
/// ([`crate::clip_grad_norm`]) rewrites them in place before the step, and
/// the same buffers can be reused for gradient accumulation. So there is no
/// `zero_grad` here: the caller clears its gradient buffers (or passes
/// `None` for a tensor that got no gradient this step).
///
/// # Steps and skipped tensors
///
/// A tensor whose gradient is `None` is skipped, as torch skips a parameter
/// whose `.grad` is `None`: no decay, no moment update, and its step counter
/// stays put. Tensors of one group can therefore be at different step
/// counts. The scalars of a step ([`StepScalars`]) depend on the group and
/// the step count only. So [`Optimizer::step`] computes them once per
/// distinct `(group, step count)` pair in a step and reuses them for every
/// tensor with that pair, found by a linear search in a table of at most
/// `TENSORS` entries on the stack. In the common case of one group in
/// lockstep, that is one `StepScalars::new` per step.
///
/// # Errors leave everything unchanged
///
/// Every method that writes checks all of its input first. When a step
/// returns an error, or [`Optimizer::step_checked`] skips a step for a
/// non-finite gradient, no parameter, moment or step counter has changed.
///
/// # Example
///
/// ```
/// use adamw::{Hyperparams, Optimizer, TensorBuffers};
///
/// let (mut w, mut w_m, mut w_v) = ([0.5f32; 4], [0.0f32; 4], [0.0f32; 4]);
/// let (mut b, mut b_m, mut b_v) = ([0.0f32; 2], [0.0f32; 2], [0.0f32; 2]);
///
/// let mut opt = Optimizer::<2, 2>::new();
/// let decayed = opt.add_group(Hyperparams { lr: 1e-2, ..Hyperparams::DEFAULT })?;
/// let no_decay = opt.add_group(Hyperparams { lr: 1e-2, weight_decay: 0.0, ..Hyperparams::DEFAULT })?;
/// let weight = opt.add_tensor(decayed, TensorBuffers {
///     param: &mut w, exp_avg: &mut w_m, exp_avg_sq: &mut w_v, max_exp_avg_sq: None,
/// })?;
/// let bias = opt.add_tensor(no_decay, TensorBuffers {
///     param: &mut b, exp_avg: &mut b_m, exp_avg_sq: &mut b_v, max_exp_avg_sq: None,
/// })?;
///
/// let (grad_w, grad_b) = ([0.1f32; 4], [-0.2f32; 2]);
/// opt.step(&[Some(&grad_w), Some(&grad_b)])?;
///
/// // The forward pass reads the parameters between steps.
/// assert!(opt.param(weight)?[0] < 0.5);
/// assert!(opt.param(bias)?[0] > 0.0);
/// assert_eq!(opt.step_count(weight)?, 1);
/// # Ok::<(), adamw::OptimizerError>(())
/// ```
#[derive(Debug)]
pub struct Optimizer<'a, const TENSORS: usize, const GROUPS: usize> {
    pub(crate) groups: Vec<Hyperparams, GROUPS>,
    pub(crate) slots: Vec<Slot<'a>, TENSORS>,
}

impl<const TENSORS: usize, const GROUPS: usize> Default for Optimizer<'_, TENSORS, GROUPS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const TENSORS: usize, const GROUPS: usize> Optimizer<'a, TENSORS, GROUPS> {
    /// Creates an optimizer with no groups and no tensors.
    pub const fn new() -> Self {
        Optimizer {
            groups: Vec::new(),
            slots: Vec::new(),
        }
    }

    /// Adds a parameter group and returns its index (0 for the first group,
    /// then 1, 2, ...).
    ///
    /// For `torch.optim.Adam`'s `weight_decay` (L2 added to the gradient),
    /// set `decay_mode` to [`crate::WeightDecay::CoupledL2`]; the default,
    /// [`crate::WeightDecay::Decoupled`], is `torch.optim.AdamW`'s.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::Hyperparams`] when [`Hyperparams::validate`]
    /// rejects `hyper`, and [`OptimizerError::GroupCapacityFull`] when
    /// `GROUPS` groups exist already.
    pub fn add_group(&mut self, hyper: Hyperparams) -> Result<usize, OptimizerError> {
        let group = self.groups.len();
        hyper
            .validate()
            .map_err(|error| OptimizerError::Hyperparams { group, error })?;
        self.groups
            .push(hyper)
            .map_err(|_| OptimizerError::GroupCapacityFull { capacity: GROUPS })?;
        Ok(group)
    }

    /// Registers a tensor in `group` and returns its index (0 for the first
    /// tensor, then 1, 2, ...). Gradients are passed to the step in this
    /// order.
    ///
    /// The moments (and `max_exp_avg_sq`) are set to zero and the step
    /// counter starts at 0, which is torch's state before a parameter's
    /// first step. So the state buffers may contain any values when they are
    /// passed in, for example after a reset.
    /// Use [`Optimizer::restore`] to resume from a saved state.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownGroup`], [`OptimizerError::LengthMismatch`]
    /// when a buffer is not as long as `param`,
    /// [`OptimizerError::MaxExpAvgSqMismatch`] when `max_exp_avg_sq` is
    /// given without `amsgrad` or missing with it, and
    /// [`OptimizerError::TensorCapacityFull`]. Nothing is written when an
    /// error is returned.
    pub fn add_tensor(
        &mut self,
        group: usize,
        buffers: TensorBuffers<'a>,
    ) -> Result<usize, OptimizerError> {
        let tensor = self.slots.len();
        let hyper = self.group(group)?;
        let TensorBuffers {
            param,
            exp_avg,
            exp_avg_sq,
            max_exp_avg_sq,
        } = buffers;

        let expected = param.len();
        check_len(tensor, "exp_avg", expected, exp_avg.len())?;
        check_len(tensor, "exp_avg_sq", expected, exp_avg_sq.len())?;
        match &max_exp_avg_sq {
            Some(max) if hyper.amsgrad => check_len(tensor, "max_exp_avg_sq", expected, max.len())?,
            None if !hyper.amsgrad => {}
            _ => {
                return Err(OptimizerError::MaxExpAvgSqMismatch {
                    tensor,
                    group,
                    amsgrad: hyper.amsgrad,
                });
            }
        }
        if self.slots.is_full() {
            return Err(OptimizerError::TensorCapacityFull { capacity: TENSORS });
        }

        exp_avg.fill(0.0);
        exp_avg_sq.fill(0.0);
        let mut max_exp_avg_sq = max_exp_avg_sq;
        if let Some(max) = max_exp_avg_sq.as_deref_mut() {
            max.fill(0.0);
        }
        let slot = Slot {
            param,
            exp_avg,
            exp_avg_sq,
            max_exp_avg_sq,
            group,
            step: 0,
        };
        // Cannot fail: fullness was checked above.
        self.slots
            .push(slot)
            .map_err(|_| OptimizerError::TensorCapacityFull { capacity: TENSORS })?;
        Ok(tensor)
    }

    /// Returns the number of registered tensors.
    pub fn tensor_count(&self) -> usize {
        self.slots.len()
    }

    /// Returns the number of parameter groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Returns the hyperparameters of `group`.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownGroup`].
    pub fn hyperparams(&self, group: usize) -> Result<&Hyperparams, OptimizerError> {
        self.group(group)
    }

    /// Replaces the hyperparameters of `group`, for example to change
    /// `weight_decay` during training.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownGroup`], [`OptimizerError::Hyperparams`]
    /// when [`Hyperparams::validate`] rejects `hyper`, and
    /// [`OptimizerError::MaxExpAvgSqMismatch`] when `amsgrad` changes and a
    /// tensor of the group was registered for the other setting. Nothing
    /// changes when an error is returned.
    pub fn set_hyperparams(
        &mut self,
        group: usize,
        hyper: Hyperparams,
    ) -> Result<(), OptimizerError> {
        self.group(group)?;
        hyper
            .validate()
            .map_err(|error| OptimizerError::Hyperparams { group, error })?;
        for (tensor, slot) in self.slots.iter().enumerate() {
            if slot.group == group && slot.max_exp_avg_sq.is_some() != hyper.amsgrad {
                return Err(OptimizerError::MaxExpAvgSqMismatch {
                    tensor,
                    group,
                    amsgrad: hyper.amsgrad,
                });
            }
        }
        if let Some(slot) = self.groups.get_mut(group) {
            *slot = hyper;
        }
        Ok(())
    }

    /// Sets the learning rate of `group`, as a scheduler sets
    /// `param_groups[group]["lr"]` in torch.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownGroup`], and [`OptimizerError::Hyperparams`]
    /// when `lr` is negative or not finite. Nothing changes when an error is
    /// returned.
    pub fn set_lr(&mut self, group: usize, lr: f64) -> Result<(), OptimizerError> {
        let hyper = Hyperparams {
            lr,
            ..*self.group(group)?
        };
        self.set_hyperparams(group, hyper)
    }

    /// Returns the parameter values of `tensor`, for the forward pass.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownTensor`].
    pub fn param(&self, tensor: usize) -> Result<&[f32], OptimizerError> {
        Ok(&self.slot(tensor)?.param[..])
    }

    /// Returns the parameter values of `tensor` for writing, for example to
    /// load pretrained weights after registration.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownTensor`].
    pub fn param_mut(&mut self, tensor: usize) -> Result<&mut [f32], OptimizerError> {
        let tensors = self.slots.len();
        match self.slots.get_mut(tensor) {
            Some(slot) => Ok(&mut slot.param[..]),
            None => Err(OptimizerError::UnknownTensor { tensor, tensors }),
        }
    }

    /// Returns the first moment (`exp_avg`) of `tensor`.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownTensor`].
    pub fn exp_avg(&self, tensor: usize) -> Result<&[f32], OptimizerError> {
        Ok(&self.slot(tensor)?.exp_avg[..])
    }

    /// Returns the second moment (`exp_avg_sq`) of `tensor`.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownTensor`].
    pub fn exp_avg_sq(&self, tensor: usize) -> Result<&[f32], OptimizerError> {
        Ok(&self.slot(tensor)?.exp_avg_sq[..])
    }

    /// Returns the AMSGrad running maximum of `tensor`, `None` when its
    /// group has `amsgrad` off.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownTensor`].
    pub fn max_exp_avg_sq(&self, tensor: usize) -> Result<Option<&[f32]>, OptimizerError> {
        Ok(self.slot(tensor)?.max_exp_avg_sq.as_deref())
    }

    /// Returns the number of steps applied to `tensor` (torch's
    /// `state["step"]`).
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownTensor`].
    pub fn step_count(&self, tensor: usize) -> Result<u64, OptimizerError> {
        Ok(self.slot(tensor)?.step)
    }

    /// Returns the parameter group of `tensor`.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::UnknownTensor`].
    pub fn group_of(&self, tensor: usize) -> Result<usize, OptimizerError> {
        Ok(self.slot(tensor)?.group)
    }

    /// Runs one step over every tensor whose gradient is `Some`, as
    /// `torch.optim.AdamW.step()` with `foreach=False, fused=False`.
    ///
    /// `grads` has one entry per registered tensor, in registration order.
    /// A `None` entry skips that tensor: it is not decayed, its moments are
    /// not updated and its step counter does not advance. Non-finite
    /// gradients are applied as they are, as torch does; use
    /// [`Optimizer::step_checked`] to skip such steps.
    ///
    /// A step counter that reached `u64::MAX` stays there.
    ///
    /// # Errors
    ///
    /// [`OptimizerError::GradCountMismatch`] when `grads.len()` is not the
    /// number of tensors, [`OptimizerError::LengthMismatch`] when a gradient
    /// is not as long as its parameter, and [`OptimizerError::Hyperparams`]
    /// from the kernel. Nothing is written when an error is returned.
    pub fn step(&mut self, grads: &[Option<&[f32]>]) -> Result<(), OptimizerError> {
        let plan = self.plan(grads)?;
        self.apply(grads, &plan)
    }

    /// Runs one step like [`Optimizer::step`] unless a gradient contains a
    /// NaN or an infinity, in which case the whole step is skipped and
    /// nothing changes, as `torch.amp.GradScaler.step` skips the optimizer
    /// step when it finds an infinite or NaN gradient.
    ///
    /// Every gradient is scanned once before anything is written.
    ///
    /// # Errors
    ///
    /// As [`Optimizer::step`]. Input errors are reported before the scan
    /// for non-finite values.
    pub fn step_checked(
        &mut self,
        grads: &[Option<&[f32]>],
    ) -> Result<StepOutcome, OptimizerError> {
        let plan = self.plan(grads)?;
        for (tensor, grad) in grads.iter().enumerate() {
            let Some(grad) = grad else { continue };
            if let Some(index) = grad.iter().position(|g| !g.is_finite()) {
                return Ok(StepOutcome::SkippedNonFinite { tensor, index });
            }
        }
        self.apply(grads, &plan)?;
        Ok(StepOutcome::Applied)
    }

    /// Checks `grads` against the registered tensors and computes the step
    /// scalars of each distinct `(group, step count)` pair, without writing.
    fn plan(&self, grads: &[Option<&[f32]>]) -> Result<Plan<TENSORS>, OptimizerError> {
        if grads.len() != self.slots.len() {
            return Err(OptimizerError::GradCountMismatch {
                expected: self.slots.len(),
                found: grads.len(),
            });
        }

        let mut plan = Plan {
            scalars: Vec::new(),
            slot_scalars: Vec::new(),
        };
        for (tensor, (slot, grad)) in self.slots.iter().zip(grads).enumerate() {
            let entry = match grad {
                None => None,
                Some(grad) => {
                    check_len(tensor, "grad", slot.param.len(), grad.len())?;
                    let amsgrad = self.group(slot.group)?.amsgrad;
                    if slot.max_exp_avg_sq.is_some() != amsgrad {
                        return Err(OptimizerError::MaxExpAvgSqMismatch {
                            tensor,
                            group: slot.group,
                            amsgrad,
                        });
                    }
                    let t = slot.step.saturating_add(1);
                    Some(self.scalars_for(&mut plan, slot.group, t)?)
                }
            };
            // Cannot fail: there are at most TENSORS slots.
            let _ = plan.slot_scalars.push(entry);
        }
        Ok(plan)
    }

    /// Returns the index in `plan.scalars` of the scalars for `(group, t)`,
    /// computing them on first use.
    fn scalars_for(
        &self,
        plan: &mut Plan<TENSORS>,
        group: usize,
        t: u64,
    ) -> Result<usize, OptimizerError> {
        if let Some(i) = plan
            .scalars
            .iter()
            .position(|&(g, step, _)| g == group && step == t)
        {
            return Ok(i);
        }
        let hyper = self.group(group)?;
        let scalars = StepScalars::new(hyper, t)
            .map_err(|error| OptimizerError::Hyperparams { group, error })?;
        // Cannot fail: each tensor adds at most one entry.
        let _ = plan.scalars.push((group, t, scalars));
        Ok(plan.scalars.len() - 1)
    }

    /// Applies a checked plan. The kernel repeats the checks of `plan`, so
    /// its errors cannot occur here.
    fn apply(
        &mut self,
        grads: &[Option<&[f32]>],
        plan: &Plan<TENSORS>,
    ) -> Result<(), OptimizerError> {
        let work = self.slots.iter_mut().zip(grads).zip(&plan.slot_scalars);
        for (tensor, ((slot, grad), entry)) in work.enumerate() {
            let (Some(grad), Some(i)) = (grad, entry) else {
                continue;
            };
            let Some(&(group, t, scalars)) = plan.scalars.get(*i) else {
                continue;
            };
            scalars
                .apply(
                    slot.param,
                    grad,
                    slot.exp_avg,
                    slot.exp_avg_sq,
                    slot.max_exp_avg_sq.as_deref_mut(),
                )
                .map_err(|error| kernel_error(tensor, group, error))?;
            slot.step = t;
        }
        Ok(())
    }

    fn group(&self, group: usize) -> Result<&Hyperparams, OptimizerError> {
        self.groups.get(group).ok_or(OptimizerError::UnknownGroup {
            group,
            groups: self.groups.len(),
        })
    }

    fn slot(&self, tensor: usize) -> Result<&Slot<'a>, OptimizerError> {
        self.slots.get(tensor).ok_or(OptimizerError::UnknownTensor {
            tensor,
            tensors: self.slots.len(),
        })
    }
}

/// The checked work of one step: the distinct scalars, and for each tensor
/// the index of its scalars (`None` for a skipped tensor).
struct Plan<const TENSORS: usize> {
    scalars: Vec<(usize, u64, StepScalars), TENSORS>,
    slot_scalars: Vec<Option<usize>, TENSORS>,
}

fn check_len(
    tensor: usize,
    name: &'static str,
    expected: usize,
    found: usize,
) -> Result<(), OptimizerError> {
    if expected == found {
        Ok(())
    } else {
        Err(OptimizerError::LengthMismatch {
            tensor,
            name,
            expected,
            found,
        })
    }
}

/// Maps a kernel error from a checked step to the optimizer's error.
fn kernel_error(tensor: usize, group: usize, error: Error) -> OptimizerError {
    match error {
        Error::LengthMismatch {
            name,
            expected,
            found,
        } => OptimizerError::LengthMismatch {
            tensor,
            name,
            expected,
            found,
        },
        Error::MaxExpAvgSqMismatch { amsgrad } => OptimizerError::MaxExpAvgSqMismatch {
            tensor,
            group,
            amsgrad,
        },
        error => OptimizerError::Hyperparams { group, error },
    }
}
