//! The Docker engine through bollard: connect (negotiating the API version), build with the legacy builder,
//! tag, push with per-layer events, and ask the registry for a pushed image's digest.
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, PushImageOptionsBuilder, TagImageOptionsBuilder,
};
pub use bollard::Docker;
use futures_util::StreamExt;

use crate::error::{Error, Result};

/// Registry credentials as the engine takes them.
pub type Credentials = DockerCredentials;

/// The Docker host bollard uses, for error messages.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .unwrap_or_else(|_| "unix:///var/run/docker.sock (the default; DOCKER_HOST is unset)".into())
}

/// Connects through `DOCKER_HOST` and negotiates the API version down to what the daemon speaks
/// (Debian's dockerd 20.10 stops at 1.41, older than bollard's default).
pub async fn connect() -> Result<Docker> {
    let unreachable = |e: bollard::errors::Error| {
        Error::local(format!("cannot reach the Docker engine at DOCKER_HOST=`{}`: {e}", docker_host()))
            .help("start dockerd, or point `DOCKER_HOST` at a running engine (e.g. `unix:///var/run/docker.sock`)")
    };
    let docker = Docker::connect_with_defaults().map_err(unreachable)?.with_timeout(Duration::from_secs(15));
    let docker = docker.negotiate_version().await.map_err(unreachable)?;
    // Builds and pushes stream for as long as they take; the short timeout above was only for the handshake.
    Ok(docker.with_timeout(Duration::from_secs(3600)))
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    pub image_id: String,
    /// The builder's `Step N/M : …` lines and their output, in order.
    pub steps: Vec<String>,
}

/// A failed build: the daemon's message verbatim and every line the build printed before it.
#[derive(Debug, Clone)]
pub struct BuildFailure {
    pub message: String,
    pub lines: Vec<String>,
}

impl BuildFailure {
    /// The `Step N/M : …` line the build stopped in, if any.
    pub fn failed_step(&self) -> Option<&str> {
        self.lines.iter().rev().find(|l| l.starts_with("Step ")).map(String::as_str)
    }

    /// Whether the failure is about fetching the base image rather than a later step.
    pub fn is_base_pull(&self) -> bool {
        let in_from = self.failed_step().is_some_and(|s| s.split(" : ").nth(1).is_some_and(|i| i.starts_with("FROM")));
        let m = self.message.to_lowercase();
        in_from
            || m.contains("pull access denied")
            || (m.contains("manifest") && m.contains("not found"))
            || m.contains("manifest unknown")
    }
}

/// Builds a single-platform image from a tar context with the legacy builder (BuildKit is not assumed),
/// calling `on_line` for every line of output.
pub async fn build(
    docker: &Docker,
    context: Vec<u8>,
    reference: &str,
    platform: &str,
    mut on_line: impl FnMut(&str),
) -> std::result::Result<Built, BuildFailure> {
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(reference)
        .platform(platform)
        .rm(true)
        .forcerm(true)
        .version(BuilderVersion::BuilderV1)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut lines: Vec<String> = Vec::new();
    let mut image_id = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(id) = info.aux.and_then(|a| a.id) {
                    image_id = Some(id);
                }
                for text in [info.stream, info.status].into_iter().flatten() {
                    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                        on_line(line);
                        lines.push(line.to_string());
                    }
                }
            }
            Err(e) => return Err(BuildFailure { message: stream_message(e), lines }),
        }
    }
    // The legacy builder's last line is `Successfully built <short id>` when no aux id came through.
    let image_id = image_id.or_else(|| {
        lines.iter().rev().find_map(|l| l.strip_prefix("Successfully built ").map(|id| id.trim().to_string()))
    });
    match image_id {
        Some(image_id) => Ok(Built { image_id, steps: lines }),
        None => Err(BuildFailure { message: "the build ended without reporting an image id".into(), lines }),
    }
}

/// The daemon's own words for a failure: the stream's error verbatim, else bollard's description.
pub fn stream_message(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerStreamError { error } => error,
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

/// The image's id, os and architecture as the engine stores it.
pub async fn inspect(docker: &Docker, image: &str) -> Result<(String, String, String)> {
    let i = docker.inspect_image(image).await.map_err(|e| {
        Error::local(format!("cannot inspect image `{image}`: {}", stream_message(e)))
            .help("run `mlambda build` again; the image may have been removed from the engine")
    })?;
    Ok((i.id.unwrap_or_default(), i.os.unwrap_or_default(), i.architecture.unwrap_or_default()))
}

/// Tags `image` as `repository:tag`.
pub async fn tag(docker: &Docker, image: &str, repository: &str, tag: &str) -> Result<()> {
    let options = TagImageOptionsBuilder::default().repo(repository).tag(tag).build();
    docker.tag_image(image, Some(options)).await.map_err(|e| {
        Error::local(format!("cannot tag `{image}` as `{repository}:{tag}`: {}", stream_message(e)))
            .help("run `mlambda build` again; the image may have been removed from the engine")
    })
}

/// Registry credentials for one push.
pub fn credentials(username: &str, password: &str, registry: &str) -> DockerCredentials {
    DockerCredentials {
        username: Some(username.to_string()),
        password: Some(password.to_string()),
        serveraddress: Some(registry.to_string()),
        ..Default::default()
    }
}

/// One line of the push stream, reduced to what progress and counting need.
#[derive(Debug, Clone, PartialEq)]
pub enum PushEvent {
    /// Bytes sent for a layer; bollard's typed stream drops layer ids, so a layer is known by its size.
    Progress {
        current: u64,
        total: u64,
    },
    Pushed,
    AlreadyExists,
    /// The registry linked the blob from another repository: nothing uploaded.
    Mounted,
    /// The daemon will retry a failed upload.
    Retrying(String),
    /// `<tag>: digest: sha256:… size: N`.
    Digest(String),
    Other(String),
}

/// Classifies a push status line.
pub fn parse_push_status(status: &str, current: Option<i64>, total: Option<i64>) -> PushEvent {
    match status {
        "Pushed" => PushEvent::Pushed,
        "Layer already exists" => PushEvent::AlreadyExists,
        "Pushing" => {
            PushEvent::Progress { current: current.unwrap_or(0).max(0) as u64, total: total.unwrap_or(0).max(0) as u64 }
        }
        s if s.starts_with("Mounted from ") => PushEvent::Mounted,
        s if s.starts_with("Retrying in") => PushEvent::Retrying(s.to_string()),
        s => match s.split_once(": digest: ") {
            Some((_, rest)) => PushEvent::Digest(rest.split_whitespace().next().unwrap_or_default().to_string()),
            None => PushEvent::Other(s.to_string()),
        },
    }
}

/// What a push landed.
#[derive(Debug, Clone, Default)]
pub struct Pushed {
    pub digest: Option<String>,
    pub layers_pushed: u32,
    /// Layers the registry already had, in this repository or (mounted) in another.
    pub layers_existing: u32,
}

/// Why a push stopped.
#[derive(Debug, Clone)]
pub enum PushFailure {
    /// The daemon's error, verbatim.
    Daemon(String),
    /// `on_event` asked to stop (e.g. the registry is gone and the daemon would keep retrying).
    Aborted(String),
}

/// Pushes `repository:tag`; `on_event` sees every event and may stop the push by returning `Err(reason)`.
pub async fn push(
    docker: &Docker,
    repository: &str,
    tag: &str,
    credentials: DockerCredentials,
    mut on_event: impl AsyncFnMut(&PushEvent) -> std::result::Result<(), String>,
) -> std::result::Result<Pushed, (PushFailure, Pushed)> {
    let options = PushImageOptionsBuilder::default().tag(tag).build();
    let mut stream = docker.push_image(repository, Some(options), Some(credentials));
    let mut done = Pushed::default();
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(e) => return Err((PushFailure::Daemon(stream_message(e)), done)),
        };
        let Some(status) = info.status else { continue };
        let detail = info.progress_detail.unwrap_or_default();
        let event = parse_push_status(&status, detail.current, detail.total);
        match &event {
            PushEvent::Pushed => done.layers_pushed += 1,
            PushEvent::AlreadyExists | PushEvent::Mounted => done.layers_existing += 1,
            PushEvent::Digest(d) => done.digest = Some(d.clone()),
            _ => {}
        }
        if let Err(reason) = on_event(&event).await {
            // Dropping the stream closes the connection, which cancels the push in the daemon.
            return Err((PushFailure::Aborted(reason), done));
        }
    }
    Ok(done)
}

/// The digest the registry serves for `reference`, asked through the daemon's distribution endpoint.
pub async fn registry_digest(
    docker: &Docker,
    reference: &str,
    credentials: DockerCredentials,
) -> std::result::Result<String, String> {
    let inspect = docker.inspect_registry_image(reference, Some(credentials)).await.map_err(stream_message)?;
    inspect.descriptor.digest.ok_or_else(|| "the registry returned no digest".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_statuses_are_classified() {
        assert_eq!(parse_push_status("Pushed", None, None), PushEvent::Pushed);
        assert_eq!(parse_push_status("Layer already exists", None, None), PushEvent::AlreadyExists);
        assert_eq!(
            parse_push_status("Pushing", Some(512), Some(2048)),
            PushEvent::Progress { current: 512, total: 2048 }
        );
        assert_eq!(
            parse_push_status("v1-abc: digest: sha256:0123 size: 528", None, None),
            PushEvent::Digest("sha256:0123".into())
        );
        assert_eq!(parse_push_status("Mounted from other/repo", None, None), PushEvent::Mounted);
        assert!(matches!(parse_push_status("Retrying in 5 seconds", None, None), PushEvent::Retrying(_)));
        assert_eq!(parse_push_status("Preparing", None, None), PushEvent::Other("Preparing".into()));
    }

    #[test]
    fn a_failure_in_from_is_about_the_base_image() {
        let f = BuildFailure {
            message: "pull access denied for nope, repository does not exist".into(),
            lines: vec!["Step 1/5 : FROM nope".into()],
        };
        assert!(f.is_base_pull());
        let f = BuildFailure {
            message: "The command '/bin/sh -c false' returned a non-zero code: 1".into(),
            lines: vec!["Step 1/5 : FROM debian".into(), "Step 2/5 : RUN false".into(), " ---> Running in 1".into()],
        };
        assert!(!f.is_base_pull());
        assert_eq!(f.failed_step(), Some("Step 2/5 : RUN false"));
    }
}
