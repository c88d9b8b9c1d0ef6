//! The function body shared by Lambda and local mode: event in, proxy envelope out, one EMF line per prediction.
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::contract::{self, Request};
use crate::model::Model;

/// Everything a request needs, built once during init.
pub struct App {
    pub model: Model,
    /// `MODEL_FEATURES`, in the model's column order.
    pub features: Vec<String>,
    pub version: String,
    pub namespace: String,
}

impl App {
    /// Handles raw payload bytes (local mode's HTTP body).
    pub fn handle_bytes(&self, bytes: &[u8]) -> Value {
        match contract::parse_json(bytes) {
            Ok(event) => self.handle(event),
            Err(bad) => contract::error_response(400, &bad.0),
        }
    }

    /// Handles a parsed event. Never panics on input: client mistakes are 400s, model failures 500s.
    pub fn handle(&self, event: Value) -> Value {
        let request = match contract::parse_request(event, &self.features) {
            Ok(r) => r,
            Err(bad) => return contract::error_response(400, &bad.0),
        };
        let (rows, batch) = match request {
            Request::Warmup => return contract::warm_response(),
            Request::Single(row) => (row, false),
            Request::Batch { rows, .. } => (rows, true),
        };
        let start = Instant::now();
        let outs = match self.model.predict(&rows) {
            Ok(o) => o,
            Err(e) => {
                // details go to the log only; the caller learns nothing about internals
                eprintln!("error: prediction failed: {e}");
                return contract::error_response(500, "internal error");
            }
        };
        let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        println!("{}", contract::emf_line(&self.namespace, &self.version, latency_ms, &outs, now_ms));
        let task = self.model.task();
        match (batch, outs.first()) {
            (true, _) => contract::batch_response(&outs, task, &self.version),
            (false, Some(out)) => contract::single_response(out, task, &self.version),
            (false, None) => {
                eprintln!("error: the model returned no output for one row");
                contract::error_response(500, "internal error")
            }
        }
    }
}
