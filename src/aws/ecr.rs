//! ECR: make sure the repository exists with the configured scanning and tag rules, and get push credentials.
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability};
use base64::Engine;

use super::{fail, Aws};
use crate::error::{Error, Result};

/// A repository as ECR describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Repository {
    pub name: String,
    /// `<account>.dkr.ecr.<region>.amazonaws.com/<name>`.
    pub uri: String,
    pub scan_on_push: bool,
    pub immutable_tags: bool,
}

fn repository(r: &aws_sdk_ecr::types::Repository) -> Repository {
    Repository {
        name: r.repository_name().unwrap_or_default().to_string(),
        uri: r.repository_uri().unwrap_or_default().to_string(),
        scan_on_push: r.image_scanning_configuration().is_some_and(|c| c.scan_on_push()),
        immutable_tags: r.image_tag_mutability().is_some_and(|m| *m == ImageTagMutability::Immutable),
    }
}

/// The repository, or `None` when it does not exist.
pub async fn describe_repository(aws: &Aws, name: &str) -> Result<Option<Repository>> {
    match aws.ecr.describe_repositories().repository_names(name).send().await {
        Ok(out) => Ok(out.repositories().first().map(repository)),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_repository_not_found_exception()) => Ok(None),
        Err(e) => Err(fail(format_args!("describe ECR repository `{name}`"), e).into()),
    }
}

pub async fn create_repository(aws: &Aws, name: &str, scan_on_push: bool, immutable_tags: bool) -> Result<Repository> {
    let mutability = if immutable_tags { ImageTagMutability::Immutable } else { ImageTagMutability::Mutable };
    let out = aws
        .ecr
        .create_repository()
        .repository_name(name)
        .image_scanning_configuration(ImageScanningConfiguration::builder().scan_on_push(scan_on_push).build())
        .image_tag_mutability(mutability)
        .send()
        .await
        .map_err(|e| fail(format_args!("create ECR repository `{name}`"), e))?;
    out.repository()
        .map(repository)
        .ok_or_else(|| Error::cloud(format!("ECR created `{name}` but returned no repository")))
}

/// Docker credentials from `GetAuthorizationToken`.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub username: String,
    pub password: String,
    /// `https://<account>.dkr.ecr.<region>.amazonaws.com`.
    pub proxy_endpoint: String,
}

impl Authorization {
    /// The registry host of the proxy endpoint, without scheme.
    pub fn registry_host(&self) -> String {
        let e = self.proxy_endpoint.trim_end_matches('/');
        e.split_once("://").map(|(_, h)| h).unwrap_or(e).to_string()
    }
}

pub async fn authorization(aws: &Aws) -> Result<Authorization> {
    let out = aws.ecr.get_authorization_token().send().await.map_err(|e| fail("get an ECR authorization token", e))?;
    let data = out.authorization_data().first().ok_or_else(|| Error::cloud("ECR returned no authorization data"))?;
    let token = data.authorization_token().unwrap_or_default();
    decode_token(token, data.proxy_endpoint().unwrap_or_default())
}

/// Decodes ECR's base64 `user:password` token.
pub fn decode_token(token: &str, proxy_endpoint: &str) -> Result<Authorization> {
    let bad = || {
        Error::cloud("ECR returned an authorization token that is not base64 `user:password`")
            .help("check `AWS_ENDPOINT_URL` points at ECR (or a faithful emulator)")
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(token.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (user, password) = text.split_once(':').ok_or_else(bad)?;
    Ok(Authorization { username: user.into(), password: password.into(), proxy_endpoint: proxy_endpoint.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_decodes_to_user_and_password_and_the_host_loses_its_scheme() {
        let a =
            decode_token("QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu", "https://1.dkr.ecr.us-east-1.amazonaws.com/").unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("AWS", "123456789012-auth-token"));
        assert_eq!(a.registry_host(), "1.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(decode_token("!!", "").unwrap_err().exit_code(), 2);
    }
}
