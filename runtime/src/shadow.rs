//! Shadow traffic: the primary copies a sampled share of its requests to a candidate version after it has
//! answered, and the candidate's answers go only into its log. The CLI (`mlambda shadow`) writes the control
//! object this module reads; both sides share its types.
//!
//! The control object lives beside the models, `s3://$MODEL_BUCKET/.mlambda/shadow/<function>.json`. An instance
//! reads it during INIT (alongside the model) and again at most once a minute, after an answer has gone back,
//! so turning shadowing on or off needs no new version, no alias move and no cold start, and takes effect
//! within a minute on warm instances. A copy is `{"mlambda_shadow": {"correlation_id", "source_version"},
//! "event": <the request>}`, sent with `InvocationType: Event`, signed with the function's own role, which
//! `mlambda shadow` allows to invoke exactly the target (and `--stop` disallows again).
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The key of a copy's mark in its event.
pub const EVENT_KEY: &str = "mlambda_shadow";

/// Where a function's control object lives in its model bucket.
pub fn control_key(function: &str) -> String {
    format!(".mlambda/shadow/{function}.json")
}

/// What `mlambda shadow` asks of the function's instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Control {
    /// The candidate's qualified ARN, which copies invoke.
    pub target: String,
    pub target_version: String,
    /// The versions that copy (the alias's primary when shadowing began); others ignore the control.
    pub sources: Vec<String>,
    /// The share of requests copied, in (0, 1].
    pub sample: f64,
    /// Unix seconds after which nothing is copied, even if `--stop` never ran.
    pub until: u64,
    /// RFC 3339, when shadowing began (for `status`).
    pub since: String,
}

impl Control {
    /// Whether `version` copies at unix time `now`.
    pub fn applies(&self, version: &str, now: u64) -> bool {
        now < self.until && version != self.target_version && self.sources.iter().any(|s| s == version)
    }
}

/// What marks a copy: which request it copies and from which version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyMark {
    pub correlation_id: String,
    pub source_version: String,
}

/// The copy of `event` sent to the shadow.
pub fn copy_event(event: &Value, mark: &CopyMark) -> Value {
    json!({ EVENT_KEY: mark, "event": event })
}

/// A shadow copy's mark and the request it carries, or the event unchanged when it is not a copy.
pub fn unwrap_copy(event: Value) -> (Value, Option<CopyMark>) {
    let Value::Object(mut obj) = event else { return (event, None) };
    let Some(mark) = obj.get(EVENT_KEY).and_then(|m| serde_json::from_value::<CopyMark>(m.clone()).ok()) else {
        return (Value::Object(obj), None);
    };
    (obj.remove("event").unwrap_or(Value::Null), Some(mark))
}

#[cfg(feature = "server")]
pub use copier::{Copier, Pending};

#[cfg(feature = "server")]
mod copier {
    use std::sync::Mutex;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use super::{control_key, Control, CopyMark};
    use crate::source::{http, S3};

    /// How stale the control may get on a warm instance.
    const REFRESH: Duration = Duration::from_secs(60);

    /// A copy decided during a request, sent once its answer has gone back.
    #[derive(Debug, Clone)]
    pub struct Pending {
        pub correlation_id: String,
        pub target: String,
        source_version: String,
    }

    impl Pending {
        /// The copy's event around the request's raw bytes (already JSON: nothing is parsed or re-encoded).
        pub fn body(&self, raw: &[u8]) -> Vec<u8> {
            let mark =
                CopyMark { correlation_id: self.correlation_id.clone(), source_version: self.source_version.clone() };
            let mut out = Vec::with_capacity(raw.len() + 128);
            out.extend_from_slice(b"{\"");
            out.extend_from_slice(super::EVENT_KEY.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(&serde_json::to_vec(&mark).unwrap_or_default());
            out.extend_from_slice(b",\"event\":");
            out.extend_from_slice(raw);
            out.push(b'}');
            out
        }
    }

    /// Reads the control, decides which requests to copy, and sends the copies.
    pub struct Copier {
        function: String,
        version: String,
        bucket: String,
        s3: S3,
        invoke: Invoke,
        state: Mutex<(Option<Control>, Instant)>,
        draws: std::sync::atomic::AtomicU64,
    }

    fn now_s() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    impl Copier {
        /// The copier of a function whose models live in `bucket`, with the control read once; `Err` only
        /// when the environment lacks what signing needs.
        pub async fn load(function: &str, version: &str, bucket: &str) -> Result<Copier, String> {
            let copier = Copier {
                function: function.to_string(),
                version: version.to_string(),
                bucket: bucket.to_string(),
                s3: S3::from_env()?,
                invoke: Invoke::from_env()?,
                state: Mutex::new((None, Instant::now())),
                draws: std::sync::atomic::AtomicU64::new(0),
            };
            copier.refresh().await;
            Ok(copier)
        }

        /// Re-reads the control object; a read that fails keeps the last control (and logs why).
        async fn refresh(&self) {
            let key = control_key(&self.function);
            let read = match self.s3.get(&self.bucket, &key).await {
                Ok(None) => Ok(None),
                Ok(Some(resp)) => serde_json::from_slice::<Control>(&resp.body).map(Some).map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.1 = Instant::now();
            match read {
                Ok(control) => state.0 = control,
                Err(e) => {
                    eprintln!("mlambda shadow: cannot read s3://{}/{key}: {e}; keeping the last setting", self.bucket)
                }
            }
        }

        /// Whether the control is over a minute old.
        pub fn stale(&self) -> bool {
            self.state.lock().map(|s| s.1.elapsed() >= REFRESH).unwrap_or(true)
        }

        /// Refreshes the control if it is over a minute old: called after an answer has gone back.
        pub async fn refresh_if_stale(&self) {
            if self.stale() {
                self.refresh().await;
            }
        }

        /// The copy of this request, if this instance copies and the draw says so.
        pub fn plan(&self, request_id: &str) -> Option<Pending> {
            let control = self.state.lock().ok()?.0.clone()?;
            if !control.applies(&self.version, now_s()) {
                return None;
            }
            let n = self.draws.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if control.sample < 1.0 && unit(request_id, n) >= control.sample {
                return None;
            }
            Some(Pending {
                correlation_id: request_id.to_string(),
                target: control.target,
                source_version: self.version.clone(),
            })
        }

        /// Sends a copy of the request `raw` (`InvocationType: Event`); the error says why it did not get through.
        pub async fn send(&self, pending: &Pending, raw: &[u8]) -> Result<(), String> {
            self.invoke.event(&pending.target, pending.body(raw)).await
        }
    }

    /// A uniform draw in [0, 1) from the request id and a counter (SplitMix64; no rand dependency).
    fn unit(request_id: &str, n: u64) -> f64 {
        let mut z =
            request_id.bytes().fold(n ^ 0x9e37_79b9_7f4a_7c15, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Lambda's Invoke API, signed with the function's own credentials (SigV4, as the SDK would).
    struct Invoke {
        endpoint: String,
        region: String,
        key_id: String,
        secret: String,
        token: Option<String>,
        client: http::HttpClient,
    }

    impl Invoke {
        fn from_env() -> Result<Invoke, String> {
            let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")).ok_or("AWS_REGION is not set")?;
            let (key_id, secret) = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
                (Some(k), Some(s)) => (k, s),
                _ => return Err("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set".into()),
            };
            let endpoint = get("AWS_ENDPOINT_URL_LAMBDA")
                .or_else(|| get("AWS_ENDPOINT_URL"))
                .unwrap_or_else(|| format!("https://lambda.{region}.amazonaws.com"));
            Ok(Invoke {
                endpoint: endpoint.trim_end_matches('/').to_string(),
                region,
                key_id,
                secret,
                token: get("AWS_SESSION_TOKEN"),
                client: http::client()?,
            })
        }

        async fn event(&self, target: &str, body: Vec<u8>) -> Result<(), String> {
            use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
            use aws_sigv4::sign::v4;

            let path: String = target
                .bytes()
                .map(|b| match b {
                    b':' => "%3A".to_string(),
                    b => (b as char).to_string(),
                })
                .collect();
            let url = format!("{}/2015-03-31/functions/{path}/invocations", self.endpoint);
            let headers = [("x-amz-invocation-type", "Event"), ("content-type", "application/json")];
            let identity = aws_credential_types::Credentials::new(
                &self.key_id,
                &self.secret,
                self.token.clone(),
                None,
                "lambda-environment",
            )
            .into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region(&self.region)
                .name("lambda")
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .map_err(|e| format!("cannot sign the copy: {e}"))?
                .into();
            let signable = SignableRequest::new("POST", &url, headers.iter().copied(), SignableBody::Bytes(&body))
                .map_err(|e| format!("cannot sign the copy: {e}"))?;
            let (instructions, _) =
                sign(signable, &params).map_err(|e| format!("cannot sign the copy: {e}"))?.into_parts();
            let mut request = ::http::Request::builder().method("POST").uri(&url);
            for (k, v) in headers {
                request = request.header(k, v);
            }
            let mut request = request.body(()).map_err(|e| format!("cannot build the copy's request: {e}"))?;
            instructions.apply_to_request_http1x(&mut request);
            let (status, answer) = http::post(&self.client, request, body).await?;
            match status {
                202 | 200 => Ok(()),
                429 => Err(format!("throttled (429): {}", http::summary(&answer))),
                s => Err(format!("Invoke answered {s}: {}", http::summary(&answer))),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_copy_wraps_the_raw_request_as_unwrap_copy_reads_it() {
            let p = Pending { correlation_id: "r-1".into(), target: "arn".into(), source_version: "3".into() };
            let raw = br#"{"tenure_months": 3, "x": [1, 2]}"#;
            let event: serde_json::Value = serde_json::from_slice(&p.body(raw)).unwrap();
            let (inner, mark) = super::super::unwrap_copy(event);
            assert_eq!(inner, serde_json::json!({"tenure_months": 3, "x": [1, 2]}));
            assert_eq!(mark, Some(CopyMark { correlation_id: "r-1".into(), source_version: "3".into() }));
        }

        #[test]
        fn draws_are_uniform_enough_for_sampling() {
            let hits = (0..10_000).filter(|n| unit("req", *n) < 0.2).count();
            assert!((1_800..2_200).contains(&hits), "{hits}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_wrap_and_unwrap_the_request_and_only_sources_copy_until_the_deadline() {
        let mark = CopyMark { correlation_id: "req-1".into(), source_version: "3".into() };
        let event = json!({"tenure_months": 3});
        let (inner, got) = unwrap_copy(copy_event(&event, &mark));
        assert_eq!((inner, got), (event.clone(), Some(mark)));
        assert_eq!(unwrap_copy(event.clone()), (event, None));
        let c = Control {
            target: "arn:aws:lambda:us-east-1:1:function:churn:4".into(),
            target_version: "4".into(),
            sources: vec!["3".into()],
            sample: 0.2,
            until: 100,
            since: "2026-12-07T00:00:00Z".into(),
        };
        assert!(c.applies("3", 99));
        assert!(!c.applies("3", 100), "past the deadline");
        assert!(!c.applies("4", 50), "the target never copies to itself");
        assert!(!c.applies("5", 50), "a version that was not the primary");
        assert_eq!(control_key("churn"), ".mlambda/shadow/churn.json");
    }
}
