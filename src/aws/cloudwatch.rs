//! CloudWatch alarms: upsert, read back with their states, delete.
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, StateValue, Statistic};

use super::{fail, Aws};
use crate::error::Result;
use crate::plan::alarms::{Alarm, AlarmSpec, AlarmState};

fn alarm_state(s: Option<&StateValue>) -> AlarmState {
    match s {
        Some(StateValue::Ok) => AlarmState::Ok,
        Some(StateValue::Alarm) => AlarmState::Alarm,
        Some(StateValue::InsufficientData) => AlarmState::InsufficientData,
        Some(other) => AlarmState::Other(other.as_str().to_string()),
        None => AlarmState::Other(String::new()),
    }
}

fn alarm_from(a: &MetricAlarm) -> Alarm {
    let mut dimensions: Vec<(String, String)> = a
        .dimensions()
        .iter()
        .map(|d| (d.name().unwrap_or_default().to_string(), d.value().unwrap_or_default().to_string()))
        .collect();
    dimensions.sort();
    Alarm {
        spec: AlarmSpec {
            name: a.alarm_name().unwrap_or_default().to_string(),
            description: a.alarm_description().unwrap_or_default().to_string(),
            namespace: a.namespace().unwrap_or_default().to_string(),
            metric: a.metric_name().unwrap_or_default().to_string(),
            dimensions,
            statistic: a.statistic().map(|s| s.as_str().to_string()),
            extended_statistic: a.extended_statistic().map(str::to_string),
            period: a.period().unwrap_or_default(),
            evaluation_periods: a.evaluation_periods().unwrap_or_default(),
            threshold: a.threshold().unwrap_or_default(),
            comparison: a.comparison_operator().map(|c| c.as_str().to_string()).unwrap_or_default(),
            treat_missing_data: a.treat_missing_data().unwrap_or_default().to_string(),
            actions: a.alarm_actions().to_vec(),
        },
        state: alarm_state(a.state_value()),
        reason: a.state_reason().unwrap_or_default().to_string(),
    }
}

/// Creates the alarm or overwrites its definition; CloudWatch keeps the state of an existing alarm.
pub async fn put_metric_alarm(aws: &Aws, s: &AlarmSpec) -> Result<()> {
    let dims = s.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build());
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(&s.name)
        .alarm_description(&s.description)
        .namespace(&s.namespace)
        .metric_name(&s.metric)
        .set_dimensions(Some(dims.collect()))
        .set_statistic(s.statistic.as_deref().map(Statistic::from))
        .set_extended_statistic(s.extended_statistic.clone())
        .period(s.period)
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
