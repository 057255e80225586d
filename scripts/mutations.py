"""The bugs scripts/mutation-check.sh plants, one per call, in the working tree it runs in.

Each is a (file, text, replacement) edit; the text must occur exactly once, so a refactor that
moves the code makes this script fail loudly instead of planting nothing.
"""

import sys
from pathlib import Path

CPU = "crates/vat-core/src/cpu/step.rs"
GRAPH = "crates/vat-core/src/graph.rs"
VAT = "crates/vat-core/src/vat.rs"

MUTATIONS = {
    # KL(q || p): the divergence the wrong way round, with its own gradient.
    "cpu:kl-q-p": [
        (
            CPU,
            """    for i in 0..log_q.len() {
        let p = log_p[i].exp();
        value += p * (log_p[i] - log_q[i]);
        grad[i] = scale * (log_q[i].exp() - p) / n as f32;
    }""",
            """    for (r, row) in log_q.chunks_exact(k).enumerate() {
        let row_kl: f32 = row.iter().zip(&log_p[r * k..]).map(|(q, p)| q.exp() * (q - p)).sum();
        for (j, lq) in row.iter().enumerate() {
            let i = r * k + j;
            value += lq.exp() * (lq - log_p[i]);
            grad[i] = scale * lq.exp() * ((lq - log_p[i]) - row_kl) / n as f32;
        }
    }""",
        )
    ],
    # No stop-gradient: the LDS term's gradient also flows into the clean pass through p(y|x).
    "cpu:no-stop-gradient": [
        (
            CPU,
            """        lds = value;
        loss += value * config.alpha as f32;""",
            """        lds = value;
        loss += value * config.alpha as f32;
        if x_u.is_none() {
            let log_q = log_softmax(&adv.logits, k);
            let n = (log_p.len() / k) as f32;
            for (r, (lp, lq)) in log_p.chunks_exact(k).zip(log_q.chunks_exact(k)).enumerate() {
                let row_kl: f32 = lp.iter().zip(lq).map(|(p, q)| p.exp() * (p - q)).sum();
                for j in 0..k {
                    d_clean[r * k + j] += config.alpha as f32 * lp[j].exp() * ((lp[j] - lq[j]) - row_kl) / n;
                }
            }
        }""",
        )
    ],
    # One norm for the whole batch instead of one per sample.
    "cpu:batch-norm": [
        (
            CPU,
            """pub fn normalize_per_sample(d: &mut [f32], px: usize) {
    for row in d.chunks_exact_mut(px) {""",
            """pub fn normalize_per_sample(d: &mut [f32], px: usize) {
    let _ = px;
    let px = d.len();
    for row in d.chunks_exact_mut(px) {""",
        )
    ],
    # xi applied twice to the probe.
    "cpu:xi-twice": [
        (
            CPU,
            """                d.iter_mut().for_each(|v| *v *= config.xi as f32);""",
            """                d.iter_mut().for_each(|v| *v *= config.xi as f32 * config.xi as f32);""",
        )
    ],
    "graph:kl-q-p": [(GRAPH, "lds = vat::kl_with_logits(clean, adv_logits);", "lds = vat::kl_with_logits(adv_logits, clean);")],
    "graph:no-stop-gradient": [(GRAPH, "Some(l) => l.clone().without_autodiff(),", "Some(l) => l.clone(),")],
    "graph:batch-norm": [(VAT, "let flat = d.reshape([b, c * h * w]);", "let flat = d.reshape([1, b * c * h * w]);")],
    "graph:xi-twice": [(VAT, "(normalize_per_sample(d) * config.xi)", "(normalize_per_sample(d) * config.xi * config.xi)")],
}

name = sys.argv[1]
for file, text, replacement in MUTATIONS[name]:
    path = Path(file)
    source = path.read_text()
    if source.count(text) != 1:
        sys.exit(f"mutation {name}: the text to replace occurs {source.count(text)} times in {file}, not once")
    path.write_text(source.replace(text, replacement))
print(f"planted {name}", file=sys.stderr)
