//! `mlambda up`'s plan: the flow's steps in order, and which of them an earlier run already finished.
use serde::Serialize;

/// The flow, in order. Before the first of them, `up` checks what it can locally (the model the steps that
/// read it would read), so a bad input fails in a second rather than after a compile or an AWS call.
pub const STEPS: [&str; 6] = ["build", "push", "model push", "deploy", "rollout", "alarms"];

/// The steps that read the local model file: `build` hashes (and may bake) it, `model push` loads and uploads it.
const READS_MODEL: [&str; 2] = ["build", "model push"];

/// One step and whether this run does it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    pub step: &'static str,
    /// Finished by an earlier run for the same inputs.
    pub skip: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpPlan {
    /// An earlier run's finished steps are kept.
    pub resumed: bool,
    pub steps: Vec<PlannedStep>,
}

impl UpPlan {
    /// The steps an earlier run finished, in order.
    pub fn done(&self) -> Vec<String> {
        self.steps.iter().filter(|s| s.skip).map(|s| s.step.to_string()).collect()
    }

    /// Whether a step this run does reads the model file, which must then be checked before anything else.
    pub fn reads_model(&self) -> bool {
        self.steps.iter().any(|s| !s.skip && READS_MODEL.contains(&s.step))
    }
}

/// Resumes after the finished steps, unless asked to restart, the inputs changed, or the last run finished.
pub fn plan(fingerprint: &str, saved_fingerprint: &str, saved_done: &[String], restart: bool) -> UpPlan {
    let fresh = restart || saved_fingerprint != fingerprint || saved_done.len() == STEPS.len();
    let steps =
        STEPS.iter().map(|s| PlannedStep { step: s, skip: !fresh && saved_done.iter().any(|d| d == s) }).collect();
    UpPlan { resumed: !fresh && !saved_done.is_empty(), steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(steps: &[&str]) -> Vec<String> {
        steps.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_failed_run_resumes_after_its_finished_steps() {
        let p = plan("f1", "f1", &done(&["build", "push"]), false);
        insta::assert_json_snapshot!("up_resumed", p);
        assert_eq!(p.done(), ["build", "push"]);
    }

    #[test]
    fn new_inputs_a_restart_or_a_finished_run_start_over() {
        let fresh = plan("f1", "", &[], false);
        insta::assert_json_snapshot!("up_fresh", fresh);
        assert_eq!(plan("f2", "f1", &done(&["build"]), false), fresh);
        assert_eq!(plan("f1", "f1", &done(&["build"]), true), fresh);
        assert_eq!(plan("f1", "f1", &done(&STEPS), false), fresh);
    }

    #[test]
    fn the_model_is_checked_while_a_step_that_reads_it_is_still_to_run() {
        assert!(plan("f1", "", &[], false).reads_model());
        assert!(plan("f1", "f1", &done(&["build", "push"]), false).reads_model(), "model push is still to run");
        assert!(!plan("f1", "f1", &done(&["build", "push", "model push"]), false).reads_model());
    }
}
