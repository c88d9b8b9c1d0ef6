//! Shadowing as pure logic: what `mlambda shadow` may start, the role policy that lets the primary copy to
//! exactly its target, and what the copies cost per day.
use mlambda_runtime::shadow::Control;
use serde::Serialize;
use serde_json::{json, Value};

use crate::plan::lambda::Alias;

/// The inline policy on the primary's execution role that allows the copies; `--stop` deletes it.
pub const POLICY_NAME: &str = "mlambda-shadow";

/// Why shadowing cannot start against this alias and target, if it cannot.
pub fn refuse(alias: &Alias, target: &str, target_exists: bool) -> Option<(String, String)> {
    if !target_exists {
        return Some((
            format!("version {target} of function does not exist"),
            "`mlambda status` lists the published versions; deploy the candidate first".into(),
        ));
    }
    if alias.primary == target {
        return Some((
            format!("version {target} is the alias `{}`'s primary: it cannot shadow itself", alias.name),
            "shadow a candidate version, e.g. the newest one `mlambda deploy` published".into(),
        ));
    }
    if let Some((v, w)) = alias.routing.iter().next() {
        return Some((
            format!(
                "alias `{}` is in a weighted rollout (version {v} at {:.0}%): its traffic is already split",
                alias.name,
                w * 100.0
            ),
            "finish it first (`mlambda rollout --promote` or `--rollback`), then shadow; a shadow copies only \
             the primary's requests"
                .into(),
        ));
    }
    None
}

/// Lets the primary's role invoke the shadow target and nothing else.
pub fn invoke_policy(target_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ShadowCopies",
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": [target_arn]
        }]
    })
}

/// What the copies add per day at the alias's measured traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    /// The alias's invocations over the last 24 hours (CloudWatch `Invocations`).
    pub alias_invocations_per_day: f64,
    pub extra_invocations_per_day: f64,
    /// The extra invocations × the primary's mean duration × the target's memory.
    pub extra_gb_seconds_per_day: f64,
}

pub fn cost(invocations_24h: f64, mean_duration_ms: f64, memory_mb: i32, sample: f64) -> Cost {
    let extra = invocations_24h * sample;
    Cost {
        alias_invocations_per_day: invocations_24h,
        extra_invocations_per_day: extra,
        extra_gb_seconds_per_day: extra * mean_duration_ms / 1000.0 * f64::from(memory_mb) / 1024.0,
    }
}

/// The control `mlambda shadow` writes.
pub fn control(target_arn: &str, target: &str, primary: &str, sample: f64, until: u64, since: &str) -> Control {
    Control {
        target: target_arn.to_string(),
        target_version: target.to_string(),
        sources: vec![primary.to_string()],
        sample,
        until,
        since: since.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn alias(primary: &str, routing: &[(&str, f64)]) -> Alias {
        Alias {
            name: "production".into(),
            arn: "arn".into(),
            primary: primary.into(),
            routing: routing.iter().map(|(v, w)| (v.to_string(), *w)).collect::<BTreeMap<_, _>>(),
            description: String::new(),
            revision_id: String::new(),
        }
    }

    #[test]
    fn shadowing_needs_a_real_other_version_and_no_weighted_rollout() {
        assert!(refuse(&alias("3", &[]), "4", true).is_none());
        assert!(refuse(&alias("3", &[]), "9", false).unwrap().0.contains("does not exist"));
        assert!(refuse(&alias("3", &[]), "3", true).unwrap().0.contains("cannot shadow itself"));
        let (why, fix) = refuse(&alias("3", &[("4", 0.1)]), "4", true).unwrap();
        assert!(why.contains("weighted rollout (version 4 at 10%)") && fix.contains("--promote"), "{why}");
    }

    #[test]
    fn the_policy_names_exactly_the_target_and_the_cost_scales_with_the_sample() {
        let p = invoke_policy("arn:aws:lambda:us-east-1:1:function:churn:4");
        assert_eq!(p["Statement"][0]["Resource"], json!(["arn:aws:lambda:us-east-1:1:function:churn:4"]));
        let c = cost(100_000.0, 20.0, 1024, 0.2);
        assert_eq!(c.extra_invocations_per_day, 20_000.0);
        assert!((c.extra_gb_seconds_per_day - 400.0).abs() < 1e-9);
    }
}
