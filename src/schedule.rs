//! Learning-rate schedules with the formulas of `torch.optim.lr_scheduler`
//! in torch 2.15: [`LinearLr`], [`CosineAnnealingLr`], and [`SequentialLr`]
//! to chain them (for example a linear warmup, then a cosine decay).
//!
//! Each schedule follows one learning rate, in `f64` as Python floats are.
//! Creating a schedule is torch's constructor (which already applies the
//! schedule's value for epoch 0), and [`LrScheduler::step`] is torch's
//! `scheduler.step()`. Pass the result to [`crate::Optimizer::set_lr`].
//! torch's schedulers update every parameter group from its own initial
//! learning rate; here, make one schedule per group whose learning rate
//! differs.
//!
//! torch's `step()` uses the recursive forms of its `get_lr` methods, which
//! compute each learning rate from the previous one, and uses the closed
//! forms (`_get_closed_form_lr`) only when [`SequentialLr`] restarts a
//! schedule at a milestone. These types do the same, with the same `f64`
//! operations in the same order. So the values match torch's to the last bit
//! wherever `libm::cos` and the C library's `cos` that Python calls agree.
//! Measured against torch 2.15 with glibc's `cos` (`tests/schedule.rs`):
//! LinearLR bit for bit, CosineAnnealingLR within 3 ulp of `f64`.

use heapless::Vec;

/// The reason a schedule could not be created.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A parameter is outside the range that torch accepts (or that its
    /// formulas can evaluate without dividing by zero).
    InvalidParameter {
        /// The parameter's name, as torch spells it.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// The accepted range, for the message.
        allowed: &'static str,
    },
    /// A [`SequentialLr`] was given no schedule.
    NoSchedules,
    /// [`SequentialLr`] needs one milestone fewer than schedules.
    MilestoneCountMismatch {
        /// The number of milestones required: the number of schedules - 1.
        expected: usize,
        /// The number of milestones given.
        found: usize,
    },
    /// The milestones of a [`SequentialLr`] are not strictly increasing.
    MilestonesNotIncreasing {
        /// The index of the first milestone that is not larger than the one
        /// before it.
        index: usize,
    },
}

impl core::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ScheduleError::InvalidParameter {
                name,
                value,
                allowed,
            } => write!(f, "invalid {name}: {value:e}; allowed: {allowed}"),
            ScheduleError::NoSchedules => {
                f.write_str("a sequential schedule needs at least one schedule")
            }
            ScheduleError::MilestoneCountMismatch { expected, found } => write!(
                f,
                "expected {expected} milestones (one fewer than the schedules) but got {found}"
            ),
            ScheduleError::MilestonesNotIncreasing { index } => write!(
                f,
                "milestone {index} is not larger than milestone {}; milestones must increase strictly",
                index.saturating_sub(1)
            ),
        }
    }
}

impl core::error::Error for ScheduleError {}

/// A learning-rate schedule stepped once per epoch (or per optimizer step,
/// as the training loop chooses), like `torch.optim.lr_scheduler.LRScheduler`.
pub trait LrScheduler {
    /// Advances the schedule by one epoch and returns the new learning rate,
    /// as torch's `scheduler.step()` followed by `get_last_lr()`.
    fn step(&mut self) -> f64;

    /// Returns the current learning rate, torch's `get_last_lr()`.
    fn lr(&self) -> f64;

    /// Returns the current epoch, torch's `last_epoch`: 0 after creation.
    fn last_epoch(&self) -> u64;
}

/// `torch.optim.lr_scheduler.LinearLR`: the learning rate goes linearly from
/// `base_lr * start_factor` at epoch 0 to `base_lr * end_factor` at epoch
/// `total_iters`, then stays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearLr {
    base_lr: f64,
    start_factor: f64,
    end_factor: f64,
    total_iters: u64,
    last_epoch: u64,
    lr: f64,
}

impl LinearLr {
    /// Creates the schedule at epoch 0, with learning rate
    /// `base_lr * start_factor`.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::InvalidParameter`] when `base_lr` is negative or not
    /// finite, `start_factor` is not in (0, 1], `end_factor` is not in
    /// [0, 1] (torch's ranges), or `total_iters` is 0 (torch accepts 0 but
    /// then divides by zero when a [`SequentialLr`] restarts the schedule).
    pub fn new(
        base_lr: f64,
        start_factor: f64,
        end_factor: f64,
        total_iters: u64,
    ) -> Result<Self, ScheduleError> {
        check_base_lr(base_lr)?;
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return Err(ScheduleError::InvalidParameter {
                name: "start_factor",
                value: start_factor,
                allowed: "0 < start_factor <= 1",
            });
        }
        if !(0.0..=1.0).contains(&end_factor) {
            return Err(ScheduleError::InvalidParameter {
                name: "end_factor",
                value: end_factor,
                allowed: "0 <= end_factor <= 1",
            });
        }
        if total_iters == 0 {
            return Err(ScheduleError::InvalidParameter {
                name: "total_iters",
                value: 0.0,
                allowed: "total_iters >= 1",
            });
        }
        let mut schedule = LinearLr {
            base_lr,
            start_factor,
            end_factor,
            total_iters,
            last_epoch: 0,
            lr: base_lr,
        };
        schedule.initial_step();
        Ok(schedule)
    }

    /// torch's `_initial_step`: epoch 0 from the group's initial learning
    /// rate. `get_lr` checks `last_epoch == 0` before `_is_initial`, so
    /// LinearLR applies `start_factor` here.
    fn initial_step(&mut self) {
        self.last_epoch = 0;
        self.lr = self.base_lr * self.start_factor;
    }

    /// torch's `_update_lr(0)`: the closed form at epoch 0.
    fn restart(&mut self) {
        self.last_epoch = 0;
        // `min(total_iters, last_epoch)` at epoch 0.
        let progress = 0.0;
        self.lr = self.base_lr
            * (self.start_factor
                + (self.end_factor - self.start_factor) * progress / self.total_iters as f64);
    }
}

impl LrScheduler for LinearLr {
    fn step(&mut self) -> f64 {
        self.last_epoch = self.last_epoch.saturating_add(1);
        if self.last_epoch <= self.total_iters {
            let e = self.last_epoch;
            let diff = self.end_factor - self.start_factor;
            let denominator = self.total_iters as f64 * self.start_factor + (e - 1) as f64 * diff;
            self.lr *= 1.0 + diff / denominator;
        }
        self.lr
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn last_epoch(&self) -> u64 {
        self.last_epoch
    }
}

/// `torch.optim.lr_scheduler.CosineAnnealingLR`: the learning rate follows
/// half a cosine from `base_lr` at epoch 0 to `eta_min` at epoch `t_max`,
/// then rises again over the next `t_max` epochs, and so on (torch does not
/// stop at `t_max`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealingLr {
    base_lr: f64,
    t_max: u64,
    eta_min: f64,
    last_epoch: u64,
    lr: f64,
}

impl CosineAnnealingLr {
    /// Creates the schedule at epoch 0, with learning rate `base_lr`.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::InvalidParameter`] when `base_lr` or `eta_min` is
    /// negative or not finite, or `t_max` is 0 (torch divides by `T_max`).
    pub fn new(base_lr: f64, t_max: u64, eta_min: f64) -> Result<Self, ScheduleError> {
        check_base_lr(base_lr)?;
        if !(eta_min >= 0.0 && eta_min.is_finite()) {
            return Err(ScheduleError::InvalidParameter {
                name: "eta_min",
                value: eta_min,
                allowed: "finite and >= 0",
            });
        }
        if t_max == 0 {
            return Err(ScheduleError::InvalidParameter {
                name: "T_max",
                value: 0.0,
                allowed: "T_max >= 1",
            });
        }
        let mut schedule = CosineAnnealingLr {
            base_lr,
            t_max,
            eta_min,
            last_epoch: 0,
            lr: base_lr,
        };
        schedule.initial_step();
        Ok(schedule)
    }

    /// torch's `_initial_step`: `get_lr` returns the group's learning rate
    /// unchanged, which is the initial one.
    fn initial_step(&mut self) {
        self.last_epoch = 0;
        self.lr = self.base_lr;
    }

    /// torch's `_update_lr(0)`: `_get_closed_form_lr` at epoch 0.
    fn restart(&mut self) {
        self.last_epoch = 0;
        let angle = core::f64::consts::PI * 0.0 / self.t_max as f64;
        self.lr = self.eta_min + (self.base_lr - self.eta_min) * (1.0 + libm::cos(angle)) / 2.0;
    }
}

impl LrScheduler for CosineAnnealingLr {
    fn step(&mut self) -> f64 {
        use core::f64::consts::PI;

        self.last_epoch = self.last_epoch.saturating_add(1);
        let e = self.last_epoch;
        let t_max = self.t_max as f64;

        // torch's get_lr also has a branch for `_step_count == 1 and
        // last_epoch > 0`, which `step()` reaches only for a scheduler
        // created with `last_epoch >= 0`; these types always start at 0.
        //
        // Python's `(last_epoch - 1 - T_max) % (2 * T_max) == 0` is
        // `last_epoch - 1 + T_max ≡ 0 (mod 2 T_max)`: the epoch after a
        // minimum, where the recursive ratio below would divide by 0.
        let period = 2 * self.t_max as u128;
        if (e as u128 - 1 + self.t_max as u128).is_multiple_of(period) {
            self.lr += (self.base_lr - self.eta_min) * (1.0 - libm::cos(PI / t_max)) / 2.0;
        } else {
            let now = 1.0 + libm::cos(PI * e as f64 / t_max);
            let before = 1.0 + libm::cos(PI * (e - 1) as f64 / t_max);
            self.lr = now / before * (self.lr - self.eta_min) + self.eta_min;
        }
        self.lr
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn last_epoch(&self) -> u64 {
        self.last_epoch
    }
}

/// One schedule of a [`SequentialLr`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// A [`LinearLr`], typically a warmup.
    Linear(LinearLr),
    /// A [`CosineAnnealingLr`].
    Cosine(CosineAnnealingLr),
}

impl Schedule {
    fn initial_step(&mut self) {
        match self {
            Schedule::Linear(s) => s.initial_step(),
            Schedule::Cosine(s) => s.initial_step(),
        }
    }

    fn restart(&mut self) {
        match self {
            Schedule::Linear(s) => s.restart(),
            Schedule::Cosine(s) => s.restart(),
        }
    }
}

impl LrScheduler for Schedule {
    fn step(&mut self) -> f64 {
        match self {
            Schedule::Linear(s) => s.step(),
            Schedule::Cosine(s) => s.step(),
        }
    }

    fn lr(&self) -> f64 {
        match self {
            Schedule::Linear(s) => s.lr(),
            Schedule::Cosine(s) => s.lr(),
        }
    }

    fn last_epoch(&self) -> u64 {
        match self {
            Schedule::Linear(s) => s.last_epoch(),
            Schedule::Cosine(s) => s.last_epoch(),
        }
    }
}

/// `torch.optim.lr_scheduler.SequentialLR`: runs `schedules[0]` until
/// `milestones[0]`, then `schedules[1]` restarted at its epoch 0, and so on,
/// for up to `N` schedules.
///
/// # Example
///
/// ```
/// use adamw::{CosineAnnealingLr, LinearLr, LrScheduler, Schedule, SequentialLr};
///
/// // 5 epochs of linear warmup from lr / 10, then cosine decay over 20.
/// let warmup = LinearLr::new(1e-3, 0.1, 1.0, 5)?;
/// let decay = CosineAnnealingLr::new(1e-3, 20, 0.0)?;
/// let mut schedule =
///     SequentialLr::<2>::new([Schedule::Linear(warmup), Schedule::Cosine(decay)], &[5])?;
///
/// assert!((schedule.lr() - 1e-4).abs() < 1e-12);
/// for _ in 0..5 {
///     schedule.step();
/// }
/// assert_eq!(schedule.lr(), 1e-3);
/// # Ok::<(), adamw::ScheduleError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SequentialLr<const N: usize> {
    schedules: Vec<Schedule, N>,
    milestones: Vec<u64, N>,
    last_epoch: u64,
    current: usize,
}

impl<const N: usize> SequentialLr<N> {
    /// Chains `schedules`, switching to `schedules[i + 1]` at epoch
    /// `milestones[i]`. The schedules' own epochs are reset, as torch's
    /// constructor does, and the schedule active at epoch 0 gives the
    /// current learning rate.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::NoSchedules`] when `N` is 0,
    /// [`ScheduleError::MilestoneCountMismatch`] unless there are `N - 1`
    /// milestones, and [`ScheduleError::MilestonesNotIncreasing`] unless
    /// they increase strictly (torch's `bisect_right` assumes sorted
    /// milestones and does not check).
    pub fn new(schedules: [Schedule; N], milestones: &[u64]) -> Result<Self, ScheduleError> {
        if N == 0 {
            return Err(ScheduleError::NoSchedules);
        }
        let expected = N - 1;
        if milestones.len() != expected {
            return Err(ScheduleError::MilestoneCountMismatch {
                expected,
                found: milestones.len(),
            });
        }
        for (index, pair) in milestones.windows(2).enumerate() {
            if let [before, after] = pair
                && after <= before
            {
                return Err(ScheduleError::MilestonesNotIncreasing { index: index + 1 });
            }
        }

        let mut sequence = SequentialLr {
            schedules: Vec::new(),
            milestones: Vec::new(),
            last_epoch: 0,
            current: 0,
        };
        // Neither push can fail: there are N schedules and N - 1
        // milestones. `Vec::from_iter` would panic on overflow instead.
        for schedule in schedules {
            let _ = sequence.schedules.push(schedule);
        }
        for &milestone in milestones {
            let _ = sequence.milestones.push(milestone);
        }
        sequence.current = sequence.schedule_index(0);
        if let Some(schedule) = sequence.schedules.get_mut(sequence.current) {
            schedule.initial_step();
        }
        Ok(sequence)
    }

    /// Returns the index of the schedule active at `epoch`: Python's
    /// `bisect_right(milestones, epoch)`.
    fn schedule_index(&self, epoch: u64) -> usize {
        self.milestones.iter().take_while(|&&m| m <= epoch).count()
    }

    /// Returns the index of the schedule in use.
    pub fn current_schedule(&self) -> usize {
        self.current
    }
}

impl<const N: usize> LrScheduler for SequentialLr<N> {
    fn step(&mut self) -> f64 {
        self.last_epoch = self.last_epoch.saturating_add(1);
        let index = self.schedule_index(self.last_epoch);
        let at_milestone = index > 0 && self.milestones.get(index - 1) == Some(&self.last_epoch);
        self.current = index;
        match self.schedules.get_mut(index) {
            Some(schedule) if at_milestone => schedule.restart(),
            Some(schedule) => {
                schedule.step();
            }
            None => {}
        }
        self.lr()
    }

    fn lr(&self) -> f64 {
        self.schedules.get(self.current).map_or(0.0, Schedule::lr)
    }

    fn last_epoch(&self) -> u64 {
        self.last_epoch
    }
}

fn check_base_lr(base_lr: f64) -> Result<(), ScheduleError> {
    if base_lr >= 0.0 && base_lr.is_finite() {
        Ok(())
    } else {
        Err(ScheduleError::InvalidParameter {
            name: "base_lr",
            value: base_lr,
            allowed: "finite and >= 0",
        })
    }
}
