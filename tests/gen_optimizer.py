#!/usr/bin/env python3
"""Generate the torch reference data under tests/golden/optimizer/ for
tests/optimizer.rs, tests/clip.rs, tests/schedule.rs and
tests/torch_interop.rs.

Environment (outside the repository; tested with torch 2.15.0 and numpy 2.4,
CPU capability AVX-512):

    python3 -m venv /path/to/venv
    /path/to/venv/bin/pip install torch==2.15.0 numpy
    /path/to/venv/bin/python tests/gen_optimizer.py

Outputs (all little-endian):

- groups.bin, adam_l2.bin: multi-tensor runs of torch.optim.AdamW and
  torch.optim.Adam(weight_decay > 0) with parameter groups and gradients
  that are None on some steps.
- clip.bin: torch.nn.utils.clip_grad_norm_ on several sets of gradients.
- schedule.bin: the learning rates that torch's LinearLR,
  CosineAnnealingLR and SequentialLR yield when stepped.
- interop_step50.adwc, interop_step100.adwc: the state of a small model
  trained with torch.optim.AdamW after 50 and after 100 steps, converted
  with tests/torch_state_convert.py (parameters included).
- interop_grads.bin: the gradients of steps 51 to 100 of that run, and the
  parameters after each of those steps.

The .bin files are named-array containers, version 1:

    magic b"ADWA", u32 version = 1, u32 array_count
    each array: u32 name_len, name (UTF-8), u8 dtype (0 f32, 1 f64, 2 u64),
                u64 element_count, the elements

Every optimizer is created with foreach=False, torch's single-tensor path,
which is the path the crate reproduces.
"""

import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_state_convert import checkpoint_to_state_dict, state_dict_to_checkpoint  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "optimizer")
DTYPES = {np.dtype("<f4"): 0, np.dtype("<f8"): 1, np.dtype("<u8"): 2}


def write_arrays(path, arrays):
    """Write a dict of name -> numpy array as a named-array container."""
    out = bytearray(b"ADWA" + struct.pack("<II", 1, len(arrays)))
    for name, array in arrays.items():
        array = np.ascontiguousarray(array).reshape(-1)
        if array.dtype == np.float32:
            array = array.astype("<f4")
        elif array.dtype == np.float64:
            array = array.astype("<f8")
        else:
            array = array.astype("<u8")
        encoded = name.encode()
        out += struct.pack("<I", len(encoded)) + encoded
        out += struct.pack("<BQ", DTYPES[array.dtype], array.size) + array.tobytes()
    with open(path, "wb") as f:
        f.write(out)
    print(f"wrote {path}: {len(out)} bytes")


def hyper_array(group, coupled=False):
    beta1, beta2 = group["betas"]
    return np.array(
        [group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
         float(group["amsgrad"]), float(group["maximize"]), float(coupled)],
        dtype=np.float64,
    )


def multi_tensor_run(name, make_optimizer, sizes, group_of, steps, skipped, coupled, seed):
    """Run an optimizer over tensors with fixed random gradients and record
    the inputs and the final state.

    skipped is a set of (step, tensor) pairs whose gradient is None.
    """
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(n, generator=gen)) for n in sizes]
    params_in = [p.detach().clone() for p in params]
    opt = make_optimizer(params)

    grads = np.zeros((steps, sum(sizes)), dtype=np.float32)
    mask = np.zeros((steps, len(sizes)), dtype=np.uint64)
    for step in range(steps):
        offset = 0
        for i, p in enumerate(params):
            g = torch.randn(sizes[i], generator=gen) * 0.5
            if (step, i) in skipped:
                p.grad = None
            else:
                p.grad = g
                mask[step, i] = 1
                grads[step, offset:offset + sizes[i]] = g.numpy()
            offset += sizes[i]
        opt.step()

    arrays = {
        "meta": np.array([len(opt.param_groups), len(sizes), steps], dtype=np.uint64),
        "grads": grads,
        "grad_mask": mask,
    }
    for g, group in enumerate(opt.param_groups):
        arrays[f"group{g}.hyper"] = hyper_array(group, coupled)
    for i, p in enumerate(params):
        state = opt.state.get(p, {})
        amsgrad = opt.param_groups[group_of[i]]["amsgrad"]
        zeros = torch.zeros(sizes[i])
        arrays[f"tensor{i}.group"] = np.array([group_of[i]], dtype=np.uint64)
        arrays[f"tensor{i}.param_in"] = params_in[i].numpy()
        arrays[f"tensor{i}.param_out"] = p.detach().numpy()
        arrays[f"tensor{i}.exp_avg_out"] = state.get("exp_avg", zeros).numpy()
        arrays[f"tensor{i}.exp_avg_sq_out"] = state.get("exp_avg_sq", zeros).numpy()
        if amsgrad:
            arrays[f"tensor{i}.max_exp_avg_sq_out"] = state.get("max_exp_avg_sq", zeros).numpy()
        arrays[f"tensor{i}.step_out"] = np.array([int(state["step"]) if state else 0], dtype=np.uint64)
    write_arrays(os.path.join(OUT, name), arrays)


def gen_groups():
    # Two groups as in a typical model: decayed weights, and biases without
    # decay and with AMSGrad. Tensor 2 misses its gradient on three steps,
    # tensor 1 on the first, so step counts diverge within a group.
    sizes = [37, 8, 5]
    group_of = [0, 1, 1]

    def make(params):
        return torch.optim.AdamW(
            [
                {"params": [params[0]], "lr": 1e-2, "weight_decay": 0.1},
                {"params": [params[1], params[2]], "lr": 3e-3, "weight_decay": 0.0, "amsgrad": True},
            ],
            betas=(0.8, 0.99), eps=1e-6, foreach=False,
        )

    skipped = {(0, 1), (3, 2), (4, 2), (9, 2)}
    multi_tensor_run("groups.bin", make, sizes, group_of, 12, skipped, False, 1)

    # torch.optim.Adam's weight_decay adds weight_decay * param to the
    # gradient: the crate's WeightDecay::CoupledL2.
    def make_adam(params):
        return torch.optim.Adam(params, lr=2e-2, weight_decay=0.05, foreach=False)

    multi_tensor_run("adam_l2.bin", make_adam, [19, 4], [0, 0], 10, {(5, 1)}, True, 2)


def gen_clip():
    gen = torch.Generator().manual_seed(3)
    cases = []

    def add(sizes, scale, max_norm, specials=()):
        grads = [torch.randn(n, generator=gen) * scale for n in sizes]
        for tensor, index, value in specials:
            grads[tensor][index] = value
        cases.append((sizes, grads, max_norm))

    add([10], 1.0, 1.0)  # one tensor, clipped
    add([3, 7, 8, 9, 16, 17], 0.01, 1.0)  # below max_norm: coefficient clamped to 1
    add([1, 100, 1031], 0.3, 5.0)
    add([33] * 20, 2.0, 0.5)  # 20 tensors: the norm of norms uses 8 accumulators
    add([64, 64], 1e-20, 1e-3)  # tiny gradients: the 1e-6 dominates the sum
    add([5, 6], 1.0, 0.0)  # max_norm 0 zeroes the gradients
    add([5, 6], 1.0, 1.0, [(1, 2, float("nan"))])  # NaN norm: everything NaN
    add([5, 6], 1.0, 1.0, [(0, 4, float("inf"))])  # infinite norm: coefficient 0

    arrays = {"meta": np.array([len(cases)], dtype=np.uint64)}
    for k, (sizes, grads, max_norm) in enumerate(cases):
        params = [torch.nn.Parameter(torch.zeros(n)) for n in sizes]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        norms = [torch.linalg.vector_norm(g) for g in grads]
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        arrays[f"case{k}.sizes"] = np.array(sizes, dtype=np.uint64)
        arrays[f"case{k}.max_norm"] = np.array([max_norm], dtype=np.float32)
        arrays[f"case{k}.grads_in"] = torch.cat(grads).numpy()
        arrays[f"case{k}.norms"] = torch.stack(norms).numpy()
        arrays[f"case{k}.total_norm"] = np.array([total.item()], dtype=np.float32)
        arrays[f"case{k}.grads_out"] = torch.cat([p.grad for p in params]).numpy()
    write_arrays(os.path.join(OUT, "clip.bin"), arrays)


def gen_schedule():
    from torch.optim import lr_scheduler as S

    def run(base_lr, make, steps):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
        sched = make(opt)
        lrs = [sched.get_last_lr()[0]]
        for _ in range(steps):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr()[0])
        return np.array(lrs, dtype=np.float64)

    # The parameters are repeated in tests/schedule.rs; each case stores
    # them too, and the test checks that both agree.
    cases = {
        "linear_warmup": ([0.1, 0.25, 1.0, 7], 20,
                          lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=7)),
        "linear_decay": ([0.03, 1.0, 0.1, 10], 15,
                         lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=10)),
        "cosine": ([0.05, 10, 1e-3], 45,
                   lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=1e-3)),
        "cosine_zero_min": ([0.001, 7, 0.0], 30,
                            lambda o: S.CosineAnnealingLR(o, T_max=7)),
        "warmup_cosine": ([1e-3, 0.1, 1.0, 5, 20, 1e-5, 5], 40,
                          lambda o: S.SequentialLR(o, [
                              S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5),
                              S.CosineAnnealingLR(o, T_max=20, eta_min=1e-5)], milestones=[5])),
        "three_phase": ([0.2, 0.5, 1.0, 3, 10, 0.0, 1.0, 0.2, 4, 3, 13], 25,
                        lambda o: S.SequentialLR(o, [
                            S.LinearLR(o, start_factor=0.5, end_factor=1.0, total_iters=3),
                            S.CosineAnnealingLR(o, T_max=10),
                            S.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=4)],
                            milestones=[3, 13])),
    }
    arrays = {}
    for name, (params, steps, make) in cases.items():
        arrays[f"{name}.params"] = np.array(params, dtype=np.float64)
        arrays[f"{name}.lrs"] = run(params[0], make, steps)
    write_arrays(os.path.join(OUT, "schedule.bin"), arrays)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(6, 12)
        self.out = torch.nn.Linear(12, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


def make_interop_optimizer(model):
    # Parameter order in torch's numbering: hidden.weight, out.weight
    # (group 0), hidden.bias, out.bias (group 1).
    return torch.optim.AdamW(
        [
            {"params": [model.hidden.weight, model.out.weight], "weight_decay": 0.05},
            {"params": [model.hidden.bias, model.out.bias], "weight_decay": 0.0, "amsgrad": True},
        ],
        lr=5e-3, foreach=False,
    )


def interop_params(model):
    return [model.hidden.weight, model.out.weight, model.hidden.bias, model.out.bias]


def gen_interop():
    torch.manual_seed(0)
    model = Model()
    opt = make_interop_optimizer(model)
    x = torch.randn(32, 6)
    y = torch.randn(32, 3)

    def train_step():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        grads = [p.grad.detach().clone() for p in interop_params(model)]
        opt.step()
        return grads

    for _ in range(50):
        train_step()
    params = interop_params(model)
    blob50 = state_dict_to_checkpoint(opt.state_dict(), params, include_params=True)

    # The conversion back gives torch's state dict bit for bit.
    state_dict, values = checkpoint_to_state_dict(blob50, params, {"foreach": False})
    original = opt.state_dict()
    for index, entry in original["state"].items():
        for key, value in entry.items():
            assert torch.equal(value, state_dict["state"][index][key]), (index, key)
    for p, v in zip(params, values):
        assert torch.equal(p.detach(), v)
    for ours, theirs in zip(state_dict["param_groups"], original["param_groups"]):
        for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "params"):
            assert ours[key] == theirs[key], key

    # A second torch run resumed from the converted checkpoint.
    resumed = Model()
    resumed_opt = make_interop_optimizer(resumed)
    resumed_opt.load_state_dict(state_dict)
    with torch.no_grad():
        for p, v in zip(interop_params(resumed), values):
            p.copy_(v)

    grads = []
    params_after = []
    for _ in range(50):
        grads.append(torch.cat([g.reshape(-1) for g in train_step()]))
        params_after.append(torch.cat([p.detach().reshape(-1) for p in interop_params(model)]))
        resumed_opt.zero_grad()
        torch.nn.functional.mse_loss(resumed(x), y).backward()
        resumed_opt.step()
    for a, b in zip(interop_params(model), interop_params(resumed)):
        assert torch.equal(a, b), "torch resumed from the converted checkpoint diverged"
    print("torch resumed from the converted checkpoint: bit-identical after 50 steps")

    blob100 = state_dict_to_checkpoint(opt.state_dict(), interop_params(model), include_params=True)
    with open(os.path.join(OUT, "interop_step50.adwc"), "wb") as f:
        f.write(blob50)
    with open(os.path.join(OUT, "interop_step100.adwc"), "wb") as f:
        f.write(blob100)
    print(f"wrote interop_step50.adwc ({len(blob50)} bytes), interop_step100.adwc ({len(blob100)} bytes)")
    sizes = [p.numel() for p in interop_params(model)]
    write_arrays(os.path.join(OUT, "interop_grads.bin"), {
        "sizes": np.array(sizes, dtype=np.uint64),
        "grads": torch.stack(grads).numpy(),
        "params_after": torch.stack(params_after).numpy(),
    })


def main():
    os.makedirs(OUT, exist_ok=True)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    gen_groups()
    gen_clip()
    gen_schedule()
    gen_interop()


if __name__ == "__main__":
    main()
