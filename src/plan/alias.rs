//! Alias routing as Lambda allows it: a published primary and at most one weighted published candidate.
//!
//! moto accepts any routing, so every rule real Lambda enforces is checked here, before any API call.
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::domain::{DomainError, Version, Weight};
use crate::error::Error;

/// Why a routing change is refused; each names the values involved and (through [`AliasError::help`]) the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AliasError {
    /// A weight or version that is not one at all.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("version {version} of `{function}` does not exist")]
    Missing { function: String, version: String, published: Vec<String> },
    #[error("version {0} is already the primary of the alias, so it cannot also be the candidate")]
    SameVersion(String),
    #[error("versions {primary} and {candidate} have different execution roles (`{primary_role}` and `{candidate_role}`): Lambda only splits an alias between versions with the same role")]
    DifferentRole { primary: String, candidate: String, primary_role: String, candidate_role: String },
    #[error("versions {primary} and {candidate} have different dead-letter configs (`{primary_dlq}` and `{candidate_dlq}`): Lambda only splits an alias between versions with the same dead-letter queue")]
    DifferentDeadLetter { primary: String, candidate: String, primary_dlq: String, candidate_dlq: String },
    #[error("the alias already routes {weight} of its traffic to version {routed}, and an alias can route to only one additional version")]
    SecondCandidate { routed: String, weight: Percent },
}

impl AliasError {
    pub fn help(&self) -> String {
        match self {
            AliasError::Domain(e) => e.help(),
            AliasError::Missing { published, .. } if published.is_empty() => {
                "the function has no published versions yet; run `mlambda deploy`".into()
            }
            AliasError::Missing { published, .. } => {
                format!("published versions are {}; run `mlambda status` to see them", published.join(", "))
            }
            AliasError::SameVersion(_) => {
                "deploy a new version with `mlambda deploy`, or pick another one with `--version N`".into()
            }
            AliasError::DifferentRole { primary_role, .. } => {
                format!("set `function.role` to `{primary_role}` and run `mlambda deploy` to publish a candidate with the primary's role")
            }
            AliasError::DifferentDeadLetter { .. } => {
                "give both versions the same dead-letter queue (or none), then publish the candidate again".into()
            }
            AliasError::SecondCandidate { routed, .. } => {
                format!("promote version {routed} with `mlambda rollout --promote` or clear it with `mlambda rollout --rollback` first")
            }
        }
    }
}

impl From<AliasError> for Error {
    fn from(e: AliasError) -> Error {
        let help = e.help();
        Error::user(e).help(help)
    }
}

/// A share of traffic for people: `10%`, `12.5%`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Percent(pub f64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Two decimals at most, so 1 - 0.7 shows as 30%, not 30.000000000000004%.
        let p = (self.0 * 100.0 * 100.0).round() / 100.0;
        write!(f, "{p}%")
    }
}

/// Where an alias sends traffic: the primary gets `1 - weight`, the additional version `weight`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AliasRouting {
    pub primary: Version,
    pub additional: Option<(Version, Weight)>,
}

impl AliasRouting {
    pub fn all(primary: Version) -> AliasRouting {
        AliasRouting { primary, additional: None }
    }

    /// The candidate's share: its weight, or 1 once it is the primary alone.
    pub fn share(&self) -> f64 {
        self.additional.map(|(_, w)| w.get()).unwrap_or(1.0)
    }
}

impl fmt::Display for AliasRouting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.additional {
            None => write!(f, "{} 100%", self.primary),
            Some((v, w)) => write!(f, "{} {} · {} {}", self.primary, Percent(1.0 - w.get()), v, Percent(w.get())),
        }
    }
}

/// Renders whatever an alias holds today (it may break the rules: moto or another tool set it).
pub fn render(primary: &str, routing: &BTreeMap<String, f64>) -> String {
    let extra: f64 = routing.values().sum();
    let mut parts = vec![format!("{primary} {}", Percent(1.0 - extra))];
    parts.extend(routing.iter().map(|(v, w)| format!("{v} {}", Percent(*w))));
    parts.join(" · ")
}

/// What the rules need to know about one published version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionFacts {
    pub version: String,
    pub role: String,
    pub dead_letter: Option<String>,
}

/// A routing change to check: the alias's primary, the candidate and its weight, and what the alias routes today.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal<'a> {
    pub function: &'a str,
    pub primary: &'a str,
    pub candidate: Version,
    pub weight: Weight,
    /// The additional version the alias routes now, with its weight.
    pub routed: Option<(&'a str, f64)>,
}

fn published<'a>(
    function: &str,
    version: Version,
    versions: &'a [VersionFacts],
) -> Result<&'a VersionFacts, AliasError> {
    versions.iter().find(|f| Version::parse(&f.version).is_ok_and(|v| v == version)).ok_or_else(|| {
        AliasError::Missing {
            function: function.to_string(),
            version: version.to_string(),
            published: versions.iter().map(|f| f.version.clone()).collect(),
        }
    })
}

/// Checks every rule Lambda enforces on a weighted alias, in the order a person would fix them.
pub fn check(p: &Proposal<'_>, versions: &[VersionFacts]) -> Result<AliasRouting, AliasError> {
    let (weight, candidate) = (p.weight, p.candidate);
    let primary = Version::parse(p.primary)?;
    if primary == candidate {
        return Err(AliasError::SameVersion(primary.to_string()));
    }
    if let Some((routed, w)) = p.routed {
        if Version::parse(routed).ok() != Some(candidate) {
            return Err(AliasError::SecondCandidate { routed: routed.to_string(), weight: Percent(w) });
        }
    }
    let pf = published(p.function, primary, versions)?;
    let cf = published(p.function, candidate, versions)?;
    if pf.role != cf.role {
        return Err(AliasError::DifferentRole {
            primary: primary.to_string(),
            candidate: candidate.to_string(),
            primary_role: pf.role.clone(),
            candidate_role: cf.role.clone(),
        });
    }
    if pf.dead_letter != cf.dead_letter {
        let none = || "none".to_string();
        return Err(AliasError::DifferentDeadLetter {
            primary: primary.to_string(),
            candidate: candidate.to_string(),
            primary_dlq: pf.dead_letter.clone().unwrap_or_else(none),
            candidate_dlq: cf.dead_letter.clone().unwrap_or_else(none),
        });
    }
    Ok(AliasRouting { primary, additional: Some((candidate, weight)) })
}

/// Checks a new primary at 100% (promote, roll back to a previous primary): published and existing.
pub fn check_primary(function: &str, version: Version, versions: &[VersionFacts]) -> Result<AliasRouting, AliasError> {
    published(function, version, versions)?;
    Ok(AliasRouting::all(version))
}

/// The alias description with the previous primary recorded (or the record removed), other text kept.
pub fn describe_previous(description: &str, previous: Option<Version>) -> String {
    let mut r = super::record::AliasRecord::parse(description);
    r.previous = previous;
    r.render()
}

/// The previous primary recorded in an alias description by a promote.
pub fn previous_from_description(description: &str) -> Option<Version> {
    super::record::AliasRecord::parse(description).previous
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(v: &str, role: &str, dlq: Option<&str>) -> VersionFacts {
        VersionFacts { version: v.into(), role: role.into(), dead_letter: dlq.map(str::to_string) }
    }

    fn versions() -> Vec<VersionFacts> {
        vec![facts("1", "arn:role/a", None), facts("2", "arn:role/a", None), facts("3", "arn:role/a", None)]
    }

    fn v(n: &str) -> Version {
        Version::parse(n).unwrap()
    }

    fn proposal(primary: &'static str, candidate: &'static str, weight: f64) -> Proposal<'static> {
        Proposal {
            function: "churn",
            primary,
            candidate: v(candidate),
            weight: Weight::new(weight).unwrap(),
            routed: None,
        }
    }

    #[test]
    fn a_valid_proposal_gives_the_routing_and_renders_both_shares() {
        let r = check(&proposal("1", "2", 0.1), &versions()).unwrap();
        assert_eq!(r.to_string(), "1 90% · 2 10%");
        assert_eq!(r.share(), 0.1);
        assert_eq!(AliasRouting::all(v("3")).to_string(), "3 100%");
        assert_eq!(Percent(1.0 - 0.7).to_string(), "30%");
        assert_eq!(Percent(0.125).to_string(), "12.5%");
    }

    #[test]
    fn latest_is_never_the_primary_of_a_weighted_alias() {
        let e = check(&proposal("$LATEST", "2", 0.1), &versions()).unwrap_err();
        assert_eq!(e, AliasError::Domain(DomainError::Latest("$LATEST".into())));
        assert!(e.help().contains("mlambda deploy"));
    }

    #[test]
    fn the_candidate_must_differ_from_the_primary() {
        let e = check(&proposal("2", "2", 0.1), &versions()).unwrap_err();
        assert_eq!(e, AliasError::SameVersion("2".into()));
        assert!(e.to_string().contains("version 2 is already the primary"));
    }

    #[test]
    fn a_missing_version_lists_the_published_ones() {
        let e = check(&proposal("1", "99", 0.1), &versions()).unwrap_err();
        assert!(e.to_string().contains("version 99 of `churn` does not exist"), "{e}");
        assert!(e.help().contains("1, 2, 3"), "{}", e.help());
        let e = check(&proposal("7", "2", 0.1), &versions()).unwrap_err();
        assert!(e.to_string().contains("version 7"), "{e}");
    }

    #[test]
    fn both_versions_need_the_same_role() {
        let mut vs = versions();
        vs[2].role = "arn:role/b".into();
        let e = check(&proposal("1", "3", 0.1), &vs).unwrap_err();
        assert!(e.to_string().contains("different execution roles (`arn:role/a` and `arn:role/b`)"), "{e}");
        assert!(e.help().contains("`arn:role/a`"));
    }

    #[test]
    fn both_versions_need_the_same_dead_letter_config() {
        let mut vs = versions();
        vs[1].dead_letter = Some("arn:aws:sqs:us-east-1:123456789012:dlq".into());
        let e = check(&proposal("1", "2", 0.1), &vs).unwrap_err();
        assert!(e.to_string().contains("different dead-letter configs (`none` and `arn:aws:sqs"), "{e}");
    }

    #[test]
    fn an_alias_routes_to_at_most_one_additional_version() {
        let mut p = proposal("1", "3", 0.2);
        p.routed = Some(("2", 0.1));
        let e = check(&p, &versions()).unwrap_err();
        assert!(e.to_string().contains("routes 10% of its traffic to version 2"), "{e}");
        assert!(e.help().contains("--promote"));
        // Changing the weight of the version already routed is fine.
        p.candidate = v("2");
        assert_eq!(check(&p, &versions()).unwrap().to_string(), "1 80% · 2 20%");
    }

    #[test]
    fn the_previous_primary_round_trips_through_the_description() {
        let d = describe_previous("deployed by mlambda", Some(v("3")));
        assert_eq!(d, "deployed by mlambda | mlambda: previous=3");
        assert_eq!(previous_from_description(&d), Some(v("3")));
        let d2 = describe_previous(&d, Some(v("4")));
        assert_eq!(previous_from_description(&d2), Some(v("4")));
        assert_eq!(describe_previous(&d2, None), "deployed by mlambda");
        assert_eq!(previous_from_description(""), None);
    }

    #[test]
    fn any_alias_renders_even_one_that_breaks_the_rules() {
        assert_eq!(render("3", &BTreeMap::new()), "3 100%");
        assert_eq!(render("3", &BTreeMap::from([("4".to_string(), 0.1)])), "3 90% · 4 10%");
    }
}
