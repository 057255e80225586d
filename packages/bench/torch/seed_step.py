"""The seed CNN's training step in PyTorch, for `pnpm bench`'s side-by-side row.

The same step as the burn core and the tfjs reference: conv32-conv32-maxpool-dense128-dense10,
Adadelta (lr 1, rho 0.95, eps 1e-7), VAT with eps 1, xi 10, one power iteration, alpha 1, on the
labeled batch, with p(y|x) held constant. The project does not install torch; the bench runs this
only where `import torch` works.

Usage: python3 seed_step.py '{"batch":128,"vat":true,"threads":2,"warmup":1,"minSteps":3,
"minSeconds":10,"maxSteps":20,"x":"path/x.bin","y":"path/y.bin","count":1024}'
Prints one JSON line: {"stepMs": [...], "adapter": "...", "firstLoss": .., "lastLoss": ..}.
"""

import json
import os
import resource
import sys
import time

spec = json.loads(sys.argv[1])
# OpenMP's threads spin between parallel regions; on a shared 2-core VM that costs more than it
# saves (docs/results.md), so they wait passively, as for any fair side-by-side run.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(spec["threads"])
torch.manual_seed(spec.get("seed", 1))
count, batch = spec["count"], spec["batch"]
# Raw little-endian f32 pixels and u32 labels, read with torch alone (a python with torch need
# not have numpy). The labels are below 2^31, so their bytes read as int32 unchanged.
with open(spec["x"], "rb") as f:
    x_all = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(count, 1, 28, 28)
with open(spec["y"], "rb") as f:
    y_all = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).to(torch.int64)


class SeedCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3)
        self.conv2 = torch.nn.Conv2d(32, 32, 3)
        self.fc1 = torch.nn.Linear(32 * 12 * 12, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        h = torch.flatten(F.max_pool2d(h, 2), 1)
        return self.fc2(F.relu(self.fc1(h)))


def normalize(d):
    flat = d.flatten(1)
    flat = flat / flat.abs().amax(1, keepdim=True).clamp_min(1e-30)
    flat = flat / (flat.square().sum(1, keepdim=True) + 1e-6).sqrt()
    return flat.view_as(d)


def kl(log_p, q_logits):
    return (log_p.exp() * (log_p - F.log_softmax(q_logits, 1))).sum(1).mean()


model = SeedCnn()
opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)


def step(x, y):
    opt.zero_grad(set_to_none=True)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    if spec["vat"]:
        log_p = F.log_softmax(logits.detach(), 1)
        d = (10.0 * normalize(torch.randn_like(x))).requires_grad_()
        (g,) = torch.autograd.grad(kl(log_p, model(x + d)), d)
        loss = loss + kl(log_p, model(x + 1.0 * normalize(g)))
    loss.backward()
    opt.step()
    return loss.item()


batches = count // batch
b = 0
losses, warm, ms = [], [], []


def timed():
    global b
    lo = (b % batches) * batch
    b += 1
    t0 = time.perf_counter()
    losses.append(step(x_all[lo : lo + batch], y_all[lo : lo + batch]))
    return (time.perf_counter() - t0) * 1000


for _ in range(spec["warmup"]):
    warm.append(timed())
start = time.perf_counter()
while len(ms) < spec["maxSteps"] and (len(ms) < spec["minSteps"] or time.perf_counter() - start < spec["minSeconds"]):
    ms.append(timed())
    print(f"  step {len(ms)}: {ms[-1] / 1000:.2f} s", file=sys.stderr)
print(
    json.dumps(
        {
            "adapter": f"PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads",
            "warmupMs": warm,
            "stepMs": ms,
            "firstLoss": losses[0],
            "lastLoss": losses[-1],
            # Linux reports ru_maxrss in KiB.
            "peakBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
    )
)
