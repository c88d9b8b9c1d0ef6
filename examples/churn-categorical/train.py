#!/usr/bin/env python3
"""Train the churn model on raw string categoricals and export it for mlambda, one graph input per column.

The churn problem of examples/churn, but the way most tabular data arrives: `contract_type` and
`payment_method` are strings, not integer codes. The pipeline is

  ColumnTransformer(
      StandardScaler                          on tenure_months, monthly_charges, total_charges,
                                                 num_products, has_tech_support
      OneHotEncoder(handle_unknown="ignore")  on contract_type, payment_method
  ) + GradientBoostingClassifier(n_estimators=100, max_depth=3, learning_rate=0.1)

exported with one graph input per column (float `[N, 1]` for numbers, string `[N, 1]` for categories), so
the graph's input names ARE the request's feature names: `mlambda.yaml` needs no `model.features`.
Export options as mlambda recommends: `zipmap: False` (a plain probability tensor) and the scaler's
`div` form (core Sub/Div instead of ai.onnx.ml.Scaler's float32 1/std). A category never seen in
training (say `"contract_type": "three-year"`) is one-hot encoded as all zeros, as in scikit-learn.

The data is generated (seeded), so the run is reproducible and needs no download. Writes next to this
file: model.onnx, and reference.json (50 held-out rows with onnxruntime's outputs as `expected` and
scikit-learn's as `sklearn`; `mlambda model push --reference` reads `features`, `rows`, `expected`).

Usage: python train.py [--out-dir DIR] [--seed N]
"""

import argparse
import json
import os

import numpy as np

NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "num_products", "has_tech_support"]
CATEGORICAL = ["contract_type", "payment_method"]
FEATURES = NUMERIC + CATEGORICAL  # the graph's input order
INTEGER = {"tenure_months", "num_products", "has_tech_support"}  # written as JSON integers

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENTS = ["electronic-check", "mailed-check", "bank-transfer", "credit-card"]

SEED = 20240611


def make_dataset(n, seed=SEED):
    """A churn-shaped DataFrame (examples/churn's generator, with the categories as strings) and its labels."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, n).astype(np.float64)
    monthly = np.round(rng.uniform(18.25, 118.75, n), 2)
    total = np.round(np.maximum(tenure, 1) * monthly * rng.uniform(0.9, 1.1, n), 2)
    products = rng.integers(1, 7, n).astype(np.float64)
    tech = rng.integers(0, 2, n).astype(np.float64)
    contract = rng.integers(0, 3, n)
    payment = rng.integers(0, 4, n)
    logit = (
        1.2
        - 0.045 * tenure
        + 0.022 * (monthly - 65)
        - 0.25 * (products - 3)
        - 0.8 * tech
        - 1.1 * contract
        + 0.35 * (payment == 0)
    )
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    frame = pd.DataFrame(
        {
            # every number as the float32 the model sees, so sklearn and the ONNX graph get the same values
            "tenure_months": tenure.astype(np.float32).astype(np.float64),
            "monthly_charges": monthly.astype(np.float32).astype(np.float64),
            "total_charges": total.astype(np.float32).astype(np.float64),
            "num_products": products,
            "has_tech_support": tech,
            "contract_type": np.array(CONTRACTS, dtype=object)[contract],
            "payment_method": np.array(PAYMENTS, dtype=object)[payment],
        }
    )
    return frame, y


def build_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    clf = GradientBoostingClassifier(n_estimators=100, max_depth=3, learning_rate=0.1, random_state=42)
    return Pipeline([("prep", prep), ("clf", clf)])


def export(pipeline):
    """skl2onnx export with one input per column, zipmap=False and the Sub/Div scaler."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    inputs = [(c, FloatTensorType([None, 1])) for c in NUMERIC]
    inputs += [(c, StringTensorType([None, 1])) for c in CATEGORICAL]
    scaler = pipeline.named_steps["prep"].named_transformers_["num"]
    options = {id(pipeline.named_steps["clf"]): {"zipmap": False}, id(scaler): {"div": "div"}}
    onx = to_onnx(pipeline, initial_types=inputs, options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    # skl2onnx fills opset_import from a set; a fixed order keeps the file's bytes reproducible
    imports = sorted(onx.opset_import, key=lambda o: o.domain)
    del onx.opset_import[:]
    onx.opset_import.extend(imports)
    return onx.SerializeToString()


def feed(frame):
    """onnxruntime inputs: each column as `[N, 1]`, float32 numbers, strings as an object array."""
    return {
        c: (frame[c].to_numpy(np.float32) if c in NUMERIC else frame[c].to_numpy(object)).reshape(-1, 1)
        for c in FEATURES
    }


def ort_outputs(model_bytes, frame):
    """onnxruntime's labels and [N, 2] probabilities."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    labels, probs = sess.run(None, feed(frame))
    return np.asarray(labels).reshape(-1), np.asarray(probs, dtype=np.float32)


def request_value(column, v):
    """A JSON value as a client sends it: the string, an integer, or the shortest float32 decimal."""
    if column in CATEGORICAL:
        return str(v)
    if column in INTEGER:
        return int(v)
    return float(str(np.float32(v)))


def answer(label, probs, classes):
    return {
        "prediction": int(label),
        "probability": float(probs[1]),
        "probabilities": {str(c): float(p) for c, p in zip(classes, probs)},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--seed", type=int, default=SEED, help="dataset seed; another seed trains a new model version")
    args = parser.parse_args()

    frame, y = make_dataset(6000, seed=args.seed)
    train, test = frame.iloc[:5000], frame.iloc[5000:].reset_index(drop=True)
    pipe = build_pipeline().fit(train, y[:5000])
    model = export(pipe)
    with open(os.path.join(args.out_dir, "model.onnx"), "wb") as f:
        f.write(model)

    rows = test.iloc[:50]
    labels, probs = ort_outputs(model, rows)
    sk_probs, sk_labels = pipe.predict_proba(rows), pipe.predict(rows)
    diff = float(np.max(np.abs(probs - sk_probs)))
    flips = int((labels != sk_labels).sum())
    if diff > 1e-5 or flips:
        raise SystemExit(f"onnxruntime and scikit-learn disagree: max diff {diff:.3e}, {flips} label flips")
    classes = [int(c) for c in pipe.classes_]
    reference = {
        "features": FEATURES,
        "rows": [[request_value(c, r[c]) for c in FEATURES] for r in rows.to_dict(orient="records")],
        "expected": [answer(lbl, p, classes) for lbl, p in zip(labels, probs)],
        "sklearn": [answer(lbl, p, classes) for lbl, p in zip(sk_labels, sk_probs)],
    }
    with open(os.path.join(args.out_dir, "reference.json"), "w") as f:
        f.write(reference_json(reference))
    acc = (pipe.predict(test) == y[5000:]).mean()
    print(
        f"wrote model.onnx ({len(model)} bytes), reference.json; held-out accuracy {acc:.3f}; "
        f"onnxruntime vs scikit-learn on the reference rows: max diff {diff:.2e}, {flips} label flips"
    )


def reference_json(reference):
    """One row or answer per line."""
    lines = ["{", f' "features": {json.dumps(reference["features"])},']
    for key in ("rows", "expected", "sklearn"):
        items = ",\n  ".join(json.dumps(i) for i in reference[key])
        lines.append(f' "{key}": [\n  {items}\n ]' + ("," if key != "sklearn" else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
