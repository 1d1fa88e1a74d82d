//! The update formula, written once for one lane and for eight, and the loops
//! that run it over slices.

use wide::f32x8;

use crate::lanes::Lanes;
use crate::{Error, Rounding, StepScalars, arch};

/// The step scalars broadcast to the lane type.
#[derive(Clone, Copy)]
struct Splat<L> {
    decay: L,
    l2: L,
    lerp_weight: L,
    lerp_weight_minus_one: L,
    beta2: L,
    one_minus_beta2: L,
    bias_correction2_sqrt: L,
    neg_step_size: L,
    eps: L,
}

impl<L: Lanes> Splat<L> {
    #[inline(always)]
    fn new(s: &StepScalars) -> Self {
        Splat {
            decay: L::splat(s.decay),
            l2: L::splat(s.l2),
            lerp_weight: L::splat(s.lerp_weight),
            // Exact: `lerp_weight` is in [0.5, 1] wherever this is used.
            // Written as `-(1 - w)` rather than `w - 1` so that w = 1
            // (beta1 = 0) gives -0, and `fma(-0, d, g)` keeps the sign of zero
            // that torch's `g - d * (1 - w)` gives.
            lerp_weight_minus_one: L::splat(-(1.0 - s.lerp_weight)),
            beta2: L::splat(s.beta2),
            one_minus_beta2: L::splat(s.one_minus_beta2),
            bias_correction2_sqrt: L::splat(s.bias_correction2_sqrt),
            neg_step_size: L::splat(s.neg_step_size),
            eps: L::splat(s.eps),
        }
    }
}

/// The flags of a step, each constant for the whole step, so every branch on
/// them is taken the same way for every element.
#[derive(Clone, Copy)]
struct Flags {
    maximize: bool,
    coupled_l2: bool,
    small_lerp_weight: bool,
    amsgrad: bool,
}

impl Flags {
    fn new(s: &StepScalars) -> Self {
        Flags {
            maximize: s.maximize,
            // NOTE: a weight decay that rounds to 0 in f32 (below about
            // 1e-45) skips the L2 term here, while torch still adds
            // 0 * param, which is NaN where param is infinite.
            coupled_l2: s.l2 != 0.0,
            // torch's lerp switches formulas at |weight| = 0.5 to stay
            // accurate near both ends.
            small_lerp_weight: s.lerp_weight.abs() < 0.5,
            amsgrad: s.amsgrad,
        }
    }

    /// Returns whether these are the common flags that `arch::run_plain`
    /// handles: no `maximize`, no coupled L2 decay, the small-weight lerp
    /// formula and no AMSGrad.
    fn is_plain(self) -> bool {
        !self.maximize && !self.coupled_l2 && self.small_lerp_weight && !self.amsgrad
    }
}

/// `a * b + c`, rounded once (fused) or twice (unfused).
#[inline(always)]
fn mul_add<L: Lanes, const FUSED: bool>(a: L, b: L, c: L) -> L {
    if FUSED { a.fma(b, c) } else { a * b + c }
}

/// Computes one element's (or eight elements') step. The operations and
/// their order are those of torch's single-tensor CPU path, listed in the
/// crate documentation.
#[inline(always)]
fn update<L: Lanes, const FUSED: bool>(
    k: &Splat<L>,
    flags: Flags,
    param: L,
    grad: L,
    exp_avg: L,
    exp_avg_sq: L,
    max_exp_avg_sq: L,
) -> (L, L, L, L) {
    let mut grad = if flags.maximize { -grad } else { grad };
    if flags.coupled_l2 {
        grad = mul_add::<L, FUSED>(k.l2, param, grad);
    }

    let param = param * k.decay;

    let diff = grad - exp_avg;
    let exp_avg = if flags.small_lerp_weight {
        mul_add::<L, FUSED>(k.lerp_weight, diff, exp_avg)
    } else {
        mul_add::<L, FUSED>(k.lerp_weight_minus_one, diff, grad)
    };

    let exp_avg_sq = mul_add::<L, FUSED>(k.one_minus_beta2 * grad, grad, exp_avg_sq * k.beta2);

    let (max_exp_avg_sq, second_moment) = if flags.amsgrad {
        let max = max_exp_avg_sq.max_nan(exp_avg_sq);
        (max, max)
    } else {
        (max_exp_avg_sq, exp_avg_sq)
    };
    let denom = second_moment.sqrt() / k.bias_correction2_sqrt + k.eps;

    let param = param + (k.neg_step_size * exp_avg) / denom;

    (param, exp_avg, exp_avg_sq, max_exp_avg_sq)
}

/// The slices of one tensor, checked to have one length.
pub(crate) struct Buffers<'a> {
    pub(crate) param: &'a mut [f32],
    pub(crate) grad: &'a [f32],
    pub(crate) exp_avg: &'a mut [f32],
    pub(crate) exp_avg_sq: &'a mut [f32],
    pub(crate) max_exp_avg_sq: Option<&'a mut [f32]>,
}

impl<'a> Buffers<'a> {
    /// Checks lengths and the AMSGrad buffer against the scalars.
    pub(crate) fn new(
        scalars: &StepScalars,
        param: &'a mut [f32],
        grad: &'a [f32],
        exp_avg: &'a mut [f32],
        exp_avg_sq: &'a mut [f32],
        max_exp_avg_sq: Option<&'a mut [f32]>,
    ) -> Result<Self, Error> {
        let expected = param.len();
        check_len("grad", expected, grad.len())?;
        check_len("exp_avg", expected, exp_avg.len())?;
        check_len("exp_avg_sq", expected, exp_avg_sq.len())?;
        match &max_exp_avg_sq {
            Some(max) if scalars.amsgrad => check_len("max_exp_avg_sq", expected, max.len())?,
            None if !scalars.amsgrad => {}
            _ => {
                return Err(Error::MaxExpAvgSqMismatch {
                    amsgrad: scalars.amsgrad,
                });
            }
        }
        Ok(Buffers {
            param,
            grad,
            exp_avg,
            exp_avg_sq,
            max_exp_avg_sq,
        })
    }
}

fn check_len(name: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            name,
            expected,
            found,
        })
    }
}

/// Runs one step over checked buffers: 8 lanes at a time where the target
/// has vector registers, then one lane at a time.
pub(crate) fn apply(scalars: &StepScalars, buffers: Buffers<'_>) {
    #[cfg(all(
        target_arch = "x86_64",
        not(target_feature = "fma"),
        not(adamw_no_runtime_dispatch)
    ))]
    if arch::has_fma_avx2() {
        // SAFETY: `has_fma_avx2` returned true, so the CPU runs AVX, AVX2
        // and FMA3 instructions and the OS saves the YMM registers.
        unsafe {
            match scalars.rounding {
                Rounding::Fused => apply_mode_fma::<true>(scalars, buffers),
                Rounding::Unfused => apply_mode_fma::<false>(scalars, buffers),
            }
        }
        return;
    }

    match scalars.rounding {
        Rounding::Fused => apply_mode::<true>(scalars, buffers, arch::SIMD, true),
        Rounding::Unfused => apply_mode::<false>(scalars, buffers, arch::SIMD, true),
    }
}

/// Runs one step one lane at a time: the reference that the 8-lane body must
/// match bit for bit.
pub(crate) fn apply_scalar(scalars: &StepScalars, buffers: Buffers<'_>) {
    match scalars.rounding {
        Rounding::Fused => apply_mode::<true>(scalars, buffers, false, false),
        Rounding::Unfused => apply_mode::<false>(scalars, buffers, false, false),
    }
}

/// `plain_loop` lets the one-lane path hand steps with the common flags to
/// the backend's own loop (`arch::run_plain`), where it has one.
#[inline(never)]
fn apply_mode<const FUSED: bool>(
    scalars: &StepScalars,
    buffers: Buffers<'_>,
    simd: bool,
    plain_loop: bool,
) {
    apply_lanes::<f32x8, FUSED>(scalars, buffers, simd, plain_loop);
}

/// [`apply_mode`] with the 8-lane body on AVX2 and FMA3 instructions.
///
/// # Safety
///
/// The CPU must run AVX, AVX2 and FMA3 instructions and the OS must save the
/// YMM registers, as `arch::has_fma_avx2` checks.
#[cfg(all(
    target_arch = "x86_64",
    not(target_feature = "fma"),
    not(adamw_no_runtime_dispatch)
))]
#[target_feature(enable = "avx,avx2,fma")]
#[inline(never)]
unsafe fn apply_mode_fma<const FUSED: bool>(scalars: &StepScalars, buffers: Buffers<'_>) {
    apply_lanes::<arch::F32x8Fma, FUSED>(scalars, buffers, true, true);
}

/// Runs the body of [`apply_mode`], generic over the 8-lane vector type `V`.
#[inline(always)]
fn apply_lanes<V, const FUSED: bool>(
    scalars: &StepScalars,
    buffers: Buffers<'_>,
    simd: bool,
    plain_loop: bool,
) where
    V: Lanes + Chunk<8, Array = [f32; 8]>,
{
    let flags = Flags::new(scalars);
    let Buffers {
        param,
        grad,
        exp_avg,
        exp_avg_sq,
        max_exp_avg_sq,
    } = buffers;

    // Without AMSGrad the maximum is neither read nor written. An empty slice
    // takes its place, so each lane reads 0.
    let max_exp_avg_sq = max_exp_avg_sq.unwrap_or_default();

    if !simd {
        if plain_loop
            && flags.is_plain()
            && arch::run_plain::<FUSED>(scalars, param, grad, exp_avg, exp_avg_sq)
        {
            return;
        }
        let k = Splat::<f32>::new(scalars);
        run::<f32, 1, FUSED>(&k, flags, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq);
        return;
    }

    // Loads that straddle two cache lines cost an extra access, and the
    // arrays of a `Vec<f32>` often start 16 bytes past a line. The elements
    // before `param`'s first cache-line boundary run one lane at a time, so
    // the vector body reads and writes whole lines where the arrays share an
    // offset. Measured on Zen 4 with x86-64-v3, best of 7 runs at 16M: 14.7 ms
    // with the arrays 16 bytes past a line, 11.3 ms with them on a line.
    // Short tensors skip this, because there the one-lane head costs more
    // than it saves.
    let head = if param.len() >= ALIGN_MIN_LEN {
        cache_line_head(param.as_ptr())
    } else {
        0
    };
    let (p_head, param) = param.split_at_mut(head.min(param.len()));
    let (g_head, grad) = grad.split_at(head.min(grad.len()));
    let (m_head, exp_avg) = exp_avg.split_at_mut(head.min(exp_avg.len()));
    let (v_head, exp_avg_sq) = exp_avg_sq.split_at_mut(head.min(exp_avg_sq.len()));
    let (max_head, max_exp_avg_sq) = max_exp_avg_sq.split_at_mut(head.min(max_exp_avg_sq.len()));

    let k = Splat::<f32>::new(scalars);
    run::<f32, 1, FUSED>(&k, flags, p_head, g_head, m_head, v_head, max_head);

    // `as_chunks` splits without a bounds check, so no panic path is left.
    let (p, p_tail) = param.as_chunks_mut::<8>();
    let (g, g_tail) = grad.as_chunks::<8>();
    let (m, m_tail) = exp_avg.as_chunks_mut::<8>();
    let (v, v_tail) = exp_avg_sq.as_chunks_mut::<8>();
    let (max, max_tail) = max_exp_avg_sq.as_chunks_mut::<8>();

    // Two vectors per iteration give the out-of-order core independent work
    // while one waits for the divider or for memory. Measured on Zen 4 with
    // x86-64-v3 (best of 7), this made the step 4% faster at 64K elements,
    // 15% at 1M and 14% at 16M.
    let (p_pairs, p) = p.as_chunks_mut::<2>();
    let (g_pairs, g) = g.as_chunks::<2>();
    let (m_pairs, m) = m.as_chunks_mut::<2>();
    let (v_pairs, v) = v.as_chunks_mut::<2>();
    let (max_pairs, max) = max.as_chunks_mut::<2>();

    let k = Splat::<VectorPair<V>>::new(scalars);
    run::<VectorPair<V>, 16, FUSED>(&k, flags, p_pairs, g_pairs, m_pairs, v_pairs, max_pairs);

    let k = Splat::<V>::new(scalars);
    run::<V, 8, FUSED>(&k, flags, p, g, m, v, max);

    let k = Splat::<f32>::new(scalars);
    run::<f32, 1, FUSED>(&k, flags, p_tail, g_tail, m_tail, v_tail, max_tail);
}

/// The shortest tensor whose vector body is aligned to a cache line first.
const ALIGN_MIN_LEN: usize = 4096;

/// Counts the `f32` elements from `start` to the next 64-byte boundary.
#[inline(always)]
fn cache_line_head(start: *const f32) -> usize {
    let past_line = start as usize % 64;
    (64 - past_line) % 64 / core::mem::size_of::<f32>()
}

/// Runs `update` over arrays of `N` elements, where `L` has `N` lanes. The
/// slices have one length, except `max_exp_avg_sq`, which is empty without
/// AMSGrad.
#[inline(always)]
fn run<L: Lanes + Chunk<N>, const N: usize, const FUSED: bool>(
    k: &Splat<L>,
    flags: Flags,
    param: &mut [L::Array],
    grad: &[L::Array],
    exp_avg: &mut [L::Array],
    exp_avg_sq: &mut [L::Array],
    max_exp_avg_sq: &mut [L::Array],
) {
    let mut max_slots = max_exp_avg_sq.iter_mut();
    let lanes = param.iter_mut().zip(grad).zip(exp_avg).zip(exp_avg_sq);
    for (((p, g), m), v) in lanes {
        if N > 1 {
            prefetch_ahead(p);
            prefetch_ahead(g);
            prefetch_ahead(m);
            prefetch_ahead(v);
        }
        let max_slot = max_slots.next();
        let max_in = max_slot.as_deref().map_or(L::splat(0.0), L::load);

        let (p_out, m_out, v_out, max_out) = update::<L, FUSED>(
            k,
            flags,
            L::load(p),
            L::load(g),
            L::load(m),
            L::load(v),
            max_in,
        );

        L::store(p_out, p);
        L::store(m_out, m);
        L::store(v_out, v);
        if let Some(slot) = max_slot {
            L::store(max_out, slot);
        }
    }
}

/// Prefetches the cache line `arch::PREFETCH_BYTES` past `chunk`, where the
/// backend has a prefetch instruction. The address may lie past the end
/// of the slice: a prefetch never faults and never changes a result.
#[inline(always)]
fn prefetch_ahead<T>(chunk: &T) {
    #[cfg(all(
        any(target_arch = "x86_64", target_arch = "x86"),
        target_feature = "fma"
    ))]
    arch::prefetch(
        (chunk as *const T)
            .cast::<u8>()
            .wrapping_add(arch::PREFETCH_BYTES),
    );
    #[cfg(not(all(
        any(target_arch = "x86_64", target_arch = "x86"),
        target_feature = "fma"
    )))]
    let _ = chunk;
}

/// Conversion between a lane type and the array of `N` `f32` it loads from.
trait Chunk<const N: usize>: Sized {
    type Array;
    fn load(array: &Self::Array) -> Self;
    fn store(self, array: &mut Self::Array);
}

impl Chunk<1> for f32 {
    type Array = f32;

    #[inline(always)]
    fn load(array: &f32) -> Self {
        *array
    }

    #[inline(always)]
    fn store(self, array: &mut f32) {
        *array = self;
    }
}

impl Chunk<8> for f32x8 {
    type Array = [f32; 8];

    #[inline(always)]
    fn load(array: &[f32; 8]) -> Self {
        f32x8::new(*array)
    }

    #[inline(always)]
    fn store(self, array: &mut [f32; 8]) {
        *array = self.to_array();
    }
}

#[cfg(all(
    target_arch = "x86_64",
    not(target_feature = "fma"),
    not(adamw_no_runtime_dispatch)
))]
impl Chunk<8> for arch::F32x8Fma {
    type Array = [f32; 8];

    #[inline(always)]
    fn load(array: &[f32; 8]) -> Self {
        arch::F32x8Fma::load(array)
    }

    #[inline(always)]
    fn store(self, array: &mut [f32; 8]) {
        arch::F32x8Fma::store(self, array);
    }
}

/// Two 8-lane vectors run as one 16-lane value: every operation is the
/// 8-lane operation on each half, so each lane gives the bits of `V`.
#[derive(Clone, Copy)]
struct VectorPair<V>(V, V);

macro_rules! vector_pair_operator {
    ($operator:ident, $method:ident) => {
        impl<V: Lanes> core::ops::$operator for VectorPair<V> {
            type Output = VectorPair<V>;

            #[inline(always)]
            fn $method(self, other: VectorPair<V>) -> VectorPair<V> {
                VectorPair(self.0.$method(other.0), self.1.$method(other.1))
            }
        }
    };
}

vector_pair_operator!(Add, add);
vector_pair_operator!(Sub, sub);
vector_pair_operator!(Mul, mul);
vector_pair_operator!(Div, div);

impl<V: Lanes> core::ops::Neg for VectorPair<V> {
    type Output = VectorPair<V>;

    #[inline(always)]
    fn neg(self) -> VectorPair<V> {
        VectorPair(-self.0, -self.1)
    }
}

impl<V: Lanes> Lanes for VectorPair<V> {
    #[inline(always)]
    fn splat(x: f32) -> Self {
        VectorPair(V::splat(x), V::splat(x))
    }

    #[inline(always)]
    fn fma(self, b: Self, c: Self) -> Self {
        VectorPair(Lanes::fma(self.0, b.0, c.0), Lanes::fma(self.1, b.1, c.1))
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        VectorPair(Lanes::sqrt(self.0), Lanes::sqrt(self.1))
    }

    #[inline(always)]
    fn max_nan(self, other: Self) -> Self {
        VectorPair(self.0.max_nan(other.0), self.1.max_nan(other.1))
    }
}

impl<V: Chunk<8, Array = [f32; 8]>> Chunk<16> for VectorPair<V> {
    type Array = [[f32; 8]; 2];

    #[inline(always)]
    fn load(array: &[[f32; 8]; 2]) -> Self {
        VectorPair(V::load(&array[0]), V::load(&array[1]))
    }

    #[inline(always)]
    fn store(self, array: &mut [[f32; 8]; 2]) {
        let [first, second] = array;
        self.0.store(first);
        self.1.store(second);
    }
}
