"""Write the UCI optical handwritten digits as the compact file that the
`digits` example embeds.

The data set (E. Alpaydin and C. Kaynak, UCI Machine Learning Repository,
CC BY 4.0) is the copy that scikit-learn ships, so no download is needed.

Output: examples/data/digits.bin, 1797 records of 65 bytes in the order
scikit-learn returns them. Each record contains the 64 pixels of an 8x8 image,
row by row, as integers 0..16, followed by the label 0..9.

Environment:
    python3 -m venv DIR && DIR/bin/pip install scikit-learn numpy
Run from the repository root:
    DIR/bin/python examples/gen_digits.py
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parent / "data" / "digits.bin"


def main():
    digits = load_digits()
    pixels = digits.data
    labels = digits.target

    # The values are integers stored as float64. Check that before the cast.
    if not np.array_equal(pixels, np.round(pixels)) or pixels.min() < 0 or pixels.max() > 16:
        raise SystemExit(f"unexpected pixel values: min {pixels.min()}, max {pixels.max()}")
    if labels.min() < 0 or labels.max() > 9:
        raise SystemExit(f"unexpected labels: min {labels.min()}, max {labels.max()}")

    records = np.concatenate(
        [pixels.astype(np.uint8), labels.astype(np.uint8)[:, None]], axis=1
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(records.tobytes())
    print(f"wrote {OUT}: {records.shape[0]} records of {records.shape[1]} bytes")


if __name__ == "__main__":
    main()
