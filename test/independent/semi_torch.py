"""Semi-supervised VAT on MNIST with 100 labels, in PyTorch, written from the official Theano code
(takerum/vat, mnist_semi/train.py) and not from ours: a second implementation of the whole run
that `--preset paper-mlp-semi` makes, to tell a bug in our engine from a setting that does not
work (docs/results.md, "The paper's MNIST row").

The model is 784-1200-1200-10 with batch norm after every layer; a step is 100 labeled and 250
unlabeled images; Adam 0.002, decayed per epoch; VAT on the unlabeled batch (one power
iteration, batch statistics in every pass but the labeled one, which alone moves the running
statistics). At the end the running statistics are re-estimated over the unlabeled set, as the
official code does, and the test set is scored both ways.

The project does not install torch; run it with a Python that has torch and numpy:

    python test/independent/semi_torch.py --mnist DIR [--eps 0.3] [--xi 1e-2] [--entmin] ...

--entmin-weight and --entmin-ramp try what our engine does not offer (it adds the entropy term at
weight 1): docs/results.md, "The paper's MNIST row", gives what they did.

DIR holds MNIST's four idx files (gzipped or not).
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch

p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('--mnist', required=True, help="a folder with MNIST's idx files")
p.add_argument('--eps', type=float, default=0.3)
p.add_argument('--xi', type=float, default=1e-2)
p.add_argument('--entmin', action='store_true', help='add the entropy of p(y|x) on the unlabeled batch')
p.add_argument('--entmin-from', type=int, default=1, help='the first epoch (1-based) with the entropy term')
p.add_argument('--entmin-weight', type=float, default=1.0, help="the entropy term's weight")
p.add_argument('--entmin-ramp', type=int, default=0, help='raise that weight linearly from 0 over this many epochs')
p.add_argument('--lr', type=float, default=0.002)
p.add_argument('--epochs', type=int, default=100)
p.add_argument('--steps', type=int, default=236, help='steps per epoch (the official code: 500)')
p.add_argument('--decay', type=float, default=0.95, help='learning-rate factor per epoch')
p.add_argument('--seed', type=int, default=1)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--split', help='a JSON file of row indices {labeled, val, train} (train: the unlabeled pool), to train on the very split of another run')
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
rng = np.random.default_rng(a.seed)


def idx(stem, offset):
    for name, opener in ((stem, open), (stem + '.gz', gzip.open)):
        path = os.path.join(a.mnist, name)
        if os.path.exists(path):
            with opener(path, 'rb') as f:
                return np.frombuffer(f.read(), np.uint8, offset=offset)
    raise SystemExit(f'{stem}(.gz) is not in {a.mnist}')


X = idx('train-images-idx3-ubyte', 16).reshape(-1, 784).astype(np.float32) / 255
Y = idx('train-labels-idx1-ubyte', 8).astype(np.int64)
Xt = idx('t10k-images-idx3-ubyte', 16).reshape(-1, 784).astype(np.float32) / 255
Yt = idx('t10k-labels-idx1-ubyte', 8).astype(np.int64)
# 10 labels per class, 1,000 held out for validation, and every other image (labeled ones too,
# as in the official code) unlabeled.
perm = rng.permutation(len(X))
lab = np.concatenate([perm[Y[perm] == c][:10] for c in range(10)])
rest = np.setdiff1d(perm, lab, assume_unique=True)
rest = rest[rng.permutation(len(rest))]
val, ul = rest[:1000], np.concatenate([lab, rest[1000:]])
if a.split:
    with open(a.split) as f:
        split = json.load(f)
    lab, val, ul = (np.array(split[k], dtype=np.int64) for k in ('labeled', 'val', 'train'))
xl, yl = torch.tensor(X[lab]), torch.tensor(Y[lab])
xu = torch.tensor(X[ul])
xv, yv = torch.tensor(X[val]), torch.tensor(Y[val])
xt, yt = torch.tensor(Xt), torch.tensor(Yt)

SIZES = [784, 1200, 1200, 10]
W = [(torch.randn(m, n) / m**0.5).requires_grad_() for m, n in zip(SIZES[:-1], SIZES[1:])]
G = [torch.ones(n, requires_grad=True) for n in SIZES[1:]]
B = [torch.zeros(n, requires_grad=True) for n in SIZES[1:]]
mean = [torch.zeros(n) for n in SIZES[1:]]
var = [torch.ones(n) for n in SIZES[1:]]


def net(x, mode):
    """mode: 'update' (batch statistics, moving the running ones), 'batch' or 'eval'."""
    h = x
    for i in range(3):
        h = h @ W[i]
        if mode == 'eval':
            mu, v = mean[i], var[i]
        else:
            mu, v = h.mean(0), h.var(0, unbiased=False)
            if mode == 'update':
                m = h.shape[0]
                mean[i] = 0.9 * mean[i] + 0.1 * mu.detach()
                var[i] = 0.9 * var[i] + 0.1 * v.detach() * m / (m - 1)
        h = G[i] * (h - mu) / torch.sqrt(1e-6 + v) + B[i]
        if i < 2:
            h = torch.relu(h)
    return h


def unit(v):
    v = v / (1e-20 + v.abs().amax(1, keepdim=True))
    return v / torch.sqrt(1e-6 + (v * v).sum(1, keepdim=True))


def kl(logit_p, logit_q):
    lp, lq = torch.log_softmax(logit_p, 1), torch.log_softmax(logit_q, 1)
    return (lp.exp() * (lp - lq)).sum(1).mean()


def accuracy(x, y):
    with torch.no_grad():
        return (net(x, 'eval').argmax(1) == y).double().mean().item()


def reestimate():
    """The official code's last step: batch-norm statistics averaged over the unlabeled set."""
    with torch.no_grad():
        sums = [(torch.zeros(n), torch.zeros(n)) for n in SIZES[1:]]
        parts = 0
        for k in range(0, len(xu) - 249, 250):
            h = xu[k : k + 250]
            for i in range(3):
                h = h @ W[i]
                mu, v = h.mean(0), h.var(0, unbiased=False)
                sums[i][0].add_(mu)
                sums[i][1].add_(v * 250 / 249)
                h = G[i] * (h - mu) / torch.sqrt(1e-6 + v) + B[i]
                if i < 2:
                    h = torch.relu(h)
            parts += 1
        return [s[0] / parts for s in sums], [s[1] / parts for s in sums]


def accuracy_reestimated(x, y):
    global mean, var
    kept = mean, var
    mean, var = reestimate()
    try:
        return accuracy(x, y)
    finally:
        mean, var = kept


opt = torch.optim.Adam(W + G + B, lr=a.lr)
sched = torch.optim.lr_scheduler.ExponentialLR(opt, a.decay)
t0 = time.time()
at = 0
for epoch in range(a.epochs):
    xu = xu[torch.randperm(len(xu))]
    for _ in range(a.steps):
        if at + 250 > len(xu):
            at = 0
        u = xu[at : at + 250]
        at += 250
        loss = torch.nn.functional.cross_entropy(net(xl, 'update'), yl)
        clean = net(u, 'batch')
        target = clean.detach()
        d = (a.xi * unit(torch.randn_like(u))).requires_grad_()
        (grad,) = torch.autograd.grad(kl(target, net(u + d, 'batch')), d)
        lds = kl(target, net(u + a.eps * unit(grad), 'batch'))
        loss = loss + lds
        if a.entmin and epoch + 1 >= a.entmin_from:
            lu = torch.log_softmax(clean, 1)
            weight = a.entmin_weight * (min(1.0, (epoch + _ / a.steps) / a.entmin_ramp) if a.entmin_ramp else 1.0)
            loss = loss - weight * (lu.exp() * lu).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sched.step()
    print(
        f'epoch {epoch + 1} lds {lds.item():.4f} val {accuracy(xv, yv):.4f}'
        f' (re-estimated: {accuracy_reestimated(xv, yv):.4f}) ({time.time() - t0:.0f} s)',
        flush=True,
    )
print(f'test {accuracy(xt, yt):.4f} (running statistics of the labeled batches)', flush=True)
mean, var = reestimate()
print(f'test {accuracy(xt, yt):.4f} (statistics re-estimated over the unlabeled set)', flush=True)
