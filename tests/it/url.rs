//! `mlambda url`: the alias's function URL in moto, checked with the AWS CLI.
use super::common::aws_cli;
use super::rollout::Fixture;

#[test]
fn url_creates_the_alias_url_once_with_iam_auth_and_shows_it_after() {
    let f = Fixture::new("url");
    let plan = f.p.json(&["url", "--dry-run"]);
    assert_eq!(plan["action"], "would_create", "{plan}");
    assert_eq!(plan["auth"], "AWS_IAM", "{plan}");
    let none = std::process::Command::new("aws")
        .args(["lambda", "get-function-url-config", "--function-name", f.name(), "--qualifier", "production"])
        .output()
        .expect("run aws cli");
    assert!(!none.status.success(), "a dry run creates nothing");

    let made = f.p.json(&["url"]);
    assert_eq!(made["action"], "created", "{made}");
    let url = made["url"].as_str().expect("url").to_string();
    let cfg = aws_cli(&["lambda", "get-function-url-config", "--function-name", f.name(), "--qualifier", "production"]);
    assert_eq!(cfg["FunctionUrl"], url.as_str(), "{cfg}");
    assert_eq!(cfg["AuthType"], "AWS_IAM", "{cfg}");
    // moto answers the unqualified function ARN here; real Lambda answers the alias's

    let again = f.p.json(&["url"]);
    assert_eq!((again["action"].as_str(), again["url"].as_str()), (Some("exists"), Some(url.as_str())), "{again}");
    let status = f.p.json(&["status"]);
    let alias =
        status["aliases"].as_array().expect("aliases").iter().find(|a| a["name"] == "production").expect("alias");
    assert_eq!(alias["url"], format!("{url} (AWS_IAM)").as_str(), "{status}");
}

#[test]
fn url_public_is_explicit_and_a_missing_alias_says_to_deploy() {
    let f = Fixture::new("urlpub");
    let made = f.p.json(&["url", "--public"]);
    assert_eq!((made["action"].as_str(), made["auth"].as_str()), (Some("created"), Some("NONE")), "{made}");
    let cfg = aws_cli(&["lambda", "get-function-url-config", "--function-name", f.name(), "--qualifier", "production"]);
    assert_eq!(cfg["AuthType"], "NONE", "{cfg}");

    let other = super::common::Project::churn("urlnone");
    let err = other.fails(&["url"], 1);
    assert!(err.contains("does not exist") && err.contains("mlambda deploy"), "{err}");
}
