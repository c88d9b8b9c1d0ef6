"""Independent expected values for tests/it/backtest.rs: reads two batch runs' output parts (as the test wrote them
before uploading) and the outcomes CSV, and prints each run's figures with scikit-learn and DeLong's paired test of
the two versions with numpy (not with mlambda's code). It also prints, for every row both runs scored, the label
agreement, |Δp| quantiles and PSI that `report --shadow` computes on a shadow's pairs (tests/it/shadow_report.rs
writes a shadow's pairs in this layout).

usage: backtest_expected.py BASELINE_RUN_DIR CANDIDATE_RUN_DIR OUTCOMES_CSV ALPHA
  RUN_DIR: a run's local copy; its `out/*.jsonl` hold one prediction line per scored row.

The structural components come from counting with `np.searchsorted` on the sorted scores of the other class
(ties count one half), a different route from mlambda's midranks; the covariance matrix is numpy's `np.cov`.
"""
import csv
import glob
import json
import os
import sys

import numpy as np
from scipy.stats import norm
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

base_dir, cand_dir, outcomes_path, alpha = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
with open(outcomes_path, newline="") as f:
    outcomes = {row["id"]: int(row["label"]) for row in csv.DictReader(f)}


def read(run_dir):
    """id -> probability of the run's labeled rows, and its figures."""
    scores, preds, labeled = {}, [], {}
    for part in sorted(glob.glob(os.path.join(run_dir, "out", "*.jsonl"))):
        for line in open(part):
            if not line.strip():
                continue
            doc = json.loads(line)
            preds.append(doc["prediction"])
            scores[doc["id"]] = doc["probability"]
            labels[run_dir][doc["id"]] = doc["prediction"]
            if doc["id"] in outcomes:
                labeled[doc["id"]] = doc["probability"]
    ids = sorted(labeled)
    y = np.array([outcomes[i] for i in ids])
    p = np.array([labeled[i] for i in ids], dtype=float)
    figures = {
        "rows": len(preds),
        "labeled": len(ids),
        "positive_rate": float(np.mean(np.array(preds) == 1)),
        "auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "accuracy": float(np.mean((p >= 0.5).astype(int) == y)),
    }
    return labeled, figures


def components(pos, neg):
    """V10 per positive, V01 per negative, by counting the other class's scores below, equal and above."""
    neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
    below = np.searchsorted(neg_sorted, pos, side="left")
    equal = np.searchsorted(neg_sorted, pos, side="right") - below
    v10 = (below + 0.5 * equal) / len(neg)
    above = len(pos) - np.searchsorted(pos_sorted, neg, side="right")
    tied = np.searchsorted(pos_sorted, neg, side="right") - np.searchsorted(pos_sorted, neg, side="left")
    v01 = (above + 0.5 * tied) / len(pos)
    return v10.mean(), v10, v01


# id -> predicted label, per run: what the shadow report's agreement compares
labels = {base_dir: {}, cand_dir: {}}
(base, base_figures), (cand, cand_figures) = read(base_dir), read(cand_dir)
both = sorted(set(base) & set(cand))
y = np.array([outcomes[i] for i in both])
a = np.array([base[i] for i in both], dtype=float)
b = np.array([cand[i] for i in both], dtype=float)
(auc_a, v10a, v01a), (auc_b, v10b, v01b) = components(a[y == 1], a[y == 0]), components(b[y == 1], b[y == 0])
m, n = int((y == 1).sum()), int((y == 0).sum())
S = np.cov(np.vstack([v10a, v10b])) / m + np.cov(np.vstack([v01a, v01b])) / n
var = S[0, 0] + S[1, 1] - 2 * S[0, 1]
d = auc_b - auc_a
z = d / np.sqrt(var)
half = norm.ppf(1 - alpha / 2) * np.sqrt(var)
paired = {
    "rows": len(both),
    "positives": m,
    "negatives": n,
    "baseline_auc": float(auc_a),
    "candidate_auc": float(auc_b),
    "sklearn_baseline_auc": float(roc_auc_score(y, a)),
    "sklearn_candidate_auc": float(roc_auc_score(y, b)),
    "difference": float(d),
    "standard_error": float(np.sqrt(var)),
    "correlation": float(S[0, 1] / np.sqrt(S[0, 0] * S[1, 1])),
    "z": float(z),
    "p_value": float(2 * norm.sf(abs(z))),
    "interval": [float(d - half), float(d + half)],
}

# every row both runs scored, labeled or not, as `report --shadow` pairs them (there on correlation id and row,
# here on the id, which the callers make unique per row): label agreement, |Δp| quantiles (numpy's default linear
# percentiles) and PSI over the 10 bins floor(10 p) (1.0 in the last), empty proportions floored at 1e-4
scored = {}
for run_dir in (base_dir, cand_dir):
    for part in sorted(glob.glob(os.path.join(run_dir, "out", "*.jsonl"))):
        for line in open(part):
            if line.strip():
                doc = json.loads(line)
                scored.setdefault(run_dir, {})[doc["id"]] = doc["probability"]
common = sorted(set(scored[base_dir]) & set(scored[cand_dir]))
pa = np.array([scored[base_dir][i] for i in common], dtype=float)
pb = np.array([scored[cand_dir][i] for i in common], dtype=float)
dp = np.abs(pb - pa)


def shares(p):
    counts = np.bincount(np.minimum(np.floor(p * 10), 9).astype(int), minlength=10)
    return np.maximum(counts / counts.sum(), 1e-4)


e_, a_ = shares(pa), shares(pb)
pairs = {
    "rows": len(common),
    "agreement": float(np.mean([labels[base_dir][i] == labels[cand_dir][i] for i in common])),
    "delta": {
        "mean": float(dp.mean()),
        "p50": float(np.percentile(dp, 50)),
        "p90": float(np.percentile(dp, 90)),
        "p99": float(np.percentile(dp, 99)),
        "max": float(dp.max()),
    },
    "psi": float(np.sum((a_ - e_) * np.log(a_ / e_))),
}
json.dump({"baseline": base_figures, "candidate": cand_figures, "paired": paired, "pairs": pairs}, sys.stdout)
