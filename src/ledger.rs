//! The state later commands need, held in the cloud: verdicts and the rollout's looks in an object beside the
//! model (`s3://<model.bucket>/.mlambda/state/<function>/<alias>.json`). `.mlambda/state.json` is its cache, so
//! a fresh clone or a CI runner decides exactly as the machine that deployed; where the two differ the cloud
//! wins, and `-v` says so. (The alias's own record, the previous primary, the lease and the current step, is on
//! the alias: `plan::record`.)
use std::collections::BTreeMap;
use std::path::Path;

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

async fn read(aws: &Aws, config: &Config) -> Result<Option<Shared>> {
    let Some(bytes) = s3::get_small(aws, &config.model.bucket, &key(config)).await? else { return Ok(None) };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::cloud(format!("cannot parse `{}`: {e}", location(config)))
            .help("the object is written by mlambda; delete it and the next command writes it again from `.mlambda/state.json`")
    })
}

/// The local state with the cloud's shared facts over it, the cache refreshed when they differed.
pub async fn load(aws: &Aws, config: &Config, state_dir: &Path, printer: &Printer) -> Result<State> {
    let mut s = state::load(state_dir)?;
    if let Some(shared) = read(aws, config).await? {
        if shared != Shared::of(&s) {
            shared.apply(&mut s, printer, &location(config));
            state::save(state_dir, &s)?;
        }
    }
    Ok(s)
}

/// Applies `f` to the state as the cloud holds it now, then writes the shared part back beside the model and
/// the whole into the local cache.
pub async fn update(
    aws: &Aws,
    config: &Config,
    state_dir: &Path,
    printer: &Printer,
    f: impl FnOnce(&mut State),
) -> Result<State> {
    let mut s = load(aws, config, state_dir, printer).await?;
    f(&mut s);
    state::save(state_dir, &s)?;
    if !s3::bucket_exists(aws, &config.model.bucket).await? {
        printer.warn(format!(
            "bucket `{}` (`model.bucket`) does not exist, so this is kept in `.mlambda/state.json` only, where other \
             operators cannot see it; `mlambda model push --create-bucket` creates it",
            config.model.bucket
        ));
        return Ok(s);
    }
    let body = serde_json::to_vec_pretty(&Shared::of(&s))
        .map_err(|e| Error::local(format!("cannot encode the shared state: {e}")))?;
    s3::put_json(aws, &config.model.bucket, &key(config), body).await?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::evidence::Decision;

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
