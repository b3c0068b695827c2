"""Train the small digits MLP the examples run, and write its weights and data as safetensors.

The outputs are committed (data/digits/), so the examples and CI need no Python. Rerun this
only to regenerate them:

    pip install numpy scikit-learn safetensors
    python3 scripts/train_digits.py            # writes data/digits/{mlp,digits}.safetensors

Data: scikit-learn's bundled `load_digits()` (1797 8x8 grey-scale digits, pixel values 0..16),
scaled to [0, 1] by dividing by 16, split stratified into 1257 training and 540 test rows with a
fixed seed.

Model: a 64-128-64-10 MLP with ReLU on both hidden layers (scikit-learn's MLPClassifier, Adam,
fixed seed). The logits are `fc3(relu(fc2(relu(fc1(x)))))` with `fcN(x) = x @ W.T + b`.

Outputs:
- data/digits/mlp.safetensors: f32 tensors fc1.weight [128, 64], fc1.bias [128],
  fc2.weight [64, 128], fc2.bias [64], fc3.weight [10, 64], fc3.bias [10]. Weights are in the
  [out, in] layout (PyTorch's nn.Linear convention).
- data/digits/digits.safetensors: x_train f32 [1257, 64], y_train i32 [1257],
  x_test f32 [540, 64], y_test i32 [540].
Both carry string metadata: the seed, the float test accuracy measured here (by a float32 numpy
forward pass over the exported tensors, which must agree with scikit-learn's own predictions),
and the library versions.

The same library versions reproduce the files byte for byte (the header's keys are sorted); other versions (or another BLAS)
may change the last bits of the weights and the accuracy by a fraction of a percent.
"""

import json
import os
import platform
import struct
import sys

import numpy as np
import safetensors
import sklearn
from safetensors.numpy import load, save
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

SEED = 0
N_TEST = 540
HIDDEN = (128, 64)
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "digits")


def forward_f32(tensors, x):
    """The float32 reference forward pass over the exported [out, in] tensors."""
    h = x
    for i in (1, 2, 3):
        h = h @ tensors[f"fc{i}.weight"].T + tensors[f"fc{i}.bias"]
        if i < 3:
            h = np.maximum(h, np.float32(0))
    return h


def write_canonical(path, tensors, metadata):
    """Write with safetensors, then re-emit the JSON header with sorted keys.

    safetensors orders the header's keys by hash, so two runs would differ in the header
    bytes alone; sorting them makes the committed files reproducible byte for byte. The data
    section and every offset are untouched (offsets are relative to the data section).
    """
    raw = save(tensors, metadata=metadata)
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    out = struct.pack("<Q", len(text)) + text + raw[8 + n :]
    back = load(out)
    assert back.keys() == tensors.keys()
    assert all(np.array_equal(back[k], tensors[k]) for k in tensors)
    with open(path, "wb") as f:
        f.write(out)


def main():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=N_TEST, stratify=y, random_state=SEED
    )

    clf = MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        activation="relu",
        solver="adam",
        alpha=1e-4,
        batch_size=64,
        learning_rate_init=1e-3,
        max_iter=500,
        tol=1e-4,
        n_iter_no_change=10,
        random_state=SEED,
    )
    clf.fit(x_train, y_train)

    # scikit-learn stores coefs_[i] as [in, out]; export [out, in], contiguous float32.
    tensors = {}
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_), start=1):
        tensors[f"fc{i}.weight"] = np.ascontiguousarray(w.T, dtype=np.float32)
        tensors[f"fc{i}.bias"] = np.ascontiguousarray(b, dtype=np.float32)

    pred_test = forward_f32(tensors, x_test).argmax(axis=1)
    pred_train = forward_f32(tensors, x_train).argmax(axis=1)
    test_acc = float((pred_test == y_test).mean())
    train_acc = float((pred_train == y_train).mean())
    sk_test_acc = float(clf.score(x_test, y_test))
    agree = float((pred_test == clf.predict(x_test)).mean())
    if agree != 1.0:
        sys.exit(f"float32 forward pass disagrees with scikit-learn on {1 - agree:.2%} of the test set")

    metadata = {
        "description": "digits MLP 64-128-64-10, ReLU; logits = fc3(relu(fc2(relu(fc1(x))))), fcN(x) = x @ W.T + b",
        "layout": "weights [out, in], row-major",
        "input": "load_digits() pixels / 16, float32 in [0, 1], 64 = 8x8 row-major",
        "seed": str(SEED),
        "n_train": str(len(y_train)),
        "n_test": str(len(y_test)),
        "test_accuracy_f32": f"{test_acc:.6f}",
        "test_correct_f32": str(int((pred_test == y_test).sum())),
        "train_accuracy_f32": f"{train_acc:.6f}",
        "sklearn_test_accuracy": f"{sk_test_acc:.6f}",
        "epochs": str(clf.n_iter_),
        "generator": "scripts/train_digits.py",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "safetensors": safetensors.__version__,
    }

    os.makedirs(OUT_DIR, exist_ok=True)
    write_canonical(os.path.join(OUT_DIR, "mlp.safetensors"), tensors, metadata)
    data = {
        "x_train": np.ascontiguousarray(x_train),
        "y_train": np.ascontiguousarray(y_train),
        "x_test": np.ascontiguousarray(x_test),
        "y_test": np.ascontiguousarray(y_test),
    }
    write_canonical(os.path.join(OUT_DIR, "digits.safetensors"), data, metadata)

    print(f"epochs: {clf.n_iter_}")
    print(f"train accuracy (f32): {train_acc:.4f}")
    print(f"test accuracy (f32): {test_acc:.4f} ({int((pred_test == y_test).sum())}/{len(y_test)})")
    print(f"test accuracy (scikit-learn): {sk_test_acc:.4f}")


if __name__ == "__main__":
    main()
