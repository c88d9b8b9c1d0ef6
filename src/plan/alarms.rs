//! The CloudWatch alarms guarding an alias and each version it routes to, as plain specs.
//!
//! moto accepts any alarm, so what CloudWatch would reject is checked here.
use std::fmt;

use serde::Serialize;

use crate::config;
use crate::error::{Error, Result};

/// One `PutMetricAlarm` request: on one metric (`namespace`, `metric`, `dimensions`, a statistic and `period`), or
/// metric math over `metrics`, which then leaves those five empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmSpec {
    pub name: String,
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metric: String,
    /// Sorted by name, so a spec compares equal to the alarm CloudWatch returns.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<(String, String)>,
    /// `Sum`, or none when `extended_statistic` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    /// `p99`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_statistic: Option<String>,
    /// Seconds; none for metric math, where CloudWatch refuses it and each metric carries its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<i32>,
    pub evaluation_periods: i32,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: String,
    pub actions: Vec<String>,
    /// The queries of a metric-math alarm, in CloudWatch's order; empty for a single-metric alarm.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricQuery>,
}

/// One entry of a metric-math alarm's `Metrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricQuery {
    /// Starts with a lowercase letter; expressions name the other queries by it.
    pub id: String,
    #[serde(flatten)]
    pub query: Query,
    /// True for the one query the alarm compares with its threshold.
    pub return_data: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    /// Metric math over the other queries' ids.
    Expression(String),
    Metric(MetricStat),
}

/// A metric and how it is aggregated, as in CloudWatch's `MetricStat`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricStat {
    pub namespace: String,
    pub name: String,
    /// Sorted by name, as for a single-metric alarm.
    pub dimensions: Vec<(String, String)>,
    pub stat: String,
    pub period: i32,
}

impl AlarmSpec {
    /// The period a metric-math alarm evaluates over: its metrics' longest.
    fn math_period(&self) -> Option<i32> {
        self.metrics
            .iter()
            .filter_map(|m| match &m.query {
                Query::Metric(stat) => Some(stat.period),
                Query::Expression(_) => None,
            })
            .max()
    }
}

impl fmt::Display for AlarmSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.metrics.is_empty() {
            let stat = self.extended_statistic.as_deref().or(self.statistic.as_deref()).unwrap_or("?");
            let period = self.period.unwrap_or_default();
            return write!(
                f,
                "{}: {}/{} {stat} > {} over {period} s",
                self.name, self.namespace, self.metric, self.threshold
            );
        }
        let returned = self.metrics.iter().find(|m| m.return_data);
        let expression = match returned.map(|m| &m.query) {
            Some(Query::Expression(e)) => e.as_str(),
            _ => returned.map_or("?", |m| m.id.as_str()),
        };
        let period = self.math_period().unwrap_or_default();
        write!(f, "{}: {expression} > {} over {period} s", self.name, self.threshold)?;
        let inputs: Vec<String> = self
            .metrics
            .iter()
            .filter_map(|m| match &m.query {
                Query::Metric(s) => Some(format!("{} = {}/{} {}", m.id, s.namespace, s.name, s.stat)),
                Query::Expression(_) => None,
            })
            .collect();
        if !inputs.is_empty() {
            write!(f, ", where {}", inputs.join(", "))?;
        }
        Ok(())
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

/// Whether `name` is one version's alarm (`mlambda-<function>-v<N>-…`), not the alias's.
pub fn is_version_alarm(function: &str, name: &str) -> bool {
    name.strip_prefix(&function_prefix(function))
        .and_then(|rest| rest.strip_prefix('v'))
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

const LAMBDA: &str = "AWS/Lambda";

/// The window of the error-rate alarms, long enough to hold the minimum number of invocations at low traffic.
const RATE_PERIOD: i32 = 300;

/// CloudWatch's limit on the metrics (and expressions) of one alarm.
const MAX_METRICS: usize = 10;

/// The answers an error-rate alarm counts, from the runtime's EMF metrics.
#[derive(Debug, Clone, Copy)]
enum Failed {
    /// 400s: requests the model could not read.
    Client,
    /// 500s: the model failed on a valid request.
    Model,
}

impl Failed {
    fn kind(self) -> &'static str {
        match self {
            Failed::Client => "client-errors",
            Failed::Model => "model-errors",
        }
    }

    /// The runtime's EMF metric, named where the runtime writes it.
    fn metric(self) -> &'static str {
        match self {
            Failed::Client => mlambda_runtime::logline::CLIENT_ERRORS,
            Failed::Model => mlambda_runtime::logline::MODEL_ERRORS,
        }
    }

    fn status(self) -> &'static str {
        match self {
            Failed::Client => "400s",
            Failed::Model => "500s",
        }
    }
}

/// `0.05` as `5%`, without the float noise of `0.05 * 100`.
fn percent(fraction: f64) -> String {
    format!("{}%", (fraction * 100.0 * 1e6).round() / 1e6)
}

fn sorted(mut dims: Vec<(String, String)>) -> Vec<(String, String)> {
    dims.sort();
    dims
}

struct Builder<'a> {
    function: &'a str,
    cfg: &'a config::Alarms,
}

impl Builder<'_> {
    fn base(&self, name: String, description: String, dims: Vec<(String, String)>) -> AlarmSpec {
        AlarmSpec {
            name,
            description,
            namespace: LAMBDA.into(),
            metric: String::new(),
            dimensions: sorted(dims),
            statistic: Some("Sum".into()),
            extended_statistic: None,
            period: Some(60),
            evaluation_periods: 1,
            threshold: 0.0,
            comparison: "GreaterThanThreshold".into(),
            treat_missing_data: "notBreaching".into(),
            actions: self.cfg.sns_topic.iter().cloned().collect(),
            metrics: Vec::new(),
        }
    }

    fn name(&self, label: &str, kind: &str) -> String {
        format!("{}{label}-{kind}", function_prefix(self.function))
    }

    /// The alarms of one target: `label` is the alias name or `v<N>`, `versions` the versions whose answers it
    /// counts (every routed version for the alias), `lambda_dims` its dimensions in `AWS/Lambda`.
    fn target(
        &self,
        label: &str,
        what: &str,
        lambda_dims: Vec<(String, String)>,
        model: Option<&str>,
        versions: &[&str],
    ) -> Vec<AlarmSpec> {
        let mut out = Vec::new();
        if let Some(model) = model {
            let mut s = self.base(
                self.name(label, "latency-p99"),
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
            self.name(label, "errors"),
            format!("mlambda: more than {} errors in 5 minutes on {what}", self.cfg.errors),
            lambda_dims.clone(),
        );
        s.metric = "Errors".into();
        s.period = Some(300);
        s.threshold = self.cfg.errors;
        out.push(s);
        let mut s = self.base(
            self.name(label, "throttles"),
            format!("mlambda: more than {} throttles in a minute on {what}", self.cfg.throttles),
            lambda_dims.clone(),
        );
        s.metric = "Throttles".into();
        s.threshold = self.cfg.throttles;
        out.push(s);
        // Without a version there is no `FunctionVersion` to count answers by.
        if !versions.is_empty() {
            for failed in [Failed::Client, Failed::Model] {
                out.push(self.error_rate(label, what, failed, versions, &lambda_dims));
            }
        }
        out
    }

    /// The share of `failed` answers among the target's invocations. The function answers 400s and 500s itself
    /// and returns normally, so only the runtime's EMF counts see them; Lambda's `Invocations` is the whole.
    fn error_rate(
        &self,
        label: &str,
        what: &str,
        failed: Failed,
        versions: &[&str],
        lambda_dims: &[(String, String)],
    ) -> AlarmSpec {
        let stat = |namespace: &str, name: &str, dims: Vec<(String, String)>| {
            Query::Metric(MetricStat {
                namespace: namespace.into(),
                name: name.into(),
                dimensions: sorted(dims),
                stat: "Sum".into(),
                period: RATE_PERIOD,
            })
        };
        let mut metrics: Vec<MetricQuery> = versions
            .iter()
            .map(|v| MetricQuery {
                id: format!("errors_v{v}"),
                query: stat(
                    &self.cfg.namespace,
                    failed.metric(),
                    vec![("FunctionName".into(), self.function.into()), ("FunctionVersion".into(), (*v).into())],
                ),
                return_data: false,
            })
            .collect();
        // FILL: a version that served nothing in the window has no datapoint, which would blank out the sum.
        let filled: Vec<String> = metrics.iter().map(|m| format!("FILL({}, 0)", m.id)).collect();
        let errors = match filled.as_slice() {
            [one] => one.clone(),
            many => format!("({})", many.join(" + ")),
        };
        metrics.push(MetricQuery {
            id: "invocations".into(),
            query: stat(LAMBDA, "Invocations", lambda_dims.to_vec()),
            return_data: false,
        });
        let min = self.cfg.error_rate_min_invocations;
        metrics.push(MetricQuery {
            id: "rate".into(),
            query: Query::Expression(format!("IF(invocations >= {min}, {errors} / invocations, 0)")),
            return_data: true,
        });
        let rate = match failed {
            Failed::Client => self.cfg.client_error_rate,
            Failed::Model => self.cfg.model_error_rate,
        };
        AlarmSpec {
            name: self.name(label, failed.kind()),
            description: format!(
                "mlambda: more than {} of answers from {what} were {} over 5 minutes (at least {min} invocations)",
                percent(rate),
                failed.status()
            ),
            namespace: String::new(),
            metric: String::new(),
            dimensions: Vec::new(),
            statistic: None,
            extended_statistic: None,
            period: None,
            evaluation_periods: 1,
            threshold: rate,
            comparison: "GreaterThanThreshold".into(),
            treat_missing_data: "notBreaching".into(),
            actions: self.cfg.sns_topic.iter().cloned().collect(),
            metrics,
        }
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
    // moto lets an alias route to its primary as well; counting that version twice would repeat a metric id.
    let mut versions: Vec<&str> = Vec::new();
    for r in routed {
        if !versions.contains(&r.version.as_str()) {
            versions.push(&r.version);
        }
    }
    let mut out = b.target(alias, &format!("alias `{resource}`"), dims(None), primary_model, &versions);
    for r in routed {
        let what = format!("version {} behind `{resource}`", r.version);
        out.extend(b.target(
            &format!("v{}", r.version),
            &what,
            dims(Some(&r.version)),
            r.model_version.as_deref(),
            &[&r.version],
        ));
    }
    validate(alias, &out, cfg)?;
    Ok(out)
}

/// CloudWatch's rule for a metric query id: a lowercase letter, then letters, digits and `_`.
fn valid_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.len() <= 255
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A metric-math alarm CloudWatch would take: few enough metrics, valid and unique ids, one result.
fn validate_math(s: &AlarmSpec) -> Result<()> {
    let bug = |why: String| {
        Error::user(format!("alarm `{}` {why}", s.name))
            .help("this is an mlambda bug; `mlambda alarms --dry-run --output json` shows the alarm")
    };
    if s.metrics.len() > MAX_METRICS {
        return Err(Error::user(format!(
            "alarm `{}` combines {} metrics and expressions, CloudWatch allows at most {MAX_METRICS}",
            s.name,
            s.metrics.len()
        ))
        .help("route the alias to fewer versions"));
    }
    for (i, m) in s.metrics.iter().enumerate() {
        if !valid_id(&m.id) {
            return Err(bug(format!(
                "has metric id `{}`; CloudWatch needs a lowercase letter first, then letters, digits and `_`",
                m.id
            )));
        }
        if s.metrics[..i].iter().any(|o| o.id == m.id) {
            return Err(bug(format!("uses metric id `{}` twice", m.id)));
        }
        if let Query::Metric(stat) = &m.query {
            if stat.period < 60 || stat.period % 60 != 0 {
                return Err(bug(format!("reads `{}` over {} s, CloudWatch needs a multiple of 60", m.id, stat.period)));
            }
        }
    }
    let returned = s.metrics.iter().filter(|m| m.return_data).count();
    if returned != 1 {
        return Err(bug(format!("returns {returned} results, CloudWatch alarms on exactly one")));
    }
    Ok(())
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
        if s.metrics.is_empty() {
            let period = s.period.unwrap_or_default();
            if period < 60 || period % 60 != 0 {
                return Err(Error::user(format!(
                    "the period of `{}` is {period} s, CloudWatch needs a multiple of 60",
                    s.name
                ))
                .help(edit));
            }
        } else {
            validate_math(s)?;
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

    #[test]
    fn version_alarms_are_told_from_the_aliass() {
        assert!(is_version_alarm("churn", "mlambda-churn-v12-errors"));
        assert!(!is_version_alarm("churn", "mlambda-churn-production-errors"));
        assert!(!is_version_alarm("churn", "mlambda-churn-vip-errors"));
        assert!(!is_version_alarm("churn-v2", "mlambda-churn-v2-errors"), "another function's prefix");
    }

    fn cfg() -> config::Alarms {
        config::Alarms { namespace: "ChurnModel".into(), ..Default::default() }
    }

    fn routed(v: &str, m: &str) -> Routed {
        Routed { version: v.into(), model_version: Some(m.into()) }
    }

    fn named<'a>(specs: &'a [AlarmSpec], name: &str) -> &'a AlarmSpec {
        specs.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no `{name}` in {specs:#?}"))
    }

    fn dims(d: &[(String, String)]) -> Vec<String> {
        d.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    fn stat(q: &MetricQuery) -> &MetricStat {
        match &q.query {
            Query::Metric(s) => s,
            Query::Expression(e) => panic!("`{}` is the expression {e}", q.id),
        }
    }

    fn expression(q: &MetricQuery) -> &str {
        match &q.query {
            Query::Expression(e) => e,
            Query::Metric(_) => panic!("`{}` is a metric", q.id),
        }
    }

    #[test]
    fn the_alias_and_each_routed_version_get_latency_errors_throttles_and_error_rates() {
        let specs = specs("churn", "production", Some("v3"), &[routed("3", "v3"), routed("4", "v4")], &cfg()).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        let per_target = ["latency-p99", "errors", "throttles", "client-errors", "model-errors"];
        let expected: Vec<String> = ["production", "v3", "v4"]
            .iter()
            .flat_map(|label| per_target.iter().map(move |kind| format!("mlambda-churn-{label}-{kind}")))
            .collect();
        assert_eq!(names, expected);
        let lat = named(&specs, "mlambda-churn-v4-latency-p99");
        assert_eq!((lat.namespace.as_str(), lat.metric.as_str()), ("ChurnModel", "InferenceLatencyMs"));
        assert_eq!((lat.statistic.as_deref(), lat.extended_statistic.as_deref()), (None, Some("p99")));
        assert_eq!(lat.dimensions, [("ModelVersion".to_string(), "v4".to_string())]);
        assert_eq!((lat.threshold, lat.period, lat.evaluation_periods), (500.0, Some(60), 1));
        let err = named(&specs, "mlambda-churn-v4-errors");
        assert_eq!(
            (err.namespace.as_str(), err.metric.as_str(), err.statistic.as_deref()),
            ("AWS/Lambda", "Errors", Some("Sum"))
        );
        assert_eq!((err.threshold, err.period), (5.0, Some(300)));
        assert_eq!(dims(&err.dimensions), ["ExecutedVersion=4", "FunctionName=churn", "Resource=churn:production"]);
        let thr = named(&specs, "mlambda-churn-production-throttles");
        assert_eq!((thr.metric.as_str(), thr.threshold, thr.period), ("Throttles", 0.0, Some(60)));
        assert_eq!(thr.dimensions.len(), 2);
        assert!(specs.iter().all(|s| s.treat_missing_data == "notBreaching" && s.comparison == "GreaterThanThreshold"));
        assert!(specs.iter().all(|s| s.actions.is_empty()));
    }

    #[test]
    fn a_version_error_rate_divides_its_emf_count_by_its_invocations_behind_the_alias() {
        let specs = specs("churn", "production", Some("v3"), &[routed("3", "v3"), routed("4", "v4")], &cfg()).unwrap();
        let client = named(&specs, "mlambda-churn-v4-client-errors");
        // Metric math only: the single-metric fields stay empty, as CloudWatch requires.
        assert_eq!((client.namespace.as_str(), client.metric.as_str(), client.period), ("", "", None));
        assert!(client.dimensions.is_empty() && client.statistic.is_none() && client.extended_statistic.is_none());
        assert_eq!(
            (client.threshold, client.comparison.as_str(), client.evaluation_periods),
            (0.05, "GreaterThanThreshold", 1)
        );
        let ids: Vec<&str> = client.metrics.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["errors_v4", "invocations", "rate"]);
        let errors = stat(&client.metrics[0]);
        assert_eq!((errors.namespace.as_str(), errors.name.as_str()), ("ChurnModel", "ClientErrors"));
        assert_eq!(dims(&errors.dimensions), ["FunctionName=churn", "FunctionVersion=4"]);
        assert_eq!((errors.stat.as_str(), errors.period), ("Sum", 300));
        let invocations = stat(&client.metrics[1]);
        assert_eq!((invocations.namespace.as_str(), invocations.name.as_str()), ("AWS/Lambda", "Invocations"));
        assert_eq!(
            dims(&invocations.dimensions),
            ["ExecutedVersion=4", "FunctionName=churn", "Resource=churn:production"]
        );
        assert_eq!((invocations.stat.as_str(), invocations.period), ("Sum", 300));
        assert_eq!(expression(&client.metrics[2]), "IF(invocations >= 10, FILL(errors_v4, 0) / invocations, 0)");
        let returned: Vec<bool> = client.metrics.iter().map(|m| m.return_data).collect();
        assert_eq!(returned, [false, false, true]);
        assert_eq!(
            client.description,
            "mlambda: more than 5% of answers from version 4 behind `churn:production` were 400s over 5 minutes \
             (at least 10 invocations)"
        );

        let model = named(&specs, "mlambda-churn-v4-model-errors");
        assert_eq!(stat(&model.metrics[0]).name, "ModelErrors");
        assert_eq!(model.threshold, 0.01);
        assert!(model.description.contains("more than 1% of answers") && model.description.contains("500s"));
    }

    #[test]
    fn the_alias_error_rate_sums_every_routed_version_against_the_alias_invocations() {
        let mut c = cfg();
        c.client_error_rate = 0.2;
        c.error_rate_min_invocations = 25;
        let all = specs("churn", "production", Some("v3"), &[routed("3", "v3"), routed("4", "v4")], &c).unwrap();
        let alias = named(&all, "mlambda-churn-production-client-errors");
        let ids: Vec<&str> = alias.metrics.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["errors_v3", "errors_v4", "invocations", "rate"]);
        assert_eq!(dims(&stat(&alias.metrics[0]).dimensions), ["FunctionName=churn", "FunctionVersion=3"]);
        assert_eq!(dims(&stat(&alias.metrics[1]).dimensions), ["FunctionName=churn", "FunctionVersion=4"]);
        assert!(alias.metrics[..2].iter().all(|m| stat(m).name == "ClientErrors" && stat(m).namespace == "ChurnModel"));
        assert_eq!(dims(&stat(&alias.metrics[2]).dimensions), ["FunctionName=churn", "Resource=churn:production"]);
        assert_eq!(
            expression(&alias.metrics[3]),
            "IF(invocations >= 25, (FILL(errors_v3, 0) + FILL(errors_v4, 0)) / invocations, 0)"
        );
        assert_eq!(alias.threshold, 0.2);
        assert!(alias.description.contains("more than 20% of answers from alias `churn:production` were 400s"));
        assert!(alias.description.ends_with("(at least 25 invocations)"), "{}", alias.description);

        // An alias that (wrongly) routes to its primary again counts that version once.
        let twice = specs("churn", "production", None, &[routed("3", "v3"), routed("3", "v3")], &cfg()).unwrap();
        let ids: Vec<&str> =
            named(&twice, "mlambda-churn-production-model-errors").metrics.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["errors_v3", "invocations", "rate"]);
    }

    #[test]
    fn a_metric_math_alarm_reads_as_its_expression_and_threshold() {
        let specs = specs("churn", "production", None, &[routed("4", "v4")], &cfg()).unwrap();
        assert_eq!(
            named(&specs, "mlambda-churn-v4-model-errors").to_string(),
            "mlambda-churn-v4-model-errors: IF(invocations >= 10, FILL(errors_v4, 0) / invocations, 0) > 0.01 over \
             300 s, where errors_v4 = ChurnModel/ModelErrors Sum, invocations = AWS/Lambda/Invocations Sum"
        );
        assert_eq!(
            named(&specs, "mlambda-churn-v4-errors").to_string(),
            "mlambda-churn-v4-errors: AWS/Lambda/Errors Sum > 5 over 300 s"
        );
    }

    #[test]
    fn a_metric_math_alarm_cloudwatch_would_refuse_is_refused() {
        let good = specs("churn", "production", None, &[routed("4", "v4")], &cfg()).unwrap();
        let math = named(&good, "mlambda-churn-v4-client-errors").clone();
        assert!(validate_math(&math).is_ok());
        let refused = |edit: &dyn Fn(&mut AlarmSpec)| {
            let mut s = math.clone();
            edit(&mut s);
            validate("production", &[s], &cfg()).unwrap_err().message
        };
        let e = refused(&|s| {
            let extra = s.metrics[0].clone();
            s.metrics.extend((0..8).map(|i| MetricQuery { id: format!("more{i}"), ..extra.clone() }));
        });
        assert!(e.contains("11 metrics") && e.contains("at most 10"), "{e}");
        let e = refused(&|s| s.metrics[0].id = "Errors".into());
        assert!(e.contains("metric id `Errors`") && e.contains("lowercase letter"), "{e}");
        let e = refused(&|s| s.metrics[0].id = "errors-v4".into());
        assert!(e.contains("metric id `errors-v4`"), "{e}");
        let e = refused(&|s| s.metrics[1].id = "errors_v4".into());
        assert!(e.contains("`errors_v4` twice"), "{e}");
        let e = refused(&|s| s.metrics[0].return_data = true);
        assert!(e.contains("returns 2 results"), "{e}");
        let e = refused(&|s| s.metrics[2].return_data = false);
        assert!(e.contains("returns 0 results"), "{e}");
        let e = refused(&|s| {
            if let Query::Metric(m) = &mut s.metrics[1].query {
                m.period = 90;
            }
        });
        assert!(e.contains("90 s"), "{e}");
    }

    #[test]
    fn a_version_without_a_model_version_gets_no_latency_alarm() {
        let specs =
            specs("churn", "production", None, &[Routed { version: "3".into(), model_version: None }], &cfg()).unwrap();
        assert!(specs.iter().all(|s| s.metric != "InferenceLatencyMs"));
        assert_eq!(specs.len(), 8);
    }

    #[test]
    fn without_a_routed_version_the_alias_gets_no_error_rate_alarms() {
        let specs = specs("churn", "production", Some("v1"), &[], &cfg()).unwrap();
        assert!(specs.iter().all(|s| s.metrics.is_empty()), "{specs:#?}");
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
        let v4_errors = desired.iter().find(|s| s.name == "mlambda-churn-v4-errors").unwrap();
        let stale = Alarm {
            spec: AlarmSpec { name: "mlambda-churn-v3-errors".into(), ..v4_errors.clone() },
            ..held(v4_errors)
        };
        let existing = vec![held(&desired[0]), changed, stale];
        let changes = sync_plan(&desired, &existing);
        assert_eq!(changes.iter().filter_map(AlarmChange::to_put).count(), desired.len() - 1);
        insta::assert_json_snapshot!("alarm_sync", changes);
        insta::assert_json_snapshot!("alarm_delete", delete_plan(&existing));
    }
}
