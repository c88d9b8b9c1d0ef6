//! Integration tests: the real `mlambda` binary against the real local stack (moto, registry, dockerd).
//! `scripts/test` starts the stack and exports its environment; without it these tests fail loudly.
mod common;
mod alarms;
mod rollout;
mod status;
