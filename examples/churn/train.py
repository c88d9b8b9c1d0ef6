#!/usr/bin/env python3
"""Train the reference recipe's churn pipeline on a generated dataset and export it for mlambda.

The pipeline is the recipe's: StandardScaler + GradientBoostingClassifier(n_estimators=200, max_depth=4,
learning_rate=0.1) on 7 numeric features. The data is generated (seeded), so the run is reproducible and
needs no download.

Export uses the options mlambda recommends:
  * `zipmap: False`   -> a plain `probabilities` tensor instead of a sequence of maps;
  * scaler `div`      -> core Sub/Div instead of `ai.onnx.ml.Scaler`, whose float32 `1/std` can move
                         predictions near split thresholds away from scikit-learn's.

Writes next to this file: model.onnx, reference.json (50 held-out rows with onnxruntime's and sklearn's
outputs; `mlambda model push --reference` reads `features`, `rows`, `expected`).

Usage: python train.py [--out-dir DIR]
"""

import argparse
import json
import os

import numpy as np

FEATURES = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "num_products",
    "has_tech_support",
    "contract_type_encoded",
    "payment_method_encoded",
]

SEED = 20240611


def make_dataset(n, seed=SEED):
    """A churn-shaped dataset: integer-coded categoricals, money with cents, a noisy logistic label."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, n).astype(np.float64)
    monthly = np.round(rng.uniform(18.25, 118.75, n), 2)
    # total ≈ tenure × monthly with some drift; a brand-new customer has paid one month
    total = np.round(np.maximum(tenure, 1) * monthly * rng.uniform(0.9, 1.1, n), 2)
    products = rng.integers(1, 7, n).astype(np.float64)
    tech = rng.integers(0, 2, n).astype(np.float64)
    contract = rng.integers(0, 3, n).astype(np.float64)
    payment = rng.integers(0, 4, n).astype(np.float64)
    logit = (
        1.2
        - 0.045 * tenure
        + 0.022 * (monthly - 65)
        - 0.25 * (products - 3)
        - 0.8 * tech
        - 1.1 * contract
        + 0.35 * (payment == 2)
    )
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    X = np.column_stack([tenure, monthly, total, products, tech, contract, payment])
    return X, y


def random_rows(n, seed):
    """Uniform rows inside the training ranges (integers stay integers), as float32."""
    rng = np.random.default_rng(seed)
    cols = [
        rng.integers(0, 73, n),
        rng.uniform(18.25, 118.75, n),
        rng.uniform(18.25, 8700.0, n),
        rng.integers(1, 7, n),
        rng.integers(0, 2, n),
        rng.integers(0, 3, n),
        rng.integers(0, 4, n),
    ]
    return np.column_stack(cols).astype(np.float32)


def build_pipeline():
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("scaler", StandardScaler()),
            ("clf", GradientBoostingClassifier(n_estimators=200, max_depth=4, learning_rate=0.1, random_state=42)),
        ]
    )


def export(pipeline, n_features, recommended=True):
    """skl2onnx export; `recommended` selects zipmap=False and the Sub/Div scaler."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    options = {}
    if recommended:
        for _, step in pipeline.steps:
            if hasattr(step, "predict_proba"):
                options[id(step)] = {"zipmap": False}
            elif type(step).__name__ == "StandardScaler":
                options[id(step)] = {"div": "div"}
    onx = to_onnx(
        pipeline,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options=options or None,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return onx.SerializeToString()


def ort_outputs(model_bytes, rows):
    """onnxruntime's P(class 1) (or value) per row, and its label for classifiers."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {sess.get_inputs()[0].name: rows})
    names = [o.name for o in sess.get_outputs()]
    if len(names) == 1:  # regressor
        return None, np.asarray(outs[0], dtype=np.float64).reshape(-1)
    probs = outs[1]
    if isinstance(probs, list):  # ZipMap: a list of {label: p}
        probs = np.array([[m[0], m[1]] for m in probs])
    return np.asarray(outs[0]).reshape(-1), np.asarray(probs, dtype=np.float64)[:, 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--seed", type=int, default=SEED, help="dataset seed; another seed trains a new model version")
    args = parser.parse_args()

    X, y = make_dataset(6000, seed=args.seed)
    X_train, y_train, X_test = X[:5000], y[:5000], X[5000:]
    pipe = build_pipeline().fit(X_train, y_train)
    model = export(pipe, len(FEATURES), recommended=True)
    with open(os.path.join(args.out_dir, "model.onnx"), "wb") as f:
        f.write(model)

    rows = X_test[:50].astype(np.float32)
    labels, probs = ort_outputs(model, rows)
    sk = pipe.predict_proba(rows)[:, 1]
    sk_labels = pipe.predict(rows)
    reference = {
        "features": FEATURES,
        # shortest decimal that round-trips the float32 value: readable and exact
        "rows": [[float(str(v)) for v in r] for r in rows],
        "expected": [{"prediction": int(lbl), "probability": float(p)} for lbl, p in zip(labels, probs)],
        "sklearn": [{"prediction": int(lbl), "probability": float(p)} for lbl, p in zip(sk_labels, sk)],
    }
    with open(os.path.join(args.out_dir, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")
    acc = (pipe.predict(X[5000:]) == y[5000:]).mean()
    print(f"wrote model.onnx ({len(model)} bytes), reference.json; held-out accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
