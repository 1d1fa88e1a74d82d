//! Gradient clipping against `torch.nn.utils.clip_grad_norm_` (torch 2.15,
//! AVX-512), from `tests/golden/optimizer/clip.bin`.

mod optimizer_support;

use adamw::{
    ClipError, clip_coefficient, clip_grad_norm, clip_grads_with_norm, l2_norm, total_norm,
};
use optimizer_support::{Arrays, assert_bits_eq, ulp_distance};

/// torch does not document the order in which it accumulates a norm, and
/// this crate's order (see the `clip` module) matches it most of the time,
/// so norms may differ in the last bits. Measured: at most 1 ulp for the
/// per-tensor norms and 0 for the total norms below.
const NORM_ULP_BOUND: u32 = 2;

struct Case {
    sizes: Vec<usize>,
    max_norm: f32,
    grads_in: Vec<Vec<f32>>,
    norms: Vec<f32>,
    total_norm: f32,
    grads_out: Vec<f32>,
}

fn cases() -> Vec<Case> {
    let data = Arrays::parse(include_bytes!("golden/optimizer/clip.bin"));
    let count = data.u64("meta")[0] as usize;
    (0..count)
        .map(|k| {
            let sizes: Vec<usize> = data
                .u64(&format!("case{k}.sizes"))
                .iter()
                .map(|&n| n as usize)
                .collect();
            let flat = data.f32(&format!("case{k}.grads_in"));
            let mut offset = 0;
            let grads_in = sizes
                .iter()
                .map(|&n| {
                    offset += n;
                    flat[offset - n..offset].to_vec()
                })
                .collect();
            Case {
                max_norm: data.f32(&format!("case{k}.max_norm"))[0],
                norms: data.f32(&format!("case{k}.norms")),
                total_norm: data.f32(&format!("case{k}.total_norm"))[0],
                grads_out: data.f32(&format!("case{k}.grads_out")),
                grads_in,
                sizes,
            }
        })
        .collect()
}

/// Asserts that `actual` is torch's value within `NORM_ULP_BOUND`, with NaN
/// and infinity matched exactly, and returns the distance in ulp.
fn assert_norm_close(label: &str, actual: f32, torch: f32) -> u32 {
    if torch.is_nan() {
        assert!(actual.is_nan(), "{label}: got {actual:e}, torch NaN");
        return 0;
    }
    let ulp = ulp_distance(actual, torch);
    assert!(
        ulp <= NORM_ULP_BOUND,
        "{label}: got {actual:e} ({:#010x}), torch {torch:e} ({:#010x}), {ulp} ulp",
        actual.to_bits(),
        torch.to_bits()
    );
    ulp
}

#[test]
fn tensor_norms_match_torch() {
    let mut max_ulp = 0;
    for (k, case) in cases().iter().enumerate() {
        for (i, grad) in case.grads_in.iter().enumerate() {
            let label = format!("case {k} tensor {i} (n = {})", case.sizes[i]);
            max_ulp = max_ulp.max(assert_norm_close(&label, l2_norm(grad), case.norms[i]));
        }
    }
    println!("per-tensor norms: max {max_ulp} ulp from torch");
}

#[test]
fn total_norm_matches_torch() {
    let mut max_ulp = 0;
    for (k, case) in cases().iter().enumerate() {
        let label = format!("case {k} total norm");
        max_ulp = max_ulp.max(assert_norm_close(
            &label,
            total_norm(&case.grads_in),
            case.total_norm,
        ));
    }
    println!("total norms: max {max_ulp} ulp from torch");
}

/// With torch's total norm as input, the scaling is torch's bit for bit:
/// the same `f32` reciprocal, product, clamp and multiplication.
#[test]
fn scaling_by_torch_norm_is_bit_exact() {
    for (k, case) in cases().iter().enumerate() {
        let mut grads = case.grads_in.clone();
        clip_grads_with_norm(&mut grads, case.max_norm, case.total_norm).unwrap();
        let flat: Vec<f32> = grads.concat();
        if case.grads_out.iter().any(|g| g.is_nan()) {
            // NaN payloads are not compared; the positions are.
            for (j, (a, e)) in flat.iter().zip(&case.grads_out).enumerate() {
                assert_eq!(
                    a.is_nan(),
                    e.is_nan(),
                    "case {k} grad[{j}]: got {a:e}, torch {e:e}"
                );
                if !e.is_nan() {
                    assert_eq!(
                        a.to_bits(),
                        e.to_bits(),
                        "case {k} grad[{j}]: got {a:e}, torch {e:e}"
                    );
                }
            }
        } else {
            assert_bits_eq(&format!("case {k} clipped grads"), &flat, &case.grads_out);
        }
    }
}

/// End to end, the gradients differ from torch's only through the norm's
/// last bits, which change the coefficient by about as much. Measured: 0
/// ulp, because the total norms matched torch's bits.
#[test]
fn clip_grad_norm_matches_torch() {
    let mut max_ulp = 0;
    for (k, case) in cases().iter().enumerate() {
        let mut grads = case.grads_in.clone();
        let norm = clip_grad_norm(&mut grads, case.max_norm, false).unwrap();
        assert_norm_close(&format!("case {k} returned norm"), norm, case.total_norm);
        for (j, (a, e)) in grads.concat().iter().zip(&case.grads_out).enumerate() {
            if e.is_nan() {
                assert!(a.is_nan(), "case {k} grad[{j}]: got {a:e}, torch NaN");
                continue;
            }
            let ulp = ulp_distance(*a, *e);
            assert!(
                ulp <= NORM_ULP_BOUND,
                "case {k} grad[{j}]: got {a:e} ({:#010x}), torch {e:e} ({:#010x}), {ulp} ulp",
                a.to_bits(),
                e.to_bits()
            );
            max_ulp = max_ulp.max(ulp);
        }
    }
    println!("clipped gradients: max {max_ulp} ulp from torch");
}

#[test]
fn nonfinite_norm_is_an_error_when_requested() {
    for bad in [f32::NAN, f32::INFINITY] {
        let mut a = vec![0.5f32, -1.0, 2.0];
        let mut b = vec![3.0f32, bad];
        let before = (a.clone(), b.clone());

        let err = clip_grad_norm(&mut [&mut a[..], &mut b[..]], 1.0, true).unwrap_err();

        match err {
            ClipError::NonFiniteNorm { norm } => {
                assert_eq!(
                    norm.is_nan(),
                    bad.is_nan(),
                    "reported norm {norm} for {bad}"
                )
            }
            other => panic!("expected NonFiniteNorm for {bad}, got {other:?}"),
        }
        assert_bits_eq("first grad after error", &a, &before.0);
        assert_bits_eq("second grad after error", &b, &before.1);
    }
}

#[test]
fn invalid_max_norm_is_rejected_without_writing() {
    for max_norm in [-1.0f32, f32::NAN, f32::NEG_INFINITY] {
        let mut grad = vec![3.0f32, 4.0];
        let err = clip_grad_norm(&mut [&mut grad[..]], max_norm, false).unwrap_err();
        assert!(
            matches!(err, ClipError::InvalidMaxNorm { value } if value.to_bits() == max_norm.to_bits()),
            "max_norm {max_norm}: got {err:?}"
        );
        assert_eq!(grad, [3.0, 4.0], "grad after rejected max_norm {max_norm}");
    }
}

#[test]
fn no_gradients_give_zero_norm() {
    let mut grads: [&mut [f32]; 0] = [];
    assert_eq!(clip_grad_norm(&mut grads, 1.0, true), Ok(0.0));
}

/// `clip_coef = f32(1 / (norm + f32(1e-6))) * max_norm`, clamped to 1, NaN
/// kept: values worked out by hand from torch's formula.
#[test]
fn coefficient_follows_torch_formula() {
    let expected_half = (1.0f32 / (10.0f32 + 1e-6f32)) * 5.0f32;
    assert_eq!(
        clip_coefficient(5.0, 10.0),
        Ok(expected_half),
        "norm 10, max 5"
    );
    assert_eq!(clip_coefficient(5.0, 1.0), Ok(1.0), "clamped to 1");
    assert_eq!(clip_coefficient(0.0, 1.0), Ok(0.0), "max_norm 0");
    assert_eq!(
        clip_coefficient(1.0, f32::INFINITY),
        Ok(0.0),
        "infinite norm"
    );
    assert!(
        clip_coefficient(1.0, f32::NAN).unwrap().is_nan(),
        "NaN norm stays NaN"
    );
    assert_eq!(
        clip_coefficient(f32::INFINITY, 3.0),
        Ok(1.0),
        "infinite max_norm"
    );
}

/// 3-4-5: the norm of [3, 4] is exactly 5 in any order of accumulation.
#[test]
fn norm_of_pythagorean_triple_is_exact() {
    assert_eq!(l2_norm(&[3.0, 4.0]), 5.0);
    assert_eq!(total_norm(&[&[3.0f32][..], &[4.0f32][..]]), 5.0);
    assert_eq!(l2_norm(&[]), 0.0);
}
