"""Time one torch.optim.AdamW step on the sizes of benches/step.rs.

Prints the median time per ``opt.step()`` for the default implementation
(the single-tensor loop on CPU), ``foreach=True`` and ``fused=True``, on one
thread and on all threads, so the figures can be set beside the criterion
bench's on the same machine.

Environment (outside the repository)::

    python3 -m venv ~/venv-adamw
    ~/venv-adamw/bin/pip install torch==2.15.0 numpy
    ~/venv-adamw/bin/python benches/torch_step.py

``--sizes 1K,4K`` limits the sizes; ``--seconds`` sets the time spent per
measurement (default 1.0). ``--clock thread-cpu`` measures the calling
thread's CPU time instead of wall time, as ``ADAMW_BENCH_CLOCK=thread-cpu``
does for the criterion bench. It runs only the one-thread cases, because
the CPU time of torch's worker threads is not counted.
"""

import argparse
import statistics
import time

import torch

# A step reads param, grad, exp_avg and exp_avg_sq and writes all but grad.
BYTES_PER_ELEMENT = 28
SIZES = {"1K": 1 << 10, "4K": 1 << 12, "64K": 1 << 16, "1M": 1 << 20, "16M": 1 << 24}
VARIANTS = {
    "default": {},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}
WARMUP_STEPS = 5
MIN_REPEATS = 10
MAX_REPEATS = 20_000


def make_optimizer(n, options):
    """Build an AdamW optimizer over one tensor of n elements with a fixed-seed gradient."""
    generator = torch.Generator().manual_seed(n)
    param = torch.nn.Parameter(torch.rand(n, generator=generator) * 2 - 1)
    param.grad = (torch.rand(n, generator=generator) * 2 - 1) * 1e-2
    return torch.optim.AdamW([param], lr=1e-3, **options)


def median_step_seconds(optimizer, budget_seconds, clock):
    """Time single steps with clock until the budget is spent and return the median."""
    for _ in range(WARMUP_STEPS):
        optimizer.step()
    start = clock()
    optimizer.step()
    first = clock() - start
    repeats = int(min(MAX_REPEATS, max(MIN_REPEATS, budget_seconds / max(first, 1e-9))))

    times = []
    for _ in range(repeats):
        start = clock()
        optimizer.step()
        times.append(clock() - start)
    return statistics.median(times), repeats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated names from " + ",".join(SIZES))
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent per measurement, in seconds")
    parser.add_argument(
        "--clock",
        choices=["wall", "thread-cpu"],
        default="wall",
        help="wall time, or the calling thread's CPU time (one thread only)",
    )
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.thread_time

    all_threads = torch.get_num_threads()
    thread_counts = sorted({1, all_threads}) if args.clock == "wall" else [1]
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, clock {args.clock}")
    print(f"{'size':<6} {'variant':<8} {'threads':>7} {'time/step':>12} {'Gelem/s':>8} {'GB/s':>7} {'repeats':>8}")
    for name in args.sizes.split(","):
        n = SIZES[name]
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for variant, options in VARIANTS.items():
                optimizer = make_optimizer(n, options)
                seconds, repeats = median_step_seconds(optimizer, args.seconds, clock)
                print(
                    f"{name:<6} {variant:<8} {threads:>7} {seconds * 1e6:>10.2f}us "
                    f"{n / seconds / 1e9:>8.3f} {BYTES_PER_ELEMENT * n / seconds / 1e9:>7.1f} {repeats:>8}",
                    flush=True,
                )
                del optimizer
    torch.set_num_threads(all_threads)


if __name__ == "__main__":
    main()
