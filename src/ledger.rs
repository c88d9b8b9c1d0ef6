//! The state later commands need, held in the cloud: verdicts and the rollout's looks in an object beside the
//! model (`s3://<model.bucket>/.mlambda/state/<function>/<alias>.json`). `.mlambda/state.json` is its cache, so
//! a fresh clone or a CI runner decides exactly as the machine that deployed; where the two differ the cloud
//! wins, and `-v` says so. (The alias's own record, the previous primary, the lease and the current step, is on
//! the alias: `plan::record`.)
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::aws::{s3, Aws};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::{self, Backtest, LastVerdict, Looks, ShadowVerdict, State};
use crate::ui::Printer;

/// The part of the state every operator shares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shared {
    #[serde(default)]
    pub verdict: Option<LastVerdict>,
    #[serde(default)]
    pub backtests: BTreeMap<String, Backtest>,
    #[serde(default)]
    pub shadow_verdicts: BTreeMap<String, ShadowVerdict>,
    /// The looks the current rollout planned and took at its candidate's evidence.
    #[serde(default)]
    pub looks: Option<Looks>,
}

impl Shared {
    fn of(s: &State) -> Shared {
        Shared {
            verdict: s.verdict.clone(),
            backtests: s.backtests.clone(),
            shadow_verdicts: s.shadow_verdicts.clone(),
            looks: s.rollout.as_ref().and_then(|r| r.looks.clone()),
        }
    }

    /// Puts the cloud's facts over the local state, naming (at `-v`) each one that differed.
    fn apply(self, s: &mut State, printer: &Printer, location: &str) {
        let local = Shared::of(s);
        let differs = [
            ("the last verdict", local.verdict != self.verdict),
            ("the backtests", local.backtests != self.backtests),
            ("the shadow verdicts", local.shadow_verdicts != self.shadow_verdicts),
            ("the rollout's looks", local.looks != self.looks),
        ];
        for (what, _) in differs.iter().filter(|(_, d)| *d) {
            printer.detail(format!("{what} in {location} differ from `.mlambda/state.json`; using the cloud's"));
        }
        s.verdict = self.verdict;
        s.backtests = self.backtests;
        s.shadow_verdicts = self.shadow_verdicts;
        match (s.rollout.as_mut(), self.looks) {
            (Some(r), looks) => r.looks = looks,
            (None, Some(looks)) => s.rollout = Some(state::Rollout { looks: Some(looks), ..Default::default() }),
            (None, None) => {}
        }
    }
}

/// Where the shared state of `config`'s alias lives.
pub fn key(config: &Config) -> String {
    format!(".mlambda/state/{}/{}.json", config.function.name, config.function.alias)
}

fn location(config: &Config) -> String {
    format!("s3://{}/{}", config.model.bucket, key(config))
}

/// The shared state as the cloud holds it, with the ETag a conditional rewrite needs.
async fn read(aws: &Aws, config: &Config) -> Result<Option<(Shared, String)>> {
    let Some((bytes, etag)) = s3::get_small_tagged(aws, &config.model.bucket, &key(config)).await? else {
        return Ok(None);
    };
    let shared = serde_json::from_slice(&bytes).map_err(|e| {
        Error::cloud(format!("cannot parse `{}`: {e}", location(config)))
            .help("the object is written by mlambda; delete it and the next command writes it again from `.mlambda/state.json`")
    })?;
    Ok(Some((shared, etag)))
}

/// The local state with the cloud's shared facts over it, and the ETag they were read at.
async fn merged(aws: &Aws, config: &Config, state_dir: &Path, printer: &Printer) -> Result<(State, Option<String>)> {
    let mut s = state::load(state_dir)?;
    let Some((shared, etag)) = read(aws, config).await? else { return Ok((s, None)) };
    if shared != Shared::of(&s) {
        shared.apply(&mut s, printer, &location(config));
        state::save(state_dir, &s)?;
    }
    Ok((s, Some(etag)))
}

/// The local state with the cloud's shared facts over it, the cache refreshed when they differed.
pub async fn load(aws: &Aws, config: &Config, state_dir: &Path, printer: &Printer) -> Result<State> {
    Ok(merged(aws, config, state_dir, printer).await?.0)
}

/// How often a write that lost a race with another operator's reads and applies again.
const ATTEMPTS: usize = 10;

/// Applies `f` to the state as the cloud holds it now and writes the shared part back beside the model, only if
/// nobody wrote it since it was read (S3's If-Match); losing that race reads again and applies `f` again, so two
/// operators' verdicts both land. The whole goes into the local cache too.
pub async fn update(
    aws: &Aws,
    config: &Config,
    state_dir: &Path,
    printer: &Printer,
    f: impl Fn(&mut State),
) -> Result<State> {
    for attempt in 0..ATTEMPTS {
        let (mut s, etag) = merged(aws, config, state_dir, printer).await?;
        f(&mut s);
        let body = serde_json::to_vec_pretty(&Shared::of(&s))
            .map_err(|e| Error::local(format!("cannot encode the shared state: {e}")))?;
        match s3::put_json_if(aws, &config.model.bucket, &key(config), body, etag.as_deref()).await? {
            s3::PutIf::Written => {
                state::save(state_dir, &s)?;
                return Ok(s);
            }
            s3::PutIf::NoBucket => {
                state::save(state_dir, &s)?;
                printer.warn(format!(
                    "bucket `{}` (`model.bucket`) does not exist, so this is kept in `.mlambda/state.json` only, \
                     where other operators cannot see it; `mlambda model push --create-bucket` creates it",
                    config.model.bucket
                ));
                return Ok(s);
            }
            s3::PutIf::Changed => {}
        }
        printer.detail(format!("{} changed while mlambda was updating it; reading it again", location(config)));
        // jittered, so writers that collided do not collide again in step
        let jitter = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() % 100);
        tokio::time::sleep(Duration::from_millis(50 * (attempt as u64 + 1) + u64::from(jitter))).await;
    }
    Err(Error::cloud(format!("{} kept changing while mlambda was updating it ({ATTEMPTS} attempts)", location(config)))
        .help("other operators are writing verdicts at the same moment; re-run the command"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::evidence::Decision;

    /// Operators racing on the real moto server (S3's If-Match is what a mock would get wrong): every one of
    /// eight concurrent updates lands, where a plain read-modify-write keeps only the last writer's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_updates_all_land() {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty()),
            "AWS_ENDPOINT_URL is not set: this test needs moto; run `eval \"$(scripts/stack env)\"` first"
        );
        let aws = Aws::connect(&crate::aws::Target::default()).await.expect("connect to moto");
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let bucket = format!("mlambda-ledger-{}-{nanos}", std::process::id());
        s3::create_bucket(&aws, &bucket).await.unwrap();
        let text = format!(
            "function:\n  name: churn\n  package: zip\nmodel:\n  path: m.onnx\n  name: churn\n  version: v1\n  bucket: {bucket}\n"
        );
        let config = crate::config::parse(&text, Path::new("mlambda.yaml")).unwrap();
        let printer = Printer::new(crate::cli::OutputFormat::Text, true, 0);
        let dirs: Vec<tempfile::TempDir> = (0..8).map(|_| tempfile::tempdir().unwrap()).collect();
        let writes = dirs.iter().enumerate().map(|(i, dir)| {
            let (aws, config, printer) = (&aws, &config, &printer);
            async move {
                let b = Backtest {
                    verdict: Decision::Promote,
                    baseline: "1".into(),
                    runs: vec![],
                    time: "2026-12-07T08:00:00Z".into(),
                    reasons: vec![],
                };
                update(aws, config, dir.path(), printer, |s| {
                    s.backtests.insert(format!("{}", i + 2), b.clone());
                })
                .await
            }
        });
        for r in futures_util::future::join_all(writes).await {
            r.unwrap();
        }
        let fresh = tempfile::tempdir().unwrap();
        let s = load(&aws, &config, fresh.path(), &printer).await.unwrap();
        let versions: Vec<&String> = s.backtests.keys().collect();
        assert_eq!(versions.len(), 8, "{versions:?}");
        // a write on a stale ETag, or one expecting no object, is refused, not applied
        let stale = s3::put_json_if(&aws, &bucket, &key(&config), b"{}".to_vec(), Some("\"stale\"")).await.unwrap();
        let absent = s3::put_json_if(&aws, &bucket, &key(&config), b"{}".to_vec(), None).await.unwrap();
        assert_eq!((stale, absent), (s3::PutIf::Changed, s3::PutIf::Changed));
    }

    fn verdict(v: Decision) -> LastVerdict {
        LastVerdict {
            verdict: v,
            baseline: "2".into(),
            candidate: "3".into(),
            time: "2026-12-07T08:00:00Z".into(),
            reasons: vec![],
        }
    }

    #[test]
    fn the_clouds_facts_win_and_local_only_facts_stay() {
        let printer = Printer::new(crate::cli::OutputFormat::Text, true, 0);
        let mut local = State { verdict: Some(verdict(Decision::Rollback)), ..Default::default() };
        local.rollout =
            Some(state::Rollout { previous_primary: crate::domain::Version::parse("1").ok(), ..Default::default() });
        let looks = Looks { candidate: crate::domain::Version::parse("3").unwrap(), planned: 2, taken: 1 };
        let cloud =
            Shared { verdict: Some(verdict(Decision::Promote)), looks: Some(looks.clone()), ..Default::default() };
        cloud.apply(&mut local, &printer, "s3://b/k");
        assert_eq!(local.verdict.as_ref().map(|v| v.verdict), Some(Decision::Promote));
        let r = local.rollout.unwrap();
        assert_eq!((r.looks, r.previous_primary.map(|v| v.to_string())), (Some(looks), Some("1".into())));
        let mut empty = State::default();
        Shared::default().apply(&mut empty, &printer, "s3://b/k");
        assert_eq!(empty, State::default());
    }
}
