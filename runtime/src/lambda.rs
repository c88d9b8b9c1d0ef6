//! Lambda mode: the Runtime API loop via `lambda_runtime`, and the init-error report it lacks.
//!
//! lambda_runtime 1.5 only reports init errors on its SnapStart path, so a failed model load is posted
//! to `/2018-06-01/runtime/init/error` here, then the process exits: Lambda sees a failed INIT rather
//! than a function that answers every invocation with an error.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use lambda_runtime::tower::Layer;
use lambda_runtime::{service_fn, LambdaEvent, LambdaInvocation, Service};
use serde_json::Value;

use crate::error::Error;
use crate::handler::App;
use crate::shadow::Pending;

/// Serves invocations until the Runtime API goes away.
pub async fn run(app: Arc<App>) -> Result<(), lambda_runtime::Error> {
    let pending: Copies = Arc::new(Mutex::new(HashMap::new()));
    let (handler_app, handler_pending) = (app.clone(), pending.clone());
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let (app, pending) = (handler_app.clone(), handler_pending.clone());
        // the handler answers every request itself (400/500 envelopes), so a request never reports an error and
        // Lambda's `Errors` stays 0: the EMF line's `ClientErrors`/`ModelErrors` count failures instead. A batch
        // slice that cannot be read or written does fail, so Step Functions retries it.
        async move {
            if let Some(job) = crate::slice::handle(&app, &event.payload).await {
                return job.map_err(lambda_runtime::Error::from);
            }
            let request_id = event.context.request_id.clone();
            let (envelope, out, copy) = app.answer_copying(event.payload, &request_id);
            crate::handler::emit(&out);
            if let Some(copy) = copy {
                pending.lock().unwrap_or_else(|p| p.into_inner()).insert(request_id, copy);
            }
            Ok::<Value, lambda_runtime::Error>(envelope)
        }
    });
    lambda_runtime::Runtime::new(handler).layer(CopyAfterAnswer { app, pending }).run().await
}

/// Copies decided by the handler, by request id, waiting for their answers to go back.
type Copies = Arc<Mutex<HashMap<String, Pending>>>;

/// Sends a request's shadow copy once the runtime has posted its answer and before it asks for the next
/// event: the caller's latency never includes the copy, and Lambda does not freeze the instance mid-copy.
struct CopyAfterAnswer {
    app: Arc<App>,
    pending: Copies,
}

impl<S> Layer<S> for CopyAfterAnswer {
    type Service = CopyService<S>;

    fn layer(&self, inner: S) -> CopyService<S> {
        CopyService { inner, app: self.app.clone(), pending: self.pending.clone() }
    }
}

struct CopyService<S> {
    inner: S,
    app: Arc<App>,
    pending: Copies,
}

impl<S> Service<LambdaInvocation> for CopyService<S>
where
    S: Service<LambdaInvocation, Response = (), Error = lambda_runtime::Error>,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = lambda_runtime::Error;
    type Future = Pin<Box<dyn Future<Output = Result<(), lambda_runtime::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let (app, pending) = (self.app.clone(), self.pending.clone());
        let (request_id, raw) = (invocation.context.request_id.clone(), invocation.body.clone());
        // the inner service runs the handler and posts its answer to the Runtime API
        let answered = self.inner.call(invocation);
        Box::pin(async move {
            answered.await?;
            let copy = pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&request_id);
            app.after_answer(copy.as_ref(), &raw).await;
            Ok(())
        })
    }
}

/// Splits `AWS_LAMBDA_RUNTIME_API` (`host:port`, or `http://host:port/prefix` as emulators use) into the
/// address and the path prefix.
pub fn split_api(api: &str) -> (&str, &str) {
    let rest = api.strip_prefix("http://").unwrap_or(api);
    match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    }
}

/// Posts the init error with its `errorType`; returns the Runtime API's HTTP status.
pub fn report_init_error(api: &str, error: &Error) -> Result<u16, String> {
    let (message, error_type) = (error.to_string(), error.error_type());
    let (host, prefix) = split_api(api);
    let addr: SocketAddr = match host.parse() {
        Ok(a) => a,
        Err(_) => host
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve the runtime api {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("the runtime api {host} resolves to nothing"))?,
    };
    let body = serde_json::json!({"errorMessage": message, "errorType": error_type}).to_string();
    let request = format!(
        "POST {prefix}/2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Lambda-Runtime-Function-Error-Type: {error_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let io = |e: std::io::Error| format!("cannot report the init error to {host}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(io)?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(io)?;
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    // the status line is all we need; a timeout after it still leaves it in the buffer
    let _ = stream.read_to_end(&mut response);
    let head = String::from_utf8_lossy(&response);
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("the runtime api at {host} sent no http status for the init error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_api_forms() {
        assert_eq!(split_api("127.0.0.1:9001"), ("127.0.0.1:9001", ""));
        assert_eq!(split_api("http://127.0.0.1:9123/.rt"), ("127.0.0.1:9123", "/.rt"));
        assert_eq!(split_api("http://127.0.0.1:9123/.rt/"), ("127.0.0.1:9123", "/.rt"));
    }
}
