//! Attribute readers every `ai.onnx.ml` op builder shares, and the errors that name node, attribute and fix.
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

/// `node "name" (OpType): attribute `attr` ...`, the prefix of every builder error.
pub fn err(node: &NodeProto, attr: &str, msg: impl std::fmt::Display) -> TractError {
    format_err!("node {:?} ({}): attribute `{attr}` {msg}", node.name, node.op_type)
}

/// A float list; `{name}_as_tensor` (double precision) is refused with the fix.
pub fn floats(node: &NodeProto, name: &str) -> TractResult<Vec<f32>> {
    if node.get_attr_opt::<&tract_onnx::pb::TensorProto>(&format!("{name}_as_tensor"))?.is_some() {
        return Err(err(
            node,
            &format!("{name}_as_tensor"),
            "(double precision) is not supported: export the model with float32 attributes",
        ));
    }
    Ok(node.get_attr_opt_vec::<f32>(name)?.unwrap_or_default())
}

pub fn ints<'a>(node: &'a NodeProto, name: &str) -> TractResult<&'a [i64]> {
    Ok(node.get_attr_opt_slice::<i64>(name)?.unwrap_or(&[]))
}

pub fn strings(node: &NodeProto, name: &str) -> TractResult<Vec<String>> {
    Ok(node.get_attr_opt_vec::<String>(name)?.unwrap_or_default())
}

pub fn string_or(node: &NodeProto, name: &str, default: &str) -> TractResult<String> {
    Ok(node.get_attr_opt::<String>(name)?.unwrap_or_else(|| default.to_string()))
}

/// How scores are turned into outputs (onnxruntime's `POST_EVAL_TRANSFORM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    pub fn parse(s: &str) -> Result<PostTransform, String> {
        match s {
            "NONE" => Ok(PostTransform::None),
            "LOGISTIC" => Ok(PostTransform::Logistic),
            "SOFTMAX" => Ok(PostTransform::Softmax),
            "SOFTMAX_ZERO" => Ok(PostTransform::SoftmaxZero),
            "PROBIT" => Ok(PostTransform::Probit),
            other => Err(format!(
                "is {other:?}, which is not a post transform (NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO, PROBIT are): \
                 re-export the model"
            )),
        }
    }
}

pub fn post_transform(node: &NodeProto) -> TractResult<PostTransform> {
    PostTransform::parse(&string_or(node, "post_transform", "NONE")?).map_err(|e| err(node, "post_transform", e))
}

/// A classifier's class labels, in the order of its score columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClassLabels {
    Int(Vec<i64>),
    Str(Vec<String>),
}

impl ClassLabels {
    pub fn len(&self) -> usize {
        match self {
            ClassLabels::Int(v) => v.len(),
            ClassLabels::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn datum_type(&self) -> DatumType {
        match self {
            ClassLabels::Int(_) => DatumType::I64,
            ClassLabels::Str(_) => DatumType::String,
        }
    }

    /// The label tensor `[N]` for per-row class indices (indices are checked by the callers' builders).
    pub fn tensor(&self, picks: &[usize]) -> Tensor {
        match self {
            ClassLabels::Int(v) => tensor1(&picks.iter().map(|&i| v[i]).collect::<Vec<_>>()),
            ClassLabels::Str(v) => tensor1(&picks.iter().map(|&i| v[i].clone()).collect::<Vec<_>>()),
        }
    }
}

/// Class labels from `{int_attr}` or `classlabels_strings`, whichever the exporter wrote.
pub fn class_labels(node: &NodeProto, int_attr: &str) -> TractResult<ClassLabels> {
    let strings = strings(node, "classlabels_strings")?;
    let ints = ints(node, int_attr)?;
    let labels = match (ints.is_empty(), strings.is_empty()) {
        (false, true) => ClassLabels::Int(ints.to_vec()),
        (true, false) => ClassLabels::Str(strings),
        (true, true) => {
            return Err(err(node, int_attr, "and `classlabels_strings` are both missing: re-export the classifier"))
        }
        (false, false) => {
            return Err(err(node, int_attr, "and `classlabels_strings` are both set: keep one and re-export"))
        }
    };
    Ok(labels)
}

/// Downcasts a tensor's data to a slice of `T`.
pub fn slice<T: Datum>(t: &Tensor) -> TractResult<&[T]> {
    t.try_as_plain_ram()?.as_slice::<T>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto};

    pub fn node(op: &str, attrs: Vec<AttributeProto>) -> NodeProto {
        NodeProto { op_type: op.into(), name: "n".into(), attribute: attrs, ..Default::default() }
    }

    #[test]
    fn labels_come_from_ints_or_strings_and_errors_name_the_fix() {
        let ints = AttributeProto {
            name: "classlabels_ints".into(),
            r#type: AttributeType::Ints as i32,
            ints: vec![3, 5],
            ..Default::default()
        };
        let strs = AttributeProto {
            name: "classlabels_strings".into(),
            r#type: AttributeType::Strings as i32,
            strings: vec![b"a".to_vec(), b"b".to_vec()],
            ..Default::default()
        };
        let n = node("LinearClassifier", vec![ints.clone()]);
        assert_eq!(class_labels(&n, "classlabels_ints").unwrap(), ClassLabels::Int(vec![3, 5]));
        let n = node("LinearClassifier", vec![strs.clone()]);
        let labels = class_labels(&n, "classlabels_ints").unwrap();
        assert_eq!(labels, ClassLabels::Str(vec!["a".into(), "b".into()]));
        assert_eq!(slice::<String>(&labels.tensor(&[1, 0])).unwrap(), ["b", "a"]);
        let e = class_labels(&node("LinearClassifier", vec![]), "classlabels_ints").unwrap_err().to_string();
        assert!(e.contains("\"n\"") && e.contains("`classlabels_ints`") && e.contains("re-export"), "{e}");
        let e = class_labels(&node("X", vec![ints, strs]), "classlabels_ints").unwrap_err().to_string();
        assert!(e.contains("both set"), "{e}");
        assert!(PostTransform::parse("PROBIT").is_ok() && PostTransform::parse("X").is_err());
    }
}
