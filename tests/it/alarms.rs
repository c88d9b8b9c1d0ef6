//! `mlambda alarms` against moto: the alarms read back with the AWS CLI, idempotent re-runs, `--delete`.
use serde_json::{json, Value};

use crate::common::aws_cli;
use crate::rollout::Fixture;

fn alarms(f: &Fixture) -> Vec<Value> {
    let out = aws_cli(&["cloudwatch", "describe-alarms", "--alarm-name-prefix", &format!("mlambda-{}-", f.name())]);
    out["MetricAlarms"].as_array().cloned().unwrap_or_default()
}

fn find<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter().find(|a| a["AlarmName"] == name).unwrap_or_else(|| panic!("no alarm `{name}` in {all:#?}"))
}

fn dims(a: &Value) -> Vec<String> {
    let mut d: Vec<String> = a["Dimensions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| format!("{}={}", d["Name"].as_str().unwrap_or(""), d["Value"].as_str().unwrap_or("")))
        .collect();
    d.sort();
    d
}

fn changes(out: &Value) -> Vec<(String, String)> {
    out["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| (a["name"].as_str().unwrap_or("").to_string(), a["change"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[test]
fn alarms_are_created_with_the_right_metrics_and_a_second_run_is_unchanged() {
    let f = Fixture::new("al-create");
    let n = f.name().to_string();

    let dry = f.p.json(&["alarms", "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert!(changes(&dry).iter().all(|(_, c)| c == "created"));
    assert!(alarms(&f).is_empty(), "a dry run must create nothing");

    let out = f.p.json(&["alarms"]);
    assert_eq!(changes(&out).len(), 6);
    assert!(changes(&out).iter().all(|(_, c)| c == "created"), "{out:#}");
    let all = alarms(&f);
    assert_eq!(all.len(), 6, "{all:#?}");

    let lat = find(&all, &format!("mlambda-{n}-production-latency-p99"));
    assert_eq!(lat["Namespace"], "ChurnModel");
    assert_eq!(lat["MetricName"], "InferenceLatencyMs");
    assert_eq!(lat["ExtendedStatistic"], "p99");
    assert_eq!(dims(lat), ["ModelVersion=v1"]);
    assert_eq!((lat["Threshold"].as_f64(), lat["Period"].as_i64()), (Some(500.0), Some(60)));
    assert_eq!(lat["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(lat["TreatMissingData"], "notBreaching");

    let err = find(&all, &format!("mlambda-{n}-v1-errors"));
    assert_eq!((err["Namespace"].as_str(), err["MetricName"].as_str()), (Some("AWS/Lambda"), Some("Errors")));
    assert_eq!(err["Statistic"], "Sum");
    assert_eq!(
        dims(err),
        ["ExecutedVersion=1".to_string(), format!("FunctionName={n}"), format!("Resource={n}:production")]
    );
    assert_eq!(
        (err["Threshold"].as_f64(), err["Period"].as_i64(), err["EvaluationPeriods"].as_i64()),
        (Some(5.0), Some(300), Some(1))
    );

    let thr = find(&all, &format!("mlambda-{n}-production-throttles"));
    assert_eq!(dims(thr), [format!("FunctionName={n}"), format!("Resource={n}:production")]);
    assert_eq!((thr["Threshold"].as_f64(), thr["Period"].as_i64()), (Some(0.0), Some(60)));

    let again = f.p.json(&["alarms"]);
    assert!(changes(&again).iter().all(|(_, c)| c == "unchanged"), "{again:#}");

    // A config change updates in place.
    f.p.write_config(
        &f.p.default_config().replace("namespace: ChurnModel", "namespace: ChurnModel\n  latency_p99_ms: 250"),
    );
    let upd = f.p.json(&["alarms"]);
    let changed: Vec<_> = changes(&upd).into_iter().filter(|(_, c)| c == "updated").map(|(n, _)| n).collect();
    assert_eq!(changed, [format!("mlambda-{n}-production-latency-p99"), format!("mlambda-{n}-v1-latency-p99")]);
    assert_eq!(find(&alarms(&f), &format!("mlambda-{n}-v1-latency-p99"))["Threshold"].as_f64(), Some(250.0));
}

#[test]
fn a_routed_candidate_gets_its_own_alarms_and_delete_removes_them_all() {
    let f = Fixture::new("al-routed");
    let n = f.name().to_string();
    f.publish("v2", None);
    f.p.json(&["rollout", "--weight", "0.1"]);
    let out = f.p.json(&["alarms"]);
    assert_eq!(changes(&out).len(), 9, "{out:#}");
    let all = alarms(&f);
    let lat = find(&all, &format!("mlambda-{n}-v2-latency-p99"));
    assert_eq!(dims(lat), ["ModelVersion=v2"]);
    assert_eq!(dims(find(&all, &format!("mlambda-{n}-v2-throttles")))[0], "ExecutedVersion=2");

    let dry = f.p.json(&["alarms", "--delete", "--dry-run"]);
    assert_eq!(changes(&dry).len(), 9);
    assert_eq!(alarms(&f).len(), 9);
    let del = f.p.json(&["alarms", "--delete"]);
    assert!(changes(&del).iter().all(|(_, c)| c == "deleted"));
    assert_eq!(alarms(&f), Vec::<Value>::new());
    assert_eq!(f.p.json(&["alarms", "--delete"])["alarms"], json!([]));
}

#[test]
fn an_invalid_sns_topic_is_refused_before_anything_is_created() {
    let f = Fixture::new("al-sns");
    f.p.write_config(
        &f.p.default_config().replace("namespace: ChurnModel", "namespace: ChurnModel\n  sns_topic: alerts"),
    );
    let e = f.p.fails(&["alarms"], 1);
    assert!(e.contains("`alarms.sns_topic` `alerts` is not an SNS topic ARN"), "{e}");
    assert!(alarms(&f).is_empty());
}
