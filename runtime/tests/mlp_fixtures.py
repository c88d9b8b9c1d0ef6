"""Writes the runtime's own tabular fixtures (MLPs: core ONNX ops only) into tests/fixtures/tabular/.

Run with the project venv: `.venv/bin/python runtime/tests/mlp_fixtures.py`. Each fixture is the .onnx file,
NAME.json with held-out rows as a client sends them plus onnxruntime's and scikit-learn's outputs, and an
entry in manifest.json (entries of other generators are kept).
"""
import json
import os
import warnings

import numpy as np
import onnxruntime as ort
import pandas as pd
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn, to_onnx
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tabular")
VERSIONS = f"scikit-learn {sklearn.__version__}, skl2onnx {skl2onnx.__version__}, onnxruntime {ort.__version__}"
N_TEST = 300


def f32_rows(X, names):
    """Rows as JSON objects of float32-exact Python floats (json writes them with repr precision)."""
    X = np.asarray(X, dtype=np.float32)
    return [{n: float(v) for n, v in zip(names, row)} for row in X]


def run_ort(path, feeds):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, outs))


def classifier_outputs(outs):
    label = [x.item() if hasattr(x, "item") else x for x in np.asarray(outs[0]).reshape(-1)]
    probs = outs[1]
    if isinstance(probs, list):  # ZipMap: a list of {label: p}
        probs = [[float(np.float32(d[k])) for k in d] for d in probs]
    else:
        probs = np.asarray(probs, dtype=np.float32).tolist()
    return {"label": [str(x) if isinstance(x, str) else int(x) for x in label], "probabilities": probs}


def write(name, onx, task, features, labels, rows, ort_out, sk_out, tolerance, note):
    model = f"{name}.onnx"
    with open(os.path.join(OUT, model), "wb") as f:
        f.write(onx.SerializeToString())
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump({"rows": rows, "ort": ort_out, "sklearn": sk_out}, f)
    return {
        "name": name, "model": model, "task": task, "features": features, "labels": labels,
        "rows": f"{name}.json", "compare_sklearn": sk_out is not None, "tolerance": tolerance,
        "note": f"{note}; {VERSIONS}",
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    entries = []
    names = [f"f{i}" for i in range(6)]

    # multiclass, string labels, one [N, 6] float input; zipmap off: the label comes from ArrayFeatureExtractor
    X, y = make_classification(1300, 6, n_informative=4, n_classes=3, random_state=1)
    X = X.astype(np.float32)
    y = np.array(["bronze", "gold", "silver"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=600, random_state=0).fit(X[:1000], y[:1000])
    onx = to_onnx(clf, X[:1], options={"zipmap": False})
    Xt = X[1000:1000 + N_TEST]
    path = os.path.join(OUT, "mlp3_str_nozipmap.onnx")
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    o = run_ort(path, {"X": Xt})
    sk = {"label": [str(v) for v in clf.predict(Xt)], "probabilities": clf.predict_proba(Xt).tolist()}
    entries.append(write("mlp3_str_nozipmap", onx, "classifier", names, list(clf.classes_.astype(str)),
                         f32_rows(Xt, names), classifier_outputs(list(o.values())), sk, 1e-5,
                         "MLPClassifier (32, 16) relu, softmax; options zipmap=False"))

    # binary, integer labels 0/1, default export (ZipMap, sigmoid + concat)
    X, y = make_classification(1300, 6, n_informative=4, random_state=2)
    X = X.astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(16,), activation="tanh", max_iter=600, random_state=0).fit(X[:1000], y[:1000])
    onx = to_onnx(clf, X[:1])
    Xt = X[1000:1000 + N_TEST]
    path = os.path.join(OUT, "mlp_binary_int.onnx")
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    o = run_ort(path, {"X": Xt})
    sk = {"label": [int(v) for v in clf.predict(Xt)], "probabilities": clf.predict_proba(Xt).tolist()}
    entries.append(write("mlp_binary_int", onx, "classifier", names, [int(c) for c in clf.classes_],
                         f32_rows(Xt, names), classifier_outputs(list(o.values())), sk, 1e-5,
                         "MLPClassifier (16,) tanh, logistic output; default export with ZipMap"))

    # regressor
    X, y = make_regression(1300, 6, noise=0.5, random_state=3)
    X = X.astype(np.float32)
    y = y / np.std(y)
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=800, random_state=0).fit(X[:1000], y[:1000])
    onx = to_onnx(reg, X[:1])
    Xt = X[1000:1000 + N_TEST]
    path = os.path.join(OUT, "mlp_reg.onnx")
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    o = run_ort(path, {"X": Xt})
    value = np.asarray(list(o.values())[0], dtype=np.float32).reshape(-1).tolist()
    entries.append(write("mlp_reg", onx, "regressor", names, None, f32_rows(Xt, names), {"value": value},
                         {"value": reg.predict(Xt).tolist()}, 1e-4,
                         "MLPRegressor (32,) relu; sklearn computes in float64, so its tolerance is looser"))

    # named inputs: two float columns and one int64 column, a ColumnTransformer, multiclass int labels
    rng = np.random.default_rng(4)
    df = pd.DataFrame({
        "tenure": rng.uniform(0, 72, 1300).astype(np.float32),
        "charges": rng.uniform(20, 120, 1300).astype(np.float32),
        "products": rng.integers(1, 6, 1300).astype(np.int64),
    })
    score = df.tenure / 72 - df.charges / 120 + (df.products - 3) / 4 + rng.normal(0, 0.2, 1300)
    y = np.digitize(score, [-0.3, 0.2]) * 3 + 2  # labels 2, 5, 8
    ct = ColumnTransformer([("num", StandardScaler(), ["tenure", "charges"]), ("cnt", "passthrough", ["products"])])
    pipe = Pipeline([("ct", ct), ("clf", MLPClassifier(hidden_layer_sizes=(16,), max_iter=800, random_state=0))])
    pipe.fit(df[:1000], y[:1000])
    types = [("tenure", FloatTensorType([None, 1])), ("charges", FloatTensorType([None, 1])),
             ("products", Int64TensorType([None, 1]))]
    onx = convert_sklearn(pipe, initial_types=types, options={id(pipe.steps[-1][1]): {"zipmap": False}})
    test = df[1000:1000 + N_TEST]
    path = os.path.join(OUT, "ct_mlp_multi_int.onnx")
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    feeds = {c: test[[c]].to_numpy() for c in df.columns}
    o = run_ort(path, feeds)
    rows = [{"tenure": float(r.tenure), "charges": float(r.charges), "products": int(r.products)}
            for r in test.itertuples()]
    sk = {"label": [int(v) for v in pipe.predict(test)], "probabilities": pipe.predict_proba(test).tolist()}
    entries.append(write("ct_mlp_multi_int", onx, "classifier", None, [int(c) for c in pipe.classes_], rows,
                         classifier_outputs(list(o.values())), sk, 1e-5,
                         "ColumnTransformer(StandardScaler, passthrough int64) + MLPClassifier; one input per column"))

    manifest_path = os.path.join(OUT, "manifest.json")
    manifest = {"fixtures": []}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
    mine = {e["name"] for e in entries}
    manifest["fixtures"] = [e for e in manifest["fixtures"] if e["name"] not in mine] + entries
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    for e in entries:
        print("wrote", e["name"])


if __name__ == "__main__":
    main()
