//! Where the model comes from (a file or S3), checked against its sha256 before anyone trusts it.
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::config::{Config, ModelSource};
use crate::env;

/// Model bytes plus the sha256 the S3 object declared in its user metadata, if any.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub declared_sha256: Option<String>,
    /// Where the bytes came from, for messages.
    pub origin: String,
}

pub async fn fetch(cfg: &Config) -> Result<Fetched, String> {
    match &cfg.source {
        ModelSource::Path(path) => read_file(path),
        ModelSource::S3 { bucket, key } => fetch_s3(bucket, key).await,
    }
}

fn read_file(path: &Path) -> Result<Fetched, String> {
    // init is single-threaded and nothing else runs yet, so a blocking read is fine
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read MODEL_PATH {}: {e}; mount or copy the model there", path.display()))?;
    Ok(Fetched { bytes, declared_sha256: None, origin: path.display().to_string() })
}

/// The hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Refuses bytes that match neither `MODEL_SHA256` nor the object's `sha256` metadata (each checked if set).
pub fn verify(fetched: &Fetched, expected_env: Option<&str>) -> Result<(), String> {
    let actual = sha256_hex(&fetched.bytes);
    let declared = fetched.declared_sha256.as_deref().map(str::trim).map(str::to_ascii_lowercase);
    for (what, want) in
        [("MODEL_SHA256", expected_env.map(str::to_string)), ("the S3 object's sha256 metadata", declared)]
    {
        if let Some(want) = want {
            if want != actual {
                return Err(format!(
                    "model {} has sha256 {actual} but {what} says {want}: refusing to serve it; re-upload the model \
                     or fix the expected hash",
                    fetched.origin
                ));
            }
        }
    }
    Ok(())
}

/// Everything a GetObject needs, read from the environment Lambda gives a function.
///
/// Credentials come from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, which is how Lambda
/// hands a function its role; profiles and IMDS are not consulted (they don't exist inside Lambda, and the
/// full SDK added 8 MB to the binary). The endpoint is `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`, then
/// S3's regional endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    pub endpoint: String,
    pub region: String,
    pub path_style: bool,
    key_id: String,
    secret: String,
    token: Option<String>,
}

impl S3Target {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<S3Target, String> {
        let get = crate::config::non_empty(get);
        let region = get(env::AWS_REGION).or_else(|| get(env::AWS_DEFAULT_REGION)).ok_or(
            "MODEL_BUCKET is set but AWS_REGION is not: Lambda sets it; locally pass AWS_REGION=<the bucket's region>",
        )?;
        let (key_id, secret) = match (get(env::AWS_ACCESS_KEY_ID), get(env::AWS_SECRET_ACCESS_KEY)) {
            (Some(k), Some(s)) => (k, s),
            _ => {
                return Err("MODEL_BUCKET is set but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not: Lambda sets \
                            them from the function's role; locally pass them (and AWS_SESSION_TOKEN if any) to \
                            the container"
                    .into())
            }
        };
        let custom = get(env::AWS_ENDPOINT_URL_S3).or_else(|| get(env::AWS_ENDPOINT_URL));
        let path_style = custom.is_some();
        let endpoint = custom.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        Ok(S3Target { endpoint, region, path_style, key_id, secret, token: get(env::AWS_SESSION_TOKEN) })
    }

    /// A presigned GetObject URL, valid for a few minutes.
    #[cfg(test)]
    fn get_url(&self, bucket: &str, key: &str) -> Result<url::Url, String> {
        self.presign(bucket, key, false)
    }

    /// A presigned GetObject or PutObject URL, valid for a few minutes.
    fn presign(&self, bucket: &str, key: &str, put: bool) -> Result<url::Url, String> {
        use rusty_s3::{actions::S3Action, Bucket, Credentials, UrlStyle};
        let endpoint: url::Url = self
            .endpoint
            .parse()
            .map_err(|e| format!("S3 endpoint {:?} is not a URL ({e}): fix AWS_ENDPOINT_URL", self.endpoint))?;
        // dotted bucket names break virtual-host TLS, and local endpoints have no wildcard DNS
        let style = if self.path_style || bucket.contains('.') { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket = Bucket::new(endpoint, style, bucket.to_string(), self.region.clone())
            .map_err(|e| format!("cannot address bucket {bucket:?} at {}: {e}", self.endpoint))?;
        let creds = match &self.token {
            Some(t) => Credentials::new_with_token(&self.key_id, &self.secret, t),
            None => Credentials::new(&self.key_id, &self.secret),
        };
        let ttl = std::time::Duration::from_secs(300);
        Ok(match put {
            true => bucket.put_object(Some(&creds), key).sign(ttl),
            false => bucket.get_object(Some(&creds), key).sign(ttl),
        })
    }
}

/// Attempts for one GetObject: S3 asks clients to retry 5xx and connection failures.
const ATTEMPTS: u32 = 3;

async fn fetch_s3(bucket: &str, key: &str) -> Result<Fetched, String> {
    let origin = format!("s3://{bucket}/{key}");
    let s3 = S3::from_env()?;
    let hint = "check MODEL_BUCKET/MODEL_KEY and that the function's role may s3:GetObject it";
    match s3.get(bucket, key).await {
        Ok(Some(resp)) => Ok(Fetched { declared_sha256: resp.header("x-amz-meta-sha256"), bytes: resp.body, origin }),
        Ok(None) => Err(format!("cannot fetch the model from {origin}: S3 answered 404 NoSuchKey; {hint}")),
        Err(e) => Err(format!("cannot fetch the model from {origin}: {e}; {hint}")),
    }
}

/// GetObject and PutObject through presigned URLs, each retried as S3 asks (5xx and connection failures).
pub struct S3 {
    target: S3Target,
    client: http::HttpClient,
}

impl S3 {
    pub fn from_env() -> Result<S3, String> {
        Ok(S3 { target: S3Target::from_lookup(|k| std::env::var(k).ok())?, client: http::client()? })
    }

    /// Runs `attempt` up to [`ATTEMPTS`] times; `Ok(Err(status))` with a status under 500 is final.
    async fn retried<T, F, Fut>(&self, mut attempt: F) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Result<T, (u16, String)>, String>>,
    {
        let mut last = String::new();
        for n in 0..ATTEMPTS {
            if n > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(200 << n)).await;
            }
            // each attempt signs its own URL: the signature carries a timestamp
            match attempt().await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err((status, detail))) => {
                    last = format!("S3 answered {status} {detail}");
                    if status < 500 {
                        break;
                    }
                }
                Err(e) => last = format!("cannot reach S3 at {}: {e}", self.target.endpoint),
            }
        }
        Err(last)
    }

    /// A whole (small) object, or `None` on 404.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<http::Response>, String> {
        let got = self
            .retried(|| async {
                let url = self.target.presign(bucket, key, false)?;
                let resp = http::get(&self.client, url.as_str()).await?;
                Ok(match resp.status {
                    200 => Ok(Some(resp)),
                    404 => Ok(None),
                    status => Err((status, http::s3_error(&resp.body))),
                })
            })
            .await?;
        Ok(got)
    }

    /// Streams an object into `path`; `None` on 404. Memory stays flat whatever the object's size.
    pub async fn download(&self, bucket: &str, key: &str, path: &Path) -> Result<Option<u64>, String> {
        self.retried(|| async {
            let url = self.target.presign(bucket, key, false)?;
            Ok(match http::get_to_file(&self.client, url.as_str(), path).await? {
                (200, n) => Ok(Some(n)),
                (404, _) => Ok(None),
                (status, _) => Err((status, String::new())),
            })
        })
        .await
    }

    /// Streams `path` up as one object.
    pub async fn upload(&self, bucket: &str, key: &str, path: &Path, content_type: &str) -> Result<(), String> {
        self.retried(|| async {
            let url = self.target.presign(bucket, key, true)?;
            let (status, body) = http::put_file(&self.client, url.as_str(), path, content_type).await?;
            Ok(if status == 200 { Ok(()) } else { Err((status, http::s3_error(&body))) })
        })
        .await
    }

    /// Puts a few bytes as one object.
    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), String> {
        let bytes = hyper::body::Bytes::from(bytes);
        self.retried(|| {
            let bytes = bytes.clone();
            async move {
                let url = self.target.presign(bucket, key, true)?;
                let (status, body) = http::put_bytes(&self.client, url.as_str(), bytes, content_type).await?;
                Ok(if status == 200 { Ok(()) } else { Err((status, http::s3_error(&body))) })
            }
        })
        .await
    }
}

/// The one HTTPS client the runtime needs, built to ask nothing of a `FROM scratch` image: bundled CA roots,
/// rustls on ring, and a pure-Rust DNS resolver (a static glibc's `getaddrinfo` wants NSS modules that
/// scratch lacks).
pub mod http {
    use std::future::Future;
    use std::net::{IpAddr, SocketAddr};
    use std::path::Path;
    use std::pin::Pin;
    use std::sync::{Arc, OnceLock};
    use std::task::{Context, Poll};
    use std::time::Duration;

    use http_body_util::combinators::BoxBody;
    use http_body_util::{BodyExt, Empty, Full};
    use hyper::body::{Body, Bytes, Frame, SizeHint};
    use hyper_util::client::legacy::{connect::dns::Name, connect::HttpConnector, Client};
    use hyper_util::rt::TokioExecutor;
    use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

    type Https = hyper_rustls::HttpsConnector<HttpConnector<Resolver>>;
    type RequestBody = BoxBody<Bytes, std::io::Error>;
    pub type HttpClient = Client<Https, RequestBody>;

    /// Whole requests and responses are bounded by this, so a stalled peer never hangs an invocation.
    const TIMEOUT: Duration = Duration::from_secs(120);

    pub struct Response {
        pub status: u16,
        headers: hyper::HeaderMap,
        pub body: Vec<u8>,
    }

    impl Response {
        pub fn header(&self, name: &str) -> Option<String> {
            self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
        }
    }

    pub fn client() -> Result<HttpClient, String> {
        let mut http = HttpConnector::new_with_resolver(Resolver::default());
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        // explicit provider: a workspace build may enable both of rustls' backends
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("cannot set up TLS for S3: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Client::builder(TokioExecutor::new()).build(https))
    }

    fn empty() -> RequestBody {
        Empty::new().map_err(|never| match never {}).boxed()
    }

    async fn send(client: &HttpClient, req: hyper::Request<RequestBody>) -> Result<Response, String> {
        let work = async {
            let resp = client.request(req).await.map_err(|e| error_chain(&e))?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| format!("reading the body: {e}"))?.to_bytes().to_vec();
            Ok(Response { status: parts.status.as_u16(), headers: parts.headers, body })
        };
        tokio::time::timeout(TIMEOUT, work).await.map_err(|_| "timed out after 120 s".to_string())?
    }

    fn request(method: hyper::Method, url: &str) -> Result<hyper::http::request::Builder, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("bad S3 URL: {e}"))?;
        Ok(hyper::Request::builder().method(method).uri(uri))
    }

    pub async fn get(client: &HttpClient, url: &str) -> Result<Response, String> {
        let req = request(hyper::Method::GET, url)?.body(empty()).map_err(|e| e.to_string())?;
        send(client, req).await
    }

    /// GETs into `path` frame by frame: (status, bytes written). Non-200 bodies are not written.
    pub async fn get_to_file(client: &HttpClient, url: &str, path: &Path) -> Result<(u16, u64), String> {
        let req = request(hyper::Method::GET, url)?.body(empty()).map_err(|e| e.to_string())?;
        let work = async {
            let resp = client.request(req).await.map_err(|e| error_chain(&e))?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Ok((status, 0));
            }
            let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
            let mut file = tokio::fs::File::create(path).await.map_err(io)?;
            let mut body = resp.into_body();
            let mut n = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| format!("reading the body: {e}"))?;
                if let Ok(data) = frame.into_data() {
                    n += data.len() as u64;
                    file.write_all(&data).await.map_err(io)?;
                }
            }
            file.flush().await.map_err(io)?;
            Ok((status, n))
        };
        tokio::time::timeout(TIMEOUT, work).await.map_err(|_| "timed out after 120 s".to_string())?
    }

    /// PUTs a file, streamed from disk with its length declared (presigned PUTs take no chunked bodies).
    pub async fn put_file(
        client: &HttpClient,
        url: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(u16, Vec<u8>), String> {
        let io = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let len = file.metadata().await.map_err(io)?.len();
        let body = FileBody { file, left: len, buf: vec![0; 64 * 1024] }.boxed();
        let req = request(hyper::Method::PUT, url)?
            .header(hyper::header::CONTENT_LENGTH, len)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(body)
            .map_err(|e| e.to_string())?;
        send(client, req).await.map(|r| (r.status, r.body))
    }

    pub async fn put_bytes(
        client: &HttpClient,
        url: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(u16, Vec<u8>), String> {
        let len = bytes.len();
        let req = request(hyper::Method::PUT, url)?
            .header(hyper::header::CONTENT_LENGTH, len)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(bytes).map_err(|never| match never {}).boxed())
            .map_err(|e| e.to_string())?;
        send(client, req).await.map(|r| (r.status, r.body))
    }

    /// POSTs `body` with the (signed) head of `head`: (status, answer).
    pub async fn post(client: &HttpClient, head: hyper::Request<()>, body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
        let (parts, ()) = head.into_parts();
        let len = body.len();
        let mut req =
            hyper::Request::from_parts(parts, Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
        req.headers_mut().insert(hyper::header::CONTENT_LENGTH, len.into());
        send(client, req).await.map(|r| (r.status, r.body))
    }

    /// An error answer's text, shortened for a log line.
    pub fn summary(body: &[u8]) -> String {
        String::from_utf8_lossy(body).chars().take(300).collect()
    }

    /// A file as a request body, read in 64 KiB frames.
    struct FileBody {
        file: tokio::fs::File,
        left: u64,
        buf: Vec<u8>,
    }

    impl Body for FileBody {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            let this = self.get_mut();
            if this.left == 0 {
                return Poll::Ready(None);
            }
            let mut read = ReadBuf::new(&mut this.buf);
            match Pin::new(&mut this.file).poll_read(cx, &mut read) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file shrank while it was being uploaded",
                )))),
                Poll::Ready(Ok(())) => {
                    let data = Bytes::copy_from_slice(read.filled());
                    this.left = this.left.saturating_sub(data.len() as u64);
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
            }
        }

        fn is_end_stream(&self) -> bool {
            self.left == 0
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.left)
        }
    }

    fn error_chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut cur = e.source();
        while let Some(inner) = cur {
            out.push_str(": ");
            out.push_str(&inner.to_string());
            cur = inner.source();
        }
        out
    }

    /// `Code: Message` from an S3 XML error body, or nothing.
    pub fn s3_error(body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let tag = |t: &str| {
            let start = text.find(&format!("<{t}>"))? + t.len() + 2;
            let end = text[start..].find(&format!("</{t}>"))? + start;
            Some(text[start..end].to_string())
        };
        match (tag("Code"), tag("Message")) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            _ => String::new(),
        }
    }

    /// IP literals and `localhost` answer at once; other names go to hickory, configured from
    /// `/etc/resolv.conf` and `/etc/hosts` on first use.
    #[derive(Clone, Default)]
    pub struct Resolver(Arc<OnceLock<Result<hickory_resolver::TokioResolver, String>>>);

    impl Resolver {
        fn hickory(&self) -> Result<&hickory_resolver::TokioResolver, String> {
            self.0
                .get_or_init(|| {
                    hickory_resolver::TokioResolver::builder_tokio()
                        .and_then(|b| b.build())
                        .map_err(|e| format!("cannot read the DNS configuration from /etc/resolv.conf: {e}"))
                })
                .as_ref()
                .map_err(Clone::clone)
        }
    }

    impl tower_service::Service<Name> for Resolver {
        type Response = std::vec::IntoIter<SocketAddr>;
        type Error = Box<dyn std::error::Error + Send + Sync>;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, name: Name) -> Self::Future {
            let host = name.as_str().trim_start_matches('[').trim_end_matches(']').to_string();
            let this = self.clone();
            Box::pin(async move {
                if let Ok(ip) = host.parse::<IpAddr>() {
                    return Ok(vec![SocketAddr::new(ip, 0)].into_iter());
                }
                if host.eq_ignore_ascii_case("localhost") {
                    return Ok(vec![SocketAddr::from(([127, 0, 0, 1], 0))].into_iter());
                }
                let ips =
                    this.hickory()?.lookup_ip(host.as_str()).await.map_err(|e| format!("resolving {host}: {e}"))?;
                Ok(ips.iter().map(|ip| SocketAddr::new(ip, 0)).collect::<Vec<_>>().into_iter())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(vars: &[(&str, &str)]) -> Result<S3Target, String> {
        let m: std::collections::HashMap<&str, &str> = vars.iter().copied().collect();
        S3Target::from_lookup(|k| m.get(k).map(|v| v.to_string()))
    }

    const CREDS: [(&str, &str); 3] =
        [("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "secret"), ("AWS_REGION", "eu-west-1")];

    #[test]
    fn lambda_environment_gives_the_regional_endpoint_and_virtual_hosts() {
        let t = target(&[&CREDS[..], &[("AWS_SESSION_TOKEN", "tok")]].concat()).unwrap();
        assert_eq!(
            (t.endpoint.as_str(), t.region.as_str(), t.path_style),
            ("https://s3.eu-west-1.amazonaws.com", "eu-west-1", false)
        );
        let url = t.get_url("models", "churn/v1/model.onnx").unwrap();
        assert_eq!(url.host_str(), Some("models.s3.eu-west-1.amazonaws.com"));
        assert_eq!(url.path(), "/churn/v1/model.onnx");
        let query: String = url.query().unwrap_or_default().to_string();
        assert!(query.contains("X-Amz-Signature=") && query.contains("X-Amz-Security-Token=tok"), "{query}");
        assert!(query.contains("AKID%2F") && query.contains("eu-west-1%2Fs3%2Faws4_request"), "{query}");
        // a dotted bucket would not match the wildcard certificate
        assert_eq!(t.get_url("my.models", "m.onnx").unwrap().path(), "/my.models/m.onnx");
    }

    #[test]
    fn custom_endpoints_use_path_style_and_s3_specific_wins() {
        let t = target(&[&CREDS[..], &[("AWS_ENDPOINT_URL", "http://127.0.0.1:1")]].concat()).unwrap();
        assert!(t.path_style);
        assert_eq!(t.get_url("b", "k").unwrap().as_str().split('?').next(), Some("http://127.0.0.1:1/b/k"));
        let t = target(
            &[&CREDS[..], &[("AWS_ENDPOINT_URL", "http://a:1"), ("AWS_ENDPOINT_URL_S3", "http://s3.local:2")]].concat(),
        )
        .unwrap();
        assert_eq!(t.endpoint, "http://s3.local:2");
    }

    #[test]
    fn missing_region_or_credentials_say_what_to_set() {
        assert!(target(&CREDS[..2]).unwrap_err().contains("AWS_REGION"));
        let only_default_region = target(&[&CREDS[..2], &[("AWS_DEFAULT_REGION", "us-east-2")]].concat());
        assert_eq!(only_default_region.unwrap().region, "us-east-2");
        assert!(target(&CREDS[1..]).unwrap_err().contains("AWS_ACCESS_KEY_ID"));
        let bad = target(&[&CREDS[..], &[("AWS_ENDPOINT_URL", "not a url")]].concat()).unwrap();
        assert!(bad.get_url("b", "k").unwrap_err().contains("AWS_ENDPOINT_URL"));
    }

    #[test]
    fn s3_error_bodies_are_summarised() {
        let body =
            b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key does not exist.</Message></Error>";
        assert_eq!(http::s3_error(body), "NoSuchKey: The key does not exist.");
        assert_eq!(http::s3_error(b"oops"), "");
    }

    #[test]
    fn sha_mismatch_is_refused_naming_both_hashes() {
        let f = Fetched { bytes: b"model".to_vec(), declared_sha256: None, origin: "m.onnx".into() };
        let good = sha256_hex(b"model");
        assert!(verify(&f, Some(&good)).is_ok());
        assert!(verify(&f, None).is_ok());
        let err = verify(&f, Some(&"0".repeat(64))).unwrap_err();
        assert!(err.contains(&good) && err.contains("MODEL_SHA256"), "{err}");
        let meta = Fetched { declared_sha256: Some("ab".into()), ..f };
        assert!(verify(&meta, None).unwrap_err().contains("metadata"));
    }
}
