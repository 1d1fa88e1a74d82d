//! Reader for the named-array containers that `tests/gen_optimizer.py`
//! writes under `tests/golden/optimizer/`, helpers to compare floats, and
//! test-owned tensor buffers to lend to an `Optimizer`.
//!
//! Container format, version 1, little-endian:
//!
//! ```text
//! magic b"ADWA", u32 version = 1, u32 array_count
//! each array: u32 name_len, name (UTF-8), u8 dtype (0 f32, 1 f64, 2 u64),
//!             u64 element_count, the elements
//! ```
#![allow(dead_code)]

use std::collections::HashMap;

use adamw::{Optimizer, TensorBuffers};

/// One array of a container.
#[derive(Clone, Debug)]
pub enum Array {
    F32(Vec<f32>),
    F64(Vec<f64>),
    U64(Vec<u64>),
}

/// The arrays of one container, by name.
pub struct Arrays {
    arrays: HashMap<String, Array>,
}

impl Arrays {
    /// Parses a container; panics with the byte offset on malformed input,
    /// which is a broken test fixture.
    pub fn parse(bytes: &[u8]) -> Arrays {
        let mut pos = 0usize;
        let mut take = |n: usize| -> &[u8] {
            let slice = bytes
                .get(pos..pos + n)
                .unwrap_or_else(|| panic!("container truncated at byte {pos}"));
            pos += n;
            slice
        };
        assert_eq!(take(4), b"ADWA", "container magic");
        let version = u32::from_le_bytes(take(4).try_into().unwrap());
        assert_eq!(version, 1, "container version");
        let count = u32::from_le_bytes(take(4).try_into().unwrap());

        let mut arrays = HashMap::new();
        for _ in 0..count {
            let name_len = u32::from_le_bytes(take(4).try_into().unwrap()) as usize;
            let name = String::from_utf8(take(name_len).to_vec()).expect("array name is UTF-8");
            let dtype = take(1)[0];
            let n = u64::from_le_bytes(take(8).try_into().unwrap()) as usize;
            let array = match dtype {
                0 => Array::F32(
                    take(4 * n)
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                        .collect(),
                ),
                1 => Array::F64(
                    take(8 * n)
                        .chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                        .collect(),
                ),
                2 => Array::U64(
                    take(8 * n)
                        .chunks_exact(8)
                        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
                        .collect(),
                ),
                other => panic!("array {name}: unknown dtype {other}"),
            };
            arrays.insert(name, array);
        }
        Arrays { arrays }
    }

    pub fn has(&self, name: &str) -> bool {
        self.arrays.contains_key(name)
    }

    pub fn f32(&self, name: &str) -> Vec<f32> {
        match self.arrays.get(name) {
            Some(Array::F32(v)) => v.clone(),
            other => panic!("array {name}: expected f32, found {other:?}"),
        }
    }

    pub fn f64(&self, name: &str) -> Vec<f64> {
        match self.arrays.get(name) {
            Some(Array::F64(v)) => v.clone(),
            other => panic!("array {name}: expected f64, found {other:?}"),
        }
    }

    pub fn u64(&self, name: &str) -> Vec<u64> {
        match self.arrays.get(name) {
            Some(Array::U64(v)) => v.clone(),
            other => panic!("array {name}: expected u64, found {other:?}"),
        }
    }
}

/// Asserts that two `f32` slices have the same bits, naming the first
/// differing element with both values in hex.
pub fn assert_bits_eq(label: &str, actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len(), "{label}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            a.to_bits() == e.to_bits(),
            "{label}[{i}]: got {a:e} ({:#010x}), expected {e:e} ({:#010x})",
            a.to_bits(),
            e.to_bits()
        );
    }
}

/// Returns the distance in units in the last place between two finite
/// `f32` values of the same sign, or `u32::MAX` when they differ in sign,
/// finiteness or NaN-ness.
pub fn ulp_distance(a: f32, b: f32) -> u32 {
    if a.to_bits() == b.to_bits() || (a == 0.0 && b == 0.0) {
        return 0;
    }
    if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
        return u32::MAX;
    }
    if a.is_sign_negative() != b.is_sign_negative() {
        return u32::MAX;
    }
    a.to_bits().abs_diff(b.to_bits())
}

/// Returns `|a - b| / max(|a|, |b|)`, 0 for equal values (NaNs included).
pub fn relative_difference(a: f32, b: f32) -> f64 {
    if a.to_bits() == b.to_bits() || a == b {
        return 0.0;
    }
    let (a, b) = (a as f64, b as f64);
    (a - b).abs() / a.abs().max(b.abs())
}

/// The buffers of a set of tensors, owned by the test and lent to the
/// optimizer.
pub struct Buffers {
    pub params: Vec<Vec<f32>>,
    pub exp_avg: Vec<Vec<f32>>,
    pub exp_avg_sq: Vec<Vec<f32>>,
    pub max_exp_avg_sq: Vec<Option<Vec<f32>>>,
}

impl Buffers {
    pub fn new(params: Vec<Vec<f32>>, amsgrad: &[bool]) -> Buffers {
        let zeros = |p: &Vec<f32>| vec![0.0f32; p.len()];
        Buffers {
            exp_avg: params.iter().map(zeros).collect(),
            exp_avg_sq: params.iter().map(zeros).collect(),
            max_exp_avg_sq: params
                .iter()
                .zip(amsgrad)
                .map(|(p, &a)| a.then(|| zeros(p)))
                .collect(),
            params,
        }
    }

    /// Registers every tensor, tensor `i` in group `groups[i]`.
    pub fn register<'a, const T: usize, const G: usize>(
        &'a mut self,
        opt: &mut Optimizer<'a, T, G>,
        groups: &[usize],
    ) {
        let tensors = self
            .params
            .iter_mut()
            .zip(&mut self.exp_avg)
            .zip(&mut self.exp_avg_sq)
            .zip(&mut self.max_exp_avg_sq);
        for ((((param, exp_avg), exp_avg_sq), max), &group) in tensors.zip(groups) {
            let buffers = TensorBuffers {
                param,
                exp_avg,
                exp_avg_sq,
                max_exp_avg_sq: max.as_deref_mut(),
            };
            opt.add_tensor(group, buffers).expect("register tensor");
        }
    }
}

/// Returns every tensor's bits and counter, to prove that nothing changed.
pub fn snapshot<const T: usize, const G: usize>(opt: &Optimizer<'_, T, G>) -> Vec<(Vec<u32>, u64)> {
    (0..opt.tensor_count())
        .map(|i| {
            let mut bits: Vec<u32> = opt.param(i).unwrap().iter().map(|x| x.to_bits()).collect();
            bits.extend(opt.exp_avg(i).unwrap().iter().map(|x| x.to_bits()));
            bits.extend(opt.exp_avg_sq(i).unwrap().iter().map(|x| x.to_bits()));
            if let Some(max) = opt.max_exp_avg_sq(i).unwrap() {
                bits.extend(max.iter().map(|x| x.to_bits()));
            }
            (bits, opt.step_count(i).unwrap())
        })
        .collect()
}
