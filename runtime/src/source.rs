//! Where the model comes from (a file or S3), checked against its sha256 before anyone trusts it.
use std::net::IpAddr;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::config::{Config, ModelSource};

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

/// True when the environment points the SDK at a custom endpoint (moto, LocalStack, a VPC endpoint).
fn custom_endpoint() -> bool {
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"].iter().any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
}

async fn fetch_s3(bucket: &str, key: &str) -> Result<Fetched, String> {
    let shared = aws_config::load_from_env().await;
    let mut conf = aws_sdk_s3::config::Builder::from(&shared).http_client(http_client()?);
    if shared.endpoint_url().is_some() || custom_endpoint() {
        // bucket-in-hostname addressing needs wildcard DNS that local endpoints don't have
        conf = conf.force_path_style(true);
    }
    let client = aws_sdk_s3::Client::from_conf(conf.build());
    let origin = format!("s3://{bucket}/{key}");
    let resp = client.get_object().bucket(bucket).key(key).send().await.map_err(|e| {
        format!(
            "cannot fetch the model from {origin}: {}; check MODEL_BUCKET/MODEL_KEY and that the function's role \
             may s3:GetObject it",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        )
    })?;
    let declared_sha256 = resp.metadata().and_then(|m| m.get("sha256")).cloned();
    let body =
        resp.body.collect().await.map_err(|e| format!("cannot read the model body from {origin}: {e}"))?.into_bytes();
    Ok(Fetched { bytes: body.to_vec(), declared_sha256, origin })
}

/// An HTTPS client that needs nothing from the image: bundled CA roots (no CA file in `FROM scratch`)
/// and a resolver that answers IP literals and `localhost` itself before asking the system.
fn http_client() -> Result<aws_sdk_s3::config::SharedHttpClient, String> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    let mut roots = TrustStore::empty().with_native_roots(false);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        roots.add_pem_certificate(pem(cert.as_ref()));
    }
    let tls =
        TlsContext::builder().with_trust_store(roots).build().map_err(|e| format!("cannot set up TLS for S3: {e}"))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
        .build_with_resolver(Resolver))
}

/// DER to PEM, which is what the trust store takes.
fn pem(der: &[u8]) -> Vec<u8> {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut body = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                body.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                body.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}

/// IP literals and `localhost` resolve without the system resolver (a static glibc's `getaddrinfo` wants
/// NSS modules a scratch image lacks); other names go to the system resolver.
#[derive(Debug, Clone)]
struct Resolver;

impl aws_smithy_runtime_api::client::dns::ResolveDns for Resolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> aws_smithy_runtime_api::client::dns::DnsFuture<'a> {
        use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDnsError};
        let literal = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return DnsFuture::ready(Ok(vec![ip]));
        }
        if name.eq_ignore_ascii_case("localhost") {
            return DnsFuture::ready(Ok(vec![IpAddr::from([127, 0, 0, 1])]));
        }
        let name = name.to_string();
        DnsFuture::new(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0)).await.map_err(ResolveDnsError::new)?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_encoding_matches_base64() {
        let p = String::from_utf8(pem(b"hello world")).unwrap();
        assert_eq!(p, "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n");
        assert!(String::from_utf8(pem(b"ab")).unwrap().contains("YWI=\n"));
        assert!(String::from_utf8(pem(b"abc")).unwrap().contains("YWJj\n"));
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
