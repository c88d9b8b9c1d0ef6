//! A rollout as a value: from which routing to which, through which steps. `--dry-run` prints it; `rollout` runs it.
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::alias::{self, AliasError, AliasRouting, Proposal, VersionFacts};
use crate::domain::{Preset, Version, Weight};
use crate::error::{Error, Result};

/// Strictly increasing weights in (0, 1]; a last step of 1 promotes the candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Steps(Vec<f64>);

impl Steps {
    pub fn new(steps: Vec<f64>) -> Result<Steps> {
        let help = "pass increasing weights between 0 and 1, ending with 1 to promote, e.g. `--steps 0.1,0.5,1`";
        if steps.is_empty() {
            return Err(Error::user("`--steps` is empty").help(help));
        }
        if let Some(bad) = steps.iter().find(|w| !(**w > 0.0 && **w <= 1.0)) {
            return Err(Error::user(format!(
                "step {bad} is out of range: every step must be greater than 0 and at most 1"
            ))
            .help(help));
        }
        if let Some(pair) = steps.windows(2).find(|p| p[1] <= p[0]) {
            return Err(Error::user(format!("steps must strictly increase, but {} comes after {}", pair[1], pair[0]))
                .help(help));
        }
        Ok(Steps(steps))
    }

    /// A CodeDeploy-like preset's steps and interval.
    pub fn preset(preset: Preset) -> (Steps, Duration) {
        match preset {
            Preset::Canary10_5m => (Steps(vec![0.1, 1.0]), Duration::from_secs(300)),
            Preset::Linear10_1m => (Steps((1..=10).map(|i| f64::from(i) / 10.0).collect()), Duration::from_secs(60)),
        }
    }

    pub fn weights(&self) -> &[f64] {
        &self.0
    }

    /// The looks at the candidate's evidence these steps take: one after each step below 1, and one more for the
    /// `--promote` that must follow when the last step is below 1.
    pub fn looks(&self) -> u32 {
        let checks = self.0.iter().filter(|w| **w < 1.0).count() as u32;
        checks + u32::from(self.0.last().is_some_and(|w| *w < 1.0))
    }

    /// The steps still to run when the candidate already has `current` of the traffic (a resumed rollout).
    pub fn remaining(&self, current: Option<f64>) -> Vec<f64> {
        self.0.iter().copied().filter(|w| current.is_none_or(|c| *w > c + 1e-9)).collect()
    }
}

/// What the alias holds now, as read from Lambda.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    pub primary: String,
    pub routing: BTreeMap<String, f64>,
    pub description: String,
}

impl Current {
    /// The one additional version and its weight, if any (Lambda allows at most one).
    pub fn routed(&self) -> Option<(&str, f64)> {
        self.routing.iter().next().map(|(v, w)| (v.as_str(), *w))
    }

    pub fn render(&self) -> String {
        alias::render(&self.primary, &self.routing)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Weight,
    Steps,
    Promote,
    Rollback,
}

/// One alias write: the routing it sets, typed once; its JSON shows the candidate's share and the rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub target: AliasRouting,
    /// The alias description to write (it carries the previous primary after a promote).
    pub description: String,
}

impl Step {
    pub fn promotes(&self) -> bool {
        self.target.additional.is_none()
    }

    /// The candidate's share after this step; 1 means it became the primary.
    pub fn weight(&self) -> f64 {
        self.target.share()
    }

    /// `3 90% · 4 10%`.
    pub fn routing(&self) -> String {
        self.target.to_string()
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Step", 2)?;
        st.serialize_field("weight", &self.weight())?;
        st.serialize_field("routing", &self.routing())?;
        st.end()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutPlan {
    pub function: String,
    pub alias: String,
    pub action: Action,
    pub candidate: Option<Version>,
    /// The alias's routing before the rollout.
    pub from: String,
    #[serde(skip)]
    pub from_primary: String,
    /// The alias's routing once every step ran.
    pub to: String,
    pub steps: Vec<Step>,
    /// Steps skipped because the candidate already had that much traffic.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<f64>,
    /// Seconds between steps, during which the candidate's alarms are watched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
    /// The primary a promote replaces, recorded for `--rollback`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_primary: Option<Version>,
}

impl fmt::Display for RolloutPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {} → {}", self.alias, self.from, self.to)?;
        if self.action == Action::Steps {
            let every = self.interval_secs.map(|s| humantime::format_duration(Duration::from_secs(s)).to_string());
            for (i, s) in self.steps.iter().enumerate() {
                let wait = match (&every, i + 1 < self.steps.len() || !s.promotes()) {
                    (Some(d), true) => format!(", then watch the alarms of version {} for {d}", self.candidate_str()),
                    _ => String::new(),
                };
                writeln!(f, "  step {}: {}{wait}", i + 1, s.routing())?;
            }
            if !self.skipped.is_empty() {
                let s: Vec<String> = self.skipped.iter().map(|w| w.to_string()).collect();
                writeln!(f, "  already done: {}", s.join(", "))?;
            }
        }
        Ok(())
    }
}

impl RolloutPlan {
    fn candidate_str(&self) -> String {
        self.candidate.map(|c| c.to_string()).unwrap_or_else(|| "?".into())
    }
}

/// Everything the plan builders need besides the alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs<'a> {
    pub function: &'a str,
    pub alias: &'a str,
    pub current: &'a Current,
    /// Published versions, oldest first.
    pub versions: &'a [VersionFacts],
    /// `--version`.
    pub version: Option<Version>,
    /// The primary recorded in the state file by the last promote.
    pub state_previous: Option<Version>,
}

impl Inputs<'_> {
    /// `--version`, else the version the alias routes to now, else the newest published version that is not the primary.
    pub fn candidate(&self) -> Result<Version> {
        if let Some(v) = self.version {
            return Ok(v);
        }
        if let Some((v, _)) = self.current.routed() {
            return Ok(Version::parse(v)?);
        }
        let newest = self.versions.iter().rev().map(|f| f.version.as_str()).find(|v| *v != self.current.primary);
        let Some(newest) = newest else {
            return Err(
                Error::user(format!(
                    "there is no candidate: alias `{}` already sends 100% to version {}, the newest published version of `{}`",
                    self.alias, self.current.primary, self.function
                ))
                .help("publish a new version with `mlambda deploy`, or pass `--version N`"));
        };
        Ok(Version::parse(newest)?)
    }

    fn plan(&self, action: Action, candidate: Option<Version>, steps: Vec<Step>) -> RolloutPlan {
        let to = steps.last().map(Step::routing).unwrap_or_else(|| self.current.render());
        let previous_primary =
            steps.iter().any(Step::promotes).then(|| Version::parse(&self.current.primary).ok()).flatten();
        RolloutPlan {
            function: self.function.to_string(),
            alias: self.alias.to_string(),
            action,
            candidate,
            from: self.current.render(),
            from_primary: self.current.primary.clone(),
            to,
            steps,
            skipped: vec![],
            interval_secs: None,
            previous_primary: previous_primary.filter(|_| action != Action::Rollback),
        }
    }

    fn step(&self, target: AliasRouting, description: String) -> Step {
        Step { target, description }
    }

    fn weighted(&self, candidate: Version, weight: Weight) -> Result<Step, AliasError> {
        let p = Proposal {
            function: self.function,
            primary: &self.current.primary,
            candidate,
            weight,
            routed: self.current.routed(),
        };
        let target = alias::check(&p, self.versions)?;
        Ok(self.step(target, self.current.description.clone()))
    }

    fn promoted(&self, candidate: Version) -> Result<Step, AliasError> {
        let target = alias::check_primary(self.function, candidate, self.versions)?;
        if target.primary.to_string() == self.current.primary {
            return Err(AliasError::SameVersion(self.current.primary.clone()));
        }
        let previous = Version::parse(&self.current.primary).ok();
        Ok(self.step(target, alias::describe_previous(&self.current.description, previous)))
    }
}

/// `--weight W`: one write that sends `W` to the candidate.
pub fn weight(i: &Inputs<'_>, w: Weight) -> Result<RolloutPlan> {
    let candidate = i.candidate()?;
    let step = i.weighted(candidate, w)?;
    Ok(i.plan(Action::Weight, Some(candidate), vec![step]))
}

/// `--steps` or `--preset`: a write per remaining step; 1 promotes.
pub fn steps(i: &Inputs<'_>, steps: &Steps, interval: Duration) -> Result<RolloutPlan> {
    let candidate = i.candidate()?;
    let current = i.current.routed().filter(|(v, _)| Version::parse(v).ok() == Some(candidate)).map(|(_, w)| w);
    let remaining = steps.remaining(current);
    if remaining.is_empty() {
        return Err(Error::user(format!(
            "nothing left to do: version {candidate} already has {} of alias `{}`, as much as the last step",
            alias::Percent(current.unwrap_or(0.0)),
            i.alias
        ))
        .help("pass higher steps, or `mlambda rollout --promote` to finish"));
    }
    // A version that can take a weight at all is checked even when only the promote step is left.
    let probe = remaining.iter().copied().find(|w| *w < 1.0).unwrap_or(0.5);
    i.weighted(candidate, Weight::new(probe)?)?;
    let mut out = Vec::new();
    for w in &remaining {
        out.push(if *w >= 1.0 { i.promoted(candidate)? } else { i.weighted(candidate, Weight::new(*w)?)? });
    }
    let mut plan = i.plan(Action::Steps, Some(candidate), out);
    plan.skipped = steps.weights().iter().copied().filter(|w| !remaining.contains(w)).collect();
    plan.interval_secs = Some(interval.as_secs());
    Ok(plan)
}

/// `--promote`: the candidate becomes the primary at 100%; the old primary is recorded for `--rollback`.
pub fn promote(i: &Inputs<'_>) -> Result<RolloutPlan> {
    let candidate = match (i.version, i.current.routed()) {
        (Some(v), Some((routed, w))) if Version::parse(routed).ok() != Some(v) => {
            return Err(AliasError::SecondCandidate { routed: routed.to_string(), weight: alias::Percent(w) }.into())
        }
        _ => i.candidate()?,
    };
    let step = i.promoted(candidate)?;
    Ok(i.plan(Action::Promote, Some(candidate), vec![step]))
}

/// `--rollback`: clear the routing; without routing, go back to the primary the last promote replaced.
pub fn rollback(i: &Inputs<'_>) -> Result<RolloutPlan> {
    if let Some((routed, _)) = i.current.routed() {
        let primary = Version::parse(&i.current.primary)?;
        let step = i.step(AliasRouting::all(primary), i.current.description.clone());
        return Ok(i.plan(Action::Rollback, Some(Version::parse(routed)?), vec![step]));
    }
    let previous = alias::previous_from_description(&i.current.description)
        .or(i.state_previous)
        .filter(|p| p.to_string() != i.current.primary);
    let Some(previous) = previous else {
        return Err(Error::user(format!(
            "nothing to roll back: alias `{}` sends 100% to version {} and no earlier primary is recorded",
            i.alias, i.current.primary
        ))
        .help(format!("to go back to a specific version, run `mlambda rollout --version N --promote`; `mlambda status` lists the versions of `{}`", i.function)));
    };
    let target = alias::check_primary(i.function, previous, i.versions)?;
    let step = i.step(target, alias::describe_previous(&i.current.description, None));
    Ok(i.plan(Action::Rollback, Some(previous), vec![step]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_plan_a_look_after_each_partial_step_and_one_for_a_later_promote() {
        assert_eq!(Steps::new(vec![0.1, 0.5, 1.0]).unwrap().looks(), 2);
        assert_eq!(Steps::new(vec![0.1, 0.5]).unwrap().looks(), 3);
        assert_eq!(Steps::new(vec![1.0]).unwrap().looks(), 0);
        assert_eq!(Steps::preset(Preset::Linear10_1m).0.looks(), 9);
    }

    fn versions(n: u64) -> Vec<VersionFacts> {
        (1..=n).map(|v| VersionFacts { version: v.to_string(), role: "r".into(), dead_letter: None }).collect()
    }

    fn current(primary: &str, routing: &[(&str, f64)], description: &str) -> Current {
        Current {
            primary: primary.into(),
            routing: routing.iter().map(|(v, w)| (v.to_string(), *w)).collect(),
            description: description.into(),
        }
    }

    fn v(n: &str) -> Version {
        Version::parse(n).unwrap()
    }

    fn w(x: f64) -> Weight {
        Weight::new(x).unwrap()
    }

    fn inputs<'a>(c: &'a Current, vs: &'a [VersionFacts]) -> Inputs<'a> {
        Inputs { function: "churn", alias: "production", current: c, versions: vs, version: None, state_previous: None }
    }

    #[test]
    fn steps_must_increase_within_zero_and_one() {
        assert_eq!(Steps::new(vec![0.1, 0.5, 1.0]).unwrap().weights(), &[0.1, 0.5, 1.0]);
        for bad in [vec![], vec![0.5, 0.1], vec![0.1, 0.1], vec![0.0, 1.0], vec![0.5, 1.5], vec![-0.1]] {
            let e = Steps::new(bad.clone()).unwrap_err();
            assert_eq!(e.exit_code(), 1, "{bad:?}");
            assert!(e.help.as_deref().unwrap_or("").contains("--steps 0.1,0.5,1"));
        }
    }

    #[test]
    fn presets_expand_to_their_steps_and_interval() {
        let (s, d) = Steps::preset(Preset::Canary10_5m);
        assert_eq!((s.weights(), d), (&[0.1, 1.0][..], Duration::from_secs(300)));
        let (s, d) = Steps::preset(Preset::Linear10_1m);
        assert_eq!(s.weights(), &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]);
        assert_eq!(d, Duration::from_secs(60));
    }

    #[test]
    fn a_weight_plan_reads_from_and_to() {
        let c = current("3", &[], "");
        let vs = versions(4);
        let p = weight(&inputs(&c, &vs), w(0.1)).unwrap();
        assert_eq!(p.to_string(), "production: 3 100% → 3 90% · 4 10%\n");
        assert_eq!(p.candidate, Some(v("4")));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["steps"][0]["routing"], "3 90% · 4 10%");
        assert_eq!(json["action"], "weight");
    }

    #[test]
    fn the_default_candidate_is_the_routed_version_then_the_newest_other_than_the_primary() {
        let vs = versions(5);
        let c = current("3", &[("4", 0.1)], "");
        assert_eq!(inputs(&c, &vs).candidate().unwrap(), v("4"));
        let c = current("5", &[], "");
        assert_eq!(inputs(&c, &vs).candidate().unwrap(), v("4"));
        let one = versions(1);
        let c = current("1", &[], "");
        assert!(inputs(&c, &one).candidate().unwrap_err().message.contains("there is no candidate"));
    }

    #[test]
    fn steps_resume_from_the_current_weight_and_end_with_a_promote() {
        let vs = versions(4);
        let c = current("3", &[("4", 0.1)], "");
        let p = steps(&inputs(&c, &vs), &Steps::new(vec![0.1, 0.5, 1.0]).unwrap(), Duration::from_secs(60)).unwrap();
        let routes: Vec<String> = p.steps.iter().map(Step::routing).collect();
        assert_eq!(routes, ["3 50% · 4 50%", "4 100%"]);
        assert_eq!(p.skipped, [0.1]);
        assert!(p.steps[1].promotes());
        assert_eq!(p.steps[1].description, "mlambda: previous=3");
        assert_eq!(p.previous_primary, Some(v("3")));
        assert!(p.to_string().contains("step 1: 3 50% · 4 50%, then watch the alarms of version 4 for 1m"), "{p}");
        let c = current("3", &[("4", 1.0 - 1e-12)], "");
        assert!(steps(&inputs(&c, &vs), &Steps::new(vec![0.5]).unwrap(), Duration::ZERO).is_err());
    }

    #[test]
    fn a_candidate_breaking_an_alias_rule_is_refused_before_any_step() {
        let mut vs = versions(4);
        vs[3].role = "other".into();
        let c = current("3", &[], "");
        let e = steps(&inputs(&c, &vs), &Steps::new(vec![1.0]).unwrap(), Duration::ZERO).unwrap_err();
        assert!(e.message.contains("different execution roles"), "{}", e.message);
    }

    #[test]
    fn promote_records_the_previous_primary_and_rollback_returns_to_it() {
        let vs = versions(4);
        let c = current("3", &[("4", 0.1)], "");
        let p = promote(&inputs(&c, &vs)).unwrap();
        assert_eq!(p.to_string(), "production: 3 90% · 4 10% → 4 100%\n");
        assert_eq!(p.steps[0].description, "mlambda: previous=3");

        let after = current("4", &[], "mlambda: previous=3");
        let r = rollback(&inputs(&after, &vs)).unwrap();
        assert_eq!(r.to, "3 100%");
        assert_eq!(r.steps[0].description, "");
        assert_eq!(r.previous_primary, None);

        // Without the description, the state file's record is used.
        let bare = current("4", &[], "");
        let mut i = inputs(&bare, &vs);
        assert!(rollback(&i).unwrap_err().message.contains("nothing to roll back"));
        i.state_previous = Some(v("2"));
        assert_eq!(rollback(&i).unwrap().to, "2 100%");
    }

    #[test]
    fn rollback_with_routing_clears_it_and_keeps_the_primary() {
        let vs = versions(4);
        let c = current("3", &[("4", 0.3)], "mlambda: previous=2");
        let r = rollback(&inputs(&c, &vs)).unwrap();
        assert_eq!(r.to_string(), "production: 3 70% · 4 30% → 3 100%\n");
        assert_eq!(r.steps[0].description, "mlambda: previous=2");
    }

    #[test]
    fn promote_refuses_a_version_other_than_the_routed_one_and_the_primary_itself() {
        let vs = versions(5);
        let c = current("3", &[("4", 0.1)], "");
        let mut i = inputs(&c, &vs);
        i.version = Some(v("5"));
        assert!(promote(&i).unwrap_err().message.contains("only one additional version"));
        let c = current("3", &[], "");
        let mut i = inputs(&c, &vs);
        i.version = Some(v("3"));
        assert!(promote(&i).unwrap_err().message.contains("already the primary"));
    }

    #[test]
    fn rollout_plans_as_json() {
        let vs = versions(4);
        let c = current("3", &[], "");
        insta::assert_json_snapshot!("rollout_weight", weight(&inputs(&c, &vs), w(0.1)).unwrap());
        let c = current("3", &[("4", 0.1)], "deployed by mlambda");
        let to_one = Steps::new(vec![0.1, 0.5, 1.0]).unwrap();
        let p = steps(&inputs(&c, &vs), &to_one, Duration::from_secs(300)).unwrap();
        insta::assert_json_snapshot!("rollout_steps", p);
        insta::assert_json_snapshot!("rollout_promote", promote(&inputs(&c, &vs)).unwrap());
        insta::assert_json_snapshot!("rollout_rollback", rollback(&inputs(&c, &vs)).unwrap());
    }
}
