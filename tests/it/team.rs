//! Two operators, one function: what directory A deployed and decided, directory B (holding only mlambda.yaml,
//! like a CI runner or a fresh clone) reads from the cloud and acts on exactly as A would. awscli checks Lambda.
use serde_json::{json, Value};

use crate::common::{aws_cli, Project};
use crate::deploy::{alias_version, create_role, project, seed_model, versions};

/// What `status` says of the routing, the rollout and the last verdict: the parts every operator must agree on.
fn shared_view(s: &Value) -> Value {
    json!({
        "aliases": s["aliases"].as_array().map(|a| a.iter().map(|x| json!({
            "name": x["name"], "rendered": x["rendered"], "description": x["description"]})).collect::<Vec<_>>()),
        "rollout": s["rollout"],
        "last_verdict": s["last_verdict"],
    })
}

#[test]
fn a_fresh_directory_sees_and_acts_on_what_another_deployed_and_decided() {
    let a = project("team");
    let f = a.name.clone();
    create_role(&f);
    for v in ["v1", "v2", "v3"] {
        seed_model(&a, v);
        let out = a.json(&["deploy", "--model-version", v]);
        assert_eq!(out["model_version"], v);
    }
    assert_eq!(versions(&f), ["1", "2", "3"]);
    a.json(&["rollout", "--promote", "--version", "2"]);
    a.json(&["rollout", "--promote", "--version", "3"]);
    assert_eq!(alias_version(&f), "3");
    let in_a = a.json(&["status"]);
    assert_eq!(in_a["rollout"]["previous_primary"], "2", "{}", in_a["rollout"]);
    // the promote weighed the evidence of the last day and recorded its verdict
    assert_eq!(in_a["last_verdict"]["candidate"], "3", "{}", in_a["last_verdict"]);
    let local = a.state();
    assert_eq!(local["verdict"], in_a["last_verdict"], "A's cache holds the same verdict");

    // B: a fresh directory with only mlambda.yaml
    let b = Project { dir: tempfile::tempdir().expect("tempdir"), name: f.clone() };
    std::fs::copy(a.path("mlambda.yaml"), b.path("mlambda.yaml")).expect("copy mlambda.yaml");
    assert!(!b.path(".mlambda").exists());
    let in_b = b.json(&["status"]);
    assert_eq!(shared_view(&in_b), shared_view(&in_a));
    assert_eq!(b.state()["verdict"], in_a["last_verdict"], "B's cache was filled from the cloud");

    // prune spares the same versions from either directory: the alias's and the one its rollback returns to
    let plan_a = a.json(&["prune", "--keep", "1", "--dry-run"]);
    let plan_b = b.json(&["prune", "--keep", "1", "--dry-run"]);
    assert_eq!(plan_a, plan_b);
    assert_eq!((plan_b["kept"].clone(), plan_b["deleted"].clone()), (json!(["3", "2"]), json!(["1"])));

    // B rolls back A's promote, to the primary A's promote recorded on the alias
    let back = b.json(&["rollout", "--rollback"]);
    assert_eq!(back["to"], "2 100%");
    assert_eq!(alias_version(&f), "2");
    b.json(&["prune", "--keep", "1"]);
    assert_eq!(versions(&f), ["2", "3"]);

    // a stale cache: the cloud wins, and -v says so
    let mut stale = a.state();
    stale["verdict"]["verdict"] = json!("rollback");
    stale["verdict"]["reasons"] = json!(["a verdict only this laptop remembers"]);
    std::fs::write(a.path(".mlambda/state.json"), stale.to_string()).expect("write state");
    let out = a.cmd().args(["status", "-v", "--output", "json"]).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the last verdict in s3://") && stderr.contains("using the cloud's"), "{stderr}");
    let s: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(s["last_verdict"], in_a["last_verdict"]);
    assert_eq!(a.state()["verdict"], in_a["last_verdict"], "the cache is refreshed from the cloud");
    let key = format!(".mlambda/state/{f}/production.json");
    let held = aws_cli(&["s3api", "head-object", "--bucket", &f, "--key", &key]);
    assert!(held["ContentLength"].as_u64().is_some_and(|n| n > 0), "{held}");
}
