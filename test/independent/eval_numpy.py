"""Scores a vat weights file on MNIST with numpy alone: an implementation independent of burn,
wasm and this project's code, reading the file with the official `safetensors` package.

    python3 eval_numpy.py WEIGHTS.safetensors IMAGES_IDX LABELS_IDX

Prints one JSON line: {"accuracy": ..., "loss": ..., "count": ...}. The architecture is the one
the README documents (PyTorch layouts, NCHW, pixels / 255).
"""

import json
import sys

import numpy as np
from safetensors.numpy import load_file


def read_idx(path):
    raw = open(path, "rb").read()
    magic = int.from_bytes(raw[:4], "big")
    ndims = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndims)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndims)
    assert magic in (2049, 2051) and data.size == int(np.prod(dims)), f"bad idx file {path}"
    return data.reshape(dims)


def conv_valid(x, w, b):
    """x [n, c, h, w], w [o, c, 3, 3] -> [n, o, h-2, w-2] (cross-correlation, as in PyTorch)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x[:, :, i : i + oh, j : j + ow]
    out = np.einsum("nckluv,ockl->nouv", cols, w, optimize=True)
    return out + b[None, :, None, None]


def forward(p, x):
    h = np.maximum(conv_valid(x, p["conv1.weight"], p["conv1.bias"]), 0)
    h = np.maximum(conv_valid(h, p["conv2.weight"], p["conv2.bias"]), 0)
    n, c, hh, ww = h.shape
    h = h[:, :, : hh // 2 * 2, : ww // 2 * 2].reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))
    h = h.reshape(n, -1)
    h = np.maximum(h @ p["fc1.weight"].T + p["fc1.bias"], 0)
    return h @ p["fc2.weight"].T + p["fc2.bias"]


def main():
    weights, images, labels = sys.argv[1:4]
    p = load_file(weights)
    x = read_idx(images).astype(np.float32)[:, None] / 255.0
    y = read_idx(labels).astype(np.int64)
    correct, loss = 0, 0.0
    for start in range(0, len(y), 500):
        logits = forward(p, x[start : start + 500]).astype(np.float64)
        t = y[start : start + 500]
        m = logits.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
        loss += float((lse - logits[np.arange(len(t)), t]).sum())
        correct += int((logits.argmax(axis=1) == t).sum())
    print(json.dumps({"accuracy": correct / len(y), "loss": loss / len(y), "count": len(y)}))


if __name__ == "__main__":
    main()
