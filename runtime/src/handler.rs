//! The function body shared by Lambda and local mode: event in, proxy envelope out.
//!
//! Every answer leaves a count and a line, written to stdout in one write per invocation so concurrent
//! requests never interleave them: a 200 its EMF line and its prediction log (one line per row, sampled by
//! `LOG_PREDICTIONS`), a 400 or a 500 its EMF line (`ClientErrors` or `ModelErrors`) and an error line (never
//! sampled). The function answers failures itself, so Lambda's `Errors` never counts them; these do. A warmup
//! leaves nothing.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::config::{Config, LogPredictions};
use crate::contract::{self, Origin, Outcome, Request};
use crate::error::Error;
use crate::model::{Model, ModelError};
use crate::rows::Schema;
use crate::shadow::{self, Copier, CopyMark, Pending};

/// Everything a request needs, built once during init.
pub struct App {
    model: Model,
    schema: Schema,
    origin: Origin,
    id_field: Option<String>,
    log: LogPredictions,
    ids: RequestIds,
    /// Set when the function's models live in S3: reads the shadow control and sends the copies.
    copier: Option<std::sync::Arc<Copier>>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// One locked write, so concurrent requests never interleave their lines.
pub(crate) fn emit(out: &str) {
    if !out.is_empty() {
        print!("{out}");
    }
}

impl App {
    /// Resolves the request fields (`MODEL_FEATURES` against the graph) and the rest of the settings.
    pub fn new(model: Model, cfg: &Config) -> Result<App, Error> {
        let schema = Schema::new(&model, cfg.features.as_deref()).map_err(Error::Config)?;
        Ok(App {
            model,
            schema,
            origin: Origin {
                namespace: cfg.namespace.clone(),
                model_version: cfg.version.clone(),
                function_name: cfg.function_name.clone(),
                function_version: cfg.function_version.clone(),
                shadow: false,
            },
            id_field: cfg.id_field.clone(),
            log: cfg.log_predictions,
            ids: RequestIds::new(),
            copier: None,
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Turns shadow copying on for this instance (the control object decides what is copied).
    pub fn with_copier(mut self, copier: Copier) -> App {
        self.copier = Some(std::sync::Arc::new(copier));
        self
    }

    pub fn copier(&self) -> Option<&std::sync::Arc<Copier>> {
        self.copier.as_ref()
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Who answers: the model and function versions that stamp every output line.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The request fields, in order.
    pub fn feature_names(&self) -> Vec<&str> {
        self.schema.fields().iter().map(|f| f.name.as_str()).collect()
    }

    /// Handles raw payload bytes (local mode's HTTP body) under a generated request id.
    pub fn handle_bytes(&self, bytes: &[u8]) -> Value {
        self.handle_bytes_copying(bytes).0
    }

    /// [`App::handle_bytes`], and the shadow copy to send after the answer, if this request is copied.
    pub fn handle_bytes_copying(&self, bytes: &[u8]) -> (Value, Option<Pending>) {
        let request_id = self.ids.fresh();
        let (envelope, out, pending) = match contract::parse_json(bytes) {
            Ok(event) => self.answer_copying(event, &request_id),
            Err(bad) => {
                let (envelope, out) = self.failed(&bad, &request_id, None);
                (envelope, out, None)
            }
        };
        emit(&out);
        (envelope, pending)
    }

    /// What follows an answer once it has gone back: its copy, if any (a failure is only counted and logged),
    /// and a re-read of the shadow control when it is over a minute old.
    pub async fn after_answer(&self, pending: Option<&Pending>, raw: &[u8]) {
        let Some(copier) = &self.copier else { return };
        if let Some(pending) = pending {
            if let Err(reason) = copier.send(pending, raw).await {
                emit(&self.shadow_failed(pending, &reason));
            }
        }
        copier.refresh_if_stale().await;
    }

    /// Whether [`App::after_answer`] has anything to do for an answer without a copy.
    pub fn control_stale(&self) -> bool {
        self.copier.as_ref().is_some_and(|c| c.stale())
    }

    /// Handles a parsed event under a generated request id (local mode, tests).
    pub fn handle(&self, event: Value) -> Value {
        self.handle_request(event, &self.ids.fresh())
    }

    /// Handles a parsed event. Never panics on input: client mistakes are 400s, model failures 500s.
    pub fn handle_request(&self, event: Value, request_id: &str) -> Value {
        let (envelope, out) = self.answer(event, request_id);
        emit(&out);
        envelope
    }

    /// Answers a request that failed before it reached [`App::handle_bytes`] (local mode's body limit), with
    /// its count and error line.
    pub fn handle_failure(&self, error: &Error) -> Value {
        let (envelope, out) = self.failed(error, &self.ids.fresh(), None);
        emit(&out);
        envelope
    }

    /// [`App::answer`] for raw bytes: a body that is not JSON is a 400 like any other.
    pub fn answer_bytes(&self, bytes: &[u8], request_id: &str) -> (Value, String) {
        match contract::parse_json(bytes) {
            Ok(event) => self.answer(event, request_id),
            Err(bad) => self.failed(&bad, request_id, None),
        }
    }

    /// The envelope, and everything the invocation writes to stdout (EMF line, then log lines), unprinted.
    pub fn answer(&self, event: Value, request_id: &str) -> (Value, String) {
        let (envelope, out, _) = self.answer_copying(event, request_id);
        (envelope, out)
    }

    /// [`App::answer`], and the shadow copy to send once the answer has gone back, if this request is copied.
    /// A copy's own answer (the event carries a [`CopyMark`]) is logged as the shadow's and copied no further.
    pub fn answer_copying(&self, event: Value, request_id: &str) -> (Value, String, Option<Pending>) {
        let (event, mark) = shadow::unwrap_copy(event);
        let shadow_origin;
        let origin = match &mark {
            Some(_) => {
                shadow_origin = Origin { shadow: true, ..self.origin.clone() };
                &shadow_origin
            }
            None => &self.origin,
        };
        let request = match contract::parse_request(event, &self.schema, self.id_field.as_deref()) {
            Ok(r) => r,
            Err(bad) => {
                let (envelope, out) = self.failed_as(origin, mark.as_ref(), &bad, request_id, None);
                return (envelope, out, None);
            }
        };
        let (batch, batched, ids) = match request {
            // warmups keep instances warm; counting them would dilute every rate
            Request::Warmup => return (contract::warm_response(), String::new(), None),
            Request::Rows { batch, batched, ids } => (batch, batched, ids),
        };
        let pending = match (&mark, &self.copier) {
            (None, Some(copier)) => copier.plan(request_id),
            _ => None,
        };
        let start = Instant::now();
        let result = self.model.run(batch);
        let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        let answers = match result {
            Ok(a) => a,
            Err(e) => {
                let (envelope, out) =
                    self.failed_as(origin, mark.as_ref(), &Error::from(e), request_id, Some(latency_ms));
                return (envelope, out, pending);
            }
        };
        let labels = self.model.labels();
        let envelope = match (batched, answers.len()) {
            (true, _) => contract::batch_response(&answers, labels, &self.origin.model_version),
            (false, 1) => contract::single_response(&answers, labels, &self.origin.model_version),
            (false, n) => {
                let error = Error::from(ModelError::Run(format!("the model returned {n} outputs for one row")));
                let (envelope, out) = self.failed_as(origin, mark.as_ref(), &error, request_id, Some(latency_ms));
                return (envelope, out, pending);
            }
        };
        let outcome = Outcome::Answered { answers: &answers, labels, latency_ms };
        let mut out = contract::emf_line(origin, outcome, now_ms());
        out.push('\n');
        // both sides of a shadowed request are always logged: the report pairs them line by line
        let correlation =
            mark.as_ref().map(|m| m.correlation_id.as_str()).or(pending.as_ref().map(|p| p.correlation_id.as_str()));
        if correlation.is_some() || self.ids.sampled(self.log) {
            let mut lines = Vec::with_capacity(answers.len() * 180);
            contract::write_prediction_lines(
                &mut lines,
                origin,
                request_id,
                &ids,
                None,
                &answers,
                labels,
                latency_ms,
                correlation,
            );
            out.push_str(&String::from_utf8_lossy(&lines));
        }
        (envelope, out, pending)
    }

    /// A copy could not be sent: its count and line, to print after the answer went back.
    pub fn shadow_failed(&self, pending: &Pending, reason: &str) -> String {
        contract::shadow_error_lines(&self.origin, &pending.correlation_id, &pending.target, reason, now_ms())
    }

    /// A failed answer: the envelope (the caller's mistake in full, or `internal error`), its EMF line and its
    /// error line, which alone carries a 500's detail.
    fn failed(&self, error: &Error, request_id: &str, latency_ms: Option<f64>) -> (Value, String) {
        self.failed_as(&self.origin, None, error, request_id, latency_ms)
    }

    /// [`App::failed`] for either side: a shadow copy's failure is counted under its `Traffic` dimension and
    /// logged as a shadow error, never as a live error.
    fn failed_as(
        &self,
        origin: &Origin,
        mark: Option<&CopyMark>,
        error: &Error,
        request_id: &str,
        latency_ms: Option<f64>,
    ) -> (Value, String) {
        let mut out = contract::emf_line(origin, Outcome::Failed { error, latency_ms }, now_ms());
        out.push('\n');
        match mark {
            None => out.push_str(&contract::error_line(origin, request_id, error)),
            Some(m) => {
                let reason = format!("the shadow answered {}: {error}", error.status());
                let target = format!("{}:{}", origin.function_name, origin.function_version);
                // the EMF line above counted it (`ShadowErrors` under its `Traffic` dimension)
                out.push_str(&contract::shadow_error_line(origin, &m.correlation_id, &target, &reason));
            }
        }
        (contract::failure(error), out)
    }
}

/// Local request ids and the log's sampling draws, from one small generator (no rand dependency).
struct RequestIds {
    seed: u64,
    counter: AtomicU64,
}

/// SplitMix64: a good 64-bit mix of a counter, which is all ids and sampling need.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl RequestIds {
    fn new() -> RequestIds {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        RequestIds { seed: mix(nanos ^ (u64::from(std::process::id()) << 32)), counter: AtomicU64::new(0) }
    }

    fn draw(&self) -> u64 {
        mix(self.seed ^ self.counter.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x2545_f491_4f6c_dd1d))
    }

    /// A uuid-shaped id, unique per process (random prefix) and per request (counter).
    fn fresh(&self) -> String {
        let (a, b) = (self.draw(), self.draw());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    fn sampled(&self, log: LogPredictions) -> bool {
        match log {
            LogPredictions::All => true,
            LogPredictions::None => false,
            LogPredictions::Fraction(f) => ((self.draw() >> 11) as f64 / (1u64 << 53) as f64) < f,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::json;

    use super::*;
    use crate::logline::{self, Line};

    const CHURN_FEATURES: &str = "tenure_months,monthly_charges,total_charges,num_products,has_tech_support,\
contract_type_encoded,payment_method_encoded";

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// The real init path minus the fetch: config from variables, the model from disk.
    fn app(model: &Path, vars: &[(&str, &str)]) -> App {
        let path = model.to_string_lossy().into_owned();
        let cfg = Config::from_lookup(|k| match k {
            "MODEL_PATH" => Some(path.clone()),
            "MODEL_VERSION" => Some("v4".into()),
            "AWS_LAMBDA_FUNCTION_NAME" => Some("churn".into()),
            "AWS_LAMBDA_FUNCTION_VERSION" => Some("3".into()),
            _ => vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string()),
        })
        .unwrap();
        App::new(Model::from_path(model).unwrap(), &cfg).unwrap()
    }

    fn churn() -> App {
        app(
            &repo().join("examples/churn/model.onnx"),
            &[("MODEL_FEATURES", CHURN_FEATURES), ("MODEL_ID_FIELD", "customer_id")],
        )
    }

    fn row(tenure: f64) -> Value {
        json!({"tenure_months": tenure, "monthly_charges": 22.39, "total_charges": 65.31, "num_products": 1,
               "has_tech_support": 0, "contract_type_encoded": 1, "payment_method_encoded": 2})
    }

    /// stdout split into the EMF lines and our log lines (each checked to parse with the shared types).
    fn split(out: &str) -> (Vec<Value>, Vec<Line<'_>>) {
        let mut emf = Vec::new();
        let mut lines = Vec::new();
        for l in out.lines() {
            match logline::parse(l) {
                Ok(line) => lines.push(line),
                Err(logline::Skip::Other) => emf.push(serde_json::from_str::<Value>(l).unwrap()),
                Err(logline::Skip::Unreadable) => panic!("unreadable line: {l}"),
            }
        }
        assert!(emf.iter().all(|e| e.get("_aws").is_some()), "{out}");
        (emf, lines)
    }

    fn counts(emf: &Value) -> (u64, u64, u64) {
        let get = |k: &str| emf[k].as_u64().unwrap_or_else(|| panic!("no {k} in {emf}"));
        (get(logline::ROWS), get(logline::CLIENT_ERRORS), get(logline::MODEL_ERRORS))
    }

    fn declared(emf: &Value) -> Vec<&str> {
        emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect()
    }

    #[test]
    fn a_good_request_leaves_its_counts_and_one_prediction_line_per_row() {
        let app = churn();
        let mut first = row(3.0);
        first["customer_id"] = json!("C-1");
        let (envelope, out) = app.answer(json!({"instances": [first, row(70.0)]}), "req-ok");
        assert_eq!(envelope["statusCode"], 200, "{envelope}");
        let (emf, lines) = split(&out);
        assert_eq!(emf.len(), 1, "{out}");
        assert_eq!(counts(&emf[0]), (2, 0, 0));
        assert!(emf[0]["InferenceLatencyMs"].as_f64().is_some() && emf[0].get("ErrorType").is_none(), "{out}");
        assert!(declared(&emf[0]).contains(&"Rows") && declared(&emf[0]).contains(&"InferenceLatencyMs"));
        assert_eq!(lines.len(), 2, "{out}");
        for (i, line) in lines.iter().enumerate() {
            let Line::Prediction(p) = line else { panic!("{out}") };
            assert_eq!((p.request_id.as_ref(), p.function_version.as_ref(), p.row, p.rows), ("req-ok", "3", i, 2));
            assert_eq!(p.model_version.as_deref(), Some("v4"));
            assert_eq!(p.probabilities.as_ref().map(|p| p.len()), Some(2));
        }
        let Line::Prediction(p) = &lines[0] else { panic!() };
        assert_eq!(p.id.as_deref(), Some(&json!("C-1")));
        // the EMF line comes first, then the log
        assert!(
            out.starts_with("{\"") && out.lines().nth(1).is_some_and(|l| l.starts_with("{\"mlambda\":\"prediction\""))
        );
    }

    #[test]
    fn a_bad_request_leaves_a_client_error_count_and_an_error_line() {
        let app = churn();
        let mut missing = row(3.0);
        missing.as_object_mut().unwrap().remove("tenure_months");
        missing["monthly_charges"] = json!("lots");
        let (envelope, out) = app.answer(json!({"instances": [row(1.0), missing]}), "req-bad");
        assert_eq!(envelope["statusCode"], 400, "{envelope}");
        let message = "instance 1: missing required features: tenure_months";
        assert_eq!(envelope["body"], json!({"error": message}).to_string());
        let (emf, lines) = split(&out);
        assert_eq!((emf.len(), lines.len()), (1, 1), "{out}");
        assert_eq!(counts(&emf[0]), (0, 1, 0));
        assert_eq!(emf[0][logline::ERROR_TYPE], "InvalidInput");
        assert_eq!(declared(&emf[0]), ["Rows", "ClientErrors", "ModelErrors"]);
        let Line::Error(e) = &lines[0] else { panic!("{out}") };
        assert_eq!(
            (e.request_id.as_ref(), e.function_version.as_ref(), e.model_version.as_deref()),
            ("req-bad", "3", Some("v4"))
        );
        assert_eq!((e.status, e.error_type.as_ref(), e.reason.as_ref()), (400, "InvalidInput", message));
        assert!(!out.contains("lots") && !out.contains("22.39"), "feature values are never logged:\n{out}");
    }

    #[test]
    fn failures_before_the_request_parses_are_client_errors_too() {
        let app = churn();
        for (bytes, reason) in [
            (&b"{\"tenure_months\": 1,"[..], "request body is not valid JSON"),
            (b"", "empty request body"),
            (b"[1, 2]", "request must be a JSON object"),
        ] {
            let (envelope, out) = app.answer_bytes(bytes, "req-raw");
            assert_eq!(envelope["statusCode"], 400, "{envelope}");
            let (emf, lines) = split(&out);
            assert_eq!(counts(&emf[0]), (0, 1, 0), "{out}");
            let [Line::Error(e)] = lines.as_slice() else { panic!("{out}") };
            assert!(e.reason.starts_with(reason), "{out}");
        }
    }

    #[test]
    fn a_model_failure_leaves_a_model_error_count_and_its_detail_in_the_log_only() {
        // a regressor that sums the batch: INIT's one-row probe passes, two rows get one value back
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken/batch_sum.onnx");
        let app = app(&model, &[("MODEL_FEATURES", "a,b")]);
        let (envelope, out) = app.answer(json!({"a": 1.0, "b": 2.0}), "req-one");
        assert_eq!(envelope["statusCode"], 200, "one row is fine: {envelope}");
        assert_eq!(counts(&split(&out).0[0]), (1, 0, 0));
        let (envelope, out) = app.answer(json!({"instances": [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]}), "req-500");
        assert_eq!(envelope["statusCode"], 500, "{envelope}");
        assert_eq!(envelope["body"], json!({"error": "internal error"}).to_string());
        let (emf, lines) = split(&out);
        assert_eq!((emf.len(), lines.len()), (1, 1), "{out}");
        assert_eq!(counts(&emf[0]), (0, 0, 1));
        assert_eq!(emf[0][logline::ERROR_TYPE], "ModelError");
        assert!(emf[0]["InferenceLatencyMs"].as_f64().is_some(), "the model ran: {out}");
        let Line::Error(e) = &lines[0] else { panic!("{out}") };
        assert_eq!((e.status, e.error_type.as_ref()), (500, "ModelError"));
        assert_eq!(e.reason, "the graph produced 1 values for 2 rows");
    }

    #[test]
    fn a_warmup_leaves_nothing() {
        let (envelope, out) = churn().answer(json!({"_warmup": true}), "req-warm");
        assert_eq!(envelope, contract::warm_response());
        assert_eq!(out, "");
    }

    #[test]
    fn error_lines_are_never_sampled_out() {
        let app = app(
            &repo().join("examples/churn/model.onnx"),
            &[("MODEL_FEATURES", CHURN_FEATURES), ("LOG_PREDICTIONS", "none")],
        );
        let (_, out) = app.answer(row(3.0), "req-1");
        assert_eq!(split(&out).1.len(), 0, "{out}");
        let (_, out) = app.answer(json!({"tenure_months": 1}), "req-2");
        assert!(matches!(split(&out).1.as_slice(), [Line::Error(_)]), "{out}");
    }

    #[test]
    fn request_ids_are_uuid_shaped_and_distinct() {
        let ids = RequestIds::new();
        let (a, b) = (ids.fresh(), ids.fresh());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36, "{a}");
        assert_eq!(a.split('-').map(str::len).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{a}");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{a}");
    }

    #[test]
    fn sampling_follows_the_fraction() {
        let ids = RequestIds::new();
        assert!(ids.sampled(LogPredictions::All) && !ids.sampled(LogPredictions::None));
        assert!(!(0..1000).any(|_| ids.sampled(LogPredictions::Fraction(0.0))));
        assert!((0..1000).all(|_| ids.sampled(LogPredictions::Fraction(1.0))));
        let hits = (0..10_000).filter(|_| ids.sampled(LogPredictions::Fraction(0.25))).count();
        assert!((2000..3000).contains(&hits), "{hits}");
    }

    #[test]
    fn a_shadow_copy_is_answered_as_the_shadow_and_logged_apart_from_live_traffic() {
        let app = app(
            &repo().join("examples/churn/model.onnx"),
            &[("MODEL_FEATURES", CHURN_FEATURES), ("MODEL_ID_FIELD", "customer_id"), ("LOG_PREDICTIONS", "none")],
        );
        let mut request = row(3.0);
        request["customer_id"] = json!("C-7");
        let mark = CopyMark { correlation_id: "primary-req".into(), source_version: "2".into() };
        let (live, _) = app.answer(request.clone(), "r0");
        let (envelope, out, copy) = app.answer_copying(shadow::copy_event(&request, &mark), "shadow-req");
        assert_eq!(envelope, live, "the same answer a caller would get");
        assert!(copy.is_none(), "a copy is never copied again");
        let (emf, lines) = split(&out);
        assert_eq!(emf[0][logline::TRAFFIC], "shadow");
        assert_eq!(
            emf[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][1],
            json!(["FunctionName", "FunctionVersion", "Traffic"])
        );
        // logged although LOG_PREDICTIONS is none: the report pairs it with the primary's line
        let [Line::Prediction(p)] = lines.as_slice() else { panic!("{out}") };
        assert!(p.shadow);
        assert_eq!((p.correlation_id.as_deref(), p.id.as_deref()), (Some("primary-req"), Some(&json!("C-7"))));

        // a copy the shadow cannot answer is a shadow error, never a live error line
        let bad = shadow::copy_event(&json!({"tenure_months": 1}), &mark);
        let (envelope, out, _) = app.answer_copying(bad, "shadow-req-2");
        assert_eq!(envelope["statusCode"], 400);
        let (emf, lines) = split(&out);
        assert_eq!(
            (emf[0][logline::SHADOW_ERRORS].as_u64(), emf[0][logline::CLIENT_ERRORS].as_u64()),
            (Some(1), Some(1))
        );
        let [Line::ShadowError(e)] = lines.as_slice() else { panic!("{out}") };
        assert_eq!(e.correlation_id, "primary-req");
        assert!(e.reason.starts_with("the shadow answered 400: missing required features"), "{}", e.reason);
    }
}
