//! Integration tests: the real `mlambda` binary against the real local stack (moto, registry, dockerd).
//! `scripts/test` starts the stack and exports its environment; without it these tests fail loudly.
mod alarms;
mod backtest;
mod batch;
mod build_push;
mod ci;
mod common;
mod deploy;
mod install;
mod lease;
mod model_push;
mod remote_invoke;
mod report;
mod rollout;
mod shadow;
mod shadow_report;
mod status;
mod tabular;
mod team;
mod terraform;
mod up;
mod url;
mod wheel;
mod zip_package;
