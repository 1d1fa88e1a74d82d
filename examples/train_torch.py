"""Train the `digits` example's model with torch.optim.AdamW, as reference.

The model, data split, initial weights, batch order and hyperparameters are
those of examples/digits/: the same SplitMix64 stream, repeated here with
Python integers, draws the split, the initial weights and each epoch's
shuffle. Writes examples/data/digits_torch.csv, which the Rust example
embeds and prints beside its own loss. Then, unless --no-plot is given, runs
the Rust example and draws both loss curves into examples/digits_loss.svg.

Environment (torch 2.15.0 gave the committed file, on an x86-64 CPU with
AVX-512):
    python3 -m venv DIR && DIR/bin/pip install torch==2.15.0 numpy matplotlib
Run from the repository root, after examples/gen_digits.py:
    DIR/bin/python examples/train_torch.py
"""

import argparse
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

EXAMPLES = Path(__file__).resolve().parent
DATA = EXAMPLES / "data" / "digits.bin"
REFERENCE = EXAMPLES / "data" / "digits_torch.csv"
PLOT = EXAMPLES / "digits_loss.svg"

# The constants of examples/digits/train.rs, model.rs and data.rs.
SEED = 2026
EPOCHS = 20
BATCH = 32
INPUTS, HIDDEN, CLASSES = 64, 32, 10
SAMPLES, TRAIN = 1797, 1437
LR = 3e-3
WEIGHT_DECAY = 1e-2

MASK64 = (1 << 64) - 1


class SplitMix64:
    """The generator of examples/digits/data.rs, draw for draw."""

    def __init__(self, seed):
        self.state = seed

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n):
        return self.next_u64() % n

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]

    def uniform(self, shape, fan_in):
        """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as the Rust side rounds it.

        Rust computes (2u - 1) * bound in f32, where 2u - 1 is exact. Both
        factors have 24-bit significands, so their product is exact in f64,
        and one rounding to f32 gives Rust's result.
        """
        bound = float(np.float32(1.0 / math.sqrt(fan_in)))
        count = math.prod(shape)
        values = [(2.0 * ((self.next_u64() >> 40) / 16777216.0) - 1.0) * bound for _ in range(count)]
        return torch.tensor(np.array(values, dtype=np.float64).astype(np.float32).reshape(shape))


def fnv1a64(tensors):
    """Compute the digest of examples/digits/model.rs: FNV-1a over little-endian f32 bytes."""
    h = 0xCBF29CE484222325
    for t in tensors:
        for byte in t.detach().numpy().astype("<f4").tobytes():
            h = ((h ^ byte) * 0x100000001B3) & MASK64
    return h


def load_digits_file():
    raw = np.frombuffer(DATA.read_bytes(), dtype=np.uint8)
    if raw.size != SAMPLES * (INPUTS + 1):
        raise SystemExit(f"{DATA}: expected {SAMPLES * (INPUTS + 1)} bytes, found {raw.size}")
    records = raw.reshape(SAMPLES, INPUTS + 1)
    images = torch.tensor(records[:, :INPUTS].astype(np.float32) / np.float32(16.0))
    labels = torch.tensor(records[:, INPUTS].astype(np.int64))
    return images, labels


def train():
    torch.set_num_threads(1)
    images, labels = load_digits_file()

    rng = SplitMix64(SEED)
    order = list(range(SAMPLES))
    rng.shuffle(order)
    train_idx, test_idx = order[:TRAIN], order[TRAIN:]

    w1 = rng.uniform((HIDDEN, INPUTS), INPUTS).requires_grad_()
    b1 = rng.uniform((HIDDEN,), INPUTS).requires_grad_()
    w2 = rng.uniform((CLASSES, HIDDEN), HIDDEN).requires_grad_()
    b2 = rng.uniform((CLASSES,), HIDDEN).requires_grad_()
    init_digest = fnv1a64([w1, b1, w2, b2])

    optimizer = torch.optim.AdamW(
        [
            {"params": [w1, w2], "weight_decay": WEIGHT_DECAY},
            {"params": [b1, b2], "weight_decay": 0.0},
        ],
        lr=LR,
        foreach=False,
    )

    def logits(x):
        return F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)

    def count_correct(idx):
        with torch.no_grad():
            predicted = logits(images[idx]).argmax(dim=1)
        return int((predicted == labels[idx]).sum())

    rows = []
    for epoch in range(1, EPOCHS + 1):
        rng.shuffle(train_idx)
        loss_sum, batches = 0.0, 0
        for start in range(0, TRAIN, BATCH):
            idx = train_idx[start : start + BATCH]
            loss = F.cross_entropy(logits(images[idx]), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
            batches += 1
        row = (epoch, loss_sum / batches, count_correct(train_idx), count_correct(test_idx))
        rows.append(row)
        print(f"epoch {row[0]:2}  loss {row[1]:.6f}  train {row[2]}/{TRAIN}  test {row[3]}/{SAMPLES - TRAIN}")

    with REFERENCE.open("w") as f:
        f.write(f"# examples/train_torch.py, torch {torch.__version__}\n")
        f.write(f"# init_digest=0x{init_digest:016x}\n")
        f.write("epoch,loss,train_correct,test_correct\n")
        for epoch, loss, train_correct, test_correct in rows:
            f.write(f"{epoch},{loss!r},{train_correct},{test_correct}\n")
    print(f"wrote {REFERENCE}")
    return rows


def rust_losses():
    """Runs the Rust example and reads its loss and relative difference
    columns. The relative difference is read as printed because the loss
    column has too few digits to compute it from."""
    report = subprocess.run(
        ["cargo", "run", "--release", "--quiet", "--example", "digits"],
        cwd=EXAMPLES.parent,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    losses = {}
    for line in report.splitlines():
        match = re.match(r"\s*(\d+)\s+([0-9.]+)\s+[0-9.]+\s+([0-9.e+-]+)\s", line)
        if match:
            losses[int(match.group(1))] = (float(match.group(2)), float(match.group(3)))
    return losses


def plot(rows, losses):
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    # Fixed ids and no date, so that the file changes only with the data.
    matplotlib.rcParams["svg.hashsalt"] = "digits"
    # Text as SVG text rather than glyph outlines keeps the file small.
    matplotlib.rcParams["svg.fonttype"] = "none"
    epochs = [row[0] for row in rows]
    torch_loss = [row[1] for row in rows]
    rust_loss = [losses[e][0] for e in epochs]
    rel_diff = [losses[e][1] for e in epochs]

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 5.6), sharex=True, height_ratios=[2, 1])
    top.plot(epochs, torch_loss, "o-", label="torch.optim.AdamW", markersize=7, color="#d62728")
    top.plot(epochs, rust_loss, "x--", label="adamw crate (Rust)", markersize=7, color="#1f77b4")
    top.set_yscale("log")
    top.set_ylabel("training loss (mean cross-entropy)")
    top.set_title("MLP 64-32-10 on UCI digits, same initial weights and batches")
    top.legend()
    top.grid(True, which="both", alpha=0.3)

    bottom.semilogy(epochs, rel_diff, "s-", color="#2ca02c", markersize=4)
    bottom.set_xlabel("epoch")
    bottom.set_ylabel("|loss - torch| / torch")
    bottom.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    bottom.grid(True, which="both", alpha=0.3)

    fig.tight_layout()
    fig.savefig(PLOT, metadata={"Date": None})
    print(f"wrote {PLOT}: largest relative loss difference {max(rel_diff):.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-plot", action="store_true", help="write the CSV only; skip the Rust run and the SVG")
    args = parser.parse_args()

    rows = train()
    if not args.no_plot:
        plot(rows, rust_losses())


if __name__ == "__main__":
    main()
