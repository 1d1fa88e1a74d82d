//! Checkpoints: resuming is bit-identical to an uninterrupted run, the
//! layout is the documented one, and every malformed or mismatched input is
//! rejected without changing the optimizer.

mod optimizer_support;

use adamw::{
    CHECKPOINT_VERSION, CheckpointError, Contents, Hyperparams, Optimizer, Rounding, WeightDecay,
};
use optimizer_support::{Buffers, snapshot};

const SIZES: [usize; 3] = [37, 8, 5];
const GROUP_OF: [usize; 3] = [0, 1, 1];
const AMSGRAD: [bool; 3] = [false, true, true];

fn groups() -> [Hyperparams; 2] {
    [
        Hyperparams {
            lr: 1e-2,
            weight_decay: 0.1,
            ..Hyperparams::DEFAULT
        },
        Hyperparams {
            lr: 3e-3,
            beta1: 0.8,
            weight_decay: 0.0,
            amsgrad: true,
            rounding: Rounding::Unfused,
            decay_mode: WeightDecay::CoupledL2,
            ..Hyperparams::DEFAULT
        },
    ]
}

fn initial_params() -> Vec<Vec<f32>> {
    SIZES
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| ((i * 31 + j) as f32 * 0.37).sin()).collect())
        .collect()
}

/// The gradient of tensor `i` at step `step` (counting from 0), `None` on
/// the steps where tensor 2 gets none, so its counter falls behind.
fn grad(step: usize, i: usize) -> Option<Vec<f32>> {
    if i == 2 && step % 5 == 3 {
        return None;
    }
    let n = SIZES[i];
    Some(
        (0..n)
            .map(|j| ((step * 7 + i * 13 + j) as f32 * 0.91).cos() * 0.3)
            .collect(),
    )
}

fn run_steps<const T: usize, const G: usize>(
    opt: &mut Optimizer<'_, T, G>,
    steps: std::ops::Range<usize>,
) {
    for step in steps {
        let grads: Vec<Option<Vec<f32>>> = (0..SIZES.len()).map(|i| grad(step, i)).collect();
        let refs: Vec<Option<&[f32]>> = grads.iter().map(|g| g.as_deref()).collect();
        opt.step(&refs).unwrap();
    }
}

fn new_optimizer<'a>(buffers: &'a mut Buffers) -> Optimizer<'a, 3, 2> {
    let mut opt = Optimizer::new();
    for hyper in groups() {
        opt.add_group(hyper).unwrap();
    }
    buffers.register(&mut opt, &GROUP_OF);
    opt
}

const TOTAL_STEPS: usize = 60;

fn uninterrupted() -> Vec<(Vec<u32>, u64)> {
    let mut buffers = Buffers::new(initial_params(), &AMSGRAD);
    let mut opt = new_optimizer(&mut buffers);
    run_steps(&mut opt, 0..TOTAL_STEPS);
    snapshot(&opt)
}

/// Runs `stop` steps, saves, restores into a fresh optimizer whose buffers
/// start with other values, and runs the remaining steps there.
fn resumed(stop: usize, contents: Contents) -> Vec<(Vec<u32>, u64)> {
    let mut first = Buffers::new(initial_params(), &AMSGRAD);
    let mut opt = new_optimizer(&mut first);
    run_steps(&mut opt, 0..stop);
    let mut bytes = vec![0u8; opt.checkpoint_size(contents)];
    let written = opt.save(&mut bytes, contents).unwrap();
    assert_eq!(written, bytes.len(), "bytes written");
    let params: Vec<Vec<f32>> = (0..SIZES.len())
        .map(|i| opt.param(i).unwrap().to_vec())
        .collect();
    drop(opt);

    // With the state alone, the parameters come from elsewhere (in torch,
    // the model's state dict); otherwise the fresh buffers start as garbage.
    let fresh_params = match contents {
        Contents::State => params,
        Contents::StateAndParams => SIZES.iter().map(|&n| vec![f32::NAN; n]).collect(),
    };
    let mut second = Buffers::new(fresh_params, &AMSGRAD);
    let mut opt = Optimizer::<3, 2>::new();
    // Other hyperparameters than the saved ones: restore replaces them.
    for hyper in groups() {
        opt.add_group(Hyperparams { lr: 0.5, ..hyper }).unwrap();
    }
    second.register(&mut opt, &GROUP_OF);
    let restored = opt.restore(&bytes).unwrap();
    assert_eq!(restored, contents, "contents reported by restore");
    assert_eq!(
        opt.hyperparams(0).unwrap(),
        &groups()[0],
        "group 0 restored"
    );
    assert_eq!(
        opt.hyperparams(1).unwrap(),
        &groups()[1],
        "group 1 restored"
    );
    run_steps(&mut opt, stop..TOTAL_STEPS);
    snapshot(&opt)
}

#[test]
fn resume_is_bit_identical_at_steps_1_7_50() {
    let expected = uninterrupted();
    for stop in [1, 7, 50] {
        for contents in [Contents::State, Contents::StateAndParams] {
            let actual = resumed(stop, contents);
            for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
                assert_eq!(a.1, e.1, "stop {stop}, {contents:?}: tensor {i} step count");
                let first_difference = a.0.iter().zip(&e.0).position(|(x, y)| x != y);
                assert!(
                    first_difference.is_none(),
                    "stop {stop}, {contents:?}: tensor {i} differs at word {:?}: {:#010x} vs {:#010x}",
                    first_difference,
                    a.0[first_difference.unwrap_or(0)],
                    e.0[first_difference.unwrap_or(0)]
                );
            }
        }
    }
    // Tensor 2 skipped steps 3, 8, ..., 58: 12 of 60.
    assert_eq!(expected[2].1, 48, "skipped tensor's count");
}

/// Saves the state after 3 steps, for the rejection tests.
fn saved(contents: Contents) -> Vec<u8> {
    let mut buffers = Buffers::new(initial_params(), &AMSGRAD);
    let mut opt = new_optimizer(&mut buffers);
    run_steps(&mut opt, 0..3);
    let mut bytes = vec![0u8; opt.checkpoint_size(contents)];
    opt.save(&mut bytes, contents).unwrap();
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (reflected 0xEDB88320), independent of the crate's
    // table-driven one.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Rewrites the checksum after an edit, so that the edit itself is what
/// restore sees.
fn reseal(bytes: &mut [u8]) {
    let body = bytes.len() - 4;
    let crc = crc32(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}

#[test]
fn layout_matches_documented_offsets() {
    let bytes = saved(Contents::StateAndParams);
    let group_records = 32;
    let first_tensor = group_records + 2 * 48;

    assert_eq!(&bytes[0..4], b"ADWC", "magic");
    assert_eq!(u32_at(&bytes, 4), CHECKPOINT_VERSION, "version");
    assert_eq!(u64_at(&bytes, 8), bytes.len() as u64, "size");
    assert_eq!(u32_at(&bytes, 16), 2, "group count");
    assert_eq!(u32_at(&bytes, 20), 3, "tensor count");
    assert_eq!(u32_at(&bytes, 24), 1, "flags: params included");
    assert_eq!(u32_at(&bytes, 28), 0, "reserved");

    let lr0 = f64::from_le_bytes(bytes[32..40].try_into().unwrap());
    assert_eq!(lr0, 1e-2, "group 0 lr");
    let group1 = group_records + 48;
    assert_eq!(bytes[group1 + 40], 1, "group 1 amsgrad");
    assert_eq!(bytes[group1 + 41], 0, "group 1 maximize");
    assert_eq!(bytes[group1 + 42], 1, "group 1 rounding unfused");
    assert_eq!(bytes[group1 + 43], 1, "group 1 coupled L2");

    assert_eq!(u32_at(&bytes, first_tensor), 0, "tensor 0 group");
    assert_eq!(u32_at(&bytes, first_tensor + 4), 0, "tensor 0 flags");
    assert_eq!(u64_at(&bytes, first_tensor + 8), 37, "tensor 0 length");
    assert_eq!(u64_at(&bytes, first_tensor + 16), 3, "tensor 0 step");
    let second_tensor = first_tensor + 24 + 3 * 37 * 4;
    assert_eq!(u32_at(&bytes, second_tensor), 1, "tensor 1 group");
    assert_eq!(
        u32_at(&bytes, second_tensor + 4),
        1,
        "tensor 1 flags: max_exp_avg_sq"
    );
    assert_eq!(u64_at(&bytes, second_tensor + 8), 8, "tensor 1 length");

    // Tensor 0: param, exp_avg, exp_avg_sq. Tensors 1 and 2 add
    // max_exp_avg_sq.
    let tensors = (24 + 3 * 37 * 4) + (24 + 4 * 8 * 4) + (24 + 4 * 5 * 4);
    let expected_len = 32 + 2 * 48 + tensors + 4;
    assert_eq!(bytes.len(), expected_len, "total size");
    let stored = u32_at(&bytes, bytes.len() - 4);
    let computed = crc32(&bytes[..bytes.len() - 4]);
    assert_eq!(
        stored, computed,
        "checksum {stored:#010x} vs bitwise CRC-32 {computed:#010x}"
    );
}

#[test]
fn save_rejects_short_buffer_without_writing() {
    let mut buffers = Buffers::new(initial_params(), &AMSGRAD);
    let opt = new_optimizer(&mut buffers);
    let size = opt.checkpoint_size(Contents::State);
    let mut out = vec![0xA5u8; size - 1];

    let err = opt.save(&mut out, Contents::State).unwrap_err();

    assert_eq!(
        err,
        CheckpointError::BufferTooSmall {
            required: size,
            found: size - 1
        }
    );
    assert!(out.iter().all(|&b| b == 0xA5), "short buffer was written");
}

#[test]
fn save_writes_only_the_reported_size() {
    let mut buffers = Buffers::new(initial_params(), &AMSGRAD);
    let opt = new_optimizer(&mut buffers);
    let size = opt.checkpoint_size(Contents::State);
    let mut out = vec![0xA5u8; size + 16];

    let written = opt.save(&mut out, Contents::State).unwrap();

    assert_eq!(written, size);
    assert!(
        out[size..].iter().all(|&b| b == 0xA5),
        "bytes past the checkpoint written"
    );
}

/// Restores `bytes` into an optimizer after 5 steps of its own and checks
/// that the error is `expected` and that nothing changed.
fn assert_rejected(bytes: &[u8], expected: CheckpointError) {
    let mut buffers = Buffers::new(initial_params(), &AMSGRAD);
    let mut opt = new_optimizer(&mut buffers);
    run_steps(&mut opt, 0..5);
    let before = snapshot(&opt);
    let hypers_before = [*opt.hyperparams(0).unwrap(), *opt.hyperparams(1).unwrap()];

    let err = opt.restore(bytes).unwrap_err();

    assert_eq!(err, expected);
    assert!(
        snapshot(&opt) == before,
        "state changed by a rejected restore ({expected:?})"
    );
    let hypers_after = [*opt.hyperparams(0).unwrap(), *opt.hyperparams(1).unwrap()];
    assert_eq!(
        hypers_after, hypers_before,
        "hyperparameters changed by a rejected restore"
    );
}

#[test]
fn restore_rejects_bad_magic() {
    let mut bytes = saved(Contents::State);
    bytes[0] = b'X';
    assert_rejected(&bytes, CheckpointError::BadMagic { found: *b"XDWC" });
    assert_rejected(b"AD", CheckpointError::BadMagic { found: *b"AD\0\0" });
}

#[test]
fn restore_rejects_other_version() {
    let mut bytes = saved(Contents::State);
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    reseal(&mut bytes);
    assert_rejected(
        &bytes,
        CheckpointError::UnsupportedVersion {
            found: 2,
            supported: 1,
        },
    );
}

#[test]
fn restore_rejects_truncated_input() {
    let bytes = saved(Contents::State);
    let size = bytes.len() as u64;
    assert_rejected(
        &bytes[..bytes.len() - 1],
        CheckpointError::SizeMismatch {
            expected: size,
            found: size - 1,
        },
    );
    assert_rejected(
        &bytes[..20],
        CheckpointError::SizeMismatch {
            expected: 36,
            found: 20,
        },
    );
}

#[test]
fn restore_rejects_extra_bytes() {
    let mut bytes = saved(Contents::State);
    let size = bytes.len() as u64;
    bytes.extend_from_slice(&[0; 8]);
    assert_rejected(
        &bytes,
        CheckpointError::SizeMismatch {
            expected: size,
            found: size + 8,
        },
    );

    // With the size field and checksum updated to match, the records still
    // add up to the original size.
    bytes[8..16].copy_from_slice(&(size + 8).to_le_bytes());
    reseal(&mut bytes);
    assert_rejected(
        &bytes,
        CheckpointError::SizeMismatch {
            expected: size,
            found: size + 8,
        },
    );
}

#[test]
fn restore_rejects_bad_checksum() {
    let mut bytes = saved(Contents::State);
    let stored = u32_at(&bytes, bytes.len() - 4);
    // Flip one bit of a moment.
    bytes[200] ^= 0x10;
    let computed = crc32(&bytes[..bytes.len() - 4]);
    assert_rejected(
        &bytes,
        CheckpointError::ChecksumMismatch { stored, computed },
    );
}

#[test]
fn restore_rejects_other_model() {
    let bytes = saved(Contents::State);

    // One tensor fewer.
    let mut buffers = Buffers::new(initial_params()[..2].to_vec(), &AMSGRAD[..2]);
    let mut opt = Optimizer::<3, 2>::new();
    for hyper in groups() {
        opt.add_group(hyper).unwrap();
    }
    buffers.register(&mut opt, &GROUP_OF[..2]);
    let err = opt.restore(&bytes).unwrap_err();
    assert_eq!(
        err,
        CheckpointError::TensorCountMismatch {
            expected: 2,
            found: 3
        }
    );

    // One group fewer.
    let mut buffers = Buffers::new(initial_params(), &[false; 3]);
    let mut opt = Optimizer::<3, 2>::new();
    opt.add_group(groups()[0]).unwrap();
    buffers.register(&mut opt, &[0, 0, 0]);
    let err = opt.restore(&bytes).unwrap_err();
    assert_eq!(
        err,
        CheckpointError::GroupCountMismatch {
            expected: 1,
            found: 2
        }
    );

    // Tensor 1 one element longer.
    let mut params = initial_params();
    params[1].push(0.0);
    let mut buffers = Buffers::new(params, &AMSGRAD);
    let mut opt = new_optimizer(&mut buffers);
    let err = opt.restore(&bytes).unwrap_err();
    assert_eq!(
        err,
        CheckpointError::TensorLengthMismatch {
            tensor: 1,
            expected: 9,
            found: 8
        }
    );

    // Tensor 2 registered in group 0 (without AMSGrad there).
    let mut buffers = Buffers::new(initial_params(), &[false, true, false]);
    let mut opt = Optimizer::<3, 2>::new();
    for hyper in groups() {
        opt.add_group(hyper).unwrap();
    }
    buffers.register(&mut opt, &[0, 1, 0]);
    let err = opt.restore(&bytes).unwrap_err();
    assert_eq!(
        err,
        CheckpointError::TensorGroupMismatch {
            tensor: 2,
            expected: 0,
            found: 1
        }
    );

    // Group 1 without AMSGrad.
    let mut buffers = Buffers::new(initial_params(), &[false; 3]);
    let mut opt = Optimizer::<3, 2>::new();
    opt.add_group(groups()[0]).unwrap();
    opt.add_group(Hyperparams {
        amsgrad: false,
        ..groups()[1]
    })
    .unwrap();
    buffers.register(&mut opt, &GROUP_OF);
    let err = opt.restore(&bytes).unwrap_err();
    assert_eq!(
        err,
        CheckpointError::AmsgradMismatch {
            group: 1,
            expected: false
        }
    );
}

#[test]
fn restore_rejects_max_flag_mismatch() {
    let mut bytes = saved(Contents::State);
    // Clear tensor 1's max_exp_avg_sq flag: its record then disagrees with
    // the registered AMSGrad buffer.
    let second_tensor = 32 + 2 * 48 + 24 + 2 * 37 * 4;
    assert_eq!(
        u32_at(&bytes, second_tensor + 4),
        1,
        "tensor 1 flags before the edit"
    );
    bytes[second_tensor + 4..second_tensor + 8].copy_from_slice(&0u32.to_le_bytes());
    reseal(&mut bytes);
    assert_rejected(
        &bytes,
        CheckpointError::MaxExpAvgSqMismatch {
            tensor: 1,
            expected: true,
        },
    );
}

#[test]
fn restore_rejects_undefined_field_values() {
    let group1 = 32 + 48;
    let cases = [
        (24, 2u8, "flags"),
        (28, 1, "reserved"),
        (group1 + 40, 2, "amsgrad"),
        (group1 + 41, 9, "maximize"),
        (group1 + 42, 2, "rounding"),
        (group1 + 43, 3, "decay_mode"),
        (group1 + 44, 1, "group reserved"),
        (32 + 2 * 48 + 4, 4, "tensor flags"),
    ];
    for (offset, value, name) in cases {
        let mut bytes = saved(Contents::State);
        bytes[offset] = value;
        reseal(&mut bytes);
        assert_rejected(
            &bytes,
            CheckpointError::InvalidField {
                name,
                offset,
                value: value as u32,
            },
        );
    }
}

#[test]
fn restore_rejects_invalid_hyperparameter() {
    let mut bytes = saved(Contents::State);
    // Group 0's beta2 (offset 16 of its record) = 1.0, which torch rejects.
    bytes[32 + 16..32 + 24].copy_from_slice(&1.0f64.to_le_bytes());
    reseal(&mut bytes);
    assert_rejected(
        &bytes,
        CheckpointError::InvalidHyperparameter {
            group: 0,
            error: adamw::Error::InvalidHyperparameter {
                name: "beta2",
                value: 1.0,
                allowed: "0 <= beta < 1",
            },
        },
    );
}

#[test]
fn restore_accepts_its_own_checkpoint() {
    for contents in [Contents::State, Contents::StateAndParams] {
        let bytes = saved(contents);
        let mut buffers = Buffers::new(initial_params(), &AMSGRAD);
        let mut opt = new_optimizer(&mut buffers);
        assert_eq!(opt.restore(&bytes), Ok(contents));
        assert_eq!(opt.step_count(0).unwrap(), 3, "restored step count");
    }
}

#[test]
fn error_messages_name_values() {
    let message = CheckpointError::ChecksumMismatch {
        stored: 1,
        computed: 0xdead_beef,
    }
    .to_string();
    assert_eq!(
        message,
        "checkpoint checksum mismatch: stored 0x00000001, computed 0xdeadbeef; the data is corrupt"
    );
    let message = CheckpointError::TensorLengthMismatch {
        tensor: 1,
        expected: 9,
        found: 8,
    }
    .to_string();
    assert_eq!(
        message,
        "tensor 1 has 8 elements in the checkpoint but 9 registered"
    );
}
