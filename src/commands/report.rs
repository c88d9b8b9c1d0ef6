//! `mlambda report`: gather the prediction log and Lambda's metrics for two versions, compute the evidence, render it.
//! With `--batch`, the evidence comes from batch runs' output in S3 instead: a backtest before any exposure. With
//! `--shadow`, from a shadow's answers to copies of the primary's requests in the same log: another test before
//! any exposure, on live requests.
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::Ctx;
use crate::aws::lambda;
use crate::cli::ReportArgs;
use crate::error::{io_error, Error, Result};
use crate::plan::predlog::{Collector, Outcomes};
use crate::plan::report::{BatchInputs, BatchRun};
use crate::report::Report;
use crate::runs;
use crate::settings::Project;
use crate::{gather, ledger};

/// How to name a run on the command line.
const RUN_HELP: &str = "pass the run's id as `mlambda batch run` printed it (`mlambda batch list` shows them), or its \
     address, e.g. `s3://my-bucket/scores/3f9a0c21d4e7/`";

/// Where the batch run a `--batch` argument names lives: its bucket and its prefix, which ends in `/` (the
/// run's files are `<prefix>run.json`, `<prefix>out/…`). Takes the run's address, `s3://BUCKET/PREFIX/<run>/`
/// (the trailing `/` may be left out).
pub fn resolve_run(arg: &str) -> Result<(String, String)> {
    let refuse = |why: &str| Error::user(format!("--batch `{arg}` {why}")).help(RUN_HELP);
    let rest = arg.strip_prefix("s3://").ok_or_else(|| refuse("is not an `s3://` address"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(refuse("names no bucket"));
    }
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return Err(refuse("names a bucket, not a run in it"));
    }
    Ok((bucket.to_string(), format!("{prefix}/")))
}

/// A window edge: a duration before `now` (`24h`, `90m`) or an RFC 3339 time.
pub fn parse_instant(s: &str, now: SystemTime) -> std::result::Result<SystemTime, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return now.checked_sub(d).ok_or_else(|| format!("`{s}` reaches back before 1970"));
    }
    humantime::parse_rfc3339_weak(s)
        .map_err(|_| format!("`{s}` is neither a duration like `24h` nor a time like `2026-12-01T09:00:00Z`"))
}

fn read_outcomes(path: &Path) -> Result<Outcomes> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, "read the outcomes file", e))?;
    Outcomes::parse(&text).map_err(|why| {
        Error::user(format!("outcomes file `{}` {why}", path.display()))
            .help("write a CSV with a header `id,label` and one line per id, e.g. `C-1001,1` for a churned customer")
    })
}

/// `--since` and `--until` as the window's two ends, at least a second apart.
fn window(args: &ReportArgs, now: SystemTime) -> Result<(SystemTime, SystemTime)> {
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
    Ok((since, until))
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, args: &ReportArgs) -> Result<Report> {
    if !args.batch.is_empty() {
        return batch(ctx, p, args).await;
    }
    if args.shadow {
        return shadow(ctx, p, args).await;
    }
    let config = p.config();
    let (function, alias) = (config.function.name.as_str(), config.function.alias.as_str());
    let (since, until) = window(args, SystemTime::now())?;
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

    // a preview of the rollout's next look: only the rollout's own checks spend α
    let look =
        ledger::load(&aws, config, &p.state_dir, ctx.printer).await?.rollout.unwrap_or_default().next_look(&candidate);
    let req = gather::Request { baseline, candidate, traffic_share, since, until, outcomes, look };
    let evidence = gather::evidence(&aws, &ctx.target(), ctx.printer, config, req).await?;
    gather::record(&aws, config, &p.state_dir, ctx.printer, &evidence).await?;
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

/// Which run is the baseline: the one `--baseline` names (or the other than `--candidate`'s), else the one
/// whose version is the alias's primary (as the live report's baseline), else the first given. Returns the
/// index of the baseline run.
fn baseline_run(versions: [&str; 2], args: &ReportArgs, primary: Option<&str>) -> Result<usize> {
    let named = |flag: &str, v: &str| {
        versions.iter().position(|x| *x == v).ok_or_else(|| {
            Error::user(format!(
                "{flag} {v} scored neither run: they were scored by versions {} and {}",
                versions[0], versions[1]
            ))
            .help(format!("pass `{flag}` one of the runs' versions, or leave it out"))
        })
    };
    match (&args.baseline, &args.candidate) {
        (Some(b), _) => named("--baseline", b),
        (None, Some(c)) => named("--candidate", c).map(|i| 1 - i),
        (None, None) => Ok(primary.and_then(|p| versions.iter().position(|x| *x == p)).unwrap_or(0)),
    }
}

/// `report --batch RUN [--batch RUN2] --outcomes FILE`: each run's evidence on its labeled rows and, with two
/// runs, DeLong's paired test and the backtest's verdict on the candidate, recorded for `rollout`.
async fn batch(ctx: &Ctx<'_>, p: &Project, args: &ReportArgs) -> Result<Report> {
    let config = p.config();
    let function = config.function.name.as_str();
    if args.batch.len() > 2 {
        return Err(Error::user(format!(
            "--batch was given {} times; a backtest compares at most two runs",
            args.batch.len()
        ))
        .help("pass one run for its evidence, or two runs by two versions over the same ids to compare them"));
    }
    let Some(path) = args.outcomes.as_deref() else {
        return Err(Error::user("--batch needs --outcomes: a backtest judges the scores against what really happened")
            .help("pass `--outcomes FILE`, a CSV with a header `id,label` and one line per id of the scored rows"));
    };
    // addresses are checked before anything remote; run ids are looked up through their executions. A run id
    // has no `/`, so anything with one is meant as an address and must be an `s3://` one
    let address = |a: &str| a.starts_with("s3://") || a.contains('/');
    for a in args.batch.iter().filter(|a| address(a)) {
        resolve_run(a)?;
    }
    let outcomes = read_outcomes(path)?;
    ctx.printer.detail(format!("{} outcomes read", outcomes.len()));

    let aws = ctx.aws().await?;
    let mut places = Vec::new();
    for a in &args.batch {
        places.push(match address(a) {
            true => resolve_run(a)?,
            false => runs::location(&aws, function, a).await?,
        });
    }
    let mut runs = Vec::new();
    for (bucket, prefix) in &places {
        let record = gather::read_run(&aws, bucket, prefix).await?;
        let address = format!("s3://{bucket}/{prefix}");
        if record.function != function {
            return Err(Error::user(format!(
                "run `{address}` scored function `{}`, but this project's function is `{function}`",
                record.function
            ))
            .help("run the report in the project of the function that ran the batch, or point --config at it"));
        }
        let run = BatchRun { run: record.run, address, version: record.version, parts: 0, failure_parts: 0 };
        runs.push(run);
    }
    let (baseline, candidate) = match runs.as_slice() {
        [a, b] if a.version == b.version => {
            return Err(Error::user(format!("both runs were scored by version {}: there is nothing to compare", a.version))
                .help("backtest a candidate against the baseline: score the same input with the other version and pass both runs"));
        }
        [a, b] => {
            let primary = lambda::get_alias(&aws, function, &config.function.alias).await?.map(|a| a.primary);
            let i = baseline_run([&a.version, &b.version], args, primary.as_deref())?;
            let (base, cand) = if i == 0 { (a, b) } else { (b, a) };
            (base.version.clone(), Some(cand.version.clone()))
        }
        [one, ..] => (one.version.clone(), None),
        [] => return Err(Error::user("--batch needs a run").help(RUN_HELP)),
    };

    let mut collector = Collector::pairing(outcomes);
    for (run, (bucket, prefix)) in runs.iter_mut().zip(&places) {
        let read = gather::fold_run(&aws, ctx.printer, (bucket, prefix), &run.version, &mut collector).await?;
        (run.parts, run.failure_parts) = (read.out, read.failures);
    }
    if collector.unreadable > 0 {
        ctx.printer.warn(format!("{} lines of the runs' parts did not parse and were left out", collector.unreadable));
    }
    let inputs = BatchInputs {
        function: function.to_string(),
        runs,
        baseline,
        candidate,
        thresholds: config.rollout.evidence.clone(),
    };
    let r = crate::plan::report::build_batch(&inputs, collector);
    if !r.other_versions.is_empty() {
        ctx.printer
            .warn(format!("the runs' output also names versions {}, which were left out", r.other_versions.join(", ")));
    }
    if r.unreadable_labels > 0 {
        ctx.printer.warn(format!(
            "{} outcome labels were neither the positive nor the negative class and were left out",
            r.unreadable_labels
        ));
    }
    gather::record_backtest(&aws, config, &p.state_dir, ctx.printer, &r).await?;
    Ok(Report::done(r))
}

/// `report --shadow`: the shadow target's answers to the copied requests against the primary's, paired on
/// (correlation id, row), with the paired test and a verdict recorded for `rollout`.
async fn shadow(ctx: &Ctx<'_>, p: &Project, args: &ReportArgs) -> Result<Report> {
    let window = window(args, SystemTime::now())?;
    let outcomes = args.outcomes.as_deref().map(read_outcomes).transpose()?;
    if let Some(o) = &outcomes {
        ctx.printer.detail(format!("{} outcomes read", o.len()));
    }
    let who = (args.baseline.clone(), args.candidate.clone());
    let r = gather::shadow(&ctx.target(), ctx.printer, p.config(), window, outcomes, who).await?;
    let aws = ctx.aws().await?;
    gather::record_shadow(&aws, p.config(), &p.state_dir, ctx.printer, &r).await?;
    if let Some(path) = &args.html {
        std::fs::write(path, crate::ui::report::shadow_html(&r))
            .map_err(|e| io_error(path, "write the HTML report", e))?;
        ctx.printer.status(format!("wrote {}", path.display()));
    }
    Ok(Report::done(r))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn window_edges_are_durations_ago_or_times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_instant("1h", now), Ok(UNIX_EPOCH + Duration::from_secs(1_000_000 - 3600)));
        assert_eq!(parse_instant("1970-01-02T00:00:00Z", now), Ok(UNIX_EPOCH + Duration::from_secs(86_400)));
        assert!(parse_instant("yesterday", now).unwrap_err().contains("`yesterday` is neither"));
    }

    #[test]
    fn a_run_is_its_s3_address_with_or_without_the_trailing_slash() {
        let ok = |a: &str| resolve_run(a).unwrap();
        assert_eq!(ok("s3://b/scores/r1/"), ("b".to_string(), "scores/r1/".to_string()));
        assert_eq!(ok("s3://b/scores/r1"), ("b".to_string(), "scores/r1/".to_string()));
        assert_eq!(ok("s3://b/r1//"), ("b".to_string(), "r1/".to_string()));
        for (bad, why) in [
            ("scores/r1/", "is not an `s3://` address"),
            ("s3:///r1/", "names no bucket"),
            ("s3://b/", "names a bucket, not a run"),
            ("s3://b", "names a bucket, not a run"),
        ] {
            let e = resolve_run(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {}", e.message);
            assert_eq!(e.exit_code(), 1);
            assert!(e.help.unwrap().contains("s3://"));
        }
    }

    fn args(baseline: Option<&str>, candidate: Option<&str>) -> ReportArgs {
        ReportArgs {
            since: "24h".into(),
            until: None,
            baseline: baseline.map(str::to_string),
            candidate: candidate.map(str::to_string),
            outcomes: None,
            html: None,
            batch: vec![],
            shadow: false,
        }
    }

    #[test]
    fn the_baseline_run_is_the_named_one_else_the_primary_else_the_first() {
        let v = ["4", "3"];
        assert_eq!(baseline_run(v, &args(None, None), Some("3")).unwrap(), 1);
        assert_eq!(baseline_run(v, &args(None, None), Some("9")).unwrap(), 0);
        assert_eq!(baseline_run(v, &args(None, None), None).unwrap(), 0);
        assert_eq!(baseline_run(v, &args(Some("4"), None), Some("3")).unwrap(), 0);
        assert_eq!(baseline_run(v, &args(None, Some("4")), None).unwrap(), 1);
        let e = baseline_run(v, &args(Some("7"), None), None).unwrap_err();
        assert!(e.message.contains("--baseline 7 scored neither run"), "{}", e.message);
    }
}
