//! What mlambda keeps on an alias, in its description: the previous primary, the lease of a running rollout and
//! the rollout's current step. Pure: parsing, rendering, and the decisions read from them.
//!
//! The description is the one place on an alias that every writer of its routing also writes, in the same
//! `UpdateAlias` call, under the same `RevisionId`. So the step's start can never disagree with the weight it
//! describes, and taking the lease is a compare-and-set.
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::domain::Version;

/// Lambda's limit on an alias description.
pub const LIMIT: usize = 256;
/// The longest owner kept, so the whole record fits in [`LIMIT`].
const OWNER_MAX: usize = 48;
const MARK: &str = "mlambda: ";

/// Who holds a running stepped rollout, and until when; renewed with every step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lease {
    pub owner: String,
    #[serde(serialize_with = "rfc3339")]
    pub until: SystemTime,
}

impl Lease {
    pub fn live(&self, now: SystemTime) -> bool {
        self.until > now
    }
}

/// The rollout's current step: the candidate's weight, when it began, and the plan it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub candidate: Version,
    pub weight: f64,
    #[serde(serialize_with = "rfc3339")]
    pub since: SystemTime,
    /// The whole `--steps`; empty for a single `--weight`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<f64>,
    /// The watch window after each step.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "secs")]
    pub every: Option<Duration>,
    pub by: String,
}

/// An alias description, split into mlambda's record and everyone else's text (kept as it was).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AliasRecord {
    #[serde(skip)]
    pub other: Vec<String>,
    pub previous: Option<Version>,
    pub lease: Option<Lease>,
    pub step: Option<StepRecord>,
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_seconds(*t))
}

fn secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.map_or(0, |d| d.as_secs()))
}

/// `alice@laptop:4242` as it can sit in a description: no spaces or separators, bounded.
pub fn owner(raw: &str) -> String {
    raw.chars().map(|c| if c.is_whitespace() || c == '|' { '_' } else { c }).take(OWNER_MAX).collect()
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn weights(w: &[f64]) -> String {
    w.iter().map(f64::to_string).collect::<Vec<_>>().join(",")
}

/// `key=value` pairs of one marker, in order.
fn pairs(text: &str) -> Vec<(&str, &str)> {
    text.split_whitespace().filter_map(|kv| kv.split_once('=')).collect()
}

fn get<'a>(pairs: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn parse_lease(p: &[(&str, &str)]) -> Option<Lease> {
    let until = humantime::parse_rfc3339(get(p, "until")?).ok()?;
    Some(Lease { owner: get(p, "lease")?.to_string(), until })
}

fn parse_step(p: &[(&str, &str)]) -> Option<StepRecord> {
    let steps = match get(p, "steps") {
        Some(s) => s.split(',').map(|w| w.parse().ok()).collect::<Option<Vec<f64>>>()?,
        None => vec![],
    };
    Some(StepRecord {
        candidate: Version::parse(get(p, "rollout")?).ok()?,
        weight: get(p, "at")?.parse().ok()?,
        since: humantime::parse_rfc3339(get(p, "since")?).ok()?,
        steps,
        every: get(p, "every").and_then(|e| humantime::parse_duration(e).ok()),
        by: get(p, "by").unwrap_or_default().to_string(),
    })
}

impl AliasRecord {
    /// Reads what any description holds; text mlambda cannot read is kept as someone else's.
    pub fn parse(description: &str) -> AliasRecord {
        let mut r = AliasRecord::default();
        for part in description.split(" | ").map(str::trim).filter(|p| !p.is_empty()) {
            let Some(body) = part.strip_prefix(MARK) else {
                r.other.push(part.to_string());
                continue;
            };
            let p = pairs(body);
            let read = match p.first().map(|(k, _)| *k) {
                Some("previous") => {
                    get(&p, "previous").and_then(|v| Version::parse(v).ok()).map(|v| r.previous = Some(v))
                }
                Some("lease") => parse_lease(&p).map(|l| r.lease = Some(l)),
                Some("rollout") => parse_step(&p).map(|s| r.step = Some(s)),
                _ => None,
            };
            if read.is_none() {
                r.other.push(part.to_string());
            }
        }
        r
    }

    fn parts(&self, owner_max: usize) -> Vec<String> {
        let cut = |o: &str| o.chars().take(owner_max).collect::<String>();
        let mut parts = Vec::new();
        if let Some(v) = self.previous {
            parts.push(format!("{MARK}previous={v}"));
        }
        if let Some(l) = &self.lease {
            parts.push(format!("{MARK}lease={} until={}", cut(&l.owner), time(l.until)));
        }
        if let Some(s) = &self.step {
            let mut text = format!("{MARK}rollout={} at={} since={}", s.candidate, s.weight, time(s.since));
            if !s.steps.is_empty() {
                text += &format!(" steps={}", weights(&s.steps));
            }
            if let Some(e) = s.every {
                text += &format!(" every={}s", e.as_secs());
            }
            text += &format!(" by={}", cut(&s.by));
            parts.push(text);
        }
        parts
    }

    /// The description to write: others' text first, then the record. Over Lambda's limit, others' text goes
    /// first, then the owners are shortened: the record decides what later commands do.
    pub fn render(&self) -> String {
        let ours = self.parts(OWNER_MAX);
        let all: Vec<String> = self.other.iter().cloned().chain(ours.iter().cloned()).collect();
        let text = all.join(" | ");
        if text.chars().count() <= LIMIT {
            return text;
        }
        let text = ours.join(" | ");
        if text.chars().count() <= LIMIT {
            return text;
        }
        self.parts(16).join(" | ")
    }
}

/// Whether a command may move the alias, given its lease.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseCheck {
    /// No lease, or this operator's own.
    Free,
    /// Someone's lease ran out: a crashed rollout; it is taken over.
    Expired(Lease),
    /// Someone else's live lease, broken with `--break-lease`.
    Broken(Lease),
    /// Someone else's live lease: the command must not move the alias.
    Held(Lease),
}

/// Why `--break-lease` cannot be used: there is nothing to break.
#[derive(Debug, Clone, PartialEq)]
pub struct NoLease;

pub fn check_lease(record: &AliasRecord, me: &str, now: SystemTime, break_lease: bool) -> Result<LeaseCheck, NoLease> {
    let check = match &record.lease {
        None => LeaseCheck::Free,
        Some(l) if l.owner == owner(me) => LeaseCheck::Free,
        Some(l) if !l.live(now) => LeaseCheck::Expired(l.clone()),
        Some(l) if break_lease => LeaseCheck::Broken(l.clone()),
        Some(l) => LeaseCheck::Held(l.clone()),
    };
    if break_lease && !matches!(check, LeaseCheck::Broken(_)) {
        return Err(NoLease);
    }
    Ok(check)
}

/// How long a lease taken now lasts: the step's window and a margin for the checks after it, so a live
/// rollout renews it in time and a crashed one frees the alias soon after its window.
pub fn lease_until(now: SystemTime, window: Duration) -> SystemTime {
    now + window + Duration::from_secs(120)
}

/// What is left of the current step's window when a stepped rollout resumes with the candidate at `weight`:
/// measured from the recorded start when the record is of this step, else a whole window from now (nobody
/// recorded when that weight began, so the candidate is watched as if it just began).
pub fn window_left(
    record: &AliasRecord,
    candidate: Version,
    weight: f64,
    window: Duration,
    now: SystemTime,
) -> (Duration, Option<SystemTime>) {
    let recorded =
        record.step.as_ref().filter(|s| s.candidate == candidate && (s.weight - weight).abs() < 1e-9).map(|s| s.since);
    match recorded {
        Some(since) => {
            let elapsed = now.duration_since(since).unwrap_or_default();
            (window.saturating_sub(elapsed), Some(since))
        }
        None => (window, None),
    }
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} until {}", self.owner, time(self.until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    fn v(n: &str) -> Version {
        Version::parse(n).unwrap()
    }

    fn full() -> AliasRecord {
        AliasRecord {
            other: vec!["managed by mlambda".into()],
            previous: Some(v("2")),
            lease: Some(Lease { owner: "alice@box:4242".into(), until: at("2026-12-07T08:02:20Z") }),
            step: Some(StepRecord {
                candidate: v("4"),
                weight: 0.1,
                since: at("2026-12-07T08:00:00Z"),
                steps: vec![0.1, 0.5, 1.0],
                every: Some(Duration::from_secs(20)),
                by: "alice@box:4242".into(),
            }),
        }
    }

    #[test]
    fn a_record_round_trips_through_the_description_keeping_others_text() {
        let text = full().render();
        assert_eq!(
            text,
            "managed by mlambda | mlambda: previous=2 | mlambda: lease=alice@box:4242 until=2026-12-07T08:02:20Z | \
             mlambda: rollout=4 at=0.1 since=2026-12-07T08:00:00Z steps=0.1,0.5,1 every=20s by=alice@box:4242"
        );
        assert_eq!(AliasRecord::parse(&text), full());
        // the marker older mlambda wrote reads the same
        assert_eq!(AliasRecord::parse("managed by mlambda | mlambda: previous=3").previous, Some(v("3")));
        assert_eq!(AliasRecord::parse(""), AliasRecord::default());
        // a marker that does not parse is kept as text, not lost and not trusted
        let odd = AliasRecord::parse("mlambda: lease=x until=soon");
        assert_eq!((odd.lease, odd.other), (None, vec!["mlambda: lease=x until=soon".to_string()]));
    }

    #[test]
    fn a_record_fits_lambdas_limit_dropping_others_text_then_shortening_owners() {
        let mut r = full();
        r.other = vec!["x".repeat(200)];
        let text = r.render();
        assert!(text.chars().count() <= LIMIT && text.starts_with("mlambda: previous=2"), "{text}");
        r.lease.as_mut().unwrap().owner = owner(&"o".repeat(100));
        r.step.as_mut().unwrap().by = owner(&"o".repeat(100));
        r.step.as_mut().unwrap().steps = (1..=10).map(|i| f64::from(i) / 10.0).collect();
        let text = r.render();
        assert!(text.chars().count() <= LIMIT, "{} chars: {text}", text.len());
        let back = AliasRecord::parse(&text);
        assert_eq!(back.step.unwrap().steps.len(), 10);
        assert_eq!(back.lease.unwrap().until, at("2026-12-07T08:02:20Z"));
        assert_eq!(owner("ci run 7 | x"), "ci_run_7___x");
    }

    #[test]
    fn a_live_lease_of_someone_else_holds_an_expired_one_is_taken_over() {
        let r = full();
        let before = at("2026-12-07T08:01:00Z");
        let after = at("2026-12-07T08:03:00Z");
        assert_eq!(check_lease(&r, "alice@box:4242", before, false), Ok(LeaseCheck::Free));
        assert!(
            matches!(check_lease(&r, "bob@ci:1", before, false), Ok(LeaseCheck::Held(l)) if l.owner == "alice@box:4242")
        );
        assert!(matches!(check_lease(&r, "bob@ci:1", after, false), Ok(LeaseCheck::Expired(_))));
        assert!(matches!(check_lease(&r, "bob@ci:1", before, true), Ok(LeaseCheck::Broken(_))));
        // nothing live to break: refused, so a typo never passes silently
        assert_eq!(check_lease(&AliasRecord::default(), "bob@ci:1", before, true), Err(NoLease));
        assert_eq!(check_lease(&r, "bob@ci:1", after, true), Err(NoLease));
        assert_eq!(check_lease(&AliasRecord::default(), "bob@ci:1", before, false), Ok(LeaseCheck::Free));
    }

    #[test]
    fn a_resumed_step_waits_what_is_left_of_its_recorded_window() {
        let r = full();
        let w = Duration::from_secs(20);
        let now = at("2026-12-07T08:00:15Z");
        assert_eq!(window_left(&r, v("4"), 0.1, w, now), (Duration::from_secs(5), Some(at("2026-12-07T08:00:00Z"))));
        assert_eq!(window_left(&r, v("4"), 0.1, w, at("2026-12-07T09:00:00Z")).0, Duration::ZERO);
        // a weight nobody recorded, or another candidate: a whole window from now
        assert_eq!(window_left(&r, v("4"), 0.5, w, now), (w, None));
        assert_eq!(window_left(&r, v("5"), 0.1, w, now), (w, None));
        assert_eq!(lease_until(now, w), at("2026-12-07T08:02:35Z"));
    }
}
