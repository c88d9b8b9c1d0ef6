//! ONNX `Cast`, registered over the core entry so strings convert the way onnxruntime converts them:
//! numbers print as C's `%.8g` (NaN, INF, -INF), strings parse with `stod`/`stoll` prefix rules.
//! Number-to-number casts stay tract's own `Cast`, unchanged.
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_core::ops::cast::cast;

use super::attrs::slice;
use super::kernel::{tensor_of, Fact, Kernel, KernelOp};

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Cast", cast_op);
}

fn cast_op(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let to = node.get_attr::<DatumType>("to")?;
    Ok((expand(CastExpansion { node: node.name.clone(), to }), vec![]))
}

#[derive(Debug, Clone)]
struct CastExpansion {
    node: String,
    to: DatumType,
}

impl Expansion for CastExpansion {
    fn name(&self) -> StaticName {
        "MlambdaCast".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        s.equals(&outputs[0].datum_type, self.to)?;
        Ok(())
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let from = model.outlet_fact(inputs[0])?.datum_type;
        if from == DatumType::String || self.to == DatumType::String {
            let op = KernelOp(std::sync::Arc::new(StringCast { node: self.node.clone(), to: self.to }));
            model.wire_node(prefix, op, inputs)
        } else {
            model.wire_node(prefix, cast(self.to), inputs)
        }
    }
}

#[derive(Debug, Clone)]
struct StringCast {
    node: String,
    to: DatumType,
}

impl Kernel for StringCast {
    fn name(&self) -> &'static str {
        "MlambdaStringCast"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        Ok((self.to, inputs[0].shape.into()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0];
        let shape = x.shape();
        match (x.datum_type(), self.to) {
            (DatumType::String, DatumType::String) => Ok(x.clone()),
            (DatumType::String, to) => {
                let strs = slice::<String>(x)?;
                // the value stays out: this reason reaches the error log line, which carries no feature values
                let bad = |_: &String| {
                    format_err!(
                        "node {:?} (Cast): a string is not a number onnxruntime would parse as {to:?}: send a \
                         numeric value",
                        self.node
                    )
                };
                if to.is_float() {
                    let v = strs
                        .iter()
                        .map(|s| parse_double(s).ok_or_else(|| bad(s)))
                        .collect::<TractResult<Vec<f64>>>()?;
                    Ok(tensor_of(shape, v)?.cast_to_dt(to)?.into_owned())
                } else if to == DatumType::Bool || to.is_unsigned() {
                    let v = strs
                        .iter()
                        .map(|s| parse_int(s, true).map(|v| v as u64).ok_or_else(|| bad(s)))
                        .collect::<TractResult<Vec<u64>>>()?;
                    if to == DatumType::Bool {
                        return tensor_of(shape, v.iter().map(|v| *v != 0).collect());
                    }
                    wrap_int(tensor_of(shape, v)?, to)
                } else {
                    let v = strs
                        .iter()
                        .map(|s| parse_int(s, false).ok_or_else(|| bad(s)))
                        .collect::<TractResult<Vec<i64>>>()?;
                    wrap_int(tensor_of(shape, v)?, to)
                }
            }
            (from, _) => {
                let out: Vec<String> = if from.is_float() {
                    let x = x.cast_to::<f64>()?;
                    slice::<f64>(&x)?.iter().map(|v| float_to_string(*v)).collect()
                } else if from == DatumType::Bool {
                    slice::<bool>(x)?.iter().map(|b| if *b { "1" } else { "0" }.to_string()).collect()
                } else if from.is_unsigned() {
                    let x = x.cast_to::<u64>()?;
                    slice::<u64>(&x)?.iter().map(|v| v.to_string()).collect()
                } else {
                    let x = x.cast_to::<i64>()?;
                    slice::<i64>(&x)?.iter().map(|v| v.to_string()).collect()
                };
                tensor_of(shape, out)
            }
        }
    }
}

/// `gsl::narrow_cast` to a smaller integer: two's complement truncation, like tract's integer casts.
fn wrap_int(t: Tensor, to: DatumType) -> TractResult<Tensor> {
    Ok(t.cast_to_dt(to)?.into_owned())
}

/// C's `isspace` in the "C" locale.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// `std::stod`: the longest prefix `strtod` accepts after leading whitespace; `None` when there is none
/// or it overflows (`std::out_of_range`).
pub fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(is_c_space);
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let neg = b.first() == Some(&b'-');
    let rest = t[i..].to_ascii_lowercase();
    if rest.starts_with("inf") {
        return Some(if neg { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if rest.starts_with("nan") {
        return Some(if neg { -f64::NAN } else { f64::NAN });
    }
    let start = i;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - s
    };
    let mut n = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if digits(&mut j) > 0 {
            i = j;
        }
    }
    let v: f64 = t[..i].parse().ok()?;
    let mantissa_nonzero =
        t[start..i].bytes().take_while(|c| *c != b'e' && *c != b'E').any(|c| (b'1'..=b'9').contains(&c));
    // ERANGE: overflow, or a nonzero number that underflows to zero
    if v.is_infinite() || (v == 0.0 && mantissa_nonzero) {
        return None;
    }
    Some(v)
}

/// `std::stoll` (or `std::stoull`): leading whitespace, a sign, base-10 digits, the rest ignored.
pub fn parse_int(s: &str, unsigned: bool) -> Option<i64> {
    let t = s.trim_start_matches(is_c_space);
    let end = t
        .char_indices()
        .find(|&(k, c)| !(c.is_ascii_digit() || (k == 0 && (c == '+' || c == '-'))))
        .map_or(t.len(), |(k, _)| k);
    let p = &t[..end];
    if unsigned {
        // stoull takes "-1" as 2^64 - 1
        let (neg, digits) = p.strip_prefix('-').map_or((false, p.trim_start_matches('+')), |d| (true, d));
        let v: u64 = digits.parse().ok()?;
        Some(if neg { v.wrapping_neg() as i64 } else { v as i64 })
    } else {
        p.parse().ok()
    }
}

/// onnxruntime's float-to-string: `NaN`, `INF`, `-INF`, else C's `%.8g` of the value as a double.
pub fn float_to_string(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-INF".into() } else { "INF".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    const P: i32 = 8;
    let e = format!("{:.*e}", (P - 1) as usize, v);
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..P).contains(&exp) {
        format!("{}e{}{:02}", trim(mantissa), if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        trim(&format!("{:.*}", (P - 1 - exp) as usize, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_percent_8g() {
        for (v, s) in [
            (0.1f32 as f64, "0.1"),
            (1.0 / 3.0, "0.33333333"),
            (123456789.0, "1.2345679e+08"),
            (12345678.0, "12345678"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (1e100, "1e+100"),
            (100.0, "100"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-INF"),
        ] {
            assert_eq!(float_to_string(v), s, "{v}");
        }
        assert_eq!(float_to_string(0.1f32 as f64), "0.1");
        assert_eq!(float_to_string(16777217f32 as f64), "16777216");
    }

    #[test]
    fn strings_parse_like_stod_and_stoll() {
        assert_eq!(parse_double("  1.5abc"), Some(1.5));
        assert_eq!(parse_double("-.5e1x"), Some(-5.0));
        assert_eq!(parse_double("1e"), Some(1.0));
        assert_eq!(parse_double("Infinity"), Some(f64::INFINITY));
        assert!(parse_double("nan").unwrap().is_nan());
        assert_eq!(parse_double("abc"), None);
        assert_eq!(parse_double(""), None);
        assert_eq!(parse_double("1e999"), None);
        assert_eq!(parse_int(" 42x", false), Some(42));
        assert_eq!(parse_int("-7", false), Some(-7));
        assert_eq!(parse_int("x", false), None);
        assert_eq!(parse_int("-1", true), Some(-1));
    }

    #[test]
    fn the_kernel_casts_both_ways() {
        let op = StringCast { node: "c".into(), to: DatumType::F32 };
        let x = tensor1(&["1.25".to_string(), " -3".into()]);
        assert_eq!(slice::<f32>(&op.eval(&[&x]).unwrap()).unwrap(), [1.25, -3.0]);
        let e = op.eval(&[&tensor1(&["x".to_string()])]).unwrap_err().to_string();
        // the value stays out of the message: it reaches the error log line
        assert!(!e.contains("\"x\"") && e.contains("a string is not a number") && e.contains("numeric"), "{e}");
        let op = StringCast { node: "c".into(), to: DatumType::String };
        let y = op.eval(&[&tensor1(&[0.1f32, 3.0])]).unwrap();
        assert_eq!(slice::<String>(&y).unwrap(), ["0.1", "3"]);
        let y = op.eval(&[&tensor1(&[-4i64])]).unwrap();
        assert_eq!(slice::<String>(&y).unwrap(), ["-4"]);
    }
}
