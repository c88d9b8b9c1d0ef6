//! `mlambda report`: gather the prediction log and Lambda's metrics for two versions, compute the evidence, render it.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Ctx;
use crate::aws::logs::{self, Logs};
use crate::aws::{cloudwatch, lambda, Aws};
use crate::cli::ReportArgs;
use crate::error::{io_error, Error, Result};
use crate::plan::predlog::{Collector, Outcomes};
use crate::plan::report::{self, Inputs, Metrics};
use crate::report::Report;
use crate::settings::Project;
use crate::ui::progress;

/// Server-side filter on the prediction lines; lines it lets through are still checked one by one.
pub const FILTER_PATTERN: &str = r#"{ $.mlambda = "prediction" }"#;

/// A window edge: a duration before `now` (`24h`, `90m`) or an RFC 3339 time.
pub fn parse_instant(s: &str, now: SystemTime) -> std::result::Result<SystemTime, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return now.checked_sub(d).ok_or_else(|| format!("`{s}` reaches back before 1970"));
    }
    humantime::parse_rfc3339_weak(s)
        .map_err(|_| format!("`{s}` is neither a duration like `24h` nor a time like `2026-12-01T09:00:00Z`"))
}

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

fn read_outcomes(path: &Path) -> Result<Outcomes> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, "read the outcomes file", e))?;
    Outcomes::parse(&text).map_err(|why| {
        Error::user(format!("outcomes file `{}` {why}", path.display()))
            .help("write a CSV with a header `id,label` and one line per id, e.g. `C-1001,1` for a churned customer")
    })
}

/// Lambda's Invocations, Errors and Throttles for one version through the alias.
async fn version_metrics(aws: &Aws, function: &str, alias: &str, version: &str, window: (i64, i64)) -> Result<Metrics> {
    let resource = format!("{function}:{alias}");
    let dims = [("FunctionName", function), ("Resource", resource.as_str()), ("ExecutedVersion", version)];
    let now = epoch_secs(SystemTime::now());
    let period = metric_period(window.1 - window.0, now - window.0);
    let mut sums = [None; 3];
    for (sum, metric) in sums.iter_mut().zip(["Invocations", "Errors", "Throttles"]) {
        let v = cloudwatch::metric_sum(aws, "AWS/Lambda", metric, &dims, window.0, window.1, period).await?;
        *sum = v.map(|x| x.round().max(0.0) as u64);
    }
    let [invocations, errors, throttles] = sums;
    Ok(Metrics { invocations, errors, throttles })
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, args: &ReportArgs) -> Result<Report> {
    let config = p.config();
    let (function, alias) = (config.function.name.as_str(), config.function.alias.as_str());
    let now = SystemTime::now();
    let window_help = "pass `--since 24h` (a duration ago) or an RFC 3339 time such as `2026-12-01T09:00:00Z`";
    let since = parse_instant(&args.since, now).map_err(|e| Error::user(format!("--since {e}")).help(window_help))?;
    let until = match &args.until {
        Some(u) => parse_instant(u, now).map_err(|e| Error::user(format!("--until {e}")).help(window_help))?,
        None => now,
    };
    let window = until.duration_since(since).map_err(|_| {
        Error::user(format!("the window is empty: --since {} is not before --until", args.since))
            .help("pass a --since earlier than --until")
    })?;
    if window < Duration::from_secs(1) {
        return Err(Error::user("the window is shorter than a second").help("widen --since/--until"));
    }
    let outcomes = args.outcomes.as_deref().map(read_outcomes).transpose()?;
    if let Some(o) = &outcomes {
        ctx.printer.detail(format!("{} outcomes read", o.len()));
    }

    let aws = ctx.aws().await?;
    let routing = lambda::get_alias(&aws, function, alias).await?;
    let baseline = match (&args.baseline, &routing) {
        (Some(b), _) => b.clone(),
        (None, Some(a)) => a.primary.clone(),
        (None, None) => {
            return Err(Error::user(format!("alias `{alias}` of function `{function}` does not exist"))
                .help("run `mlambda deploy` first, or name the versions with `--baseline N --candidate M`"))
        }
    };
    let routed = routing.as_ref().and_then(|a| a.routing.keys().next().cloned());
    let candidate = match (&args.candidate, routed) {
        (Some(c), _) => c.clone(),
        (None, Some(r)) => r,
        (None, None) => {
            return Err(Error::user(format!(
                "alias `{alias}` sends all traffic to version {baseline}, so there is no candidate to compare"
            ))
            .help("start a rollout (`mlambda rollout --weight 0.1`), or pass `--candidate N`"))
        }
    };
    if candidate == baseline {
        return Err(Error::user(format!("baseline and candidate are both version {candidate}"))
            .help("pass two different versions with `--baseline N --candidate M`"));
    }
    let traffic_share = routing.as_ref().and_then(|a| {
        a.routing
            .get(&candidate)
            .copied()
            .or_else(|| (a.primary == candidate).then(|| 1.0 - a.routing.values().sum::<f64>()))
    });

    let mut model_versions = BTreeMap::new();
    for v in [&baseline, &candidate] {
        match lambda::get_version(&aws, function, v).await? {
            Some(info) => {
                if let Some(m) = info.env.get(mlambda_runtime::env::MODEL_VERSION).filter(|m| !m.is_empty()) {
                    model_versions.insert(v.clone(), m.clone());
                }
            }
            None => ctx.printer.warn(format!("version {v} of `{function}` does not exist; its figures will be empty")),
        }
    }
    let secs = (epoch_secs(since), epoch_secs(until));
    let mut metrics = BTreeMap::new();
    for v in [&baseline, &candidate] {
        metrics.insert(v.clone(), version_metrics(&aws, function, alias, v, secs).await?);
    }

    let group = format!("/aws/lambda/{function}");
    let spinner = progress::spinner(ctx.printer, format!("reading {group}"));
    let mut collector = Collector::new(outcomes);
    let started = std::time::Instant::now();
    let logs = Logs::connect(&ctx.target()).await;
    let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let mut seen = 0u64;
    let read = logs::for_each_message(&logs, &group, FILTER_PATTERN, ms(since), ms(until), |m| {
        collector.add(m);
        seen += 1;
        if seen.is_multiple_of(10_000) {
            spinner.set_message(format!("reading {group}: {seen} events"));
        }
    })
    .await?;
    spinner.finish_and_clear();
    match read {
        Some(n) => ctx.printer.status(format!("read {n} log events from {group} in {:.1?}", started.elapsed())),
        None => ctx.printer.warn(format!("log group `{group}` does not exist: the function has logged nothing yet")),
    }
    if collector.unreadable > 0 {
        ctx.printer.warn(format!("{} log lines looked like predictions but did not parse", collector.unreadable));
    }

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
    };
    let evidence = report::build(&inputs, collector);
    if evidence.unreadable_labels > 0 {
        ctx.printer.warn(format!(
            "{} outcome labels were neither the positive nor the negative class and were left out",
            evidence.unreadable_labels
        ));
    }
    if let Some(path) = &args.html {
        std::fs::write(path, crate::ui::report::html(&evidence))
            .map_err(|e| io_error(path, "write the HTML report", e))?;
        ctx.printer.status(format!("wrote {}", path.display()));
    }
    Ok(Report::done(evidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_edges_are_durations_ago_or_times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_instant("1h", now), Ok(UNIX_EPOCH + Duration::from_secs(1_000_000 - 3600)));
        assert_eq!(parse_instant("1970-01-02T00:00:00Z", now), Ok(UNIX_EPOCH + Duration::from_secs(86_400)));
        assert!(parse_instant("yesterday", now).unwrap_err().contains("`yesterday` is neither"));
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
