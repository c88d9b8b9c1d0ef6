//! `bootstrap`: Lambda mode when `AWS_LAMBDA_RUNTIME_API` is set, local HTTP mode otherwise.
use std::process::ExitCode;
use std::sync::Arc;

use mlambda_runtime::{config::Config, env, lambda, local};

fn main() -> ExitCode {
    // one thread is plenty: Lambda sends one event at a time and inference is synchronous
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run())
}

async fn run() -> ExitCode {
    let runtime_api = std::env::var(env::AWS_LAMBDA_RUNTIME_API).ok().filter(|v| !v.is_empty());
    let app = match Config::from_env() {
        Ok(cfg) => mlambda_runtime::init(&cfg).await.map(|app| (app, cfg)),
        Err(e) => Err(e),
    };
    let (app, cfg) = match app {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("error: init failed ({}): {e}", e.error_type());
            if let Some(api) = &runtime_api {
                match lambda::report_init_error(api, &e) {
                    Ok(status) => eprintln!("reported the init error to the runtime api (http {status})"),
                    Err(report) => eprintln!("error: {report}"),
                }
            }
            return ExitCode::FAILURE;
        }
    };
    let kind = match app.model().labels() {
        Some(labels) => format!("classifier, {} classes", labels.len()),
        None => "regressor".to_string(),
    };
    eprintln!("mlambda runtime: model {} ({kind}; fields {}) ready", cfg.version, app.feature_names().join(","));
    let app = Arc::new(app);
    let result = match runtime_api {
        Some(_) => lambda::run(app).await.map_err(|e| format!("lambda runtime stopped: {e}")),
        None => local::serve(app, &cfg.listen).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
