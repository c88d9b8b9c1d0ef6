//! Column plumbing: `ArrayFeatureExtractor` (picks indices of the last axis, any element type) and
//! `FeatureVectorizer` (concatenates inputs into one float row), as onnxruntime shapes them.
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::{err, ints, slice};
use super::kernel::{tensor_of, Fact, Kernel, KernelOp};

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("ArrayFeatureExtractor", array_feature_extractor);
    reg.insert("FeatureVectorizer", feature_vectorizer);
}

#[derive(Debug, Clone)]
struct ArrayFeatureExtractor {
    node: String,
}

fn array_feature_extractor(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((KernelOp::boxed(ArrayFeatureExtractor { node: node.name.clone() }), vec![]))
}

fn gather<T: Datum + Clone>(x: &Tensor, stride: usize, idx: &[usize], shape: &[usize]) -> TractResult<Tensor> {
    let data = slice::<T>(x)?;
    let mut out = Vec::with_capacity(data.len() / stride.max(1) * idx.len());
    if stride > 0 {
        for row in data.chunks_exact(stride) {
            out.extend(idx.iter().map(|&i| row[i].clone()));
        }
    }
    tensor_of(shape, out)
}

impl Kernel for ArrayFeatureExtractor {
    fn name(&self) -> &'static str {
        "MlambdaArrayFeatureExtractor"
    }

    fn arity(&self) -> Option<usize> {
        Some(2)
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        let x = inputs[0].shape;
        ensure!(!x.is_empty(), "node {:?} (ArrayFeatureExtractor): input X has no dimensions", self.node);
        let n: TDim = inputs[1].shape.iter().fold(TDim::from(1), |a, b| a * b.clone());
        // onnxruntime: a vector input gives [1, n] (kept for backwards compatibility)
        let shape = if x.len() == 1 {
            tvec![1.to_dim(), n]
        } else {
            let mut s: TVec<TDim> = x.into();
            *s.last_mut().context("rank checked above")? = n;
            s
        };
        Ok((inputs[0].dt, shape))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let (x, y) = (inputs[0], inputs[1].cast_to::<i64>()?);
        let stride = *x.shape().last().context("X has no dimensions")?;
        let idx = slice::<i64>(&y)?
            .iter()
            .map(|&i| {
                usize::try_from(i).ok().filter(|&i| i < stride).with_context(|| {
                    format!(
                        "node {:?} (ArrayFeatureExtractor): index {i} is out of range for {stride} columns",
                        self.node
                    )
                })
            })
            .collect::<TractResult<Vec<usize>>>()?;
        ensure!(!idx.is_empty(), "node {:?} (ArrayFeatureExtractor): no indices", self.node);
        let mut shape = x.shape().to_vec();
        if shape.len() == 1 {
            shape.insert(0, 1);
        }
        *shape.last_mut().context("rank checked above")? = idx.len();
        match x.datum_type() {
            DatumType::F32 => gather::<f32>(x, stride, &idx, &shape),
            DatumType::F64 => gather::<f64>(x, stride, &idx, &shape),
            DatumType::I64 => gather::<i64>(x, stride, &idx, &shape),
            DatumType::I32 => gather::<i32>(x, stride, &idx, &shape),
            DatumType::String => gather::<String>(x, stride, &idx, &shape),
            DatumType::Bool => gather::<bool>(x, stride, &idx, &shape),
            other => bail!("node {:?} (ArrayFeatureExtractor): element type {other:?} is not supported", self.node),
        }
    }
}

#[derive(Debug, Clone)]
struct FeatureVectorizer {
    node: String,
    dims: Vec<usize>,
}

fn feature_vectorizer(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let dims = ints(node, "inputdimensions")?
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| err(node, "inputdimensions", format!("has a negative entry {d}"))))
        .collect::<TractResult<Vec<_>>>()?;
    if dims.is_empty() {
        return Err(err(node, "inputdimensions", "is missing: re-export the model"));
    }
    Ok((KernelOp::boxed(FeatureVectorizer { node: node.name.clone(), dims }), vec![]))
}

impl Kernel for FeatureVectorizer {
    fn name(&self) -> &'static str {
        "MlambdaFeatureVectorizer"
    }

    fn arity(&self) -> Option<usize> {
        Some(self.dims.len())
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        for f in inputs {
            ensure!(
                f.dt.is_number(),
                "node {:?} (FeatureVectorizer): input is {:?}; it concatenates numbers: encode strings first",
                self.node,
                f.dt
            );
        }
        let n = if inputs[0].shape.len() == 1 { 1.to_dim() } else { inputs[0].shape[0].clone() };
        Ok((DatumType::F32, tvec![n, self.dims.iter().sum::<usize>().to_dim()]))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let s0 = inputs[0].shape();
        let n = if s0.len() == 1 { 1 } else { s0[0] };
        let total: usize = self.dims.iter().sum();
        let mut out = vec![0f32; n * total];
        let mut offset = 0;
        for (x, &want) in inputs.iter().zip(&self.dims) {
            let shape = x.shape();
            let (rows, size) = if shape.len() == 1 { (1, shape[0]) } else { (shape[0], shape[1..].iter().product()) };
            ensure!(rows == n, "node {:?} (FeatureVectorizer): inputs have {n} and {rows} rows", self.node);
            let x = x.cast_to::<f32>()?;
            let data = slice::<f32>(&x)?;
            // extra input columns are dropped and missing ones stay 0, as onnxruntime does
            let take = size.min(want);
            for r in 0..n {
                out[r * total + offset..r * total + offset + take].copy_from_slice(&data[r * size..r * size + take]);
            }
            offset += want;
        }
        tensor_of(&[n, total], out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extractor_picks_last_axis_columns_of_any_type() {
        let op = ArrayFeatureExtractor { node: "afe".into() };
        let x = tensor2(&[[1i64, 2, 3], [4, 5, 6]]);
        let y = op.eval(&[&x, &tensor1(&[2i64, 0])]).unwrap();
        assert_eq!((y.shape(), slice::<i64>(&y).unwrap()), (&[2usize, 2][..], &[3i64, 1, 6, 4][..]));
        let labels = tensor1(&["a".to_string(), "b".into(), "c".into()]);
        let y = op.eval(&[&labels, &tensor1(&[1i64])]).unwrap();
        assert_eq!((y.shape(), slice::<String>(&y).unwrap()), (&[1usize, 1][..], &["b".to_string()][..]));
        assert!(op.eval(&[&x, &tensor1(&[3i64])]).unwrap_err().to_string().contains("out of range"));
    }

    #[test]
    fn vectorizer_concatenates_casts_pads_and_trims() {
        let op = FeatureVectorizer { node: "fv".into(), dims: vec![1, 2, 1] };
        let a = tensor2(&[[1f32], [2.0]]);
        let b = tensor2(&[[3i64], [4]]);
        let c = tensor2(&[[5f64, 9.0], [6.0, 9.0]]);
        let y = op.eval(&[&a, &b, &c]).unwrap();
        assert_eq!(y.shape(), [2, 4]);
        assert_eq!(slice::<f32>(&y).unwrap(), [1., 3., 0., 5., 2., 4., 0., 6.]);
    }
}
