//! The CloudWatch alarms guarding an alias and each version it routes to, as plain specs.
//!
//! moto accepts any alarm, so what CloudWatch would reject is checked here.
use std::fmt;

use serde::Serialize;

use crate::config;
use crate::error::{Error, Result};

/// One `PutMetricAlarm` request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmSpec {
    pub name: String,
    pub description: String,
    pub namespace: String,
    pub metric: String,
    /// Sorted by name, so a spec compares equal to the alarm CloudWatch returns.
    pub dimensions: Vec<(String, String)>,
    /// `Sum`, or none when `extended_statistic` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    /// `p99`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_statistic: Option<String>,
    pub period: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: String,
    pub actions: Vec<String>,
}

impl fmt::Display for AlarmSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stat = self.extended_statistic.as_deref().or(self.statistic.as_deref()).unwrap_or("?");
        write!(
            f,
            "{}: {}/{} {stat} > {} over {} s",
            self.name, self.namespace, self.metric, self.threshold, self.period
        )
    }
}

/// CloudWatch's `StateValue` of an alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
    /// A state this mlambda does not know (or none), by its name.
    Other(String),
}

impl AlarmState {
    pub fn as_str(&self) -> &str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
            AlarmState::Other(s) => s,
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AlarmState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An alarm as CloudWatch holds it: its definition and its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alarm {
    #[serde(flatten)]
    pub spec: AlarmSpec,
    pub state: AlarmState,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Updated,
    Unchanged,
    Deleted,
    /// An mlambda alarm for a version the alias no longer routes to; kept until `--delete`.
    Stale,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
            Change::Deleted => "deleted",
            Change::Stale => "stale",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmChange {
    pub name: String,
    pub change: Change,
    /// The definition written (absent for deletes and stale alarms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<AlarmSpec>,
}

impl AlarmChange {
    /// The spec to put: created or updated ones only.
    pub fn to_put(&self) -> Option<&AlarmSpec> {
        self.spec.as_ref().filter(|_| matches!(self.change, Change::Created | Change::Updated))
    }
}

/// What putting `desired` changes, given what CloudWatch holds under the same prefix.
pub fn diff(desired: &[AlarmSpec], existing: &[Alarm]) -> Vec<AlarmChange> {
    desired
        .iter()
        .map(|spec| {
            let change = match existing.iter().find(|a| a.spec.name == spec.name) {
                Some(a) if a.spec == *spec => Change::Unchanged,
                Some(_) => Change::Updated,
                None => Change::Created,
            };
            AlarmChange { name: spec.name.clone(), change, spec: Some(spec.clone()) }
        })
        .collect()
}

/// `diff`, plus every existing alarm that is no longer desired, reported as stale.
pub fn sync_plan(desired: &[AlarmSpec], existing: &[Alarm]) -> Vec<AlarmChange> {
    let mut changes = diff(desired, existing);
    changes.extend(existing.iter().filter(|a| !desired.iter().any(|d| d.name == a.spec.name)).map(|a| AlarmChange {
        name: a.spec.name.clone(),
        change: Change::Stale,
        spec: None,
    }));
    changes
}

/// Deleting every existing alarm.
pub fn delete_plan(existing: &[Alarm]) -> Vec<AlarmChange> {
    existing.iter().map(|a| AlarmChange { name: a.spec.name.clone(), change: Change::Deleted, spec: None }).collect()
}

/// A version the alias routes to, and the model version it serves (`MODEL_VERSION` in its environment).
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub version: String,
    pub model_version: Option<String>,
}

/// `mlambda-<function>-`: every alarm mlambda makes for the function starts with it.
pub fn function_prefix(function: &str) -> String {
    format!("mlambda-{function}-")
}

/// `mlambda-<function>-v<N>-`: the alarms of one version, which guard its rollout.
pub fn version_prefix(function: &str, version: &str) -> String {
    format!("{}v{version}-", function_prefix(function))
}

const LAMBDA: &str = "AWS/Lambda";

struct Builder<'a> {
    function: &'a str,
    cfg: &'a config::Alarms,
}

impl Builder<'_> {
    fn base(&self, name: String, description: String, dims: Vec<(String, String)>) -> AlarmSpec {
        let mut dimensions = dims;
        dimensions.sort();
        AlarmSpec {
            name,
            description,
            namespace: LAMBDA.into(),
            metric: String::new(),
            dimensions,
            statistic: Some("Sum".into()),
            extended_statistic: None,
            period: 60,
            evaluation_periods: 1,
            threshold: 0.0,
            comparison: "GreaterThanThreshold".into(),
            treat_missing_data: "notBreaching".into(),
            actions: self.cfg.sns_topic.iter().cloned().collect(),
        }
    }

    /// The three alarms of one target: `label` is the alias name or `v<N>`.
    fn target(
        &self,
        label: &str,
        what: &str,
        lambda_dims: Vec<(String, String)>,
        model: Option<&str>,
    ) -> Vec<AlarmSpec> {
        let name = |kind: &str| format!("{}{label}-{kind}", function_prefix(self.function));
        let mut out = Vec::new();
        if let Some(model) = model {
            let mut s = self.base(
                name("latency-p99"),
                format!(
                    "mlambda: p99 inference latency of {what} (model {model}) above {} ms",
                    self.cfg.latency_p99_ms
                ),
                vec![("ModelVersion".into(), model.into())],
            );
            s.namespace = self.cfg.namespace.clone();
            s.metric = "InferenceLatencyMs".into();
            s.statistic = None;
            s.extended_statistic = Some("p99".into());
            s.threshold = self.cfg.latency_p99_ms;
            out.push(s);
        }
        let mut s = self.base(
            name("errors"),
            format!("mlambda: more than {} errors in 5 minutes on {what}", self.cfg.errors),
            lambda_dims.clone(),
        );
        s.metric = "Errors".into();
        s.period = 300;
        s.threshold = self.cfg.errors;
        out.push(s);
        let mut s = self.base(
            name("throttles"),
            format!("mlambda: more than {} throttles in a minute on {what}", self.cfg.throttles),
            lambda_dims,
        );
        s.metric = "Throttles".into();
        s.threshold = self.cfg.throttles;
        out.push(s);
        out
    }
}

/// The alarms for the alias (its primary's model version) and for every version it routes to.
/// A target without a `MODEL_VERSION` gets no latency alarm, since its EMF metric has no dimension to match.
pub fn specs(
    function: &str,
    alias: &str,
    primary_model: Option<&str>,
    routed: &[Routed],
    cfg: &config::Alarms,
) -> Result<Vec<AlarmSpec>> {
    let b = Builder { function, cfg };
    let resource = format!("{function}:{alias}");
    let dims = |extra: Option<&str>| {
        let mut d =
            vec![("FunctionName".to_string(), function.to_string()), ("Resource".to_string(), resource.clone())];
        d.extend(extra.map(|v| ("ExecutedVersion".to_string(), v.to_string())));
        d
    };
    let mut out = b.target(alias, &format!("alias `{resource}`"), dims(None), primary_model);
    for r in routed {
        let what = format!("version {} behind `{resource}`", r.version);
        out.extend(b.target(&format!("v{}", r.version), &what, dims(Some(&r.version)), r.model_version.as_deref()));
    }
    validate(alias, &out, cfg)?;
    Ok(out)
}

/// What CloudWatch would refuse, refused before any call.
fn validate(alias: &str, specs: &[AlarmSpec], cfg: &config::Alarms) -> Result<()> {
    let edit = "edit the `alarms` section of mlambda.yaml";
    if alias.strip_prefix('v').is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())) {
        return Err(Error::user(format!(
            "alias `{alias}` looks like a version label, so its alarms would clash with the version alarms"
        ))
        .help("rename `function.alias`, e.g. `production`"));
    }
    if let Some(topic) = &cfg.sns_topic {
        if !topic.starts_with("arn:aws:sns:") || topic.split(':').count() != 6 {
            return Err(Error::user(format!("`alarms.sns_topic` `{topic}` is not an SNS topic ARN"))
                .help("use an ARN like `arn:aws:sns:eu-west-1:123456789012:alerts`, or remove the key"));
        }
    }
    if cfg.namespace.is_empty() || cfg.namespace.len() > 255 || cfg.namespace.starts_with("AWS/") {
        return Err(Error::user(format!(
            "`alarms.namespace` `{}` is not a custom CloudWatch namespace",
            cfg.namespace
        ))
        .help("use the namespace the runtime writes its EMF metrics to, e.g. `mlambda`; `AWS/` is reserved"));
    }
    for s in specs {
        if s.name.chars().count() > 255 {
            return Err(Error::user(format!("alarm name `{}` is longer than CloudWatch's 255 characters", s.name))
                .help("use a shorter `function.name` or `function.alias`"));
        }
        if !s.threshold.is_finite() || s.threshold < 0.0 {
            return Err(Error::user(format!(
                "the threshold of `{}` is {}, it must be a finite number ≥ 0",
                s.name, s.threshold
            ))
            .help(edit));
        }
        if s.period < 60 || s.period % 60 != 0 {
            return Err(Error::user(format!(
                "the period of `{}` is {} s, CloudWatch needs a multiple of 60",
                s.name, s.period
            ))
            .help(edit));
        }
        if s.description.chars().count() > 1024 {
            return Err(Error::user(format!("the description of `{}` is longer than 1024 characters", s.name))
                .help("use a shorter function or alias name"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> config::Alarms {
        config::Alarms { namespace: "ChurnModel".into(), ..Default::default() }
    }

    fn routed(v: &str, m: &str) -> Routed {
        Routed { version: v.into(), model_version: Some(m.into()) }
    }

    #[test]
    fn the_alias_and_each_routed_version_get_latency_errors_and_throttles() {
        let specs = specs("churn", "production", Some("v3"), &[routed("3", "v3"), routed("4", "v4")], &cfg()).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mlambda-churn-production-latency-p99",
                "mlambda-churn-production-errors",
                "mlambda-churn-production-throttles",
                "mlambda-churn-v3-latency-p99",
                "mlambda-churn-v3-errors",
                "mlambda-churn-v3-throttles",
                "mlambda-churn-v4-latency-p99",
                "mlambda-churn-v4-errors",
                "mlambda-churn-v4-throttles",
            ]
        );
        let lat = &specs[6];
        assert_eq!((lat.namespace.as_str(), lat.metric.as_str()), ("ChurnModel", "InferenceLatencyMs"));
        assert_eq!((lat.statistic.as_deref(), lat.extended_statistic.as_deref()), (None, Some("p99")));
        assert_eq!(lat.dimensions, [("ModelVersion".to_string(), "v4".to_string())]);
        assert_eq!((lat.threshold, lat.period, lat.evaluation_periods), (500.0, 60, 1));
        let err = &specs[7];
        assert_eq!(
            (err.namespace.as_str(), err.metric.as_str(), err.statistic.as_deref()),
            ("AWS/Lambda", "Errors", Some("Sum"))
        );
        assert_eq!((err.threshold, err.period), (5.0, 300));
        let dims: Vec<String> = err.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(dims, ["ExecutedVersion=4", "FunctionName=churn", "Resource=churn:production"]);
        let thr = &specs[2];
        assert_eq!((thr.metric.as_str(), thr.threshold, thr.period), ("Throttles", 0.0, 60));
        assert_eq!(thr.dimensions.len(), 2);
        assert!(specs.iter().all(|s| s.treat_missing_data == "notBreaching" && s.comparison == "GreaterThanThreshold"));
        assert!(specs.iter().all(|s| s.actions.is_empty()));
    }

    #[test]
    fn a_version_without_a_model_version_gets_no_latency_alarm() {
        let specs =
            specs("churn", "production", None, &[Routed { version: "3".into(), model_version: None }], &cfg()).unwrap();
        assert!(specs.iter().all(|s| s.metric != "InferenceLatencyMs"));
        assert_eq!(specs.len(), 4);
    }

    #[test]
    fn the_sns_topic_becomes_the_alarm_action_and_must_be_an_sns_arn() {
        let mut c = cfg();
        c.sns_topic = Some("arn:aws:sns:us-east-1:123456789012:alerts".into());
        let s = specs("churn", "production", Some("v1"), &[], &c).unwrap();
        assert!(s.iter().all(|s| s.actions == ["arn:aws:sns:us-east-1:123456789012:alerts"]));
        c.sns_topic = Some("arn:aws:sqs:us-east-1:123456789012:q".into());
        let e = specs("churn", "production", Some("v1"), &[], &c).unwrap_err();
        assert!(e.message.contains("is not an SNS topic ARN"), "{}", e.message);
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn what_cloudwatch_rejects_is_refused() {
        let mut c = cfg();
        c.latency_p99_ms = f64::INFINITY;
        assert!(specs("churn", "production", Some("v1"), &[], &c).unwrap_err().message.contains("finite"));
        let long = "x".repeat(250);
        assert!(specs(&long, "production", None, &[], &cfg()).unwrap_err().message.contains("255 characters"));
        assert!(specs("churn", "v2", None, &[], &cfg()).unwrap_err().message.contains("looks like a version label"));
        let mut c = cfg();
        c.namespace = "AWS/Lambda".into();
        assert!(specs("churn", "production", None, &[], &c).unwrap_err().message.contains("namespace"));
    }

    #[test]
    fn version_prefixes_do_not_match_longer_version_numbers() {
        assert_eq!(version_prefix("churn", "1"), "mlambda-churn-v1-");
        assert!(!"mlambda-churn-v10-errors".starts_with(&version_prefix("churn", "1")));
    }

    #[test]
    fn alarm_specs_as_json() {
        let specs = specs("churn", "production", Some("v3"), &[routed("4", "v4")], &cfg()).unwrap();
        insta::assert_json_snapshot!("alarm_specs", specs);
    }

    #[test]
    fn an_alarm_sync_plan_as_json() {
        let desired = specs("churn", "production", Some("v3"), &[routed("4", "v4")], &cfg()).unwrap();
        let held = |spec: &AlarmSpec| Alarm { spec: spec.clone(), state: AlarmState::Ok, reason: String::new() };
        let mut changed = held(&desired[1]);
        changed.spec.threshold = 1.0;
        let stale = Alarm {
            spec: AlarmSpec { name: "mlambda-churn-v3-errors".into(), ..desired[4].clone() },
            ..held(&desired[4])
        };
        let existing = vec![held(&desired[0]), changed, stale];
        let changes = sync_plan(&desired, &existing);
        assert_eq!(changes.iter().filter_map(AlarmChange::to_put).count(), desired.len() - 1);
        insta::assert_json_snapshot!("alarm_sync", changes);
        insta::assert_json_snapshot!("alarm_delete", delete_plan(&existing));
    }
}
