#!/usr/bin/env python3
"""Generate mlambda-runtime's accuracy fixtures: small ONNX models plus onnxruntime's and sklearn's outputs.

For every model kind (GradientBoostingClassifier, RandomForestClassifier, LogisticRegression,
GradientBoostingRegressor; each behind a StandardScaler, as users ship them) and both skl2onnx export
styles ("default": ai.onnx.ml.Scaler + ZipMap; "recommended": zipmap=False + Sub/Div scaler) this writes
into runtime/tests/fixtures/:

  NAME.onnx            the exported model
  NAME.ort.f32         onnxruntime's P(class 1) (classifiers) or value (regressors), little-endian f32
  NAME.ort_label.u8    onnxruntime's label per row (classifiers)
  NAME.sk.f32          sklearn's predict_proba[:, 1] / predict on the same float32 rows
  NAME.sk_label.u8     sklearn's predict (classifiers)
  rows.f32             the 10,000 input rows shared by all fixtures, row-major f32 x 7
  fixtures.json        the manifest runtime/tests/accuracy.rs reads

The churn example (examples/churn/model.onnx, from train.py) is included as fixture "churn" without
copying the model. Everything is seeded; re-running reproduces the files.

Usage: /work/main/.venv/bin/python examples/fixtures.py
"""

import importlib.util
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "runtime", "tests", "fixtures")
N_ROWS = 10_000


def load_train():
    spec = importlib.util.spec_from_file_location("churn_train", os.path.join(HERE, "churn", "train.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pipelines():
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    def scaled(est):
        return Pipeline([("scaler", StandardScaler()), ("est", est)])

    return {
        "gbc": ("classifier", scaled(GradientBoostingClassifier(n_estimators=60, max_depth=4, random_state=1))),
        "rf": ("classifier", scaled(RandomForestClassifier(n_estimators=25, max_depth=6, random_state=2))),
        "lr": ("classifier", scaled(LogisticRegression(max_iter=1000))),
        "gbr": ("regressor", scaled(GradientBoostingRegressor(n_estimators=60, max_depth=4, random_state=3))),
    }


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    train = load_train()
    os.makedirs(OUT, exist_ok=True)
    X, y = train.make_dataset(6000)
    X_train, y_train = X[:5000], y[:5000]
    # regression target: a smooth churn-risk score with noise (its scale is the model's business)
    rng = np.random.default_rng(99)
    y_reg = 0.03 * X_train[:, 0] - 0.02 * X_train[:, 1] + 0.4 * X_train[:, 3] + rng.normal(0, 0.3, len(X_train))
    rows = train.random_rows(N_ROWS, seed=7)
    write("rows.f32", rows.astype("<f4").tobytes())

    manifest = []

    def record(name, model_path, task, export, model_bytes, pipe):
        labels, values = train.ort_outputs(model_bytes, rows)
        write(f"{name}.ort.f32", values.astype("<f4").tobytes())
        entry = {"name": name, "model": model_path, "task": task, "export": export, "n_features": 7}
        if task == "classifier":
            write(f"{name}.ort_label.u8", labels.astype(np.uint8).tobytes())
            write(f"{name}.sk.f32", pipe.predict_proba(rows)[:, 1].astype("<f4").tobytes())
            write(f"{name}.sk_label.u8", pipe.predict(rows).astype(np.uint8).tobytes())
        else:
            write(f"{name}.sk.f32", pipe.predict(rows).astype("<f4").tobytes())
        manifest.append(entry)

    for kind, (task, pipe) in pipelines().items():
        pipe.fit(X_train, y_train if task == "classifier" else y_reg)
        for export in ("default", "recommended"):
            name = f"{kind}_{export}"
            model = train.export(pipe, 7, recommended=export == "recommended")
            write(f"{name}.onnx", model)
            record(name, f"{name}.onnx", task, export, model, pipe)

    # the churn example, retrained identically; refuse to record outputs for a different model
    churn = train.build_pipeline().fit(X_train, y_train)
    churn_bytes = train.export(churn, 7, recommended=True)
    churn_path = os.path.join(HERE, "churn", "model.onnx")
    with open(churn_path, "rb") as f:
        on_disk = f.read()
    # skl2onnx names nodes with a per-process counter, so compare behaviour rather than bytes
    _, fresh = train.ort_outputs(churn_bytes, rows)
    _, disk = train.ort_outputs(on_disk, rows)
    if np.max(np.abs(fresh - disk)) > 1e-7:
        raise SystemExit("examples/churn/model.onnx differs from a fresh train.py run: run train.py first")
    record("churn", "../../../examples/churn/model.onnx", "classifier", "recommended", on_disk, churn)

    with open(os.path.join(OUT, "fixtures.json"), "w") as f:
        json.dump({"rows": "rows.f32", "n_rows": N_ROWS, "fixtures": manifest}, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, p)) for p in os.listdir(OUT))
    print(f"wrote {len(manifest)} fixtures to {os.path.normpath(OUT)} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
