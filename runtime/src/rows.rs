//! JSON rows into a model's input columns: one object per row, one field per feature, typed as the graph
//! declares its inputs. Pure functions over `serde_json`; the HTTP contract (`contract.rs`, which imports this
//! module, never the other way) and the CLI's model check both go through here.
//!
//! Decisions: a numeric field takes a JSON number, booleans as 1/0; an int64 field takes an integral
//! number; a string field takes a JSON string of at most [`MAX_TEXT_BYTES`] (numbers are refused, not
//! stringified); `null` only where the
//! graph imputes that input (it becomes NaN); NaN/Infinity (Python's non-JSON literals) and numbers outside
//! float32 are refused naming the field. Unknown extra fields are ignored.
use serde_json::{Map, Value};

use crate::error::Error;
use crate::model::{Batch, Column, Field, InputKind, Model, RowAnswer};

/// Python's `json.dumps` writes NaN/Infinity/-Infinity, which are not JSON. The HTTP contract rewrites
/// them into strings with this prefix (a private-use character no client sends) so the error can name the
/// field.
pub const NON_FINITE_MARK: &str = "\u{E000}non-finite:";

/// The longest text one string field takes: a document is far shorter, and the bound keeps one row from
/// holding a request (and the tokenizer) for long.
pub const MAX_TEXT_BYTES: usize = 100 * 1024;

/// The request fields of a model, resolved once.
#[derive(Debug, Clone)]
pub struct Schema {
    fields: Vec<Field>,
    /// Per graph input: kind and width, to size the columns.
    inputs: Vec<(InputKind, usize)>,
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn non_finite(name: &str, v: &Value) -> Option<String> {
    match v {
        Value::String(s) => s.strip_prefix(NON_FINITE_MARK).map(|lit| format!("feature {name:?} is {lit}")),
        _ => None,
    }
}

/// One value into its column, or why not.
fn push_value(name: &str, v: &Value, kind: InputKind, nullable: bool, column: &mut Column) -> Result<(), String> {
    if let Some(lit) = non_finite(name, v) {
        let want = if kind == InputKind::Str { "a string" } else { "a finite number" };
        return Err(format!("{lit}; send {want}"));
    }
    match column {
        Column::F32(out) => match number(name, v, nullable)? {
            None => out.push(f32::NAN),
            Some(x) => {
                let f = x as f32;
                if !f.is_finite() {
                    // no value in the message: it reaches the caller and the error log line
                    return Err(format!("feature {name:?} is outside the float32 range; send a number within ±3.4e38"));
                }
                out.push(f);
            }
        },
        Column::F64(out) => out.push(number(name, v, nullable)?.unwrap_or(f64::NAN)),
        Column::I64(out) => {
            let i = match v {
                Value::Number(n) => {
                    n.as_i64().or_else(|| n.as_f64().filter(|x| x.fract() == 0.0 && x.abs() < 9.0e15).map(|x| x as i64))
                }
                Value::Bool(b) => Some(i64::from(*b)),
                _ => None,
            };
            let i = i.ok_or_else(|| format!("feature {name:?} must be an integer, got {}", kind_of(v)))?;
            out.push(i);
        }
        Column::Str(out) => match v {
            Value::String(s) if s.len() > MAX_TEXT_BYTES => {
                return Err(format!(
                    "feature {name:?} is {} KB of text, over the {} KB a string field takes; send a shorter text",
                    s.len().div_ceil(1024),
                    MAX_TEXT_BYTES / 1024
                ))
            }
            Value::String(s) => out.push(s.clone()),
            other => return Err(format!("feature {name:?} must be a string, got {}", kind_of(other))),
        },
    }
    Ok(())
}

/// A float field's value: a number, a boolean as 1/0, or `None` for a `null` the graph imputes.
fn number(name: &str, v: &Value, nullable: bool) -> Result<Option<f64>, String> {
    match v {
        Value::Number(n) => {
            n.as_f64().map(Some).ok_or_else(|| format!("feature {name:?} is not a representable number"))
        }
        Value::Bool(b) => Ok(Some(f64::from(u8::from(*b)))),
        Value::Null if nullable => Ok(None),
        other => Err(format!("feature {name:?} must be a number, got {}", kind_of(other))),
    }
}

/// `kind`, but a fractional number says so (the int64 case).
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => "a fractional number",
        other => kind(other),
    }
}

impl Schema {
    /// The fields of `model` under `MODEL_FEATURES` (`features`); see [`Model::fields`].
    pub fn new(model: &Model, features: Option<&[String]>) -> Result<Schema, String> {
        let fields = model.fields(features)?;
        let inputs = model.inputs().iter().map(|i| (i.kind, i.width)).collect();
        Ok(Schema { fields, inputs })
    }

    /// A schema from resolved fields and the graph inputs' (kind, width), e.g. for tests.
    pub fn from_parts(fields: Vec<Field>, inputs: Vec<(InputKind, usize)>) -> Schema {
        Schema { fields, inputs }
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// An empty batch with room for `rows` rows.
    pub fn batch(&self, rows: usize) -> Batch {
        let columns = self.inputs.iter().map(|(kind, width)| Column::with_capacity(*kind, rows * width)).collect();
        Batch { n: 0, columns }
    }

    /// Appends one row, listing every missing field at once. A refused row leaves the batch as it was, so a
    /// batch slice can go on with the next row.
    pub fn push_row(&self, obj: &Map<String, Value>, batch: &mut Batch) -> Result<(), String> {
        let pushed = self.push_fields(obj, batch);
        if pushed.is_err() {
            // each column holds `width` values per row already in the batch (row-major), so that is where it ends
            for (column, (_, width)) in batch.columns.iter_mut().zip(&self.inputs) {
                column.truncate(batch.n * width);
            }
        }
        pushed
    }

    fn push_fields(&self, obj: &Map<String, Value>, batch: &mut Batch) -> Result<(), String> {
        if self.fields.iter().any(|f| !obj.contains_key(&f.name)) {
            let missing: Vec<&str> =
                self.fields.iter().filter(|f| !obj.contains_key(&f.name)).map(|f| f.name.as_str()).collect();
            return Err(format!("missing required features: {}", missing.join(", ")));
        }
        // fields of the single float input arrive in column order, so pushing appends in row-major order
        for f in &self.fields {
            let v = &obj[&f.name];
            let column = &mut batch.columns[f.input];
            if f.width == 1 {
                push_value(&f.name, v, f.kind, f.nullable, column)?;
                continue;
            }
            match v {
                Value::Array(items) if items.len() == f.width => {
                    for (i, item) in items.iter().enumerate() {
                        push_value(&format!("{}[{i}]", f.name), item, f.kind, f.nullable, column)?;
                    }
                }
                other => {
                    return Err(format!(
                        "feature {:?} must be an array of {} {}s, got {}",
                        f.name,
                        f.width,
                        match f.kind {
                            InputKind::F32 | InputKind::F64 => "number",
                            InputKind::I64 => "integer",
                            InputKind::Str => "string",
                        },
                        match other {
                            Value::Array(a) => format!("{} values", a.len()),
                            other => kind(other).to_string(),
                        }
                    ))
                }
            }
        }
        batch.n += 1;
        Ok(())
    }

    /// Rows as a batch; errors name the row (`instance i: ...`) when there are several.
    pub fn parse<'a>(&self, rows: impl ExactSizeIterator<Item = &'a Map<String, Value>>) -> Result<Batch, String> {
        let many = rows.len() > 1;
        let mut batch = self.batch(rows.len());
        for (i, row) in rows.enumerate() {
            self.push_row(row, &mut batch).map_err(|e| if many { format!("instance {i}: {e}") } else { e })?;
        }
        Ok(batch)
    }
}

impl Model {
    /// Predicts JSON rows (each the object a client would send), with `features` as `MODEL_FEATURES`.
    ///
    /// This is the whole request path minus the HTTP envelope: the same field resolution, type checks and
    /// batching as `bootstrap`.
    pub fn predict_rows(
        &self,
        rows: &[Map<String, Value>],
        features: Option<&[String]>,
    ) -> Result<Vec<RowAnswer>, Error> {
        let schema = Schema::new(self, features).map_err(Error::Config)?;
        let batch = schema.parse(rows.iter()).map_err(Error::InvalidInput)?;
        let answers = self.run(batch)?;
        Ok((0..answers.len()).map(|i| answers.row(i)).collect())
    }
}
