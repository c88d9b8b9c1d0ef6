"""Writes models that load but fail at run time into tests/fixtures/broken/, for the runtime's 500 path.

Run with the project venv: `.venv/bin/python runtime/tests/broken_fixtures.py`.

`batch_sum.onnx`: a regressor over one float input `x` [N, 2] whose output sums the whole batch into one
value ([1, 1]). INIT's probe (one row) passes; a batch of two rows makes the graph answer one value for two
rows, which the runtime refuses as a model error, without any feature value in the message.
"""
import os

import onnx
from onnx import TensorProto, helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "broken")


def batch_sum():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("variable", TensorProto.FLOAT, [1, 1])
    node = helper.make_node("ReduceSum", ["x"], ["variable"], axes=[0, 1], keepdims=1)
    graph = helper.make_graph([node], "batch_sum", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], producer_name="mlambda-tests")
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(OUT, "batch_sum.onnx"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    batch_sum()
