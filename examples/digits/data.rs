//! The UCI optical handwritten digits, embedded, and the pseudo-random
//! numbers that split, initialise and shuffle. `examples/train_torch.py`
//! repeats every draw in the same order.

/// Pixels of one 8x8 image.
pub const PIXELS: usize = 64;
/// Samples in the data set.
pub const SAMPLES: usize = 1797;
/// Samples used for training; the other 360 are the test set.
pub const TRAIN: usize = 1437;
/// Samples in the test set.
pub const TEST: usize = SAMPLES - TRAIN;
/// Bytes per sample in the file: the pixels, then the label.
const RECORD: usize = PIXELS + 1;

/// `examples/data/digits.bin` as `examples/gen_digits.py` writes it: per
/// sample, 64 pixels (0..=16, row by row) and the label (0..=9). The type
/// checks the file's length at compile time.
static DIGITS: &[u8; SAMPLES * RECORD] = include_bytes!("../data/digits.bin");

/// The image of sample `index`, scaled to `[0, 1]` by dividing by 16, which
/// is exact in `f32`.
pub fn image(index: usize) -> [f32; PIXELS] {
    let record = &DIGITS[index * RECORD..(index + 1) * RECORD];
    let mut out = [0.0f32; PIXELS];
    for (x, &pixel) in out.iter_mut().zip(record) {
        *x = f32::from(pixel) / 16.0;
    }
    out
}

/// The digit that sample `index` shows.
pub fn label(index: usize) -> u8 {
    DIGITS[index * RECORD + PIXELS]
}

/// SplitMix64 (Steele, Lea and Flood, 2014): integer operations only, so
/// Python's integers repeat it exactly.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`. The modulo bias is below `n / 2^64`, far too small
    /// to matter here, and the Python side computes the same remainder.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A multiple of `2^-24` in `[0, 1)`, exact in `f32`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / 16_777_216.0
    }

    /// Fisher-Yates from the last element down to the second.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// Fills `out` from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, the range of
    /// torch's default `nn.Linear` initialisation. Each value is
    /// `(2u - 1) * bound` in `f32`, where `2u - 1` is exact.
    pub fn fill_uniform(&mut self, out: &mut [f32], fan_in: usize) {
        let bound = (1.0 / libm::sqrt(fan_in as f64)) as f32;
        for x in out {
            *x = (2.0 * self.unit() - 1.0) * bound;
        }
    }
}

/// A permutation of all samples: the first [`TRAIN`] indices are the
/// training set, the rest the test set.
pub fn split(rng: &mut SplitMix64) -> [u16; SAMPLES] {
    let mut samples = [0u16; SAMPLES];
    for (i, slot) in samples.iter_mut().enumerate() {
        *slot = i as u16;
    }
    rng.shuffle(&mut samples);
    samples
}
