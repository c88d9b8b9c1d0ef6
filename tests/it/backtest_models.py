"""A labelled history and a clearly worse candidate model for tests/it/batch.rs's end-to-end backtest.

usage: backtest_models.py OUT_DIR ROWS
Writes into OUT_DIR: history.csv (customer_id + the churn example's 7 features, from the example's own data
generator with another seed), outcomes.csv (id,label), worse.onnx (the example's pipeline trained on 300 rows
with a third of the labels flipped and 3 stumps) and worse_reference.json (its onnxruntime outputs, for
`mlambda model push --reference`).
"""
import csv
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "churn"))
import train  # noqa: E402

out, n = sys.argv[1], int(sys.argv[2])
X, y = train.make_dataset(n, seed=7)
with open(os.path.join(out, "history.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer_id"] + train.FEATURES)
    for i, row in enumerate(X):
        w.writerow([f"H-{i:06d}"] + [repr(float(v)) for v in row])
with open(os.path.join(out, "outcomes.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "label"])
    for i, label in enumerate(y):
        w.writerow([f"H-{i:06d}", int(label)])

from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

Xt, yt = train.make_dataset(300, seed=11)
flip = np.random.default_rng(3).uniform(size=len(yt)) < 0.33
yt = np.where(flip, 1 - yt, yt)
pipe = Pipeline([("scaler", StandardScaler()), ("clf", GradientBoostingClassifier(n_estimators=3, max_depth=1, random_state=1))])
pipe.fit(Xt, yt)
model = train.export(pipe, len(train.FEATURES))
with open(os.path.join(out, "worse.onnx"), "wb") as f:
    f.write(model)
rows = X[:20].astype(np.float32)
labels, probs = train.ort_outputs(model, rows)
reference = {
    "features": train.FEATURES,
    "rows": [[float(str(v)) for v in r] for r in rows],
    "expected": [{"prediction": int(lbl), "probability": float(p)} for lbl, p in zip(labels, probs)],
}
with open(os.path.join(out, "worse_reference.json"), "w") as f:
    json.dump(reference, f)
