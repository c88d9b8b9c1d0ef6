//! Two operators on one alias, on moto (whose alias `RevisionId` `scripts/moto-server` makes change and checks,
//! as Lambda does): the lease a stepped rollout holds, taking over an expired one, `--break-lease`, and a
//! resumed rollout waiting out the window its step recorded on the alias.
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::common::{aws_cli, unwrap_lines};
use crate::rollout::Fixture;

fn spawn(f: &Fixture, operator: &str, args: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("mlambda"))
        .args(args)
        .current_dir(f.p.root())
        .env("NO_COLOR", "1")
        .env("MLAMBDA_OPERATOR", operator)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mlambda")
}

/// Waits for a child, bounded, returning its output.
fn finish(mut child: Child, within: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > within {
            let _ = child.kill();
            panic!("mlambda ran longer than {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

fn description(f: &Fixture) -> String {
    f.alias()["Description"].as_str().unwrap_or_default().to_string()
}

fn set_description(f: &Fixture, text: &str) {
    aws_cli(&["lambda", "update-alias", "--function-name", f.name(), "--name", "production", "--description", text]);
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The `since=` of the step the alias records.
fn recorded_since(f: &Fixture) -> SystemTime {
    let d = description(f);
    let since = d.split_whitespace().find_map(|kv| kv.strip_prefix("since=")).unwrap_or_else(|| panic!("no step: {d}"));
    humantime::parse_rfc3339(since).expect("rfc3339")
}

#[test]
fn of_two_stepped_rollouts_started_at_once_exactly_one_runs_and_the_other_names_the_holder() {
    let f = Fixture::new("lease-race");
    f.publish("v2", None);
    let args = ["rollout", "--steps", "0.2,1", "--interval", "6s", "--version", "2", "--output", "json"];
    let a = spawn(&f, "ci-job-a", &args);
    let b = spawn(&f, "ci-job-b", &args);
    let (a, b) = (finish(a, Duration::from_secs(90)), finish(b, Duration::from_secs(90)));
    let codes = (a.status.code(), b.status.code());
    let (winner, loser, loser_out) = match codes {
        (Some(0), Some(2)) => ("ci-job-a", "ci-job-b", &b),
        (Some(2), Some(0)) => ("ci-job-b", "ci-job-a", &a),
        _ => panic!(
            "exactly one rollout must run: exit codes {codes:?}\nA: {}\nB: {}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        ),
    };
    let stderr = unwrap_lines(&String::from_utf8_lossy(&loser_out.stderr));
    eprintln!("{winner} ran; {loser} exited 2: {}", stderr.lines().find(|l| l.contains(winner)).unwrap_or_default());
    // Either it read the alias after the winner took the lease, or both read it first and Lambda refused the
    // loser's write under the stale RevisionId: both name the holder.
    assert!(
        stderr.contains(&format!("is leased by {winner} until"))
            || stderr.contains(&format!("changed by {winner} (who holds its lease")),
        "{loser} should name {winner}: {stderr}"
    );
    assert!(!stderr.contains(&format!("took the lease of alias `production` as {loser}")), "{stderr}");
    // the winner went all the way, and gave the lease back with its last step
    assert_eq!(f.routing(), ("2".to_string(), json!({})));
    let d = description(&f);
    assert!(d.contains("mlambda: previous=1") && !d.contains("lease="), "{d}");
}

#[test]
fn a_live_lease_refuses_other_operators_until_it_expires_or_is_broken() {
    let f = Fixture::new("lease-hold");
    f.publish("v2", None);
    // no lease at all: --break-lease is a mistake, refused before anything moves
    let e = f.p.fails(&["rollout", "--weight", "0.1", "--break-lease"], 1);
    assert!(e.contains("has no live lease of another operator to break"), "{e}");
    assert_eq!(f.routing(), ("1".to_string(), json!({})));

    let until = rfc3339(SystemTime::now() + Duration::from_secs(600));
    set_description(&f, &format!("managed by mlambda | mlambda: lease=alice@laptop:77 until={until}"));
    for args in
        [&["rollout", "--weight", "0.1"][..], &["rollout", "--promote", "--version", "2"], &["rollout", "--rollback"]]
    {
        let e = f.p.fails(args, 2);
        assert!(
            e.contains(&format!("alias `production` of `{}` is leased by alice@laptop:77 until {until}", f.name())),
            "{e}"
        );
        assert!(e.contains("--break-lease"), "{e}");
    }
    let dry = f.p.fails(&["rollout", "--weight", "0.1", "--dry-run"], 2);
    assert!(dry.contains("is leased by alice@laptop:77"), "a dry run says what the real run would do: {dry}");
    assert_eq!(f.routing(), ("1".to_string(), json!({})));

    let out = f.p.json(&["rollout", "--weight", "0.1", "--break-lease"]);
    assert_eq!(out["lease"]["how"], "broken");
    assert_eq!(out["lease"]["owner"], "alice@laptop:77");
    assert_eq!(f.routing(), ("1".to_string(), json!({"2": 0.1})));
    let d = description(&f);
    assert!(d.starts_with("managed by mlambda | mlambda: rollout=2 at=0.1 since=") && !d.contains("lease="), "{d}");

    // a lease past its expiry is a crashed rollout's: taken over without a flag
    let past = rfc3339(SystemTime::now() - Duration::from_secs(60));
    set_description(&f, &format!("mlambda: lease=crashed@ci:9 until={past}"));
    let out = f.p.json(&["rollout", "--steps", "0.5,1", "--interval", "1s", "--version", "2"]);
    assert_eq!((out["lease"]["how"].as_str(), out["lease"]["owner"].as_str()), (Some("expired"), Some("crashed@ci:9")));
    assert_eq!(f.routing(), ("2".to_string(), json!({})));
}

#[test]
fn a_resumed_rollout_waits_out_the_window_its_step_recorded() {
    let f = Fixture::new("lease-resume");
    f.publish("v2", None);
    let window = Duration::from_secs(20);
    let args = ["rollout", "--steps", "0.3,1", "--interval", "20s", "--version", "2"];
    let mut first = spawn(&f, "laptop-a", &args);
    let start = Instant::now();
    while f.routing().1 != json!({"2": 0.3}) {
        assert!(start.elapsed() < Duration::from_secs(30), "the first step never landed: {:?}", f.routing());
        std::thread::sleep(Duration::from_millis(200));
    }
    // a crash: no chance to give the lease back
    first.kill().expect("kill");
    let _ = first.wait();
    let since = recorded_since(&f);
    let d = description(&f);
    assert!(d.contains("lease=laptop-a until=") && d.contains("steps=0.3,1 every=20s by=laptop-a"), "{d}");

    // another operator, from another directory's point of view: only the alias tells when the step began
    let e = f.p.fails(&args, 2);
    assert!(e.contains("is leased by laptop-a"), "{e}");
    let resumed_at = SystemTime::now();
    assert!(resumed_at < since + window, "the test must resume inside the step's window");
    let out = finish(spawn(&f, "laptop-b", &[&args[..], &["--break-lease"]].concat()), Duration::from_secs(90));
    let stderr = unwrap_lines(&String::from_utf8_lossy(&out.stderr));
    let done = SystemTime::now();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("resuming: version 2 has had 30% of the traffic (since {})", rfc3339(since))),
        "{stderr}"
    );
    assert_eq!(f.routing(), ("2".to_string(), json!({})));
    eprintln!(
        "step began {}, resumed {:.1}s into its {window:?} window, promoted {:.1}s after it began",
        rfc3339(since),
        resumed_at.duration_since(since).unwrap_or_default().as_secs_f64(),
        done.duration_since(since).unwrap_or_default().as_secs_f64()
    );
    assert!(
        done >= since + window,
        "promoted {:?} after the step began, before its {window:?} window ran out",
        done.duration_since(since).unwrap_or_default()
    );
    let d = description(&f);
    assert!(!d.contains("lease=") && !d.contains("rollout="), "{d}");
    let state = aws_cli(&["lambda", "get-alias", "--function-name", f.name(), "--name", "production"]);
    assert_eq!(state["FunctionVersion"], Value::from("2"));
}

#[test]
fn steps_that_stop_below_1_give_the_lease_back_and_leave_their_step_recorded() {
    let f = Fixture::new("lease-partial");
    f.publish("v2", None);
    f.p.json(&["rollout", "--steps", "0.2,0.4", "--interval", "1s", "--version", "2"]);
    assert_eq!(f.routing(), ("1".to_string(), json!({"2": 0.4})));
    let d = description(&f);
    assert!(!d.contains("lease=") && d.contains("mlambda: rollout=2 at=0.4 since="), "{d}");
    assert!(d.contains("steps=0.2,0.4 every=1s"), "{d}");
    // status shows the step as the alias records it, to any operator
    let s = f.p.json(&["status"]);
    assert_eq!((s["rollout"]["step"]["weight"].as_f64(), s["rollout"]["lease"].is_null()), (Some(0.4), true), "{s}");
    // and the promote that follows needs no lease
    f.p.json(&["rollout", "--promote"]);
    assert_eq!(f.routing(), ("2".to_string(), json!({})));
}
