//! Core ONNX ops whose tract-onnx 0.23.9 builders are private, wired from tract-hir/tract-core ops the
//! same way tract-onnx does (`src/ops/{math,array,nn}` there), so [`super::ops`] can carry them
//! without linking tract's whole op table.
use tract_onnx::model::{optional_inputs, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops;
use tract_onnx::tract_hir::ops::logic::wire_with_rank_broadcast;
use tract_onnx::tract_hir::ops::nn::{Reduce, Reducer};
use tract_onnx::tract_hir::tract_core::ops::einsum::EinSum;

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// Reads a constant axes input as `isize`s.
fn const_axes(model: &TypedModel, outlet: OutletId) -> TractResult<Vec<isize>> {
    let fact = model.outlet_fact(outlet)?;
    let axes = fact.konst.as_ref().context("axes must be a constant")?;
    Ok(axes.cast_to::<i64>()?.try_as_plain_ram()?.as_slice::<i64>()?.iter().map(|i| *i as isize).collect())
}

// ---------------------------------------------------------------- Gemm

pub fn gemm(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let alpha = node.get_attr_opt("alpha")?.unwrap_or(1.);
    let beta = node.get_attr_opt("beta")?.unwrap_or(1.);
    let trans_a = node.get_attr_opt("transA")?.unwrap_or(false);
    let trans_b = node.get_attr_opt("transB")?.unwrap_or(false);
    Ok((expand(Gemm { alpha, beta, trans_a, trans_b }), vec![]))
}

#[derive(Debug, Clone)]
struct Gemm {
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
}

impl Expansion for Gemm {
    fn name(&self) -> StaticName {
        "Gemm".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        if inputs.len() < 2 {
            bail!("Wrong input number. Rules expect at least 2, node has {}.", inputs.len());
        }
        if inputs.len() == 3 {
            s.equals(&inputs[2].datum_type, &outputs[0].datum_type)?;
        }
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&inputs[1].rank, 2)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
        s.equals(&inputs[1].datum_type, &outputs[0].datum_type)?;
        let (ca, ra) = if self.trans_a { (0, 1) } else { (1, 0) };
        let (cb, rb) = if self.trans_b { (0, 1) } else { (1, 0) };
        s.equals(&inputs[0].shape[ra], &outputs[0].shape[0])?;
        s.equals(&inputs[0].shape[ca], &inputs[1].shape[rb])?;
        s.equals(&inputs[1].shape[cb], &outputs[0].shape[1])?;
        Ok(())
    }

    fn wire(&self, name: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let (a, b, c) = (inputs[0], inputs[1], inputs.get(2));
        let axes = AxesMapping::for_numpy_matmul(2, self.trans_a, self.trans_b, false)?;
        let mut wire =
            model.wire_node(format!("{name}.ab"), EinSum::new(axes, model.outlet_fact(a)?.datum_type), &[a, b])?[0];
        if self.alpha != 1.0 {
            let alpha = tensor0(self.alpha).broadcast_into_rank(model.outlet_fact(wire)?.rank())?;
            let alpha = model.add_const(format!("{name}.alpha_ab.cst"), alpha)?;
            wire = model.wire_node(format!("{name}.alpha_ab"), ops::math::mul(), &[alpha, wire])?[0];
        }
        if let Some(&c) = c.filter(|_| self.beta != 0.0) {
            let mut c = c;
            while model.outlet_fact(wire)?.rank() > model.outlet_fact(c)?.rank() {
                c = model.wire_node(
                    format!("{name}.c_add_axis_{}", model.outlet_fact(c)?.rank()),
                    tract_onnx::tract_core::ops::change_axes::AxisOp::Add(0),
                    &[c],
                )?[0];
            }
            let beta = tensor0(self.beta).broadcast_into_rank(model.outlet_fact(wire)?.rank())?;
            let beta = model.add_const(format!("{name}.beta_c.cst"), beta)?;
            let beta_c = model.wire_node(format!("{name}.beta_c"), ops::math::mul(), &[beta, c])?[0];
            wire = model.wire_node(name, ops::math::add(), &[wire, beta_c])?[0];
        }
        Ok(tvec!(wire))
    }
}

// ---------------------------------------------------------------- LogSoftmax (Softmax and ArgMax/ArgMin: ml::softmax)

pub fn log_softmax(ctx: &ParsingContext, node: &NodeProto) -> Built {
    let axis = node.get_attr_opt("axis")?;
    if ctx.onnx_operator_set_version < 13 {
        Ok((expand(ops::nn::LayerLogSoftmax::new(axis.unwrap_or(1), true)), vec![]))
    } else {
        Ok((expand(ops::nn::LayerLogSoftmax::new(axis.unwrap_or(-1), false)), vec![]))
    }
}

// ---------------------------------------------------------------- Reduce*

/// `ReduceSum` took its axes as an input from opset 13, every other reducer from opset 18.
pub fn reduce(ctx: &ParsingContext, node: &NodeProto, reducer: Reducer) -> Built {
    let keep_dims = node.get_attr_opt("keepdims")?.unwrap_or(1i64) == 1;
    if (ctx.onnx_operator_set_version >= 13 && node.op_type == "ReduceSum") || ctx.onnx_operator_set_version >= 18 {
        let have_axis_input = node.input.len() == 2;
        let noop_with_empty_axes = node.get_attr_opt("noop_with_empty_axes")?.unwrap_or(0i64) == 1;
        Ok((expand(Reduce13 { have_axis_input, keep_dims, noop_with_empty_axes, reducer }), vec![]))
    } else {
        let axes = node.get_attr_opt_vec("axes")?;
        Ok((expand(Reduce::new(axes, keep_dims, reducer)), vec![]))
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Reduce13 {
    have_axis_input: bool,
    keep_dims: bool,
    noop_with_empty_axes: bool,
    reducer: Reducer,
}

impl Reduce13 {
    fn axes(&self, given: Vec<i64>, rank: i64) -> Vec<i64> {
        if given.is_empty() && !self.noop_with_empty_axes {
            (0..rank).collect()
        } else {
            given
        }
    }
}

impl Expansion for Reduce13 {
    fn name(&self) -> StaticName {
        "Reduce13".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1 + self.have_axis_input as usize)?;
        check_output_arity(outputs, 1)?;
        if let Reducer::ArgMax(_) | Reducer::ArgMin(_) = self.reducer {
            s.equals(&outputs[0].datum_type, DatumType::I64)?;
        } else {
            s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
        }
        let finish = move |s: &mut Solver<'r>, axes: Vec<i64>| -> InferenceResult {
            let op = Reduce::new(Some(axes.clone()), self.keep_dims, self.reducer);
            if self.keep_dims {
                s.equals(&inputs[0].rank, &outputs[0].rank)?;
            } else {
                s.equals(inputs[0].rank.bex() - axes.len() as i64, &outputs[0].rank)?;
            }
            s.given(&inputs[0].shape, move |s, shape| s.equals(&outputs[0].shape, op.output_shape(&shape)))
        };
        if self.have_axis_input {
            s.given_2(&inputs[0].rank, &inputs[1].value, move |s, rank, axes| {
                let axes = axes.cast_to::<i64>()?.try_as_plain_ram()?.as_slice::<i64>()?.to_vec();
                finish(s, self.axes(axes, rank))
            })
        } else {
            s.given(&inputs[0].rank, move |s, rank| finish(s, self.axes(vec![], rank)))
        }
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let given: Vec<i64> = if self.have_axis_input {
            const_axes(model, inputs[1])?.into_iter().map(|a| a as i64).collect()
        } else {
            vec![]
        };
        let axes = self.axes(given, model.outlet_fact(inputs[0])?.rank() as i64);
        Reduce::new(Some(axes), self.keep_dims, self.reducer).wire(prefix, model, &inputs[0..1])
    }
}

// ---------------------------------------------------------------- Shape, Squeeze, Unsqueeze

pub fn shape(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let start = node.get_attr_opt("start")?.unwrap_or(0);
    let end = node.get_attr_opt("end")?;
    Ok((expand(Shape { start, end }), vec![]))
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Shape {
    start: i64,
    end: Option<i64>,
}

impl Shape {
    fn resolve(&self, rank: i64) -> std::ops::Range<usize> {
        let clamp = |axis: i64| (if axis >= 0 { axis } else { axis + rank }).clamp(0, rank) as usize;
        let start = clamp(self.start);
        let end = self.end.map(clamp).unwrap_or(rank as usize);
        start..end.max(start)
    }
}

impl Expansion for Shape {
    fn name(&self) -> StaticName {
        "Shape".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].rank, 1)?;
        s.equals(&outputs[0].datum_type, TDim::datum_type())?;
        s.given(&inputs[0].shape, |s, shape| {
            let range = self.resolve(shape.len() as i64);
            s.equals(&outputs[0].value, rctensor1(&shape[range]))
        })
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let fact = model.outlet_fact(inputs[0])?;
        let range = self.resolve(fact.rank() as i64);
        let shape = fact.shape.to_tvec();
        Ok(tvec!(model.add_const(prefix, tensor1(&shape[range]))?))
    }
}

pub fn squeeze(ctx: &ParsingContext, node: &NodeProto) -> Built {
    if ctx.onnx_operator_set_version < 13 {
        let axes = node.get_attr_opt_vec::<i64>("axes")?.map(|a| a.into_iter().map(|x| x as isize).collect());
        Ok((expand(ops::array::Squeeze::new(axes)), vec![]))
    } else {
        Ok((expand(Squeeze13), vec![]))
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Squeeze13;

fn unit_axes(shape: &[TDim]) -> Vec<isize> {
    shape.iter().enumerate().filter(|(_, d)| d.is_one()).map(|(i, _)| i as isize).collect()
}

impl Expansion for Squeeze13 {
    fn name(&self) -> StaticName {
        "Squeeze13".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_output_arity(outputs, 1)?;
        if inputs.is_empty() {
            bail!("Wrong input number. Rules expect at least 1, node has 0.");
        }
        s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
        if inputs.len() == 2 {
            s.given_2(&inputs[0].shape, &inputs[1].value, move |s, shape, axes| {
                let axes = axes.cast_to::<i64>()?;
                let axes = axes.try_as_plain_ram()?.as_slice::<i64>()?.iter().map(|i| *i as isize).collect();
                let op = ops::array::Squeeze::new(Some(axes));
                s.equals(&outputs[0].shape, op.output_shape(&shape)?)
            })
        } else {
            s.given(&inputs[0].shape, move |s, shape| {
                let op = ops::array::Squeeze::new(Some(unit_axes(&shape)));
                s.equals(&outputs[0].shape, op.output_shape(&shape)?)
            })
        }
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let axes = if inputs.len() == 2 {
            const_axes(model, inputs[1])?
        } else {
            unit_axes(&model.outlet_fact(inputs[0])?.shape.to_tvec())
        };
        ops::array::Squeeze::new(Some(axes)).wire(prefix, model, &inputs[0..1])
    }
}

pub fn unsqueeze(ctx: &ParsingContext, node: &NodeProto) -> Built {
    if ctx.onnx_operator_set_version < 13 {
        let axes = node.get_attr_vec::<i64>("axes")?.into_iter().map(|x| x as isize).collect();
        Ok((expand(ops::array::AddDims::new(axes)), vec![]))
    } else {
        Ok((expand(Unsqueeze13), vec![]))
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Unsqueeze13;

impl Expansion for Unsqueeze13 {
    fn name(&self) -> StaticName {
        "Unsqueeze13".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 2)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
        s.given_2(&inputs[0].shape, &inputs[1].value, move |s, shape, axes| {
            let axes = axes.cast_to::<i64>()?;
            let op = ops::array::AddDims::new(
                axes.try_as_plain_ram()?.as_slice::<i64>()?.iter().map(|i| *i as isize).collect(),
            );
            s.equals(&outputs[0].shape, op.output_shape(&shape))
        })
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let axes = const_axes(model, inputs[1])?;
        ops::array::AddDims::new(axes).wire(prefix, model, &inputs[0..1])
    }
}

// ---------------------------------------------------------------- Pow, Clip

pub fn pow(_ctx: &ParsingContext, _node: &NodeProto) -> Built {
    Ok((expand(Pow), vec![]))
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Pow;

impl Expansion for Pow {
    fn name(&self) -> StaticName {
        "Pow".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 2)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
        s.with(&inputs[0].shape, move |s, a_shape| {
            s.with(&inputs[1].shape, move |s, b_shape| {
                if let Ok(Some(c_shape)) =
                    tract_onnx::tract_hir::infer::helpers::infer_shape_broadcasting(&[&a_shape, &b_shape])
                {
                    s.equals(&outputs[0].shape, c_shape)?;
                }
                Ok(())
            })
        })
    }

    fn wire(&self, name: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let dta = model.outlet_fact(inputs[0])?.datum_type;
        let dtb = model.outlet_fact(inputs[1])?.datum_type;
        let mut wires = ops::binary::wire_rank_broadcast(name, model, inputs)?;
        if dta.is_integer() != dtb.is_integer() {
            wires = ops::binary::wire_cast(name, model, &wires, DatumType::F64)?;
            wires = model.wire_node(format!("{name}.pow"), ops::math::pow(), &wires)?;
            model.wire_node(name, ops::cast::cast(dta), &wires)
        } else {
            let dt = dta.common_super_type(dtb).with_context(|| format!("Pow of {dta:?} by {dtb:?}"))?;
            wires = ops::binary::wire_cast(name, model, &wires, dt)?;
            model.wire_node(name, ops::math::pow(), &wires)
        }
    }
}

pub fn clip(ctx: &ParsingContext, node: &NodeProto) -> Built {
    if ctx.onnx_operator_set_version < 11 {
        let min: Option<f32> = node.get_attr_opt("min")?;
        let max: Option<f32> = node.get_attr_opt("max")?;
        return Ok((expand(ops::activations::Clip::new(min, max)), vec![]));
    }
    let mut options = optional_inputs(node).skip(1);
    let (input_min, input_max) = (options.next().flatten(), options.next().flatten());
    Ok((expand(Clip11 { input_min, input_max }), vec![]))
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Clip11 {
    input_min: Option<usize>,
    input_max: Option<usize>,
}

impl Expansion for Clip11 {
    fn name(&self) -> StaticName {
        "Clip".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1 + self.input_min.is_some() as usize + self.input_max.is_some() as usize)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)
    }

    fn wire(&self, name: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let dt = model.outlet_fact(inputs[0])?.datum_type;
        let mut wire = inputs[0];
        for (bound, suffix, op) in
            [(self.input_min, "min", ops::math::max()), (self.input_max, "max", ops::math::min())]
        {
            let Some(ix) = bound else { continue };
            let mut b = inputs[ix];
            if model.outlet_fact(b)?.datum_type != dt {
                b = model.wire_node(format!("{name}.{suffix}.cast"), ops::cast::cast(dt), &[b])?[0];
            }
            wire = wire_with_rank_broadcast(format!("{name}.{suffix}"), model, op, &[wire, b])?[0];
        }
        Ok(tvec!(wire))
    }
}

// ---------------------------------------------------------------- Flatten

pub fn flatten(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    Ok((expand(Flatten { axis: node.get_attr_opt("axis")?.unwrap_or(1) }), vec![]))
}

/// tract's `Flatten` refuses a shape with more than one symbol, and a tokenized text is `[N, tokens]` (or
/// `[N, 1, tokens]`), both known only at run time: one reshape, which symbols do not trouble. Flattening into
/// the shape the input already has is no node at all.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Flatten {
    axis: i64,
}

impl Flatten {
    fn split(&self, rank: usize) -> usize {
        if self.axis >= 0 {
            self.axis as usize
        } else {
            (self.axis + rank as i64).max(0) as usize
        }
    }

    fn shape(&self, shape: &[TDim]) -> [TDim; 2] {
        let at = self.split(shape.len()).min(shape.len());
        [shape[..at].iter().product(), shape[at..].iter().product()]
    }
}

impl Expansion for Flatten {
    fn name(&self) -> StaticName {
        "Flatten".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
        s.given(&inputs[0].shape, move |s, shape| {
            let [a, b] = self.shape(&shape);
            s.equals(&outputs[0].shape, ShapeFactoid::from(vec![a, b]))
        })
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let shape = model.outlet_fact(inputs[0])?.shape.to_tvec();
        if shape.len() == 2 && self.split(2) == 1 {
            return Ok(inputs.into());
        }
        let [a, b] = self.shape(&shape);
        model.wire_node(prefix, AxisOp::Reshape(0, shape, tvec![a, b]), inputs)
    }
}

// ---------------------------------------------------------------- ConstantOfShape

/// `PolynomialFeatures` exports build their ones column with it.
pub fn constant_of_shape(ctx: &ParsingContext, node: &NodeProto) -> Built {
    let mut value = match node.get_attr_opt("value")? {
        Some(v) => ctx.load_tensor(v)?.into_arc_tensor(),
        None => rctensor0(0.0f32),
    };
    if value.rank() > 0 {
        ensure!(value.len() == 1, "node {:?} (ConstantOfShape): `value` must hold one element", node.name);
        value = value.nth(0)?.into_arc_tensor();
    }
    Ok((expand(ops::array::ConstantOfShape::new(value)), vec![]))
}
