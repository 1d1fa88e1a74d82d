#!/usr/bin/env python3
"""Convert a torch.optim.AdamW (or Adam) state dict to the adamw crate's
checkpoint format and back.

Environment (outside the repository; tested with torch 2.15.0 and numpy 2.4):

    python3 -m venv /path/to/venv
    /path/to/venv/bin/pip install torch==2.15.0 numpy

As a library (tests/gen_optimizer.py uses it this way):

    from torch_state_convert import state_dict_to_checkpoint, checkpoint_to_state_dict
    blob = state_dict_to_checkpoint(optimizer.state_dict(), params, include_params=True)
    state_dict, values = checkpoint_to_state_dict(blob, params)
    optimizer.load_state_dict(state_dict)

From the command line, with a file written by
torch.save({"optimizer": optimizer.state_dict(), "params": [p.detach() for p in params]}, path):

    python tests/torch_state_convert.py to-checkpoint in.pt out.adwc [--state-only]
    python tests/torch_state_convert.py from-checkpoint in.adwc like.pt out.pt

`from-checkpoint` takes the parameter shapes from like.pt (a file of the first
kind), because the checkpoint stores only element counts.

Tensor order: torch numbers parameters across its param_groups in order
(group 0's parameters first), and the checkpoint stores tensor i with that
number. On the Rust side, register the tensors with Optimizer::add_tensor in
the same order, each in the group that contains it in torch.

The format is documented in src/checkpoint.rs. Every value is copied as its
bits: float32 tensors as f32, Python floats as f64, torch's float32 step
counter as a u64 (exact up to 2^24, where torch's counter stops).
"""

import argparse
import struct
import sys
import zlib

import numpy as np

MAGIC = b"ADWC"
VERSION = 1
HEADER = struct.Struct("<4sIQIIII")
GROUP = struct.Struct("<dddddBBBBI")
TENSOR = struct.Struct("<IIQQ")
FLAG_PARAMS = 1
FLAG_MAX_EXP_AVG_SQ = 1
# Rounding byte: 0 is fused multiply-adds, what torch computes on CPUs with
# AVX2 or AVX-512; 1 is torch's generic path (ATEN_CPU_CAPABILITY=default).
ROUNDING_FUSED = 0


def _f32_bytes(tensor):
    array = tensor.detach().cpu().contiguous().reshape(-1).numpy()
    if array.dtype != np.float32:
        raise ValueError(f"expected a float32 tensor, got {array.dtype}")
    return array.astype("<f4").tobytes()


def state_dict_to_checkpoint(state_dict, params, include_params=True, rounding=ROUNDING_FUSED):
    """Return the checkpoint bytes of an Adam or AdamW state dict.

    params lists the model's parameters in torch's numbering (see the module
    docstring); it supplies the element counts, and the values when
    include_params is true.
    """
    groups = state_dict["param_groups"]
    state = state_dict["state"]
    group_of = {}
    for g, group in enumerate(groups):
        for index in group["params"]:
            group_of[index] = g
    if sorted(group_of) != list(range(len(params))):
        raise ValueError(
            f"the state dict numbers parameters {sorted(group_of)}, "
            f"but {len(params)} parameters were given"
        )

    body = bytearray()
    for group in groups:
        beta1, beta2 = group["betas"]
        decoupled = group.get("decoupled_weight_decay", True)
        body += GROUP.pack(
            float(group["lr"]), float(beta1), float(beta2), float(group["eps"]),
            float(group["weight_decay"]),
            int(bool(group["amsgrad"])), int(bool(group["maximize"])),
            rounding, 0 if decoupled else 1, 0,
        )

    for index, param in enumerate(params):
        group = groups[group_of[index]]
        amsgrad = bool(group["amsgrad"])
        n = param.numel()
        entry = state.get(index)
        if entry is None:
            # torch creates the state at a parameter's first step; before it,
            # the state is zero moments and step 0.
            step = 0
            zeros = np.zeros(n, dtype="<f4").tobytes()
            exp_avg = exp_avg_sq = max_exp_avg_sq = zeros
        else:
            step_value = float(entry["step"])
            if step_value != int(step_value) or step_value < 0:
                raise ValueError(f"parameter {index}: step {step_value} is not a count")
            step = int(step_value)
            exp_avg = _f32_bytes(entry["exp_avg"])
            exp_avg_sq = _f32_bytes(entry["exp_avg_sq"])
            max_exp_avg_sq = _f32_bytes(entry["max_exp_avg_sq"]) if amsgrad else b""
        for name, data in (("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)):
            if len(data) != 4 * n:
                raise ValueError(f"parameter {index}: {name} has {len(data) // 4} elements, expected {n}")

        body += TENSOR.pack(group_of[index], FLAG_MAX_EXP_AVG_SQ if amsgrad else 0, n, step)
        if include_params:
            body += _f32_bytes(param)
        body += exp_avg + exp_avg_sq
        if amsgrad:
            body += max_exp_avg_sq

    size = HEADER.size + len(body) + 4
    header = HEADER.pack(
        MAGIC, VERSION, size, len(groups), len(params),
        FLAG_PARAMS if include_params else 0, 0,
    )
    data = header + bytes(body)
    return data + struct.pack("<I", zlib.crc32(data))


def checkpoint_to_state_dict(blob, params, extra_group_keys=None):
    """Return (state_dict, values) from checkpoint bytes.

    state_dict can be passed to optimizer.load_state_dict. values is the list
    of saved parameter tensors (shaped like params), or None when the
    checkpoint has no parameters. params gives the shapes. extra_group_keys
    (for example {"foreach": False}) is merged into every param group.
    """
    import torch

    if len(blob) < HEADER.size + 4:
        raise ValueError(f"checkpoint too short: {len(blob)} bytes")
    magic, version, size, n_groups, n_tensors, flags, reserved = HEADER.unpack_from(blob, 0)
    if magic != MAGIC:
        raise ValueError(f"not a checkpoint: magic {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise ValueError(f"unsupported checkpoint version {version}, expected {VERSION}")
    if size != len(blob):
        raise ValueError(f"checkpoint size mismatch: {len(blob)} bytes, header says {size}")
    (stored,) = struct.unpack_from("<I", blob, size - 4)
    computed = zlib.crc32(blob[: size - 4])
    if stored != computed:
        raise ValueError(f"checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")
    if flags not in (0, FLAG_PARAMS) or reserved != 0:
        raise ValueError(f"invalid header flags {flags} or reserved {reserved}")
    if n_tensors != len(params):
        raise ValueError(f"checkpoint has {n_tensors} tensors, {len(params)} parameters given")

    offset = HEADER.size
    groups = []
    for _ in range(n_groups):
        lr, beta1, beta2, eps, wd, amsgrad, maximize, rounding, decay_mode, _ = GROUP.unpack_from(blob, offset)
        offset += GROUP.size
        group = {
            "lr": lr, "betas": (beta1, beta2), "eps": eps, "weight_decay": wd,
            "amsgrad": bool(amsgrad), "maximize": bool(maximize),
            "foreach": None, "capturable": False, "differentiable": False, "fused": None,
            "decoupled_weight_decay": decay_mode == 0,
            "params": [],
        }
        group.update(extra_group_keys or {})
        groups.append(group)

    def floats(count, shape):
        nonlocal offset
        array = np.frombuffer(blob, dtype="<f4", count=count, offset=offset).astype(np.float32)
        offset += 4 * count
        return torch.from_numpy(array.copy()).reshape(shape)

    state = {}
    values = [] if flags & FLAG_PARAMS else None
    for index, param in enumerate(params):
        group_index, tensor_flags, n, step = TENSOR.unpack_from(blob, offset)
        offset += TENSOR.size
        if n != param.numel():
            raise ValueError(f"tensor {index}: {n} elements in the checkpoint, {param.numel()} in the model")
        groups[group_index]["params"].append(index)
        if values is not None:
            values.append(floats(n, param.shape))
        entry = {
            "step": torch.tensor(float(step), dtype=torch.float32),
            "exp_avg": floats(n, param.shape),
            "exp_avg_sq": floats(n, param.shape),
        }
        if tensor_flags & FLAG_MAX_EXP_AVG_SQ:
            entry["max_exp_avg_sq"] = floats(n, param.shape)
        # torch has no state for a parameter that never took a step.
        if step > 0:
            state[index] = entry
    if offset != size - 4:
        raise ValueError(f"checkpoint records end at byte {offset}, expected {size - 4}")
    return {"state": state, "param_groups": groups}, values


def main(argv):
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    to = sub.add_parser("to-checkpoint", help="torch file to checkpoint")
    to.add_argument("input", help="torch.save file with 'optimizer' and 'params'")
    to.add_argument("output", help="checkpoint file to write")
    to.add_argument("--state-only", action="store_true", help="leave the parameters out")
    back = sub.add_parser("from-checkpoint", help="checkpoint to torch file")
    back.add_argument("input", help="checkpoint file")
    back.add_argument("like", help="torch.save file whose 'params' give the shapes")
    back.add_argument("output", help="torch.save file to write")
    args = parser.parse_args(argv)

    if args.command == "to-checkpoint":
        saved = torch.load(args.input)
        blob = state_dict_to_checkpoint(saved["optimizer"], saved["params"], not args.state_only)
        with open(args.output, "wb") as f:
            f.write(blob)
    else:
        like = torch.load(args.like)
        with open(args.input, "rb") as f:
            blob = f.read()
        state_dict, values = checkpoint_to_state_dict(blob, like["params"])
        torch.save({"optimizer": state_dict, "params": values}, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
