//! The function body shared by Lambda and local mode: event in, proxy envelope out; one EMF line per
//! invocation that ran the model, and the prediction log (one line per row) beside it.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::config::{Config, LogPredictions};
use crate::contract::{self, Origin, Request};
use crate::error::Error;
use crate::model::Model;
use crate::rows::Schema;

/// Everything a request needs, built once during init.
pub struct App {
    model: Model,
    schema: Schema,
    origin: Origin,
    id_field: Option<String>,
    log: LogPredictions,
    ids: RequestIds,
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
            },
            id_field: cfg.id_field.clone(),
            log: cfg.log_predictions,
            ids: RequestIds::new(),
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The request fields, in order.
    pub fn feature_names(&self) -> Vec<&str> {
        self.schema.fields().iter().map(|f| f.name.as_str()).collect()
    }

    /// Handles raw payload bytes (local mode's HTTP body) under a generated request id.
    pub fn handle_bytes(&self, bytes: &[u8]) -> Value {
        match contract::parse_json(bytes) {
            Ok(event) => self.handle(event),
            Err(bad) => contract::failure(&bad),
        }
    }

    /// Handles a parsed event under a generated request id (local mode, tests).
    pub fn handle(&self, event: Value) -> Value {
        self.handle_request(event, &self.ids.fresh())
    }

    /// Handles a parsed event. Never panics on input: client mistakes are 400s, model failures 500s.
    pub fn handle_request(&self, event: Value, request_id: &str) -> Value {
        let request = match contract::parse_request(event, &self.schema, self.id_field.as_deref()) {
            Ok(r) => r,
            Err(bad) => return contract::failure(&bad),
        };
        let (batch, batched, ids) = match request {
            Request::Warmup => return contract::warm_response(),
            Request::Rows { batch, batched, ids } => (batch, batched, ids),
        };
        let start = Instant::now();
        let answers = match self.model.run(batch) {
            Ok(a) => a,
            Err(e) => {
                let err = Error::from(e);
                // details go to the log only; the caller learns nothing about internals
                eprintln!("error: {}: prediction failed: {err}", err.error_type());
                return contract::failure(&err);
            }
        };
        let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        let labels = self.model.labels();
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut out = contract::emf_line(&self.origin, latency_ms, &answers, labels, now_ms);
        out.push('\n');
        if self.ids.sampled(self.log) {
            out.push_str(&contract::log_lines(&self.origin, request_id, &ids, &answers, labels, latency_ms));
        }
        // one locked write for the EMF line and the log lines, so concurrent requests never interleave them
        print!("{out}");
        match (batched, answers.len()) {
            (true, _) => contract::batch_response(&answers, labels, &self.origin.model_version),
            (false, 1) => contract::single_response(&answers, labels, &self.origin.model_version),
            (false, n) => {
                eprintln!("error: ModelError: the model returned {n} outputs for one row");
                contract::error_response(500, "internal error")
            }
        }
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
    use super::*;

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
}
