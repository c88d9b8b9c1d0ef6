"""Export a fitted scikit-learn pipeline to ONNX with the options mlambda recommends.

    python export_model.py model.joblib model.onnx

- `zipmap: False` gives a plain probability tensor instead of a sequence of maps.
- the scaler as `Sub`/`Div` (option `div`) keeps sklearn's float arithmetic; the `Scaler` op stores 1/std
  as float32 and can move predictions near split thresholds.
- float32 input, as sklearn trees compare in float32.
"""
import sys

import joblib
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def options_for(model):
    opts = {}
    steps = model.steps if isinstance(model, Pipeline) else [(None, model)]
    for _, step in steps:
        if isinstance(step, StandardScaler):
            opts[id(step)] = {"div": "div"}
        elif hasattr(step, "predict_proba"):
            opts[id(step)] = {"zipmap": False}
    return opts


def main(src, dst):
    model = joblib.load(src)
    n = model.n_features_in_
    onx = to_onnx(model, initial_types=[("input", FloatTensorType([None, n]))],
                  options=options_for(model), target_opset={"": 17, "ai.onnx.ml": 3})
    with open(dst, "wb") as f:
        f.write(onx.SerializeToString())
    print(f"wrote {dst}: {n} features")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python export_model.py MODEL.joblib OUT.onnx")
    main(sys.argv[1], sys.argv[2])
