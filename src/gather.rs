//! A report's evidence for two versions over a window, gathered from AWS (the versions' models, Lambda's metrics,
//! the prediction log) and computed: `report` shows it and `rollout` acts on its verdict. A backtest's evidence
//! is gathered from batch runs' output in S3 instead, one part file at a time; a shadow report's from the same log.
//! Also what the alarms are planned from: the versions an alias routes to and the model each serves.
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::aws::logs::{self, Logs};
use crate::aws::{cloudwatch, lambda, s3, Aws, Target};
use crate::config::Config;
use crate::error::{io_error, Error, Result};
use crate::plan::alarms::Routed;
use crate::plan::evidence::Look;
use crate::plan::lambda::{Alias, FunctionInfo};
use crate::plan::predlog::{Collector, Outcomes, ShadowCollector};
use crate::plan::report::{self, Inputs, Metrics, ShadowInputs};
use crate::ui::{progress, Printer};
use crate::{ledger, state};
use mlambda_runtime::batch::FailedRow;
use mlambda_runtime::logline;

/// Server-side filter on the prediction, error and failed shadow copy lines ([`logline::PREDICTION`],
/// [`logline::ERROR`], [`logline::SHADOW_ERROR`]); lines it lets through are still checked one by one, and the
/// live report leaves shadow lines out there.
pub const FILTER_PATTERN: &str =
    r#"{ ($.mlambda = "prediction") || ($.mlambda = "error") || ($.mlambda = "shadow_error") }"#;

/// GetMetricStatistics' period for a window: at most 1,440 datapoints per call, and the coarser minimums
/// CloudWatch enforces for data older than 15 and 63 days.
pub fn metric_period(window_secs: i64, start_age_secs: i64) -> i32 {
    let floor = if start_age_secs > 63 * 86_400 {
        3600
    } else if start_age_secs > 15 * 86_400 {
        300
    } else {
        60
    };
    let needed = (window_secs + 1439) / 1440;
    let period = needed.max(floor);
    let period = (period + floor - 1) / floor * floor;
    i32::try_from(period).unwrap_or(i32::MAX / 3600 * 3600)
}

fn epoch_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The `Sum`s of `metrics` in `namespace` with `dims` over `window`, as counts; `None` where CloudWatch had no
/// datapoint.
async fn counts<const N: usize>(
    aws: &Aws,
    namespace: &str,
    metrics: [&str; N],
    dims: &[(&str, &str)],
    window: (i64, i64),
    period: i32,
) -> Result<[Option<u64>; N]> {
    let mut out = [None; N];
    for (sum, metric) in out.iter_mut().zip(metrics) {
        let v = cloudwatch::metric_sum(aws, namespace, metric, dims, window.0, window.1, period).await?;
        *sum = v.map(|x| x.round().max(0.0) as u64);
    }
    Ok(out)
}

/// Lambda's Invocations, Errors and Throttles for one version through the alias, and the runtime's EMF counts of
/// its 400 and 500 answers (namespace `alarms.namespace`).
async fn version_metrics(aws: &Aws, config: &Config, version: &str, window: (i64, i64)) -> Result<Metrics> {
    let (function, alias) = (config.function.name.as_str(), config.function.alias.as_str());
    let resource = format!("{function}:{alias}");
    let dims = [("FunctionName", function), ("Resource", resource.as_str()), ("ExecutedVersion", version)];
    let now = epoch_secs(SystemTime::now());
    let period = metric_period(window.1 - window.0, now - window.0);
    let lambda = ["Invocations", "Errors", "Throttles"];
    let [invocations, errors, throttles] = counts(aws, "AWS/Lambda", lambda, &dims, window, period).await?;
    let emf_dims = [("FunctionName", function), ("FunctionVersion", version)];
    let ns = config.alarms.namespace.as_str();
    let emf = [logline::CLIENT_ERRORS, logline::MODEL_ERRORS];
    let [client_errors, model_errors] = counts(aws, ns, emf, &emf_dims, window, period).await?;
    Ok(Metrics { invocations, errors, throttles, client_errors, model_errors })
}

/// Which two versions to compare, over which window.
pub struct Request {
    pub baseline: String,
    pub candidate: String,
    pub traffic_share: Option<f64>,
    pub since: SystemTime,
    pub until: SystemTime,
    pub outcomes: Option<Outcomes>,
    /// Which look at the candidate this is (α spending).
    pub look: Look,
}

/// Hands every prediction, error and failed shadow copy line of `function`'s log group in the window to `each`,
/// with a spinner. Returns whether the group exists: a missing one is a warning (the function has logged nothing
/// yet), never an error.
pub async fn read_log(
    target: &Target,
    printer: &Printer,
    function: &str,
    (since, until): (SystemTime, SystemTime),
    mut each: impl FnMut(&str),
) -> Result<bool> {
    let group = format!("/aws/lambda/{function}");
    let spinner = progress::spinner(printer, format!("reading {group}"));
    let started = std::time::Instant::now();
    let logs = Logs::connect(target).await;
    let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let mut seen = 0u64;
    let read = logs::for_each_message(&logs, &group, FILTER_PATTERN, ms(since), ms(until), |m| {
        each(m);
        seen += 1;
        if seen.is_multiple_of(10_000) {
            spinner.set_message(format!("reading {group}: {seen} events"));
        }
    })
    .await?;
    spinner.finish_and_clear();
    match read {
        Some(n) => printer.status(format!("read {n} log events from {group} in {:.1?}", started.elapsed())),
        None => printer.warn(format!("log group `{group}` does not exist: the function has logged nothing yet")),
    }
    Ok(read.is_some())
}

/// A shadow's evidence over `(since, until)`: the shadow target's answers paired with the primary's on
/// (correlation id, row), computed into a report with its verdict. `who` names (baseline, candidate) when the
/// caller knows them; otherwise they come from the log (the shadow target with most lines, and its primary).
pub async fn shadow(
    target: &Target,
    printer: &Printer,
    config: &Config,
    (since, until): (SystemTime, SystemTime),
    outcomes: Option<Outcomes>,
    who: (Option<String>, Option<String>),
) -> Result<report::ShadowReport> {
    let (function, alias) = (config.function.name.as_str(), config.function.alias.as_str());
    let mut collector = ShadowCollector::new(outcomes);
    read_log(target, printer, function, (since, until), |m| collector.add(m)).await?;
    if collector.unreadable > 0 {
        printer.warn(format!("{} log lines looked like ours but did not parse", collector.unreadable));
    }
    let (from, to) =
        (humantime::format_rfc3339_seconds(since).to_string(), humantime::format_rfc3339_seconds(until).to_string());
    let shadows = collector.shadow_versions();
    let candidate = match (&who.1, shadows.first()) {
        (Some(c), _) => c.clone(),
        (None, Some((v, _))) => v.clone(),
        (None, None) => {
            return Err(Error::user(format!(
                "no shadow copy of a request to `{function}` is in its log between {from} and {to}"
            ))
            .help("start shadowing with `mlambda shadow --version N`, or widen the window with `--since 7d`"));
        }
    };
    if !shadows.iter().any(|(v, _)| *v == candidate) {
        let seen: Vec<&str> = shadows.iter().map(|(v, _)| v.as_str()).collect();
        let help = match seen.as_slice() {
            [] => "start shadowing with `mlambda shadow --version N`, or widen the window with `--since 7d`".into(),
            _ => format!(
                "versions {} were shadow targets in the window: pass one of them to --candidate",
                seen.join(", ")
            ),
        };
        return Err(Error::user(format!(
            "no shadow copy to version {candidate} of `{function}` is in its log between {from} and {to}"
        ))
        .help(help));
    }
    let baseline = match (&who.0, collector.primary_of(&candidate)) {
        (Some(b), _) => b.clone(),
        (None, Some(b)) => b,
        // no copied request in the window, only failed copies: the alias's primary sent them
        (None, None) => {
            let aws = Aws::connect(target).await?;
            match lambda::get_alias(&aws, function, alias).await? {
                Some(a) => a.primary,
                None => {
                    return Err(Error::user(format!("no primary's copied request of `{function}` is in the window"))
                        .help("name the primary with `--baseline N`, or widen the window with `--since 7d`"))
                }
            }
        }
    };
    if baseline == candidate {
        return Err(Error::user(format!("baseline and candidate are both version {candidate}"))
            .help("pass the shadow target with `--candidate N` and the primary with `--baseline M`"));
    }
    let other_shadow_versions = shadows.iter().map(|(v, _)| v.clone()).filter(|v| *v != candidate).collect();
    let (has_outcomes, unreadable) = (collector.has_outcomes(), collector.unreadable);
    let shadowed = collector.pair(&baseline, &candidate);
    let inputs = ShadowInputs {
        function: function.to_string(),
        alias: alias.to_string(),
        since: from,
        until: to,
        baseline,
        candidate,
        other_shadow_versions,
        thresholds: config.rollout.evidence.clone(),
    };
    let r = crate::plan::report::build_shadow(&inputs, shadowed, has_outcomes, unreadable);
    if !r.other_shadow_versions.is_empty() {
        printer.warn(format!(
            "versions {} also answered shadow copies in the window and were left out (pick one with --candidate)",
            r.other_shadow_versions.join(", ")
        ));
    }
    if r.unreadable_labels > 0 {
        printer.warn(format!(
            "{} outcome labels were neither the positive nor the negative class and were left out",
            r.unreadable_labels
        ));
    }
    Ok(r)
}

/// Gathers the evidence for `req` and computes the report and its verdict. A missing log group or version is a
/// warning and leaves figures empty (a `continue` verdict), never an error.
pub async fn evidence(
    aws: &Aws,
    target: &Target,
    printer: &Printer,
    config: &Config,
    req: Request,
) -> Result<report::Report> {
    let (function, alias) = (config.function.name.as_str(), config.function.alias.as_str());
    let Request { baseline, candidate, traffic_share, since, until, outcomes, look } = req;
    let mut model_versions = BTreeMap::new();
    for v in [&baseline, &candidate] {
        match lambda::get_version(aws, function, v).await? {
            Some(info) => {
                if let Some(m) = info.env.get(mlambda_runtime::env::MODEL_VERSION).filter(|m| !m.is_empty()) {
                    model_versions.insert(v.clone(), m.clone());
                }
            }
            None => printer.warn(format!("version {v} of `{function}` does not exist; its figures will be empty")),
        }
    }
    let secs = (epoch_secs(since), epoch_secs(until));
    let mut metrics = BTreeMap::new();
    for v in [&baseline, &candidate] {
        metrics.insert(v.clone(), version_metrics(aws, config, v, secs).await?);
    }

    let mut collector = Collector::new(outcomes);
    read_log(target, printer, function, (since, until), |m| collector.add(m)).await?;
    if collector.unreadable > 0 {
        printer.warn(format!("{} log lines looked like predictions but did not parse", collector.unreadable));
    }
    let window = until.duration_since(since).unwrap_or_default();
    let inputs = Inputs {
        function: function.to_string(),
        alias: alias.to_string(),
        since: humantime::format_rfc3339_seconds(since).to_string(),
        until: humantime::format_rfc3339_seconds(until).to_string(),
        window_hours: window.as_secs_f64() / 3600.0,
        baseline,
        candidate,
        traffic_share,
        model_versions,
        metrics,
        thresholds: config.rollout.evidence.clone(),
        look,
    };
    Ok(report::build(&inputs, collector))
}

/// The report's verdict as `.mlambda/state.json` keeps it, for `status`.
pub fn last_verdict(r: &report::Report) -> state::LastVerdict {
    state::LastVerdict {
        verdict: r.verdict,
        baseline: r.baseline.clone(),
        candidate: r.candidate.clone(),
        time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        reasons: r.reasons.clone(),
    }
}

/// Records the report's verdict where every operator's `status` reads it (`ledger`).
pub async fn record(aws: &Aws, config: &Config, state_dir: &Path, printer: &Printer, r: &report::Report) -> Result<()> {
    ledger::update(aws, config, state_dir, printer, |s| s.verdict = Some(last_verdict(r))).await?;
    Ok(())
}

/// What `report` reads of a batch run's `run.json`; `batch run` writes more.
#[derive(Debug, Clone, Deserialize)]
pub struct RunRecord {
    /// The run's id.
    pub run: String,
    pub function: String,
    /// The function version that scored it.
    pub version: String,
}

/// The record of the batch run under `prefix` (ending in `/`) in `bucket`.
pub async fn read_run(aws: &Aws, bucket: &str, prefix: &str) -> Result<RunRecord> {
    let key = format!("{prefix}run.json");
    let Some(bytes) = s3::get_small(aws, bucket, &key).await? else {
        return Err(Error::user(format!("`s3://{bucket}/{prefix}` holds no batch run: it has no `run.json`"))
            .help("pass a run's address as `mlambda batch run` printed it, `s3://BUCKET/PREFIX/<run>/`"));
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::user(format!("`s3://{bucket}/{key}` is not a run record ({e})"))
            .help("`run.json` is written by `mlambda batch run`; score the input again to replace it")
    })
}

/// The `.jsonl` part files under `prefix`, in order.
async fn parts(aws: &Aws, bucket: &str, prefix: &str) -> Result<Vec<String>> {
    Ok(s3::list_keys(aws, bucket, prefix)
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.ends_with(".jsonl"))
        .collect())
}

/// Downloads one part into `dir` and hands `line` each of its lines: memory holds one line at a time.
async fn each_line(aws: &Aws, bucket: &str, key: &str, dir: &Path, mut line: impl FnMut(&str)) -> Result<()> {
    let path = dir.join("part.jsonl");
    if s3::download(aws, bucket, key, &path).await?.is_none() {
        // listed a moment ago: a run being rewritten (a redrive) removed it
        return Err(Error::cloud(format!("`s3://{bucket}/{key}` disappeared while the run was read"))
            .help("wait until the run has finished, then report again"));
    }
    let file = std::fs::File::open(&path).map_err(|e| io_error(&path, "read the downloaded part", e))?;
    let mut reader = std::io::BufReader::new(file);
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).map_err(|e| io_error(&path, "read the downloaded part", e))?;
        if n == 0 {
            return Ok(());
        }
        line(&buf);
    }
}

/// How many part files of a run were read.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunParts {
    pub out: u64,
    pub failures: u64,
}

/// Folds a batch run's answered rows (`out/`) and failed rows (`failures/`) into `collector`, one part at a time
/// through a temporary file. A run with no answered part is refused: there is nothing to judge yet.
pub async fn fold_run(
    aws: &Aws,
    printer: &Printer,
    (bucket, prefix): (&str, &str),
    version: &str,
    collector: &mut Collector,
) -> Result<RunParts> {
    let out = parts(aws, bucket, &format!("{prefix}out/")).await?;
    if out.is_empty() {
        return Err(Error::user(format!("batch run `s3://{bucket}/{prefix}` has no output yet: `out/` is empty"))
            .help("wait until it has finished (`mlambda batch status RUN`), then report again"));
    }
    let failures = parts(aws, bucket, &format!("{prefix}failures/")).await?;
    let dir = tempfile::tempdir().map_err(|e| Error::local(format!("cannot create a temporary directory: {e}")))?;
    let spinner = progress::spinner(printer, format!("reading s3://{bucket}/{prefix}"));
    let started = std::time::Instant::now();
    let total = out.len() + failures.len();
    for (i, key) in out.iter().enumerate() {
        spinner.set_message(format!("reading s3://{bucket}/{prefix}: part {} of {total}", i + 1));
        each_line(aws, bucket, key, dir.path(), |l| collector.add_scored(l)).await?;
    }
    for (i, key) in failures.iter().enumerate() {
        spinner.set_message(format!("reading s3://{bucket}/{prefix}: part {} of {total}", out.len() + i + 1));
        each_line(aws, bucket, key, dir.path(), |l| match serde_json::from_str::<FailedRow>(l.trim()) {
            Ok(row) => collector.add_failed(version, &row),
            Err(_) if l.trim().is_empty() => {}
            Err(_) => collector.unreadable += 1,
        })
        .await?;
    }
    spinner.finish_and_clear();
    printer.status(format!(
        "read {} output and {} failure parts of s3://{bucket}/{prefix} in {:.1?}",
        out.len(),
        failures.len(),
        started.elapsed()
    ));
    Ok(RunParts { out: out.len() as u64, failures: failures.len() as u64 })
}

/// Records a backtest's verdict on its candidate (`ledger`), where every operator's `rollout` looks before
/// sending the candidate traffic. A report of one run has no verdict and records nothing.
pub async fn record_backtest(
    aws: &Aws,
    config: &Config,
    state_dir: &Path,
    printer: &Printer,
    r: &report::BatchReport,
) -> Result<()> {
    let (Some(candidate), Some(verdict)) = (&r.candidate, r.verdict) else { return Ok(()) };
    let mut runs: Vec<String> = r.runs.iter().filter(|x| x.version == r.baseline).map(|x| x.address.clone()).collect();
    runs.extend(r.runs.iter().filter(|x| x.version != r.baseline).map(|x| x.address.clone()));
    let backtest = state::Backtest {
        verdict,
        baseline: r.baseline.clone(),
        runs,
        time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        reasons: r.reasons.clone(),
    };
    ledger::update(aws, config, state_dir, printer, |s| {
        s.backtests.insert(candidate.clone(), backtest.clone());
    })
    .await?;
    Ok(())
}

/// Records a shadow report's verdict on its candidate (`ledger`), where every operator's `rollout` looks
/// before sending the candidate traffic.
pub async fn record_shadow(
    aws: &Aws,
    config: &Config,
    state_dir: &Path,
    printer: &Printer,
    r: &report::ShadowReport,
) -> Result<()> {
    let verdict = state::ShadowVerdict {
        verdict: r.verdict,
        baseline: r.baseline.clone(),
        since: r.since.clone(),
        until: r.until.clone(),
        pairs: r.pairs,
        outcomes: r.labeled.is_some(),
        time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        reasons: r.reasons.clone(),
    };
    ledger::update(aws, config, state_dir, printer, |s| {
        s.shadow_verdicts.insert(r.candidate.clone(), verdict.clone());
    })
    .await?;
    Ok(())
}

/// The versions `alias` routes to, its primary first, and the model each serves (`alarms`, `export terraform`).
pub async fn routed(aws: &Aws, function: &str, alias: &Alias) -> Result<Vec<Routed>> {
    let mut out = Vec::new();
    for v in std::iter::once(&alias.primary).chain(alias.routing.keys()) {
        let info = lambda::get_version(aws, function, v).await?;
        out.push(Routed { version: v.clone(), model_version: info.as_ref().and_then(FunctionInfo::model_version) });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_filter_lets_every_line_type_report_reads_through() {
        for tag in [logline::PREDICTION, logline::ERROR, logline::SHADOW_ERROR] {
            assert!(FILTER_PATTERN.contains(&format!(r#"($.mlambda = "{tag}")"#)), "{tag}: {FILTER_PATTERN}");
        }
    }

    #[test]
    fn metric_periods_stay_under_1440_points_and_cloudwatch_minimums() {
        assert_eq!(metric_period(86_400, 86_400), 60);
        assert_eq!(metric_period(7 * 86_400, 7 * 86_400), 420);
        assert_eq!(metric_period(86_400, 20 * 86_400), 300);
        assert_eq!(metric_period(86_400, 70 * 86_400), 3600);
        assert_eq!(metric_period(30, 30), 60);
    }
}
