#!/usr/bin/env python3
"""Generate mlambda-runtime's fixtures for the model families beyond plain tables: polynomial features,
nearest neighbours, anomaly detectors and double-precision exports, with onnxruntime's and scikit-learn's
outputs on the same rows.

CatBoost's own ONNX export (`save_model(format="onnx")`: TreeEnsembleClassifier + ZipMap, TreeEnsembleRegressor)
is here too: a binary and a multiclass classifier and a regressor on oblivious trees.

Same layout and manifest as examples/fixtures_tabular.py, into runtime/tests/fixtures/families/. Adds the
task "anomaly": outputs {"label": [-1 | 1 ...], "score": [...]} (the export's `label` and `scores`), and
double-precision exports (`DoubleTensorType`) whose rows carry full float64 values.

Usage: /work/main/.venv/bin/python examples/fixtures_families.py [--out-dir DIR]
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixtures_tabular as ft  # noqa: E402

OUT = os.path.join(HERE, "..", "runtime", "tests", "fixtures", "families")
SEED = 20261208
TOLERANCE = 1e-5


def data(n, seed, k=ft.K):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k)) * np.array([1.0, 2.0, 0.5, 3.0, 1.0, 1.5][:k]) + np.array([0, 1, -1, 0, 2, 0][:k])
    score = X[:, 0] - 0.5 * X[:, 1] + 0.3 * X[:, 2] * X[:, 3]
    y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    return X, y


class Writer:
    """fixtures_tabular's layout, with the anomaly task and float64 rows."""

    def __init__(self, out):
        self.out = out
        self.manifest = []
        os.makedirs(out, exist_ok=True)

    def add(self, name, onx, rows, feed, ort_out, sk_out, task, labels, note, double=False):
        ft.stable_opsets(onx)
        with open(os.path.join(self.out, f"{name}.onnx"), "wb") as f:
            f.write(onx.SerializeToString())
        def flat(o, k):
            a = np.asarray(o[k], dtype=np.float64)
            return a if k == "probabilities" else a.reshape(-1)

        diffs = {k: float(np.max(np.abs(flat(ort_out, k) - flat(sk_out, k))))
                 for k in ("probabilities", "value", "score") if k in ort_out}
        labels_of = (lambda o: [str(v) for v in np.asarray(o.get("label", [])).reshape(-1)])
        flips = int(sum(a != b for a, b in zip(labels_of(ort_out), labels_of(sk_out))))
        ops = ft.op_types(onx)
        print(f"{name:18s} max|ort-sklearn| {max(diffs.values()):.2e}  label flips {flips}")
        print(f"{'':18s} ops: {', '.join(ops)}")
        if max(diffs.values()) > TOLERANCE or flips:
            raise SystemExit(f"{name}: onnxruntime and scikit-learn disagree")
        value = (lambda v: float(v)) if double else ft.json_value
        conv = (lambda v: v if isinstance(v, str) else int(v))
        def out_json(o):
            j = {}
            if "label" in o:
                j["label"] = [conv(v) for v in np.asarray(o["label"]).reshape(-1)]
            for k in ("probabilities",):
                if k in o:
                    j[k] = [[float(p) for p in row] for row in np.asarray(o[k])]
            for k in ("value", "score"):
                if k in o:
                    j[k] = [float(v) for v in np.asarray(o[k]).reshape(-1)]
            return j
        doc = {"rows": [{k: value(v) for k, v in r.items()} for r in rows], "ort": out_json(ort_out),
               "sklearn": out_json(sk_out)}
        ft.write_rows_json(os.path.join(self.out, f"{name}.json"), doc)
        self.manifest.append({
            "name": name, "model": f"{name}.onnx", "task": task, "features": ft.FEATURES,
            "labels": labels, "rows": f"{name}.json", "compare_sklearn": True, "tolerance": TOLERANCE,
            "note": f"{note} Ops: {', '.join(ops)}.",
        })

    def finish(self):
        with open(os.path.join(self.out, "manifest.json"), "w") as f:
            json.dump({"fixtures": self.manifest}, f, indent=1)
            f.write("\n")
        print(f"wrote {len(self.manifest)} fixtures to {os.path.normpath(self.out)}")


def zipmap_rows(probs, labels):
    """onnxruntime's ZipMap output (one {label: p} per row) as an [N, C] array in `labels` order."""
    if isinstance(probs, list):
        return np.array([[m[c] for c in labels] for m in probs], dtype=np.float32)
    return probs


def catboost_models(w, X_tr, y_tr, X_te, rows, feed):
    """CatBoost's own export, read back with onnx: the file a CatBoost user ships."""
    import tempfile

    import catboost
    import onnx

    def export(model):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model.onnx")
            model.save_model(path, format="onnx")
            onx = onnx.load(path)
        # the finish time and a random guid would change the file's bytes on every run
        kept = [p for p in onx.metadata_props if p.key not in ("train_finish_time", "model_guid")]
        del onx.metadata_props[:]
        onx.metadata_props.extend(kept)
        return onx

    common = {"random_seed": 5, "verbose": 0, "allow_writing_files": False, "thread_count": 1}
    ver = f"catboost {catboost.__version__} save_model(format='onnx')"
    for name, y, kw, note in (
        ("catboost_binary", (y_tr == 2).astype(int), {"iterations": 60, "depth": 4}, "binary, 60 trees of depth 4"),
        ("catboost_multi", y_tr, {"iterations": 200, "depth": 6, "loss_function": "MultiClass"},
         "three classes, 200 trees of depth 6 (CatBoost's default depth)"),
    ):
        m = catboost.CatBoostClassifier(**kw, **common).fit(X_tr, y)
        labels = [int(c) for c in m.classes_]
        onx = export(m)
        lab, probs = ort(onx, {"features": feed["input"]})
        w.add(name, onx, rows, feed, {"label": lab, "probabilities": zipmap_rows(probs, labels)},
              {"label": m.predict(X_te), "probabilities": m.predict_proba(X_te)}, "classifier", labels,
              f"CatBoostClassifier, {note}, default export (ZipMap); {ver}.")
    reg = catboost.CatBoostRegressor(iterations=100, depth=6, **common).fit(X_tr, X_tr[:, 0] * 2 + X_tr[:, 3])
    onx = export(reg)
    (value,) = ort(onx, {"features": feed["input"]})
    w.add("catboost_reg", onx, rows, feed, {"value": value.reshape(-1)}, {"value": reg.predict(X_te)}, "regressor",
          None, f"CatBoostRegressor, 100 trees of depth 6; {ver}.")


def ort(onx, feed):
    import onnxruntime

    sess = onnxruntime.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def main():
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from sklearn.ensemble import IsolationForest
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler
    from sklearn.svm import OneClassSVM

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=OUT)
    args = parser.parse_args()
    vers = ft.versions()
    w = Writer(os.path.abspath(args.out_dir))
    X_tr, y_tr = data(600, SEED)
    X_te, _ = data(200, SEED + 1)
    X32_tr, X32_te = X_tr.astype(np.float32), X_te.astype(np.float32)
    f32_in = [("input", FloatTensorType([None, ft.K]))]
    rows32 = ft.numeric_rows(X32_te)
    feed32 = {"input": X32_te}

    # PolynomialFeatures: ConstantOfShape makes the bias column
    pipe = make_pipeline(StandardScaler(), PolynomialFeatures(2), LogisticRegression(max_iter=2000)).fit(X32_tr, y_tr)
    onx = ft.skl_export(pipe, f32_in, {id(pipe.steps[1][1]): {}, id(pipe.steps[-1][1]): {"zipmap": False}})
    lab, probs = ort(onx, feed32)
    w.add("poly_lr", onx, rows32, feed32, {"label": lab, "probabilities": probs},
          {"label": pipe.predict(X32_te), "probabilities": pipe.predict_proba(X32_te)}, "classifier", [0, 1, 2],
          f"StandardScaler + PolynomialFeatures(2) + LogisticRegression, three classes, zipmap=False; {vers}.")

    # nearest neighbours: Scan computes the distances, TopK picks the k nearest
    knn = KNeighborsClassifier(5).fit(X32_tr, y_tr)
    onx = ft.skl_export(knn, f32_in, {id(knn): {"zipmap": False}})
    lab, probs = ort(onx, feed32)
    w.add("knn_clf", onx, rows32, feed32, {"label": lab, "probabilities": probs},
          {"label": knn.predict(X32_te), "probabilities": knn.predict_proba(X32_te)}, "classifier", [0, 1, 2],
          f"KNeighborsClassifier(5), 600 training rows, zipmap=False; {vers}.")
    knr = KNeighborsRegressor(7).fit(X32_tr, X32_tr[:, 0] * 2 + X32_tr[:, 3])
    onx = ft.skl_export(knr, f32_in)
    (value,) = ort(onx, feed32)
    w.add("knn_reg", onx, rows32, feed32, {"value": value.reshape(-1)}, {"value": knr.predict(X32_te)}, "regressor",
          None, f"KNeighborsRegressor(7); {vers}.")

    # anomaly detectors: label -1 (outlier) or 1, and the decision score
    iso = IsolationForest(n_estimators=50, random_state=3).fit(X32_tr)
    onx = ft.skl_export(iso, f32_in)
    lab, score = ort(onx, feed32)
    w.add("iso_forest", onx, rows32, feed32, {"label": lab, "score": score},
          {"label": iso.predict(X32_te), "score": iso.decision_function(X32_te)}, "anomaly", [-1, 1],
          f"IsolationForest(n_estimators=50); label -1 for an outlier, score = decision_function; {vers}.")
    oc = make_pipeline(StandardScaler(), OneClassSVM(nu=0.1)).fit(X32_tr)
    onx = ft.skl_export(oc, f32_in)
    lab, score = ort(onx, feed32)
    w.add("ocsvm", onx, rows32, feed32, {"label": lab, "score": score},
          {"label": oc.predict(X32_te), "score": oc.decision_function(X32_te)}, "anomaly", [-1, 1],
          f"StandardScaler + OneClassSVM(nu=0.1); label -1 for an outlier, score = decision_function; {vers}.")

    # double precision: the training data's float64, exported as DoubleTensorType
    f64_in = [("input", DoubleTensorType([None, ft.K]))]
    feed64 = {"input": X_te}
    rows64 = [dict(zip(ft.FEATURES, r)) for r in X_te]
    # (a tree ensemble exported on float64 writes double probabilities, which onnxruntime itself refuses at
    # ai.onnx.ml opset 3, so the double fixture is a pipeline of core ops)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_tr, y_tr)
    onx = ft.skl_export(lr, f64_in, {id(lr.steps[-1][1]): {"zipmap": False}})
    lab, probs = ort(onx, feed64)
    w.add("double_lr", onx, rows64, feed64, {"label": lab, "probabilities": probs},
          {"label": lr.predict(X_te), "probabilities": lr.predict_proba(X_te)}, "classifier", [0, 1, 2],
          f"StandardScaler + LogisticRegression on float64, DoubleTensorType input (core ops in double); {vers}.",
          double=True)

    catboost_models(w, X32_tr, y_tr, X32_te, rows32, feed32)
    w.finish()


if __name__ == "__main__":
    main()
