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

/// What follows an answer (its shadow copy, a re-read of the shadow control), done on its own thread: local mode
/// serves every request on one thread, and a copy's signing and round trip must never sit between a caller and
/// its answer. (Lambda mode needs no thread: it sends the copy before it asks for the next event.)
struct AfterAnswer {
    app: Arc<App>,
    pending: Option<crate::shadow::Pending>,
    raw: Bytes,
    in_flight: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct AfterAnswers(tokio::sync::mpsc::UnboundedSender<AfterAnswer>);

impl AfterAnswers {
    fn start() -> Result<AfterAnswers, String> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<AfterAnswer>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the shadow copies' runtime: {e}"))?;
        std::thread::Builder::new()
            .name("shadow-copies".into())
            .spawn(move || {
                rt.block_on(async move {
                    while let Some(job) = rx.recv().await {
                        tokio::spawn(async move {
                            job.app.after_answer(job.pending.as_ref(), &job.raw).await;
                            job.in_flight.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                })
            })
            .map_err(|e| format!("cannot start the shadow copies' thread: {e}"))?;
        Ok(AfterAnswers(tx))
    }

    fn send(&self, job: AfterAnswer) {
        let in_flight = job.in_flight.clone();
        if self.0.send(job).is_err() {
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

async fn route(
    app: Arc<App>,
    in_flight: Arc<AtomicUsize>,
    after: AfterAnswers,
    req: Request<Incoming>,
) -> Result<Response<AnswerBody>, Infallible> {
    let plain = |r: Response<Full<Bytes>>| r.map(|body| AnswerBody { body, after: None });
    if !is_invoke_path(req.uri().path()) {
        let msg = serde_json::json!({"error": "not found: POST events to /2015-03-31/functions/function/invocations"});
        return Ok(plain(json_response(StatusCode::NOT_FOUND, msg.to_string())));
    }
    if req.method() != Method::POST {
        let msg = serde_json::json!({"error": "method not allowed: use POST"});
        return Ok(plain(json_response(StatusCode::METHOD_NOT_ALLOWED, msg.to_string())));
    }
    let mut follow_up = None;
    let envelope = match Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
        Ok(body) => {
            let bytes = body.to_bytes();
            if let Some(job) = batch_job(&app, &bytes).await {
                return Ok(plain(job));
            }
            let (envelope, pending) = app.handle_bytes_copying(&bytes);
            if pending.is_some() || app.control_stale() {
                // counted as in flight at once, so SIGTERM's drain waits for the copy
                in_flight.fetch_add(1, Ordering::SeqCst);
                follow_up =
                    Some((after, AfterAnswer { app: app.clone(), pending, raw: bytes, in_flight: in_flight.clone() }));
            }
            envelope
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
    Ok(json_response(StatusCode::OK, envelope.to_string()).map(|body| AnswerBody { body, after: follow_up }))
}

/// The answer's body, which hands its follow-up (the shadow copy) to the copies' thread once hyper has taken
/// the last of the answer to write: the copy starts after the answer, not beside it.
struct AnswerBody {
    body: Full<Bytes>,
    after: Option<(AfterAnswers, AfterAnswer)>,
}

impl AnswerBody {
    fn release(&mut self) {
        if let Some((queue, job)) = self.after.take() {
            queue.send(job);
        }
    }
}

impl hyper::body::Body for AnswerBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.body).poll_frame(cx);
        if this.body.is_end_stream() || matches!(polled, std::task::Poll::Ready(None)) {
            this.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for AnswerBody {
    // a connection dropped before its answer was written: the copy still goes (and the drain still counts it)
    fn drop(&mut self) {
        self.release();
    }
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
    let after = AfterAnswers::start()?;
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
        let (app, in_flight, after) = (app.clone(), in_flight.clone(), after.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (app, in_flight, after) = (app.clone(), in_flight.clone(), after.clone());
                async move {
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    let resp = route(app, in_flight.clone(), after, req).await;
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
    // requests are answered synchronously once read, so a short grace period drains them and the shadow copies
    // they left (each bounded by its request timeout)
    for _ in 0..300 {
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
