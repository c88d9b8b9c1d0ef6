//! Local mode: the Lambda invoke endpoint over plain HTTP (hyper 1), for `docker run` and tests.
//!
//! `POST /2015-03-31/functions/{name}/invocations` with the event as body answers HTTP 200 with the
//! handler's proxy envelope, as the Lambda Runtime Interface Emulator does; the envelope's `statusCode`
//! carries 400/500. SIGTERM or SIGINT stops accepting and waits briefly for requests in flight.
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::contract::MAX_BODY_BYTES;
use crate::error::Error;
use crate::handler::App;

/// True for `/2015-03-31/functions/{name}/invocations`.
pub fn is_invoke_path(path: &str) -> bool {
    path.strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    resp
}

async fn route(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if !is_invoke_path(req.uri().path()) {
        let msg = serde_json::json!({"error": "not found: POST events to /2015-03-31/functions/function/invocations"});
        return Ok(json_response(StatusCode::NOT_FOUND, msg.to_string()));
    }
    if req.method() != Method::POST {
        let msg = serde_json::json!({"error": "method not allowed: use POST"});
        return Ok(json_response(StatusCode::METHOD_NOT_ALLOWED, msg.to_string()));
    }
    let envelope = match Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
        Ok(body) => {
            let bytes = body.to_bytes();
            if let Some(job) = batch_job(&app, &bytes).await {
                return Ok(job);
            }
            app.handle_bytes(&bytes)
        }
        // refused before the handler saw a byte, yet still answers: counted and logged like any other 400
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            app.handle_failure(&Error::InvalidInput("request body is over the 6 MB limit".into()))
        }
        Err(e) => {
            eprintln!("warning: reading a request body failed: {e}");
            app.handle_failure(&Error::InvalidInput("could not read the request body".into()))
        }
    };
    Ok(json_response(StatusCode::OK, envelope.to_string()))
}

/// A batch job's answer: its [`crate::batch::Done`], or HTTP 500 with Lambda's error shape, as the Runtime
/// Interface Emulator reports an unhandled function error.
async fn batch_job(app: &App, bytes: &[u8]) -> Option<Response<Full<Bytes>>> {
    // cheap test first: requests never parse twice
    if !bytes.windows(crate::batch::EVENT_KEY.len()).any(|w| w == crate::batch::EVENT_KEY.as_bytes()) {
        return None;
    }
    let event: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    Some(match crate::slice::handle(app, &event).await? {
        Ok(done) => json_response(StatusCode::OK, done.to_string()),
        Err(e) => {
            let body = serde_json::json!({"errorMessage": e, "errorType": "BatchSliceFailed"});
            json_response(StatusCode::INTERNAL_SERVER_ERROR, body.to_string())
        }
    })
}

/// Serves until SIGTERM/SIGINT.
pub async fn serve(app: Arc<App>, listen: &str) -> Result<(), String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on MLAMBDA_LISTEN={listen}: {e}; pick a free address:port"))?;
    let addr = listener.local_addr().map_err(|e| format!("cannot read the listen address: {e}"))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch SIGINT: {e}"))?;
    eprintln!("mlambda runtime: local mode on http://{addr}/2015-03-31/functions/function/invocations");
    let in_flight = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("warning: accept failed: {e}");
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let (app, in_flight) = (app.clone(), in_flight.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (app, in_flight) = (app.clone(), in_flight.clone());
                async move {
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    let resp = route(app, req).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    resp
                }
            });
            if let Err(e) =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
            {
                eprintln!("warning: connection error: {e}");
            }
        });
    }
    // requests are answered synchronously once read, so a short grace period drains them
    for _ in 0..50 {
        if in_flight.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("mlambda runtime: shutting down");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_paths() {
        assert!(is_invoke_path("/2015-03-31/functions/function/invocations"));
        assert!(is_invoke_path("/2015-03-31/functions/_/invocations"));
        assert!(!is_invoke_path("/2015-03-31/functions//invocations"));
        assert!(!is_invoke_path("/"));
        assert!(!is_invoke_path("/2015-03-31/functions/a/b/invocations"));
    }
}
