#!/usr/bin/env python3
"""Generate mlambda-runtime's tabular fixtures: real multiclass, string-label, imputer, categorical,
MLP, SVM, LightGBM and XGBoost exports, with onnxruntime's and the library's own outputs.

Every model is small (few, shallow trees; few support vectors) and trained on a generated, seeded,
churn-shaped dataset, so re-running reproduces every file byte for byte (opset imports are sorted and
graph names fixed, which exporters otherwise take from a set or a uuid). Writes into
runtime/tests/fixtures/tabular/:

  NAME.onnx       the exported model
  NAME.json       {"rows": [request objects], "ort": {...}, "sklearn": {...} | null}
                  rows are exactly what a client sends (`null` = a missing value, only in imputer
                  fixtures); "ort" is onnxruntime on the same .onnx and rows (floats as float32,
                  strings as numpy object arrays): {"label": [...], "probabilities": [[...]]} for
                  classifiers (columns in `labels` order), {"value": [...]} for regressors;
                  "sklearn" is the library's own predict / predict_proba on the same rows
  churn_categorical.onnx  a copy of examples/churn-categorical/model.onnx (run its train.py first;
                  this script refuses a stale one)
  manifest.json   {"fixtures": [{name, model, task, features, labels, rows, compare_sklearn,
                  tolerance, note}]}; `features` names the columns of a model with ONE [N, k] float
                  input, null when the graph has one named input per column (the request fields are
                  the input names); `labels` are in the model's own type, in probability-column order

Inside the script, onnxruntime must match the library within 1e-5 with 0 label flips wherever
`compare_sklearn` is true, or the script fails. It prints, per fixture, the max difference and the set
of ONNX op types in the graph (what the runtime has to implement).

Needs the pinned versions in scripts/requirements-fixtures.txt (scikit-learn, skl2onnx, onnxruntime,
onnxmltools, lightgbm, xgboost-cpu). The generated files are committed; CI does not run this.

Usage: /work/main/.venv/bin/python examples/fixtures_tabular.py [--out-dir DIR]
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "runtime", "tests", "fixtures", "tabular")

SEED = 20261201
N_TRAIN = 1500
N_ROWS = 300  # held-out rows per fixture
TOLERANCE = 1e-5
OPSET = {"": 17, "ai.onnx.ml": 3}

K = 6
FEATURES = [f"f{i}" for i in range(K)]
TIERS = ["bronze", "silver", "gold", "platinum"]  # sklearn sorts them: bronze, gold, platinum, silver

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENTS = ["electronic-check", "mailed-check", "bank-transfer", "credit-card"]


# ---------------------------------------------------------------------------------------------- data


def f32(a):
    """Round to float32 and back: the exact values the client sends and every model sees."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def numeric_data(n, seed, n_classes=3):
    """k numeric features with mixed scales (an integer count, money, four gaussians), a class and a target."""
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.integers(0, 73, n),
            np.round(rng.uniform(18.25, 118.75, n), 2),
            np.round(rng.normal(0, 1, (n, K - 2)), 4),
        ]
    ).astype(np.float64)
    X = f32(X)
    z = (X[:, 0] - 36) / 21
    m = (X[:, 1] - 68) / 29
    scores = np.column_stack(
        [
            1.2 * z - 0.8 * X[:, 2] + 0.5 * X[:, 3] * X[:, 4],
            -0.9 * z + 1.1 * m + 0.6 * np.sin(2 * X[:, 5]),
            0.7 * X[:, 2] + 0.9 * X[:, 4] - 0.5 * m,
            0.8 * X[:, 3] - 0.6 * X[:, 5] + 0.4 * z * m,
        ]
    )[:, :n_classes]
    scores += rng.gumbel(0, 0.6, scores.shape)
    y = scores.argmax(axis=1).astype(np.int64)
    target = 0.8 * z - 0.5 * m + 0.6 * np.tanh(X[:, 2] * X[:, 3]) + 0.3 * X[:, 4] + rng.normal(0, 0.15, n)
    return X, y, target


def with_missing(X, seed, frac=0.15):
    rng = np.random.default_rng(seed)
    X = X.copy()
    X[rng.uniform(size=X.shape) < frac] = np.nan
    return X


def churn_frame(n, seed, unseen=0.0):
    """Raw churn columns with string categoricals; `unseen` is the share of categories never trained on."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, n).astype(np.float64)
    monthly = np.round(rng.uniform(18.25, 118.75, n), 2)
    contract = rng.choice(CONTRACTS, n, p=[0.5, 0.3, 0.2]).astype(object)
    payment = rng.choice(PAYMENTS, n).astype(object)
    logit = (
        1.0
        - 0.04 * tenure
        + 0.025 * (monthly - 65)
        - 1.2 * (contract == "one-year")
        - 2.2 * (contract == "two-year")
        + 0.6 * (payment == "electronic-check")
    )
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    if unseen:
        contract[rng.uniform(size=n) < unseen] = "three-year"
        payment[rng.uniform(size=n) < unseen] = "crypto"
    frame = pd.DataFrame(
        {"tenure": f32(tenure), "monthly": f32(monthly), "contract": contract, "payment": payment}
    )
    return frame, y


# ------------------------------------------------------------------------------------------- export


def skl_export(model, initial_types, options=None):
    from skl2onnx import to_onnx

    return to_onnx(model, initial_types=initial_types, options=options, target_opset=OPSET)


def float_input():
    from skl2onnx.common.data_types import FloatTensorType

    return [("input", FloatTensorType([None, K]))]


def est_options(pipe, zipmap=True, div=False):
    """skl2onnx options per step: zipmap=False on the classifier, the Sub/Div form of StandardScaler."""
    steps = [s for _, s in pipe.steps] if hasattr(pipe, "steps") else [pipe]
    options = {}
    for step in steps:
        if hasattr(step, "predict_proba") and not zipmap:
            options[id(step)] = {"zipmap": False}
        elif type(step).__name__ == "StandardScaler" and div:
            options[id(step)] = {"div": "div"}
    return options or None


def stable_opsets(model):
    """Sorts opset_import by domain in place: exporters fill it from a set, so its order (and the file's bytes)
    would otherwise change with Python's hash seed. Duplicate entries, which skl2onnx sometimes writes, are kept."""
    imports = sorted(model.opset_import, key=lambda o: o.domain)
    del model.opset_import[:]
    model.opset_import.extend(imports)


def op_types(model):
    """The set of op types in the graph, ai.onnx.ml ones prefixed with their domain."""
    return sorted({f"{n.domain}.{n.op_type}" if n.domain else n.op_type for n in model.graph.node})


# ---------------------------------------------------------------------------------------- outputs


def ort_run(model_bytes, feed, labels):
    """onnxruntime's labels and [N, C] probabilities (ZipMap's maps read in `labels` order), or values."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    outs = sess.run(None, feed)
    if labels is None:
        return {"value": np.asarray(outs[0], dtype=np.float32).reshape(-1)}
    lab, probs = outs[0], outs[1]
    if isinstance(probs, list):  # ZipMap: one {label: p} per row
        probs = np.array([[m[c] for c in labels] for m in probs], dtype=np.float32)
    return {"label": np.asarray(lab).reshape(-1), "probabilities": np.asarray(probs, dtype=np.float32)}


def sk_run(model, X, labels):
    if labels is None:
        return {"value": np.asarray(model.predict(X), dtype=np.float64).reshape(-1)}
    return {"label": np.asarray(model.predict(X)).reshape(-1), "probabilities": np.asarray(model.predict_proba(X))}


def compare(a, b):
    """(max abs difference, label flips) between two output dicts of the same task."""
    if "value" in a:
        return float(np.max(np.abs(a["value"].astype(np.float64) - b["value"]))), 0
    diff = float(np.max(np.abs(a["probabilities"].astype(np.float64) - b["probabilities"])))
    flips = int(sum(str(x) != str(y) for x, y in zip(a["label"], b["label"])))
    return diff, flips


def jsonable(out, labels):
    """Output arrays as JSON values: labels in the model's type, floats at full (repr) precision."""
    if "value" in out:
        return {"value": [float(v) for v in out["value"]]}
    conv = str if isinstance(labels[0], str) else int
    return {
        "label": [conv(v) for v in out["label"]],
        "probabilities": [[float(p) for p in row] for row in out["probabilities"]],
    }


def json_value(v):
    """A request value: the string, the integer (int64 inputs), null for NaN, or the shortest float32 decimal."""
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if np.isnan(v):
        return None
    return float(str(np.float32(v)))


# ------------------------------------------------------------------------------------------ writer


class Writer:
    def __init__(self, out_dir):
        self.out = out_dir
        self.manifest = []
        self.failures = []
        os.makedirs(out_dir, exist_ok=True)

    def add(self, name, model, onx, rows, feed, sk_input, labels, compare_sklearn=True, note="", features=FEATURES):
        """Writes NAME.onnx and NAME.json, checks onnxruntime against the library, records the manifest entry."""
        stable_opsets(onx)
        model_bytes = onx.SerializeToString()
        with open(os.path.join(self.out, f"{name}.onnx"), "wb") as f:
            f.write(model_bytes)
        ort_out = ort_run(model_bytes, feed, labels)
        sk_out = sk_run(model, sk_input, labels)
        diff, flips = compare(ort_out, sk_out)
        ops = op_types(onx)
        ok = diff <= TOLERANCE and flips == 0
        status = "ok" if ok else ("MISMATCH" if compare_sklearn else "differs (not compared)")
        print(f"{name:22s} max|ort-sklearn| {diff:.2e}  label flips {flips}  {status}")
        print(f"{'':22s} ops: {', '.join(ops)}")
        if compare_sklearn and not ok:
            self.failures.append(f"{name}: max diff {diff:.3e}, {flips} label flips")
        if not compare_sklearn:
            note = f"{note} Measured here: max |ort - library| {diff:.2e}, {flips} label flips."
        task = "regressor" if labels is None else "classifier"
        doc = {
            "rows": [{k: json_value(v) for k, v in r.items()} for r in rows],
            "ort": jsonable(ort_out, labels),
            "sklearn": jsonable(sk_out, labels) if compare_sklearn else None,
        }
        write_rows_json(os.path.join(self.out, f"{name}.json"), doc)
        self.manifest.append(
            {
                "name": name,
                "model": f"{name}.onnx",
                "task": task,
                "features": features,
                "labels": None if labels is None else [l if isinstance(l, str) else int(l) for l in labels],
                "rows": f"{name}.json",
                "compare_sklearn": compare_sklearn,
                "tolerance": TOLERANCE,
                "note": f"{note.strip()} Ops: {', '.join(ops)}.".strip(),
            }
        )

    def finish(self):
        with open(os.path.join(self.out, "manifest.json"), "w") as f:
            json.dump({"fixtures": self.manifest}, f, indent=1)
            f.write("\n")
        total = sum(os.path.getsize(os.path.join(self.out, p)) for p in os.listdir(self.out))
        print(f"wrote {len(self.manifest)} fixtures to {os.path.normpath(self.out)} ({total / 1e6:.2f} MB)")
        if self.failures:
            print("onnxruntime and the library disagree where compare_sklearn is true:", file=sys.stderr)
            for f in self.failures:
                print(f"  {f}", file=sys.stderr)
            raise SystemExit(1)


def write_rows_json(path, doc):
    """One row (or output row) per line: compact, yet diffable."""

    def block(items):
        return "[\n" + ",\n".join(json.dumps(i) for i in items) + "\n]"

    parts = [f'"rows": {block(doc["rows"])}']
    for key in ("ort", "sklearn"):
        val = doc[key]
        if val is None:
            parts.append(f'"{key}": null')
        else:
            inner = ",\n".join(f'"{k}": {block(v)}' for k, v in val.items())
            parts.append(f'"{key}": {{\n{inner}\n}}')
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(parts) + "\n}\n")


# -------------------------------------------------------------------------------------- fixtures


def numeric_rows(X):
    return [dict(zip(FEATURES, r)) for r in X]


def versions():
    import onnxruntime
    import skl2onnx
    import sklearn

    return f"scikit-learn {sklearn.__version__}, skl2onnx {skl2onnx.__version__}, onnxruntime {onnxruntime.__version__}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=OUT)
    args = parser.parse_args()

    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR

    w = Writer(args.out_dir)
    vers = versions()

    X, y, target = numeric_data(N_TRAIN + N_ROWS, SEED)
    X_tr, X_te = X[:N_TRAIN], X[N_TRAIN:]
    y_tr, t_tr = y[:N_TRAIN], target[:N_TRAIN]
    X4, y4, _ = numeric_data(N_TRAIN + N_ROWS, SEED + 1, n_classes=4)
    X4_tr, X4_te, y4_tr = X4[:N_TRAIN], X4[N_TRAIN:], y4[:N_TRAIN]
    y4_str = np.array(TIERS, dtype=object)[y4_tr]
    y_bin = (y_tr == 1).astype(np.int64)
    y_str = np.array(TIERS[:3], dtype=object)[y_tr]
    feed = {"input": X_te.astype(np.float32)}
    feed4 = {"input": X4_te.astype(np.float32)}
    rows, rows4 = numeric_rows(X_te), numeric_rows(X4_te)

    def classifier(name, model, Xtr, ytr, Xte, rws, fd, zipmap=True, div=False, note=""):
        model.fit(Xtr, ytr)
        onx = skl_export(model, float_input(), est_options(model, zipmap=zipmap, div=div))
        form = "default export (ZipMap)" if zipmap else "zipmap=False"
        if div and hasattr(model, "steps") and "scaler" in model.named_steps:
            form += ", StandardScaler as Sub/Div"
        w.add(name, model, onx, rws, fd, Xte, list(model.classes_), note=f"{note} {form}; {vers}.")

    def regressor(name, model, note=""):
        model.fit(X_tr, t_tr)
        onx = skl_export(model, float_input())
        w.add(name, model, onx, rows, feed, X_te, None, note=f"{note} default export; {vers}.")

    def scaled(est):
        return Pipeline([("scaler", StandardScaler()), ("est", est)])

    def gbc():
        return GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=1)

    def rf():
        return RandomForestClassifier(n_estimators=8, max_depth=5, random_state=2)

    def lr():
        return scaled(LogisticRegression(max_iter=2000))

    def mlp():
        return scaled(MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=800, random_state=3))

    def svc(kernel):
        return scaled(SVC(kernel=kernel, probability=True, random_state=5))

    # --- trees and linear, 4 classes, int and string labels, ZipMap and not
    kinds = {
        "gbc": (gbc, "GradientBoostingClassifier"),
        "rf": (rf, "RandomForestClassifier"),
        "lr": (lr, "StandardScaler + LogisticRegression"),
    }
    for kind, (make, what) in kinds.items():
        classifier(f"{kind}_multi_int", make(), X4_tr, y4_tr, X4_te, rows4, feed4, note=f"{what}, 4 int classes;")
        classifier(f"{kind}_multi_str", make(), X4_tr, y4_str, X4_te, rows4, feed4, note=f"{what}, 4 string classes;")
        classifier(
            f"{kind}_multi_int_nozipmap", make(), X4_tr, y4_tr, X4_te, rows4, feed4, zipmap=False, div=True,
            note=f"{what}, 4 int classes;",
        )
        classifier(
            f"{kind}_multi_str_nozipmap", make(), X4_tr, y4_str, X4_te, rows4, feed4, zipmap=False, div=True,
            note=f"{what}, 4 string classes;",
        )

    # --- binary with string labels ("no" < "yes": probability columns in that order)
    y_yes = np.where(y_bin == 1, "yes", "no").astype(object)
    classifier(
        "gbc_binary_str", gbc(), X_tr, y_yes, X_te, rows, feed, note="GradientBoostingClassifier, binary string labels;"
    )
    classifier(
        "lr_binary_str", lr(), X_tr, y_yes, X_te, rows, feed, zipmap=False, div=True,
        note="StandardScaler + LogisticRegression, binary string labels;",
    )

    # --- MLP behind StandardScaler
    what = "StandardScaler + MLPClassifier(16, 8)"
    classifier("mlp_binary", mlp(), X_tr, y_bin, X_te, rows, feed, note=f"{what}, binary;")
    classifier("mlp_multi", mlp(), X_tr, y_tr, X_te, rows, feed, note=f"{what}, 3 int classes;")
    classifier(
        "mlp_multi_str", mlp(), X_tr, y_str, X_te, rows, feed, zipmap=False,
        note="StandardScaler + MLPClassifier(16, 8), 3 string classes;",
    )
    regressor("mlp_regressor", scaled(MLPRegressor(hidden_layer_sizes=(16, 8), max_iter=800, random_state=4)),
              note="StandardScaler + MLPRegressor(16, 8);")

    # --- SVMs behind StandardScaler (a small training set keeps the support vectors few)
    n_svm = 400
    for kernel in ("rbf", "linear"):
        what = f"StandardScaler + SVC(kernel={kernel!r}, probability=True)"
        classifier(
            f"svc_{kernel}_binary", svc(kernel), X_tr[:n_svm], y_bin[:n_svm], X_te, rows, feed,
            note=f"{what}, binary, {n_svm} training rows;",
        )
        classifier(
            f"svc_{kernel}_multi", svc(kernel), X_tr[:n_svm], y_str[:n_svm], X_te, rows, feed, zipmap=False,
            note=f"{what}, 3 string classes, {n_svm} training rows;",
        )
    svr = scaled(SVR(kernel="rbf", C=1.0, epsilon=0.1))
    svr.fit(X_tr[:n_svm], t_tr[:n_svm])
    w.add("svr_rbf", svr, skl_export(svr, float_input()), rows, feed, X_te, None,
          note=f"StandardScaler + SVR(rbf), {n_svm} training rows; default export; {vers}.")

    # --- imputer pipelines: NaN in training and in the requests (null in the row JSON)
    Xm_tr = with_missing(X_tr, SEED + 2)
    Xm_te = with_missing(X_te, SEED + 3)
    rows_m = numeric_rows(Xm_te)
    feed_m = {"input": Xm_te.astype(np.float32)}
    for name, labels_tr, what in (
        ("imputer_lr_binary", y_bin, "binary"),
        ("imputer_lr_multi", y_str, "3 string classes"),
    ):
        pipe = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median")),
                ("scaler", StandardScaler()),
                ("est", LogisticRegression(max_iter=2000)),
            ]
        )
        classifier(name, pipe, Xm_tr, labels_tr, Xm_te, rows_m, feed_m, zipmap=name.endswith("binary"),
                   note=f"SimpleImputer(median) + StandardScaler + LogisticRegression, {what}, ~15% missing;")

    # --- ColumnTransformer: one graph input per column, unseen categories in the requests
    categorical(w, vers)
    categorical_imputed(w, vers)
    churn_categorical_example(w, vers)

    # --- LightGBM and XGBoost through onnxmltools
    boosters(w, X4_tr, y4_tr, X4_te, rows4, feed4)

    w.finish()


def categorical(w, vers):
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train, y_tr = churn_frame(N_TRAIN, SEED + 4)
    test, _ = churn_frame(N_ROWS, SEED + 5, unseen=0.08)
    inputs = [
        ("tenure", FloatTensorType([None, 1])),
        ("monthly", FloatTensorType([None, 1])),
        ("contract", StringTensorType([None, 1])),
        ("payment", StringTensorType([None, 1])),
    ]
    feed = {
        c: (test[c].to_numpy(np.float32) if c in ("tenure", "monthly") else test[c].to_numpy(object)).reshape(-1, 1)
        for c, _ in inputs
    }
    rows = test.to_dict(orient="records")
    tiers = np.array(TIERS[:3], dtype=object)
    for name, labels, zipmap in (("ct_gbc_binary", y_tr, True), ("ct_gbc_str", None, False)):
        if labels is None:
            # a 3-tier target from the same columns, to cover string labels through named inputs
            score = train["monthly"].to_numpy() / 40 + (train["contract"] == "two-year").to_numpy() * 1.5
            labels = tiers[np.clip(score.astype(int), 0, 2)]
        pipe = Pipeline(
            [
                (
                    "prep",
                    ColumnTransformer(
                        [
                            ("num", StandardScaler(), ["tenure", "monthly"]),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["contract", "payment"]),
                        ]
                    ),
                ),
                ("est", GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=6)),
            ]
        )
        pipe.fit(train, labels)
        est = pipe.named_steps["est"]
        scaler = pipe.named_steps["prep"].named_transformers_["num"]
        options = {id(scaler): {"div": "div"}}
        if not zipmap:
            options[id(est)] = {"zipmap": False}
        onx = skl_export(pipe, inputs, options)
        form = "default export (ZipMap)" if zipmap else "zipmap=False"
        w.add(
            name, pipe, onx, rows, feed, test, list(pipe.classes_), features=None,
            note=(
                "ColumnTransformer(StandardScaler on tenure, monthly; OneHotEncoder(handle_unknown='ignore') on "
                "contract, payment) + GradientBoostingClassifier, one graph input per column; ~8% of rows carry "
                f"unseen categories (three-year, crypto); {form}, StandardScaler as Sub/Div; {vers}."
            ),
        )


def categorical_imputed(w, vers):
    """Named inputs of three kinds (float with missing values, int64, string) into a LogisticRegression."""
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def frame(n, seed, unseen=0.0):
        df, y = churn_frame(n, seed, unseen)
        rng = np.random.default_rng(seed + 100)
        df["products"] = rng.integers(1, 7, n).astype(np.int64)
        for c in ("tenure", "monthly"):
            df.loc[rng.uniform(size=n) < 0.15, c] = np.nan
        return df, y

    train, y_tr = frame(N_TRAIN, SEED + 6)
    test, _ = frame(N_ROWS, SEED + 7, unseen=0.08)
    inputs = [
        ("tenure", FloatTensorType([None, 1])),
        ("monthly", FloatTensorType([None, 1])),
        ("products", Int64TensorType([None, 1])),
        ("contract", StringTensorType([None, 1])),
        ("payment", StringTensorType([None, 1])),
    ]
    kinds = {"tenure": np.float32, "monthly": np.float32, "products": np.int64}
    feed = {c: test[c].to_numpy(kinds.get(c, object)).reshape(-1, 1) for c, _ in inputs}
    rows = [{k: (int(v) if k == "products" else v) for k, v in r.items()} for r in test.to_dict(orient="records")]
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                         ["tenure", "monthly"]),
                        ("count", StandardScaler(), ["products"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["contract", "payment"]),
                    ]
                ),
            ),
            ("est", LogisticRegression(max_iter=2000)),
        ]
    )
    pipe.fit(train, y_tr)
    onx = skl_export(pipe, inputs)
    w.add(
        "ct_impute_lr", pipe, onx, rows, feed, test, [int(c) for c in pipe.classes_], features=None,
        note=(
            "ColumnTransformer(SimpleImputer(median) + StandardScaler on float inputs tenure, monthly, ~15% null; "
            "StandardScaler on the int64 input products; OneHotEncoder(handle_unknown='ignore') on string inputs "
            "contract, payment) + LogisticRegression, binary; one graph input per column; ~8% of rows carry unseen "
            f"categories; default export (ZipMap); {vers}."
        ),
    )


def churn_categorical_example(w, vers):
    """examples/churn-categorical/model.onnx (copied) on 300 held-out rows; refuses a stale model.onnx."""
    import importlib.util

    import onnx

    path = os.path.join(HERE, "churn-categorical", "train.py")
    spec = importlib.util.spec_from_file_location("churn_categorical_train", path)
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    frame, y = train.make_dataset(6000)
    pipe = train.build_pipeline().fit(frame.iloc[:5000], y[:5000])
    test = frame.iloc[5000 : 5000 + N_ROWS].reset_index(drop=True)
    with open(os.path.join(HERE, "churn-categorical", "model.onnx"), "rb") as f:
        on_disk = f.read()
    fresh = train.export(pipe)
    # skl2onnx names nodes with a per-process counter, so compare behaviour rather than bytes
    _, p_disk = train.ort_outputs(on_disk, test)
    _, p_fresh = train.ort_outputs(fresh, test)
    if np.max(np.abs(p_disk - p_fresh)) > 1e-7:
        raise SystemExit("examples/churn-categorical/model.onnx differs from a fresh train.py run: run train.py first")
    rows = [{c: train.request_value(c, r[c]) for c in train.FEATURES} for r in test.to_dict(orient="records")]
    w.add(
        "churn_categorical", pipe, onnx.load_from_string(on_disk), rows, train.feed(test), test,
        [int(c) for c in pipe.classes_], features=None,
        note=f"examples/churn-categorical/model.onnx (a copy), rows 5000-5299 of its train.py dataset; {vers}.",
    )


def boosters(w, X_tr, y_tr, X_te, rows, feed):
    import lightgbm
    import onnxmltools
    import xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    inputs = [("input", FloatTensorType([None, K]))]
    lgbm = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, learning_rate=0.2, random_state=7, verbose=-1)
    lgbm.fit(X_tr, y_tr)
    onx = onnxmltools.convert_lightgbm(lgbm, name="lgbm_multi", initial_types=inputs, target_opset=15, zipmap=False)
    w.add(
        "lgbm_multi", lgbm, onx, rows, feed, X_te, [int(c) for c in lgbm.classes_], compare_sklearn=False,
        note=(
            f"LGBMClassifier(20 trees, 8 leaves), 4 int classes; onnxmltools {onnxmltools.__version__} "
            f"convert_lightgbm, zipmap=False, lightgbm {lightgbm.__version__}. LightGBM's thresholds are float64 and "
            "the export stores them as float32, so rows near a split can leave the library's leaf: compare with ort."
        ),
    )
    xgb = xgboost.XGBClassifier(n_estimators=20, max_depth=3, learning_rate=0.3, random_state=8)
    xgb.fit(X_tr, y_tr)
    onx = onnxmltools.convert_xgboost(xgb, name="xgb_multi", initial_types=inputs, target_opset=15)
    w.add(
        "xgb_multi", xgb, onx, rows, feed, X_te, [int(c) for c in xgb.classes_],
        note=(
            f"XGBClassifier(20 trees, depth 3), 4 int classes; onnxmltools {onnxmltools.__version__} convert_xgboost, "
            f"default export, xgboost {xgboost.__version__}."
        ),
    )


if __name__ == "__main__":
    main()
