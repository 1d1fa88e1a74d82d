//! A host-only step that splits one tensor across threads (`std` feature).
//!
//! An element's result depends only on its own inputs and the step's
//! scalars, whether a vector lane or the tail computes it. Each chunk also
//! starts at a multiple of 8 elements, so the chunks run the same 8-lane
//! groups as one call over the whole tensor. The results are therefore
//! bit-identical to [`StepScalars::apply`].

extern crate std;

use core::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::vec::Vec;

use crate::kernel::{self, Buffers};
use crate::{Error, StepScalars};

/// Chunk lengths are multiples of this, the lane count of the vector body.
const CHUNK_ALIGN: usize = 8;

impl StepScalars {
    /// Applies this step to one tensor, in place, split across up to
    /// `threads` threads.
    ///
    /// The tensor is cut into `threads` chunks of equal length, rounded up to
    /// a multiple of 8 elements, but no chunk is made shorter than 4096
    /// elements, so a short tensor gets fewer chunks than `threads`. The
    /// calling thread runs the last chunk and scoped threads run the others.
    /// If the operating system cannot start a thread, the calling thread runs
    /// that chunk itself, so the step still completes. Unlike `apply`, this
    /// function allocates: one slot per chunk and the threads' stacks.
    ///
    /// The results are bit-identical to [`StepScalars::apply`] for every
    /// thread count. Starting a thread costs some microseconds, so this pays
    /// off only for large tensors: see `BENCHMARKS.md` for measured sizes.
    ///
    /// # Errors
    ///
    /// As [`StepScalars::apply`]: [`Error::LengthMismatch`] or
    /// [`Error::MaxExpAvgSqMismatch`]. Every check runs before any thread
    /// starts, so nothing is written when an error is returned.
    ///
    /// # Example
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use adamw::{Hyperparams, StepScalars};
    ///
    /// let scalars = StepScalars::new(&Hyperparams::DEFAULT, 1)?;
    /// let n = 1000;
    /// let (mut p, mut m, mut v) = (vec![1.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
    /// let grad = vec![0.5f32; n];
    /// let threads = NonZeroUsize::new(2).unwrap();
    /// scalars.apply_parallel(threads, &mut p, &grad, &mut m, &mut v, None)?;
    ///
    /// let (mut p1, mut m1, mut v1) = (vec![1.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
    /// scalars.apply(&mut p1, &grad, &mut m1, &mut v1, None)?;
    /// assert_eq!(p, p1);
    /// # Ok::<(), adamw::Error>(())
    /// ```
    pub fn apply_parallel(
        &self,
        threads: NonZeroUsize,
        param: &mut [f32],
        grad: &[f32],
        exp_avg: &mut [f32],
        exp_avg_sq: &mut [f32],
        max_exp_avg_sq: Option<&mut [f32]>,
    ) -> Result<(), Error> {
        let buffers = Buffers::new(self, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)?;
        let chunk = chunk_len(buffers.param.len(), threads);
        if chunk >= buffers.param.len() {
            kernel::apply(self, buffers);
            return Ok(());
        }

        // Each chunk waits in a slot until a thread takes it, so a chunk whose
        // thread failed to start is still there for the calling thread.
        let mut slots = Vec::with_capacity(buffers.param.len().div_ceil(chunk));
        let mut rest = buffers;
        while rest.param.len() > chunk {
            let (head, tail) = split(rest, chunk);
            slots.push(Mutex::new(Some(head)));
            rest = tail;
        }

        thread::scope(|scope| {
            let mut unstarted = Vec::new();
            for slot in &slots {
                let spawned =
                    thread::Builder::new().spawn_scoped(scope, move || run_slot(self, slot));
                if spawned.is_err() {
                    unstarted.push(slot);
                }
            }
            kernel::apply(self, rest);
            for slot in unstarted {
                run_slot(self, slot);
            }
        });
        Ok(())
    }
}

/// Runs the chunk in `slot`, if no other thread has taken it.
fn run_slot(scalars: &StepScalars, slot: &Mutex<Option<Buffers<'_>>>) {
    // The kernel has no panic path, so no thread can poison the lock.
    // `into_inner` keeps this function free of panics all the same.
    let taken = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(buffers) = taken {
        kernel::apply(scalars, buffers);
    }
}

/// The minimum chunk length that gets a thread of its own. A chunk this size
/// takes a few microseconds, about what starting a thread costs (an estimate,
/// not measured per machine).
const MIN_CHUNK: usize = 4096;

/// Computes the length of every chunk but the last: `len / threads` rounded
/// up to a multiple of [`CHUNK_ALIGN`]. At most one thread runs per
/// [`MIN_CHUNK`] elements, so a huge `threads` neither allocates a slot per
/// requested thread nor starts a thread per 8 elements.
fn chunk_len(len: usize, threads: NonZeroUsize) -> usize {
    let threads = threads.get().min(len.div_ceil(MIN_CHUNK)).max(1);
    let per_thread = len.div_ceil(threads);
    per_thread.div_ceil(CHUNK_ALIGN) * CHUNK_ALIGN
}

/// Splits checked buffers at element `mid`, which is at most their length.
fn split(buffers: Buffers<'_>, mid: usize) -> (Buffers<'_>, Buffers<'_>) {
    let Buffers {
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq,
    } = buffers;
    let (param_head, param_tail) = param.split_at_mut(mid);
    let (grad_head, grad_tail) = grad.split_at(mid);
    let (exp_avg_head, exp_avg_tail) = exp_avg.split_at_mut(mid);
    let (exp_avg_sq_head, exp_avg_sq_tail) = exp_avg_sq.split_at_mut(mid);
    let (max_head, max_tail) = match max_exp_avg_sq {
        Some(max) => {
            let (head, tail) = max.split_at_mut(mid);
            (Some(head), Some(tail))
        }
        None => (None, None),
    };
    let head = Buffers {
        param: param_head,
        grad: grad_head,
        exp_avg: exp_avg_head,
        exp_avg_sq: exp_avg_sq_head,
        max_exp_avg_sq: max_head,
    };
    let tail = Buffers {
        param: param_tail,
        grad: grad_tail,
        exp_avg: exp_avg_tail,
        exp_avg_sq: exp_avg_sq_tail,
        max_exp_avg_sq: max_tail,
    };
    (head, tail)
}
