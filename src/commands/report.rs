//! `mlambda report`: gather the prediction log and Lambda's metrics for two versions, compute the evidence, render it.
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::Ctx;
use crate::aws::lambda;
use crate::cli::ReportArgs;
use crate::error::{io_error, Error, Result};
use crate::gather;
use crate::plan::predlog::Outcomes;
use crate::report::Report;
use crate::settings::Project;

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

    // a preview of the rollout's next look: only the rollout's own checks spend α
    let look = ctx.state(p)?.rollout.unwrap_or_default().next_look(&candidate);
    let req = gather::Request { baseline, candidate, traffic_share, since, until, outcomes, look };
    let evidence = gather::evidence(&aws, &ctx.target(), ctx.printer, config, req).await?;
    gather::record(&p.state_dir, &evidence)?;
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
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn window_edges_are_durations_ago_or_times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_instant("1h", now), Ok(UNIX_EPOCH + Duration::from_secs(1_000_000 - 3600)));
        assert_eq!(parse_instant("1970-01-02T00:00:00Z", now), Ok(UNIX_EPOCH + Duration::from_secs(86_400)));
        assert!(parse_instant("yesterday", now).unwrap_err().contains("`yesterday` is neither"));
    }
}
