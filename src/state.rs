//! `.mlambda/state.json`: what earlier commands produced (image, digest, deployed version) so later ones can use it.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::{ImageDigest, ModelVersion, Version, Weight};
use crate::error::Error;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<Push>,
    /// The last zip `mlambda build` packed (`function.package: zip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    /// The last zip `mlambda push` uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_push: Option<PackagePush>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<Up>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<LastVerdict>,
    /// The last backtest of each candidate (`report --batch` of two runs), by its function version, which
    /// `rollout` checks before sending it any traffic.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backtests: BTreeMap<String, Backtest>,
    /// The last shadow report on each candidate (`report --shadow`), by its function version, which `rollout`
    /// checks before sending it any traffic, like a backtest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shadow_verdicts: BTreeMap<String, ShadowVerdict>,
}

/// A shadow report's verdict on a candidate version against the primary it shadowed, from their answers to
/// the same requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShadowVerdict {
    pub verdict: crate::plan::evidence::Decision,
    pub baseline: String,
    /// The window the report read, RFC 3339.
    pub since: String,
    pub until: String,
    /// Rows both versions answered.
    pub pairs: u64,
    /// Whether outcomes were joined (`--outcomes`), so the verdict weighed AUC and calibration too.
    pub outcomes: bool,
    /// RFC 3339, when it was computed.
    pub time: String,
    pub reasons: Vec<String>,
}

/// A backtest's verdict on a candidate version against a baseline, from two batch runs over the same rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Backtest {
    pub verdict: crate::plan::evidence::Decision,
    pub baseline: String,
    /// The runs' addresses, baseline's first: what `report --batch` was given.
    pub runs: Vec<String>,
    /// RFC 3339, when it was computed.
    pub time: String,
    pub reasons: Vec<String>,
}

/// The last verdict `report` or a rollout computed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastVerdict {
    pub verdict: crate::plan::evidence::Decision,
    pub baseline: String,
    pub candidate: String,
    /// RFC 3339, when it was computed.
    pub time: String,
    pub reasons: Vec<String>,
}

/// The last image `mlambda build` made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Build {
    /// Local reference, `repository:tag`.
    pub image: String,
    pub tag: String,
    pub image_id: String,
    pub model_version: ModelVersion,
    #[serde(default)]
    pub model_sha256: Option<String>,
}

/// The last image `mlambda push` landed: deploys use `image_uri`, which is always by digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Push {
    /// `registry/repository`.
    pub repository_uri: String,
    pub tag: String,
    /// `sha256:…` as the registry reports it.
    pub digest: ImageDigest,
    /// `registry/repository@sha256:…`.
    pub image_uri: String,
}

/// A zip package on disk, in `.mlambda/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Package {
    pub path: PathBuf,
    /// Hex sha256 of the zip's bytes.
    pub sha256: String,
    pub size: u64,
    pub model_version: ModelVersion,
    pub model_sha256: String,
}

/// A zip package in S3, under its content-addressed key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PackagePush {
    pub bucket: String,
    pub key: String,
    /// Hex sha256 of the zip.
    pub sha256: String,
    /// The same digest as Lambda reports it (`CodeSha256`, base64), which deploy checks.
    pub code_sha256: String,
}

/// The last version `mlambda deploy` published.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Deploy {
    pub function_arn: String,
    pub version: String,
    pub model_version: ModelVersion,
    /// The image URI, or `s3://bucket/key` of the zip.
    #[serde(alias = "image_uri")]
    pub code: String,
    #[serde(default)]
    pub role: Option<String>,
}

/// What a rollout needs to undo itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Rollout {
    /// The primary before the last promote, for `--rollback` after a promote.
    #[serde(default)]
    pub previous_primary: Option<Version>,
    #[serde(default)]
    pub candidate: Option<Version>,
    #[serde(default)]
    pub weight: Option<Weight>,
    /// The looks at the candidate's evidence this rollout planned and took, so every look spends its share of α.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looks: Option<Looks>,
}

/// Looks at one candidate's evidence: how many its rollout planned and how many it has taken.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Looks {
    pub candidate: Version,
    pub planned: u32,
    pub taken: u32,
}

impl Looks {
    fn of(&self, candidate: &str) -> bool {
        self.candidate.to_string() == candidate
    }
}

impl Rollout {
    /// The next look at `candidate`: the rollout's next one, or the only one when no rollout planned any.
    pub fn next_look(&self, candidate: &str) -> crate::plan::evidence::Look {
        match self.looks.as_ref().filter(|l| l.of(candidate)) {
            Some(l) => crate::plan::evidence::Look { index: l.taken + 1, planned: l.planned },
            None => crate::plan::evidence::Look::ONLY,
        }
    }

    /// Counts a look taken at `candidate`'s evidence, when the rollout planned looks at it.
    pub fn take_look(&mut self, candidate: &str) {
        if let Some(l) = self.looks.as_mut().filter(|l| l.of(candidate)) {
            l.taken += 1;
        }
    }
}

/// `mlambda up`'s finished steps, so a re-run resumes after the one that failed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Up {
    /// Inputs the steps ran for; a change starts over.
    pub fingerprint: String,
    pub done: Vec<String>,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// Why the state file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot parse `{}`: {source}", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("cannot read `{}`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write `{}`: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot encode state: {0}")]
    Encode(serde_json::Error),
}

/// A state file the user can fix or delete is theirs (exit 1); failing to encode it is ours (exit 2).
impl From<StateError> for Error {
    fn from(e: StateError) -> Error {
        match e {
            StateError::Parse { .. } => Error::user(e)
                .help("the file is written by mlambda; delete it and re-run `mlambda build` and `mlambda push`"),
            StateError::Read { .. } | StateError::Write { .. } => Error::user(e),
            StateError::Encode(_) => Error::local(e),
        }
    }
}

pub fn load(dir: &Path) -> Result<State, StateError> {
    let p = path(dir);
    match std::fs::read_to_string(&p) {
        Ok(text) => serde_json::from_str(&text).map_err(|source| StateError::Parse { path: p, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(source) => Err(StateError::Read { path: p, source }),
    }
}

/// Writes through a temporary file and a rename, so an interrupted write never leaves half a file.
pub fn save(dir: &Path, state: &State) -> Result<(), StateError> {
    let fail = |source: std::io::Error| StateError::Write { path: path(dir), source };
    let text = serde_json::to_string_pretty(state).map_err(StateError::Encode)?;
    write_atomically(&path(dir), (text + "\n").as_bytes()).map_err(fail)
}

/// Writes `<path>.tmp` then renames it over `path` (creating the directory), so a reader never sees half a
/// file: the state file and the zip `build` writes into `.mlambda/`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Loads, applies `f`, saves.
pub fn update(dir: &Path, f: impl FnOnce(&mut State)) -> Result<State, StateError> {
    let mut s = load(dir)?;
    f(&mut s);
    save(dir, &s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), State::default());
        let s = update(dir.path(), |s| {
            s.rollout = Some(Rollout { previous_primary: Some(Version::parse("3").unwrap()), ..Default::default() })
        })
        .unwrap();
        assert_eq!(load(dir.path()).unwrap(), s);
    }

    #[test]
    fn backtests_round_trip_and_an_older_file_has_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), r#"{"verdict": null}"#).unwrap();
        assert!(load(dir.path()).unwrap().backtests.is_empty());
        let b = Backtest {
            verdict: crate::plan::evidence::Decision::Rollback,
            baseline: "3".into(),
            runs: vec!["s3://b/scores/r1/".into(), "s3://b/scores/r2/".into()],
            time: "2026-12-01T09:00:00Z".into(),
            reasons: vec!["worse".into()],
        };
        let s = update(dir.path(), |s| {
            s.backtests.insert("4".into(), b.clone());
        })
        .unwrap();
        assert_eq!(load(dir.path()).unwrap(), s);
        assert_eq!(s.backtests["4"], b);
    }

    #[test]
    fn shadow_verdicts_round_trip_beside_backtests() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().shadow_verdicts.is_empty());
        let v = ShadowVerdict {
            verdict: crate::plan::evidence::Decision::Rollback,
            baseline: "3".into(),
            since: "2026-12-01T09:00:00Z".into(),
            until: "2026-12-02T09:00:00Z".into(),
            pairs: 3000,
            outcomes: true,
            time: "2026-12-02T09:00:01Z".into(),
            reasons: vec!["worse".into()],
        };
        let s = update(dir.path(), |s| {
            s.shadow_verdicts.insert("4".into(), v.clone());
        })
        .unwrap();
        assert_eq!(load(dir.path()).unwrap(), s);
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert!(text.contains("\"shadow_verdicts\"") && !text.contains("backtests"), "{text}");
    }

    #[test]
    fn a_corrupt_file_is_a_user_error_with_a_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "{").unwrap();
        let e = Error::from(load(dir.path()).unwrap_err());
        assert_eq!(e.exit_code(), 1);
        assert!(e.help.unwrap().contains("delete it"));
    }
}
