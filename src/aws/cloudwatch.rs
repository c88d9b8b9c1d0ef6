//! CloudWatch alarms: upsert, read back with their states, delete.
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat as SdkMetricStat, StateValue,
    Statistic,
};

use super::{fail, Aws};
use crate::error::Result;
use crate::plan::alarms::{Alarm, AlarmSpec, AlarmState, MetricQuery, MetricStat, Query};

fn alarm_state(s: Option<&StateValue>) -> AlarmState {
    match s {
        Some(StateValue::Ok) => AlarmState::Ok,
        Some(StateValue::Alarm) => AlarmState::Alarm,
        Some(StateValue::InsufficientData) => AlarmState::InsufficientData,
        Some(other) => AlarmState::Other(other.as_str().to_string()),
        None => AlarmState::Other(String::new()),
    }
}

fn dimensions_from(dims: &[Dimension]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = dims
        .iter()
        .map(|d| (d.name().unwrap_or_default().to_string(), d.value().unwrap_or_default().to_string()))
        .collect();
    out.sort();
    out
}

fn dimensions_to(dims: &[(String, String)]) -> Vec<Dimension> {
    dims.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect()
}

/// One entry of `Metrics`, keeping only what a spec holds: a `Label`, an `AccountId` or a `Period` on an
/// expression (which mlambda never sets, and which CloudWatch or moto may add) would otherwise make every
/// re-run an update.
fn query_from(q: &MetricDataQuery) -> MetricQuery {
    let query = match (q.expression(), q.metric_stat()) {
        (Some(e), _) => Query::Expression(e.to_string()),
        (None, Some(ms)) => {
            let m = ms.metric();
            Query::Metric(MetricStat {
                namespace: m.and_then(Metric::namespace).unwrap_or_default().to_string(),
                name: m.and_then(Metric::metric_name).unwrap_or_default().to_string(),
                dimensions: dimensions_from(m.map(Metric::dimensions).unwrap_or_default()),
                stat: ms.stat().unwrap_or_default().to_string(),
                period: ms.period().unwrap_or_default(),
            })
        }
        // Neither: equal to no spec, so the next `mlambda alarms` rewrites it.
        (None, None) => Query::Expression(String::new()),
    };
    MetricQuery {
        id: q.id().unwrap_or_default().to_string(),
        query,
        // CloudWatch's default when ReturnData is left out, which moto echoes as absent.
        return_data: q.return_data().unwrap_or(true),
    }
}

fn query_to(q: &MetricQuery) -> MetricDataQuery {
    let b = MetricDataQuery::builder().id(&q.id).return_data(q.return_data);
    match &q.query {
        Query::Expression(e) => b.expression(e),
        Query::Metric(m) => b.metric_stat(
            SdkMetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(&m.namespace)
                        .metric_name(&m.name)
                        .set_dimensions(Some(dimensions_to(&m.dimensions)))
                        .build(),
                )
                .period(m.period)
                .stat(&m.stat)
                .build(),
        ),
    }
    .build()
}

fn alarm_from(a: &MetricAlarm) -> Alarm {
    let metrics: Vec<MetricQuery> = a.metrics().iter().map(query_from).collect();
    Alarm {
        spec: AlarmSpec {
            name: a.alarm_name().unwrap_or_default().to_string(),
            description: a.alarm_description().unwrap_or_default().to_string(),
            namespace: a.namespace().unwrap_or_default().to_string(),
            metric: a.metric_name().unwrap_or_default().to_string(),
            dimensions: dimensions_from(a.dimensions()),
            statistic: a.statistic().map(|s| s.as_str().to_string()),
            extended_statistic: a.extended_statistic().map(str::to_string),
            // A metric-math alarm has no period of its own, whatever a server echoes.
            period: if metrics.is_empty() { a.period() } else { None },
            evaluation_periods: a.evaluation_periods().unwrap_or_default(),
            threshold: a.threshold().unwrap_or_default(),
            comparison: a.comparison_operator().map(|c| c.as_str().to_string()).unwrap_or_default(),
            treat_missing_data: a.treat_missing_data().unwrap_or_default().to_string(),
            actions: a.alarm_actions().to_vec(),
            metrics,
        },
        state: alarm_state(a.state_value()),
        reason: a.state_reason().unwrap_or_default().to_string(),
    }
}

/// Creates the alarm or overwrites its definition; CloudWatch keeps the state of an existing alarm.
/// A metric-math spec sends only `Metrics`: CloudWatch refuses them beside a namespace, metric or period.
pub async fn put_metric_alarm(aws: &Aws, s: &AlarmSpec) -> Result<()> {
    let single = s.metrics.is_empty();
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(&s.name)
        .alarm_description(&s.description)
        .set_namespace(single.then(|| s.namespace.clone()))
        .set_metric_name(single.then(|| s.metric.clone()))
        .set_dimensions(single.then(|| dimensions_to(&s.dimensions)))
        .set_statistic(s.statistic.as_deref().map(Statistic::from))
        .set_extended_statistic(s.extended_statistic.clone())
        .set_period(s.period)
        .set_metrics((!single).then(|| s.metrics.iter().map(query_to).collect()))
        .evaluation_periods(s.evaluation_periods)
        .threshold(s.threshold)
        .comparison_operator(ComparisonOperator::from(s.comparison.as_str()))
        .treat_missing_data(&s.treat_missing_data)
        .set_alarm_actions(Some(s.actions.clone()))
        .send()
        .await
        .map_err(|e| fail(format!("put alarm `{}`", s.name), e))?;
    Ok(())
}

/// Every metric alarm whose name starts with `prefix`, sorted by name.
pub async fn describe_alarms(aws: &Aws, prefix: &str) -> Result<Vec<Alarm>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| fail(format!("describe the alarms starting with `{prefix}`"), e))?;
        out.extend(page.metric_alarms().iter().map(alarm_from));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    Ok(out)
}

/// Deletes the named alarms, 100 per call as CloudWatch allows.
pub async fn delete_alarms(aws: &Aws, names: &[String]) -> Result<()> {
    for chunk in names.chunks(100) {
        aws.cloudwatch
            .delete_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| fail(format!("delete alarms {}", chunk.join(", ")), e))?;
    }
    Ok(())
}

/// The `Sum` of one metric over [start, end) (epoch seconds), added up over periods of `period` seconds (a multiple
/// of 60, at most 1,440 of them per call, which `report` ensures); `None` when CloudWatch has no datapoint.
pub async fn metric_sum(
    aws: &Aws,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    start: i64,
    end: i64,
    period: i32,
) -> Result<Option<f64>> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    let dims = dimensions.iter().map(|(k, v)| Dimension::builder().name(*k).value(*v).build());
    let out = aws
        .cloudwatch
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .set_dimensions(Some(dims.collect()))
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(end))
        .period(period)
        .statistics(Statistic::Sum)
        .send()
        .await
        .map_err(|e| fail(format!("read metric {namespace}/{metric}"), e))?;
    let points = out.datapoints();
    Ok((!points.is_empty()).then(|| points.iter().filter_map(|d| d.sum()).sum()))
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatch::types::MetricAlarm;

    use super::*;
    use crate::config;
    use crate::plan::alarms::{self, Routed};

    fn desired() -> Vec<AlarmSpec> {
        let cfg = config::Alarms { namespace: "ChurnModel".into(), ..Default::default() };
        let routed = |v: &str, m: &str| Routed { version: v.into(), model_version: Some(m.into()) };
        alarms::specs("churn", "production", Some("v3"), &[routed("3", "v3"), routed("4", "v4")], &cfg).unwrap()
    }

    /// The alarm CloudWatch would hold after `put_metric_alarm(spec)`, with `extra` applied to each query.
    fn held(spec: &AlarmSpec, extra: impl Fn(MetricDataQuery) -> MetricDataQuery) -> MetricAlarm {
        MetricAlarm::builder()
            .alarm_name(&spec.name)
            .alarm_description(&spec.description)
            .set_namespace(Some(spec.namespace.clone()).filter(|n| !n.is_empty()))
            .set_metric_name(Some(spec.metric.clone()).filter(|m| !m.is_empty()))
            .set_dimensions(Some(dimensions_to(&spec.dimensions)))
            .set_statistic(spec.statistic.as_deref().map(Statistic::from))
            .set_extended_statistic(spec.extended_statistic.clone())
            .set_period(spec.period)
            .evaluation_periods(spec.evaluation_periods)
            .threshold(spec.threshold)
            .comparison_operator(ComparisonOperator::from(spec.comparison.as_str()))
            .treat_missing_data(&spec.treat_missing_data)
            .set_alarm_actions(Some(spec.actions.clone()))
            .set_metrics(Some(spec.metrics.iter().map(query_to).map(&extra).collect()))
            .state_value(StateValue::Ok)
            .build()
    }

    #[test]
    fn every_spec_reads_back_equal_to_itself() {
        for spec in desired() {
            assert_eq!(alarm_from(&held(&spec, |q| q)).spec, spec, "{}", spec.name);
        }
    }

    #[test]
    fn what_a_server_adds_to_metric_math_or_leaves_out_does_not_make_an_update() {
        let specs = desired();
        let math: Vec<&AlarmSpec> = specs.iter().filter(|s| !s.metrics.is_empty()).collect();
        assert_eq!(math.len(), 6);
        for spec in math {
            // A label on every query, a period on the expression, ReturnData left out where it is true (its
            // default), a top-level period: none of them is part of the spec.
            let mut alarm = held(spec, |mut q| {
                q.label = Some("shown in the console".into());
                if q.expression.is_some() {
                    q.period = Some(300);
                }
                if q.return_data == Some(true) {
                    q.return_data = None;
                }
                q
            });
            alarm.period = Some(300);
            assert_eq!(alarm_from(&alarm).spec, *spec, "{}", spec.name);
        }
    }
}
