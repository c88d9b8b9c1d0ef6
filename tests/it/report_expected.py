"""Independent expected values for tests/it/report.rs: reads the prediction log lines the test wrote and the
outcomes CSV, and prints per-version figures computed with numpy and scikit-learn (not with mlambda's code).

usage: report_expected.py LINES_FILE OUTCOMES_CSV [COMPARE_JSON]
  LINES_FILE: one log message per line, noise included.
  COMPARE_JSON: {"baseline": "1", "candidate": "2", "alpha": 0.05, "look": [1, 1], "counts": {VERSION: {"requests": N,
  "errors": N, "client_errors": N}}, "calibration": "brier"}: adds "bounds", the one-sided confidence bounds on how
  much worse the candidate is that the verdict uses (lower at alpha, upper at the look's spent alpha), and
  "look_alpha", the alpha the look may spend (O'Brien-Fleming-type spending, scipy).
"""
import csv
import json
import sys

import numpy as np
from scipy.stats import norm
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

lines_path, outcomes_path = sys.argv[1], sys.argv[2]
with open(outcomes_path, newline="") as f:
    outcomes = {row["id"]: row["label"] for row in csv.DictReader(f)}

per = {}
for message in open(lines_path):
    message = message.strip()
    if not message.startswith("{"):
        continue
    doc = json.loads(message)
    if doc.get("mlambda") != "prediction":
        continue
    v = per.setdefault(doc["function_version"], {"rows": 0, "latency": {}, "p": [], "pred": [], "y": [], "yp": [], "ypred": []})
    v["rows"] += 1
    v["latency"].setdefault(doc["request_id"], doc["latency_ms"])
    v["p"].append(doc["probability"])
    v["pred"].append(doc["prediction"])
    label = outcomes.get(str(doc["id"]))
    if label is not None:
        v["y"].append(int(label))
        v["yp"].append(doc["probability"])
        v["ypred"].append(doc["prediction"])

out = {}
for version, v in per.items():
    lat = np.array(list(v["latency"].values()), dtype=float)
    y, yp = np.array(v["y"]), np.array(v["yp"], dtype=float)
    out[version] = {
        "rows": v["rows"],
        "logged_requests": len(v["latency"]),
        "p50": float(np.percentile(lat, 50)),
        "p90": float(np.percentile(lat, 90)),
        "p99": float(np.percentile(lat, 99)),
        "positive_rate": float(np.mean(np.array(v["pred"]) == 1)),
        "mean_probability": float(np.mean(v["p"])),
        "labeled": int(len(y)),
        "auc": float(roc_auc_score(y, yp)),
        "log_loss": float(log_loss(y, yp, labels=[0, 1])),
        "brier": float(brier_score_loss(y, yp)),
        "accuracy": float(np.mean(np.array(v["ypred"]) == y)),
    }


def delong(y, p):
    """AUC and DeLong's variance from the pairwise kernel, O(m n): a different route from mlambda's midranks."""
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), np.var(v10, ddof=1) / len(pos) + np.var(v01, ddof=1) / len(neg)


def wilson(k, n, z):
    if np.isinf(z):
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z / d * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(c - h, 0.0), min(c + h, 1.0)


def newcombe(kb, nb, kc, nc, zl, zu):
    pb, pc = kb / nb, kc / nc
    lb_lo, ub_lo = wilson(kb, nb, zl)
    lc_lo, _ = wilson(kc, nc, zl)
    lb_hi, _ = wilson(kb, nb, zu)
    _, uc_hi = wilson(kc, nc, zu)
    d = pc - pb
    return {"worse_by": d, "lower": d - np.hypot(pc - lc_lo, ub_lo - pb), "upper": d + np.hypot(uc_hi - pc, pb - lb_hi)}


def spent(alpha, t):
    return 0.0 if t <= 0 else 2 - 2 * norm.cdf(norm.ppf(1 - alpha / 2) / np.sqrt(t))


if len(sys.argv) > 3:
    cmp = json.loads(sys.argv[3])
    alpha, (k, planned) = cmp["alpha"], cmp["look"]
    look_alpha = spent(alpha, k / planned) - spent(alpha, (k - 1) / planned) if k <= planned else 0.0
    zl = norm.ppf(1 - alpha)
    zu = norm.ppf(1 - look_alpha) if look_alpha > 0 else np.inf
    b, c = cmp["baseline"], cmp["candidate"]
    cb, cc = cmp["counts"][b], cmp["counts"][c]
    bounds = {
        "error_rate": newcombe(cb["errors"], cb["requests"], cc["errors"], cc["requests"], zl, zu),
        "client_error_rate": newcombe(cb["client_errors"], cb["requests"], cc["client_errors"], cc["requests"], zl, zu),
    }

    def labeled(version):
        v = per[version]
        return np.array(v["y"]), np.array(v["yp"], dtype=float)

    if per.get(b, {}).get("y") and per.get(c, {}).get("y"):
        (yb, pb), (yc, pc) = labeled(b), labeled(c)
        (ab, vb), (ac, vc) = delong(yb, pb), delong(yc, pc)
        d, se = ab - ac, np.sqrt(vb + vc)
        bounds["auc"] = {"worse_by": d, "lower": d - zl * se, "upper": d + zu * se}
        if cmp.get("calibration", "brier") == "brier":
            lb, lc = (pb - yb) ** 2, (pc - yc) ** 2
            name = "brier"
        else:
            eps = np.finfo(float).eps
            clip = lambda p: np.clip(p, eps, 1 - eps)
            lb = -(yb * np.log(clip(pb)) + (1 - yb) * np.log(1 - clip(pb)))
            lc = -(yc * np.log(clip(pc)) + (1 - yc) * np.log(1 - clip(pc)))
            name = "log_loss"
        d = lc.mean() - lb.mean()
        se = np.sqrt(np.var(lb, ddof=1) / len(lb) + np.var(lc, ddof=1) / len(lc))
        bounds[name] = {"worse_by": d, "lower": d - zl * se, "upper": d + zu * se}
    out["bounds"] = {k: {kk: float(vv) for kk, vv in v.items()} for k, v in bounds.items()}
    out["look_alpha"] = float(look_alpha)

json.dump(out, sys.stdout)
