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
    assert_eq!(changes(&out).len(), 10);
    assert!(changes(&out).iter().all(|(_, c)| c == "created"), "{out:#}");
    let all = alarms(&f);
    assert_eq!(all.len(), 10, "{all:#?}");

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
    assert_eq!(changes(&out).len(), 15, "{out:#}");
    let all = alarms(&f);
    let lat = find(&all, &format!("mlambda-{n}-v2-latency-p99"));
    assert_eq!(dims(lat), ["ModelVersion=v2"]);
    assert_eq!(dims(find(&all, &format!("mlambda-{n}-v2-throttles")))[0], "ExecutedVersion=2");

    let dry = f.p.json(&["alarms", "--delete", "--dry-run"]);
    assert_eq!(changes(&dry).len(), 15);
    assert_eq!(alarms(&f).len(), 15);
    let del = f.p.json(&["alarms", "--delete"]);
    assert!(changes(&del).iter().all(|(_, c)| c == "deleted"));
    assert_eq!(alarms(&f), Vec::<Value>::new());
    assert_eq!(f.p.json(&["alarms", "--delete"])["alarms"], json!([]));
}

/// The `Metrics` of a metric-math alarm as AWS CLI JSON, by id.
fn query<'a>(alarm: &'a Value, id: &str) -> &'a Value {
    alarm["Metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["Id"] == id)
        .unwrap_or_else(|| panic!("no metric `{id}` in {alarm:#}"))
}

fn ids(alarm: &Value) -> Vec<String> {
    alarm["Metrics"].as_array().into_iter().flatten().map(|m| m["Id"].as_str().unwrap_or("").to_string()).collect()
}

/// `Namespace/MetricName Stat Period [dims]` of a `MetricStat` query.
fn metric_stat(q: &Value) -> (String, String, Vec<String>) {
    let ms = &q["MetricStat"];
    let m = &ms["Metric"];
    let what = format!("{}/{}", m["Namespace"].as_str().unwrap_or(""), m["MetricName"].as_str().unwrap_or(""));
    let how = format!("{} {}", ms["Stat"].as_str().unwrap_or(""), ms["Period"].as_i64().unwrap_or(0));
    (what, how, dims(m))
}

#[test]
fn error_rate_alarms_are_metric_math_over_the_runtime_counts_and_lambda_invocations() {
    let f = Fixture::new("al-rates");
    let n = f.name().to_string();
    f.publish("v2", None);
    f.p.json(&["rollout", "--weight", "0.1"]);
    f.p.write_config(&f.p.default_config().replace(
        "namespace: ChurnModel",
        "namespace: ChurnModel\n  client_error_rate: 0.1\n  error_rate_min_invocations: 20",
    ));
    let out = f.p.json(&["alarms"]);
    assert!(changes(&out).iter().all(|(_, c)| c == "created"), "{out:#}");
    let all = alarms(&f);
    let fv = |v: &str| vec![format!("FunctionName={n}"), format!("FunctionVersion={v}")];

    for (label, version) in [("v1", "1"), ("v2", "2")] {
        for (kind, metric, threshold) in [("client", "ClientErrors", 0.1), ("model", "ModelErrors", 0.01)] {
            let a = find(&all, &format!("mlambda-{n}-{label}-{kind}-errors"));
            // Metric math: nothing of a single-metric alarm is set.
            assert!(a["MetricName"].is_null() && a["Namespace"].is_null() && a["Period"].is_null(), "{a:#}");
            assert_eq!((a["Threshold"].as_f64(), a["EvaluationPeriods"].as_i64()), (Some(threshold), Some(1)));
            assert_eq!(a["ComparisonOperator"], "GreaterThanThreshold");
            assert_eq!(a["TreatMissingData"], "notBreaching");
            let errors = format!("errors_v{version}");
            assert_eq!(ids(a), [errors.as_str(), "invocations", "rate"]);
            assert_eq!(
                metric_stat(query(a, &errors)),
                (format!("ChurnModel/{metric}"), "Sum 300".to_string(), fv(version))
            );
            assert_eq!(
                metric_stat(query(a, "invocations")),
                (
                    "AWS/Lambda/Invocations".to_string(),
                    "Sum 300".to_string(),
                    vec![
                        format!("ExecutedVersion={version}"),
                        format!("FunctionName={n}"),
                        format!("Resource={n}:production")
                    ]
                )
            );
            let rate = query(a, "rate");
            assert_eq!(
                rate["Expression"].as_str(),
                Some(format!("IF(invocations >= 20, FILL({errors}, 0) / invocations, 0)").as_str())
            );
            assert_eq!(rate["ReturnData"], true);
            assert_eq!(
                (query(a, &errors)["ReturnData"].as_bool(), query(a, "invocations")["ReturnData"].as_bool()),
                (Some(false), Some(false))
            );
        }
    }
    let v2 = find(&all, &format!("mlambda-{n}-v2-client-errors"));
    assert_eq!(
        v2["AlarmDescription"].as_str(),
        Some(
            format!(
                "mlambda: more than 10% of answers from version 2 behind `{n}:production` were 400s over 5 minutes \
                 (at least 20 invocations)"
            )
            .as_str()
        )
    );

    // The alias counts the answers of both routed versions against its own invocations.
    let alias = find(&all, &format!("mlambda-{n}-production-model-errors"));
    assert_eq!(ids(alias), ["errors_v1", "errors_v2", "invocations", "rate"]);
    assert_eq!(metric_stat(query(alias, "errors_v1")).2, fv("1"));
    assert_eq!(metric_stat(query(alias, "errors_v2")).0, "ChurnModel/ModelErrors");
    assert_eq!(metric_stat(query(alias, "errors_v2")).2, fv("2"));
    assert_eq!(
        metric_stat(query(alias, "invocations")).2,
        [format!("FunctionName={n}"), format!("Resource={n}:production")]
    );
    assert_eq!(
        query(alias, "rate")["Expression"],
        "IF(invocations >= 20, (FILL(errors_v1, 0) + FILL(errors_v2, 0)) / invocations, 0)"
    );

    let again = f.p.json(&["alarms"]);
    assert_eq!(changes(&again).len(), 15);
    assert!(changes(&again).iter().all(|(_, c)| c == "unchanged"), "{again:#}");

    // A new rate updates only the alarms it sets.
    f.p.write_config(&f.p.default_config().replace(
        "namespace: ChurnModel",
        "namespace: ChurnModel\n  client_error_rate: 0.2\n  error_rate_min_invocations: 20",
    ));
    let upd = f.p.json(&["alarms"]);
    let changed: Vec<_> = changes(&upd).into_iter().filter(|(_, c)| c != "unchanged").collect();
    let updated = |label: &str| (format!("mlambda-{n}-{label}-client-errors"), "updated".to_string());
    assert_eq!(changed, [updated("production"), updated("v1"), updated("v2")]);
    assert_eq!(find(&alarms(&f), &format!("mlambda-{n}-v2-client-errors"))["Threshold"].as_f64(), Some(0.2));
}

#[test]
fn an_error_rate_outside_0_to_1_is_refused_naming_the_key() {
    let f = Fixture::new("al-badrate");
    f.p.write_config(
        &f.p.default_config().replace("namespace: ChurnModel", "namespace: ChurnModel\n  model_error_rate: 5"),
    );
    let e = f.p.fails(&["alarms"], 1);
    assert!(e.contains("`alarms.model_error_rate` is 5"), "{e}");
    assert!(alarms(&f).is_empty());
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
