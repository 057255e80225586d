"""Scores a vat weights file on MNIST with numpy alone: an implementation independent of burn,
wasm and this project's code, reading the file with the official `safetensors` package.

    python3 eval_numpy.py WEIGHTS.safetensors IMAGES_IDX LABELS_IDX

Prints one JSON line: {"accuracy": ..., "loss": ..., "count": ...}. The model is the one the
file declares: the seed's CNN, or the model spec in its `model_config` metadata, evaluated here
from the layers' definitions (README "Models"; PyTorch layouts, NCHW, pixels / 255).
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


def conv(x, w, b, stride, padding):
    """Any square kernel and stride; 'same' pads to ceil(h / stride), the odd row and column at
    the bottom and right (TensorFlow's rule)."""
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-wd // stride)
        ph, pw = max((oh - 1) * stride + k - h, 0), max((ow - 1) * stride + k - wd, 0)
        x = np.pad(x, ((0, 0), (0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))
    else:
        oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
    cols = np.empty((n, c, k, k, oh, ow), dtype=np.float32)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
    out = np.einsum("nckluv,ockl->nouv", cols, w, optimize=True)
    return out if b is None else out + b[None, :, None, None]


def spec_forward(spec, p, x):
    """Evaluation mode: batch norm with its running statistics, dropout and noise off."""
    counts = {"conv": 0, "fc": 0, "bn": 0}

    def take(kind):
        counts[kind] += 1
        return f"{kind}{counts[kind]}"

    h = x
    for layer in spec["layers"]:
        t = layer["type"]
        if t == "conv":
            name = take("conv")
            h = conv(h, p[f"{name}.weight"], p.get(f"{name}.bias"), layer.get("stride", 1), layer.get("padding", "valid"))
        elif t == "dense":
            name = take("fc")
            h = h.reshape(len(h), -1) @ p[f"{name}.weight"].T
            if f"{name}.bias" in p:
                h = h + p[f"{name}.bias"]
        elif t == "batchNorm":
            name = take("bn")
            shape = (1, -1, 1, 1) if h.ndim == 4 else (1, -1)
            mean, var = p[f"{name}.running_mean"].reshape(shape), p[f"{name}.running_var"].reshape(shape)
            scale = p[f"{name}.weight"].reshape(shape) / np.sqrt(var + np.float32(layer.get("eps", 1e-6)))
            h = (h - mean) * scale + p[f"{name}.bias"].reshape(shape)
        elif t == "relu":
            h = np.maximum(h, 0)
        elif t == "leakyRelu":
            h = np.where(h > 0, h, np.float32(layer.get("slope", 0.1)) * h)
        elif t == "maxPool":
            k, s = layer["size"], layer.get("stride") or layer["size"]
            n, c, hh, ww = h.shape
            oh, ow = (hh - k) // s + 1, (ww - k) // s + 1
            h = np.max(
                [h[:, :, i : i + s * oh : s, j : j + s * ow : s] for i in range(k) for j in range(k)], axis=0
            )
        elif t == "globalAvgPool":
            h = h.mean(axis=(2, 3))
        elif t in ("dropout", "gaussianNoise"):
            pass
        else:
            raise SystemExit(f"unknown layer type {t!r}")
    return h


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
    with open(weights, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    spec = json.loads(header.get("__metadata__", {}).get("model_config", "{}")).get("spec")
    run = (lambda batch: spec_forward(spec, p, batch)) if spec else (lambda batch: forward(p, batch))
    x = read_idx(images).astype(np.float32)[:, None] / 255.0
    norm = json.loads(header.get("__metadata__", {}).get("model_config", "{}")).get("normalization")
    if norm:
        # Per-channel standardisation, which the model's input is (README "Your own data").
        x = (x - np.float32(norm["mean"])[None, :, None, None]) / np.float32(norm["std"])[None, :, None, None]
    y = read_idx(labels).astype(np.int64)
    correct, loss = 0, 0.0
    for start in range(0, len(y), 500):
        logits = run(x[start : start + 500]).astype(np.float64)
        t = y[start : start + 500]
        m = logits.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
        loss += float((lse - logits[np.arange(len(t)), t]).sum())
        correct += int((logits.argmax(axis=1) == t).sum())
    print(json.dumps({"accuracy": correct / len(y), "loss": loss / len(y), "count": len(y)}))


if __name__ == "__main__":
    main()
