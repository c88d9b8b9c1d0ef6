"""Independent expected values for tests/it/report.rs: reads the prediction log lines the test wrote and the
outcomes CSV, and prints per-version figures computed with numpy and scikit-learn (not with mlambda's code).

usage: report_expected.py LINES_FILE OUTCOMES_CSV   (LINES_FILE: one log message per line, noise included)
"""
import csv
import json
import sys

import numpy as np
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
json.dump(out, sys.stdout)
