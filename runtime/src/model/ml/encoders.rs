//! Categorical encoders: `OneHotEncoder`, `LabelEncoder` (every key/value kind), `CategoryMapper`, with
//! onnxruntime's lookups and defaults.
use std::collections::HashMap;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::{err, floats, ints, slice, strings};
use super::kernel::{tensor_of, Fact, Kernel, KernelOp};

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("OneHotEncoder", one_hot);
    reg.insert("LabelEncoder", label_encoder);
    reg.insert("CategoryMapper", category_mapper);
}

/// A category key: onnxruntime compares ints and strings exactly, and (LabelEncoder 4) NaN equal to NaN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Str(String),
    /// f32 bits, with every NaN folded into one
    Float(u32),
}

fn float_key(v: f32) -> Key {
    Key::Float(if v.is_nan() { f32::NAN.to_bits() } else { (v + 0.0).to_bits() })
}

/// onnxruntime casts numeric one-hot inputs with `static_cast<int64_t>`; NaN becomes x86's `i64::MIN`.
fn trunc_i64(v: f64) -> i64 {
    if v.is_nan() {
        i64::MIN
    } else {
        v as i64
    }
}

fn keys_of(x: &Tensor) -> TractResult<Vec<Key>> {
    Ok(match x.datum_type() {
        DatumType::String => slice::<String>(x)?.iter().cloned().map(Key::Str).collect(),
        DatumType::I64 => slice::<i64>(x)?.iter().map(|v| Key::Int(*v)).collect(),
        DatumType::F32 => slice::<f32>(x)?.iter().map(|v| float_key(*v)).collect(),
        other => {
            ensure!(other.is_integer(), "input type {other:?} is not a category type (string, int64 or float)");
            let x = x.cast_to::<i64>()?;
            slice::<i64>(&x)?.iter().map(|v| Key::Int(*v)).collect()
        }
    })
}

// ---------------------------------------------------------------- OneHotEncoder

#[derive(Debug, Clone)]
struct OneHot {
    node: String,
    index: HashMap<Key, usize>,
    n: usize,
    zeros: bool,
}

fn one_hot(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let cats_i = ints(node, "cats_int64s")?;
    let cats_s = strings(node, "cats_strings")?;
    let cats: Vec<Key> = match (cats_i.is_empty(), cats_s.is_empty()) {
        (false, true) => cats_i.iter().map(|v| Key::Int(*v)).collect(),
        (true, false) => cats_s.into_iter().map(Key::Str).collect(),
        _ => {
            return Err(err(node, "cats_int64s", "and `cats_strings`: exactly one must be set; re-export the encoder"))
        }
    };
    // a repeated category maps to its last position, as onnxruntime's map assignment does
    let index = cats.iter().cloned().enumerate().map(|(i, k)| (k, i)).collect();
    let zeros = node.get_attr_opt::<i64>("zeros")?.unwrap_or(1) != 0;
    let op = OneHot { node: node.name.clone(), index, n: cats.len(), zeros };
    Ok((KernelOp::boxed(op), vec![]))
}

impl Kernel for OneHot {
    fn name(&self) -> &'static str {
        "MlambdaOneHotEncoder"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        ensure!(
            inputs[0].shape.len() <= 2,
            "node {:?} (OneHotEncoder): input has rank {}; onnxruntime takes [N] or [N, C]",
            self.node,
            inputs[0].shape.len()
        );
        let mut shape: TVec<TDim> = inputs[0].shape.into();
        shape.push(self.n.to_dim());
        Ok((DatumType::F32, shape))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0];
        let keys: Vec<Key> = match x.datum_type() {
            DatumType::String | DatumType::I64 => keys_of(x)?,
            _ => {
                let x = x.cast_to::<f64>()?;
                slice::<f64>(&x)?.iter().map(|v| Key::Int(trunc_i64(*v))).collect()
            }
        };
        let mut out = vec![0f32; keys.len() * self.n];
        for (i, k) in keys.iter().enumerate() {
            match self.index.get(k) {
                Some(&j) => out[i * self.n + j] = 1.0,
                None if self.zeros => {}
                None => bail!(
                    // the value stays out: this reason reaches the error log line, which carries no feature values
                    "node {:?} (OneHotEncoder): a value is not a known category (zeros=0): send a category \
                     the model was trained on, or export with handle_unknown='ignore'",
                    self.node
                ),
            }
        }
        let mut shape = x.shape().to_vec();
        shape.push(self.n);
        tensor_of(&shape, out)
    }
}

// ---------------------------------------------------------------- LabelEncoder / CategoryMapper

/// The values a lookup produces, with its default.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    Int(Vec<i64>, i64),
    Str(Vec<String>, String),
    Float(Vec<f32>, f32),
}

impl Values {
    fn datum_type(&self) -> DatumType {
        match self {
            Values::Int(..) => DatumType::I64,
            Values::Str(..) => DatumType::String,
            Values::Float(..) => DatumType::F32,
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Int(v, _) => v.len(),
            Values::Str(v, _) => v.len(),
            Values::Float(v, _) => v.len(),
        }
    }
}

#[derive(Debug, Clone)]
struct Lookup {
    op: &'static str,
    node: String,
    key_type: DatumType,
    index: HashMap<Key, usize>,
    values: Values,
}

impl Lookup {
    /// `first_wins`: LabelEncoder's `emplace` keeps a repeated key's first value; CategoryMapper's
    /// assignment keeps the last.
    fn new(op: &'static str, node: &NodeProto, keys: Vec<Key>, values: Values, first_wins: bool) -> TractResult<Self> {
        let key_type = match keys.first() {
            Some(Key::Str(_)) => DatumType::String,
            Some(Key::Float(_)) => DatumType::F32,
            _ => DatumType::I64,
        };
        if keys.len() != values.len() {
            return Err(err(node, "keys_*", format!("has {} keys for {} values: re-export", keys.len(), values.len())));
        }
        let mut index = HashMap::with_capacity(keys.len());
        for (i, k) in keys.into_iter().enumerate() {
            if first_wins {
                index.entry(k).or_insert(i);
            } else {
                index.insert(k, i);
            }
        }
        Ok(Lookup { op, node: node.name.clone(), key_type, index, values })
    }
}

impl Kernel for Lookup {
    fn name(&self) -> &'static str {
        self.op
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        let ok = inputs[0].dt == self.key_type || (self.key_type == DatumType::I64 && inputs[0].dt.is_integer());
        ensure!(
            ok,
            "node {:?} ({}): input is {:?} but the keys are {:?}: cast the input to the key type",
            self.node,
            self.op,
            inputs[0].dt,
            self.key_type
        );
        Ok((self.values.datum_type(), inputs[0].shape.into()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0];
        let hits: Vec<Option<usize>> = keys_of(x)?.iter().map(|k| self.index.get(k).copied()).collect();
        let shape = x.shape();
        match &self.values {
            Values::Int(v, d) => tensor_of(shape, hits.iter().map(|h| h.map_or(*d, |i| v[i])).collect()),
            Values::Float(v, d) => tensor_of(shape, hits.iter().map(|h| h.map_or(*d, |i| v[i])).collect()),
            Values::Str(v, d) => {
                tensor_of(shape, hits.iter().map(|h| h.map_or_else(|| d.clone(), |i| v[i].clone())).collect())
            }
        }
    }
}

/// A `*_tensor` attribute (LabelEncoder 4) loaded as a tensor.
fn tensor_attr(ctx: &ParsingContext, node: &NodeProto, name: &str) -> TractResult<Option<Tensor>> {
    node.get_attr_opt::<&tract_onnx::pb::TensorProto>(name)?.map(|t| ctx.load_tensor(t)).transpose()
}

fn keys_from_tensor(t: &Tensor) -> TractResult<Vec<Key>> {
    match t.datum_type() {
        DatumType::F64 => Ok(slice::<f64>(t)?.iter().map(|v| float_key(*v as f32)).collect()),
        DatumType::I32 | DatumType::I16 | DatumType::I8 => keys_of(&*t.cast_to::<i64>()?),
        _ => keys_of(t),
    }
}

fn values_from_tensor(t: &Tensor, default: Option<&Tensor>) -> TractResult<Values> {
    let d = |dt: DatumType| -> TractResult<Option<Tensor>> {
        default.map(|d| d.cast_to_dt(dt).map(|c| c.into_owned())).transpose()
    };
    Ok(match t.datum_type() {
        DatumType::String => {
            let d = d(DatumType::String)?.map(|t| slice::<String>(&t).map(|s| s[0].clone())).transpose()?;
            Values::Str(slice::<String>(t)?.to_vec(), d.unwrap_or_else(|| "_Unused".into()))
        }
        DatumType::F32 | DatumType::F64 => {
            let t = t.cast_to::<f32>()?;
            let d = d(DatumType::F32)?.map(|t| slice::<f32>(&t).map(|s| s[0])).transpose()?;
            Values::Float(slice::<f32>(&t)?.to_vec(), d.unwrap_or(-0.0))
        }
        _ => {
            let t = t.cast_to::<i64>()?;
            let d = d(DatumType::I64)?.map(|t| slice::<i64>(&t).map(|s| s[0])).transpose()?;
            Values::Int(slice::<i64>(&t)?.to_vec(), d.unwrap_or(-1))
        }
    })
}

fn label_encoder(ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let default_int = node.get_attr_opt::<i64>("default_int64")?.unwrap_or(-1);
    let default_str = node.get_attr_opt::<String>("default_string")?.unwrap_or_else(|| "_Unused".into());
    let default_float = node.get_attr_opt::<f32>("default_float")?.unwrap_or(-0.0);
    // LabelEncoder 1: `classes_strings`, string -> index or index -> string, picked by the input type
    let classes = strings(node, "classes_strings")?;
    if !classes.is_empty() {
        let op = LabelEncoderV1 { node: node.name.clone(), classes, default_int, default_str };
        return Ok((KernelOp::boxed(op), vec![]));
    }
    let keys: Vec<Key> = if let Some(t) = tensor_attr(ctx, node, "keys_tensor")? {
        keys_from_tensor(&t)?
    } else if let Some(s) = node.get_attr_opt_vec::<String>("keys_strings")? {
        s.into_iter().map(Key::Str).collect()
    } else if let Some(i) = node.get_attr_opt_slice::<i64>("keys_int64s")? {
        i.iter().map(|v| Key::Int(*v)).collect()
    } else if let Some(f) = node.get_attr_opt_slice::<f32>("keys_floats")? {
        f.iter().map(|v| float_key(*v)).collect()
    } else {
        return Err(err(
            node,
            "keys_*",
            "is missing (keys_strings, keys_int64s, keys_floats or keys_tensor): re-export",
        ));
    };
    let values = if let Some(t) = tensor_attr(ctx, node, "values_tensor")? {
        values_from_tensor(&t, tensor_attr(ctx, node, "default_tensor")?.as_ref())?
    } else if let Some(s) = node.get_attr_opt_vec::<String>("values_strings")? {
        Values::Str(s, default_str)
    } else if let Some(i) = node.get_attr_opt_slice::<i64>("values_int64s")? {
        Values::Int(i.to_vec(), default_int)
    } else if node.get_attr_opt_slice::<f32>("values_floats")?.is_some() {
        Values::Float(floats(node, "values_floats")?, default_float)
    } else {
        return Err(err(
            node,
            "values_*",
            "is missing (values_strings, values_int64s, values_floats or values_tensor)",
        ));
    };
    Ok((KernelOp::boxed(Lookup::new("MlambdaLabelEncoder", node, keys, values, true)?), vec![]))
}

#[derive(Debug, Clone)]
struct LabelEncoderV1 {
    node: String,
    classes: Vec<String>,
    default_int: i64,
    default_str: String,
}

impl Kernel for LabelEncoderV1 {
    fn name(&self) -> &'static str {
        "MlambdaLabelEncoderV1"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        let dt = match inputs[0].dt {
            DatumType::String => DatumType::I64,
            DatumType::I64 => DatumType::String,
            other => bail!("node {:?} (LabelEncoder): input is {other:?}; it maps strings or int64", self.node),
        };
        Ok((dt, inputs[0].shape.into()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0];
        if x.datum_type() == DatumType::String {
            // the last of a repeated class wins, as onnxruntime's map assignment does
            let index: HashMap<&str, i64> =
                self.classes.iter().enumerate().map(|(i, s)| (s.as_str(), i as i64)).collect();
            let out = slice::<String>(x)?.iter().map(|s| index.get(s.as_str()).copied().unwrap_or(self.default_int));
            tensor_of(x.shape(), out.collect())
        } else {
            let out = slice::<i64>(x)?.iter().map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.classes.get(i))
                    .cloned()
                    .unwrap_or_else(|| self.default_str.clone())
            });
            tensor_of(x.shape(), out.collect())
        }
    }
}

fn category_mapper(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let ints_ = ints(node, "cats_int64s")?.to_vec();
    let strs = strings(node, "cats_strings")?;
    if ints_.len() != strs.len() {
        return Err(err(
            node,
            "cats_int64s",
            format!("has {} entries, `cats_strings` {}: re-export", ints_.len(), strs.len()),
        ));
    }
    let default_int = node.get_attr_opt::<i64>("default_int64")?.unwrap_or(-1);
    let default_str = node.get_attr_opt::<String>("default_string")?.unwrap_or_else(|| "_Unused".into());
    // the direction follows the input type, known only when the graph is typed: build both
    let to_int = Lookup::new(
        "MlambdaCategoryMapper",
        node,
        strs.iter().cloned().map(Key::Str).collect(),
        Values::Int(ints_.clone(), default_int),
        false,
    )?;
    let to_str = Lookup::new(
        "MlambdaCategoryMapper",
        node,
        ints_.iter().map(|v| Key::Int(*v)).collect(),
        Values::Str(strs, default_str),
        false,
    )?;
    Ok((KernelOp::boxed(CategoryMapper { to_int, to_str }), vec![]))
}

#[derive(Debug, Clone)]
struct CategoryMapper {
    to_int: Lookup,
    to_str: Lookup,
}

impl CategoryMapper {
    fn pick(&self, dt: DatumType) -> &Lookup {
        if dt == DatumType::String {
            &self.to_int
        } else {
            &self.to_str
        }
    }
}

impl Kernel for CategoryMapper {
    fn name(&self) -> &'static str {
        "MlambdaCategoryMapper"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        self.pick(inputs[0].dt).output(inputs)
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        self.pick(inputs[0].datum_type()).eval(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Tensor {
        tensor1(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn one_hot_strings_with_unknowns_as_zeros() {
        let cats = ["a", "b", "c"].map(|s| Key::Str(s.into()));
        let op = OneHot {
            node: "ohe".into(),
            index: cats.iter().cloned().enumerate().map(|(i, k)| (k, i)).collect(),
            n: 3,
            zeros: true,
        };
        let x = strs(&["b", "z", "a"]).into_shape(&[3, 1]).unwrap();
        let y = op.eval(&[&x]).unwrap();
        assert_eq!(y.shape(), [3, 1, 3]);
        assert_eq!(slice::<f32>(&y).unwrap(), [0., 1., 0., 0., 0., 0., 1., 0., 0.]);
        let strict = OneHot { zeros: false, ..op };
        let e = strict.eval(&[&x]).unwrap_err().to_string();
        assert!(e.contains("handle_unknown"), "{e}");
    }

    #[test]
    fn one_hot_truncates_floats_like_a_cpp_cast() {
        let op = OneHot { node: "o".into(), index: [(Key::Int(2), 0), (Key::Int(-1), 1)].into(), n: 2, zeros: true };
        let y = op.eval(&[&tensor1(&[2.9f32, -1.5, f32::NAN])]).unwrap();
        assert_eq!(slice::<f32>(&y).unwrap(), [1., 0., 0., 1., 0., 0.]);
    }

    #[test]
    fn label_encoder_maps_with_defaults_and_first_key_wins() {
        let n = NodeProto { name: "le".into(), op_type: "LabelEncoder".into(), ..Default::default() };
        let keys = vec![Key::Str("x".into()), Key::Str("y".into()), Key::Str("x".into())];
        let op = Lookup::new("LE", &n, keys, Values::Float(vec![1.0, 2.0, 3.0], -0.0), true).unwrap();
        let y = op.eval(&[&strs(&["x", "q", "y"])]).unwrap();
        let y = slice::<f32>(&y).unwrap();
        assert_eq!(y[..1], [1.0]);
        assert!(y[1] == 0.0 && y[1].is_sign_negative() && y[2] == 2.0);
        let keys = vec![float_key(f32::NAN), float_key(0.0)];
        let op = Lookup::new("LE", &n, keys, Values::Str(vec!["nan".into(), "zero".into()], "_Unused".into()), true)
            .unwrap();
        let y = op.eval(&[&tensor1(&[f32::NAN, -0.0, 5.0])]).unwrap();
        assert_eq!(slice::<String>(&y).unwrap(), ["nan", "zero", "_Unused"]);
        let v1 = LabelEncoderV1 {
            node: "v1".into(),
            classes: vec!["a".into(), "b".into()],
            default_int: -1,
            default_str: "_Unused".into(),
        };
        assert_eq!(slice::<i64>(&v1.eval(&[&strs(&["b", "zz"])]).unwrap()).unwrap(), [1, -1]);
        assert_eq!(slice::<String>(&v1.eval(&[&tensor1(&[0i64, 9])]).unwrap()).unwrap(), ["a", "_Unused"]);
    }

    #[test]
    fn category_mapper_goes_both_ways() {
        let n = NodeProto { name: "cm".into(), op_type: "CategoryMapper".into(), ..Default::default() };
        let mk = |keys, values| Lookup::new("CM", &n, keys, values, false).unwrap();
        let op = CategoryMapper {
            to_int: mk(vec![Key::Str("a".into()), Key::Str("b".into())], Values::Int(vec![1, 2], -1)),
            to_str: mk(vec![Key::Int(1), Key::Int(2)], Values::Str(vec!["a".into(), "b".into()], "_Unused".into())),
        };
        assert_eq!(slice::<i64>(&op.eval(&[&strs(&["b", "c"])]).unwrap()).unwrap(), [2, -1]);
        assert_eq!(slice::<String>(&op.eval(&[&tensor1(&[1i64, 3])]).unwrap()).unwrap(), ["a", "_Unused"]);
    }
}
