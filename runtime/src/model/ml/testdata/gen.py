"""Regenerates the tiny ONNX-ML exports and onnxruntime's outputs the e2e tests in ../e2e.rs compare with.

Run: /work/main/.venv/bin/python runtime/src/model/ml/testdata/gen.py   (skl2onnx 1.20, onnxruntime 1.32)
Each case writes NAME.onnx and NAME.json: {"inputs": [...], "outputs": [...]}, tensors as
{"name", "dtype", "shape", "data"} with NaN written as null.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Binarizer, LabelEncoder, Normalizer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR, LinearSVC, OneClassSVM

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
ONLY = set(sys.argv[1:])


def tensor_json(name, a):
    a = np.asarray(a)
    if a.dtype.kind in "OUS":
        dtype, data = "string", [str(v) for v in a.ravel()]
    elif a.dtype.kind == "f":
        # JSON has no NaN or infinities: NaN is null, infinities are the strings "inf" / "-inf"
        def num(v):
            return None if np.isnan(v) else str(v) if np.isinf(v) else float(np.float32(v))

        dtype, data = "float32", [num(v) for v in a.ravel()]
    elif a.dtype.kind in "iu":
        dtype, data = "int64", [int(v) for v in a.ravel()]
    else:
        raise ValueError(a.dtype)
    return {"name": name, "dtype": dtype, "shape": list(a.shape), "data": data}


def save(name, model, feeds):
    if ONLY and name not in ONLY:
        return
    data = model.SerializeToString()
    with open(os.path.join(HERE, name + ".onnx"), "wb") as f:
        f.write(data)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    names = [o.name for o in sess.get_outputs()]
    outputs = []
    for n, o in zip(names, outs):
        if isinstance(o, list):  # ZipMap: list of {label: p}, in label order
            keys = list(o[0].keys())
            o = np.array([[row[k] for k in keys] for row in o], dtype=np.float32)
        outputs.append(tensor_json(n, o))
    doc = {"inputs": [tensor_json(k, v) for k, v in feeds.items()], "outputs": outputs}
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump(doc, f)
    ops = sorted({f"{n.domain or 'ai.onnx'}:{n.op_type}" for n in model.graph.node})
    print(f"{name}: {len(data)} bytes, ops {ops}")


def three_class(n=150, f=4):
    x = rng.normal(size=(n, f)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0.3).astype(int) + (x[:, 2] - x[:, 3] > 0.5).astype(int)
    return x, y


def opts(clf, **extra):
    return {id(clf): {"zipmap": False, **extra}}


# imputer + scaler + multinomial logistic regression, NaNs in the held-out rows
x, y = three_class()
x_nan = x.copy()
x_nan[rng.random(x.shape) < 0.1] = np.nan
lr = LogisticRegression(max_iter=500)
pipe = Pipeline([("imp", SimpleImputer()), ("sc", StandardScaler()), ("lr", lr)]).fit(x_nan[:100], y[:100])
m = convert_sklearn(pipe, initial_types=[("x", FloatTensorType([None, 4]))], options=opts(lr), target_opset={"": 17, "ai.onnx.ml": 3})
save("imputer_logreg_multi", m, {"x": x_nan[100:120]})

# string labels, ovr logistic regression, with ZipMap kept
ys = np.array(["bronze", "gold", "silver"])[y]
lr2 = LogisticRegression(max_iter=500)
from sklearn.multiclass import OneVsRestClassifier  # noqa: E402
lr2.fit(x[:100], ys[:100])
m = convert_sklearn(lr2, initial_types=[("x", FloatTensorType([None, 4]))], target_opset={"": 17, "ai.onnx.ml": 3})
save("logreg_strings_zipmap", m, {"x": x[100:120]})

# SVC with probabilities: rbf (string labels, 3 classes) and linear (binary)
svc = SVC(probability=True, kernel="rbf", gamma=0.3, random_state=0).fit(x[:80], ys[:80])
m = convert_sklearn(svc, initial_types=[("x", FloatTensorType([None, 4]))], options=opts(svc), target_opset={"": 17, "ai.onnx.ml": 3})
save("svc_rbf_proba", m, {"x": x[100:120]})
yb = (y > 0).astype(int)
svc = SVC(probability=True, kernel="linear", random_state=0).fit(x[:60], yb[:60])
m = convert_sklearn(svc, initial_types=[("x", FloatTensorType([None, 4]))], options=opts(svc), target_opset={"": 17, "ai.onnx.ml": 3})
save("svc_linear_proba_binary", m, {"x": x[100:120]})

# SVC without probabilities: poly and sigmoid kernels, four classes
y4 = y + (x[:, 1] > 1.0).astype(int)
for kernel in ["poly", "sigmoid"]:
    svc = SVC(kernel=kernel, degree=3, gamma=0.2, coef0=0.5, decision_function_shape="ovo").fit(x[:80], y4[:80])
    m = convert_sklearn(svc, initial_types=[("x", FloatTensorType([None, 4]))], options=opts(svc, raw_scores=True), target_opset={"": 17, "ai.onnx.ml": 3})
    save(f"svc_{kernel}_multi", m, {"x": x[100:120]})

# regressors: SVR (rbf), OneClassSVM
t = (x[:, 0] * 2 - x[:, 1] + 0.1 * rng.normal(size=len(x))).astype(np.float32)
svr = SVR(kernel="rbf", gamma=0.2).fit(x[:80], t[:80])
m = convert_sklearn(svr, initial_types=[("x", FloatTensorType([None, 4]))], target_opset={"": 17, "ai.onnx.ml": 3})
save("svr_rbf", m, {"x": x[100:120]})
oc = OneClassSVM(gamma=0.3, nu=0.2).fit(x[:80])
m = convert_sklearn(oc, initial_types=[("x", FloatTensorType([None, 4]))], target_opset={"": 17, "ai.onnx.ml": 3})
save("one_class_svm", m, {"x": x[100:120]})

# LinearSVC multiclass -> LinearClassifier
lsvc = LinearSVC(random_state=0).fit(x[:100], y[:100])
m = convert_sklearn(lsvc, initial_types=[("x", FloatTensorType([None, 4]))], target_opset={"": 17, "ai.onnx.ml": 3})
save("linear_svc_multi", m, {"x": x[100:120]})

# trees: multiclass GBM with string labels, forest with int labels, two-target forest regressor
gbc = GradientBoostingClassifier(n_estimators=6, max_depth=2, random_state=0).fit(x[:100], ys[:100])
m = convert_sklearn(gbc, initial_types=[("x", FloatTensorType([None, 4]))], options=opts(gbc), target_opset={"": 17, "ai.onnx.ml": 3})
save("gbc_multi_strings", m, {"x": x[100:120]})
rf = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(x[:100], y4[:100] * 10 + 3)
m = convert_sklearn(rf, initial_types=[("x", FloatTensorType([None, 4]))], options=opts(rf), target_opset={"": 17, "ai.onnx.ml": 3})
save("rf_multi_ints", m, {"x": x[100:120]})
rfr = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(x[:100], np.c_[t[:100], -t[:100] * 0.5])
m = convert_sklearn(rfr, initial_types=[("x", FloatTensorType([None, 4]))], target_opset={"": 17, "ai.onnx.ml": 3})
save("rf_two_targets", m, {"x": x[100:120]})

# one-hot on a string column (unknown categories in the test rows) + numeric columns, two graph inputs
cats = np.array(["month-to-month", "one-year", "two-year"])
col = cats[rng.integers(0, 3, size=len(x))].reshape(-1, 1).astype(object)
col[::7] = "weekly"  # unseen in training: all zeros with handle_unknown='ignore'
ct = ColumnTransformer([("ohe", OneHotEncoder(handle_unknown="ignore"), [0]), ("num", "passthrough", [1, 2])])
train = np.c_[col, x[:, :2]]
train_ok = train[[i for i in range(100) if col[i, 0] != "weekly"]]
ylab = yb[[i for i in range(100) if col[i, 0] != "weekly"]]
lr3 = LogisticRegression(max_iter=500)
pipe = Pipeline([("ct", ct), ("lr", lr3)]).fit(train_ok, ylab)
m = convert_sklearn(
    pipe,
    initial_types=[("contract", StringTensorType([None, 1])), ("num", FloatTensorType([None, 2]))],
    options=opts(lr3),
    target_opset={"": 17, "ai.onnx.ml": 3},
)
# skl2onnx's ColumnTransformer indexes a single input; feed it as the graph's inputs say
names = [i.name for i in m.graph.input]
if names == ["contract", "num"]:
    save("ohe_strings_logreg", m, {"contract": col[100:120], "num": x[100:120, :2]})
else:
    print("ohe_strings_logreg: unexpected inputs", names)

# LabelEncoder (strings -> int64), Normalizer (l1, l2, max), Binarizer
le = LabelEncoder().fit(["gold", "bronze", "silver"])
m = convert_sklearn(le, initial_types=[("s", StringTensorType([None]))], target_opset={"": 17, "ai.onnx.ml": 2})
save("label_encoder_strings", m, {"s": np.array(["silver", "gold", "bronze", "gold"], dtype=object)})
for norm in ["l1", "l2", "max"]:
    nm = Normalizer(norm=norm).fit(x[:10])
    m = convert_sklearn(nm, initial_types=[("x", FloatTensorType([None, 4]))], target_opset={"": 17, "ai.onnx.ml": 3})
    save(f"normalizer_{norm}", m, {"x": x[100:120]})
bz = Binarizer(threshold=0.2).fit(x[:10])
m = convert_sklearn(bz, initial_types=[("x", FloatTensorType([None, 4]))], target_opset={"": 17, "ai.onnx.ml": 3})
save("binarizer", m, {"x": x[100:120]})


# hand-built graphs: Cast with strings, CategoryMapper, ArrayFeatureExtractor on strings, FeatureVectorizer,
# LabelEncoder float -> string with a default, Imputer on int64
def graph_model(name, nodes, inputs, outputs, feeds, inits=()):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 4)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    save(name, m, feeds)


S, F, I = TensorProto.STRING, TensorProto.FLOAT, TensorProto.INT64
vi = helper.make_tensor_value_info
graph_model(
    "cast_strings",
    [
        helper.make_node("Cast", ["s"], ["f"], to=F),
        helper.make_node("Cast", ["f"], ["back"], to=S),
        helper.make_node("Cast", ["x"], ["xs"], to=S),
        helper.make_node("Cast", ["s"], ["i"], to=I),
    ],
    [vi("s", S, [None]), vi("x", F, [None])],
    [vi("f", F, [None]), vi("back", S, [None]), vi("xs", S, [None]), vi("i", I, [None])],
    {
        "s": np.array(["1.5", " -2", "3e2", "7", "0.1", "12345678901"], dtype=object),
        "x": np.array([0.1, 1 / 3, 123456789.0, -0.0, 1e-5, np.inf], dtype=np.float32),
    },
)
graph_model(
    "category_mapper_and_extractor",
    [
        helper.make_node("CategoryMapper", ["s"], ["ids"], domain="ai.onnx.ml", cats_strings=["a", "b", "c"], cats_int64s=[10, 20, 30], default_int64=-5),
        helper.make_node("CategoryMapper", ["ids"], ["back"], domain="ai.onnx.ml", cats_strings=["a", "b", "c"], cats_int64s=[10, 20, 30], default_string="??"),
        helper.make_node("ArrayFeatureExtractor", ["labels", "pick"], ["picked"], domain="ai.onnx.ml"),
        helper.make_node("FeatureVectorizer", ["x", "x"], ["vec"], domain="ai.onnx.ml", inputdimensions=[2, 3]),
        helper.make_node("LabelEncoder", ["x"], ["names"], domain="ai.onnx.ml", keys_floats=[0.5, 1.5], values_strings=["half", "one and a half"], default_string="other"),
    ],
    [vi("s", S, [None, 3]), vi("x", F, [None, 2])],
    [vi("ids", I, [None, 3]), vi("back", S, [None, 3]), vi("picked", S, [None, 2]), vi("vec", F, [None, 5]), vi("names", S, [None, 2])],
    {
        "s": np.array([["a", "c", "zz"], ["b", "b", "a"]], dtype=object),
        "x": np.array([[0.5, 2.0], [1.5, 0.5]], dtype=np.float32),
    },
    inits=[
        helper.make_tensor("labels", S, [3], [b"no", b"yes", b"maybe"]),
        helper.make_tensor("pick", I, [2], [2, 0]),
    ],
)
graph_model(
    "imputer_ints",
    [helper.make_node("Imputer", ["x"], ["y"], domain="ai.onnx.ml", imputed_value_int64s=[7, 8, 9], replaced_value_int64=-1)],
    [vi("x", I, [None, 3])],
    [vi("y", I, [None, 3])],
    {"x": np.array([[-1, 2, -1], [4, -1, 6]], dtype=np.int64)},
)
