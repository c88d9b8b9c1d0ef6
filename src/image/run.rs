//! Runs a built image in the runtime's local mode on the Docker engine, for `mlambda invoke --local`.
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, LogsOptions, RemoveContainerOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;

use crate::error::{Error, Result};

/// Starts `image` with host networking (the runtime listens on loopback) and the given env and binds.
pub async fn start(docker: &Docker, image: &str, env: Vec<String>, binds: Vec<String>) -> Result<String> {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        env: Some(env),
        host_config: Some(HostConfig { network_mode: Some("host".into()), binds: Some(binds), ..Default::default() }),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(CreateContainerOptions::default()), body)
        .await
        .map_err(|e| Error::local(format!("cannot create a container from `{image}`: {e}")))?;
    if let Err(e) = docker.start_container(&created.id, None).await {
        remove(docker, &created.id).await;
        return Err(Error::local(format!("cannot start a container from `{image}`: {e}")));
    }
    Ok(created.id)
}

/// The container's output so far, to explain a runtime that did not answer.
pub async fn logs(docker: &Docker, id: &str) -> String {
    let opts = LogsOptions { stdout: true, stderr: true, tail: "50".into(), ..Default::default() };
    let mut out = String::new();
    let mut stream = docker.logs(id, Some(opts));
    while let Some(Ok(chunk)) = stream.next().await {
        out.push_str(&chunk.to_string());
    }
    out
}

/// Force-removes the container; a failure here only leaves a stopped container behind, so it is not fatal.
pub async fn remove(docker: &Docker, id: &str) {
    let _ = docker.remove_container(id, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await;
}
