//! Terraform coexistence against moto: `mlambda export terraform` read back by a real HCL parser (python-hcl2,
//! as Terraform itself cannot be installed here), and `function.managed_by: terraform`, where a function and alias
//! made with awscli keep their configuration through `mlambda up` while the code, model and traffic move.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde_json::Value;

use crate::common::{aws_cli, put_object, require_stack, unique, Project, CHURN_FEATURES};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const STATES_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"states.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
/// The variables mlambda owns in a function's environment (`plan::deploy::MODEL_ENV_KEYS`).
const MODEL_KEYS: [&str; 9] = [
    "MODEL_VERSION",
    "METRICS_NAMESPACE",
    "MODEL_BUCKET",
    "MODEL_KEY",
    "MODEL_PATH",
    "MODEL_SHA256",
    "MODEL_FEATURES",
    "MODEL_ID_FIELD",
    "LOG_PREDICTIONS",
];

/// HCL parsed by python-hcl2 (`tests/it/hcl_parse.py`): strings unquoted, references as `${…}`.
fn hcl(text: &str) -> Value {
    let script = crate::common::repo().join("tests/it/hcl_parse.py");
    let mut child = std::process::Command::new(crate::report::python())
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run hcl_parse.py with the venv's python");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write the HCL");
    let out = child.wait_with_output().expect("hcl_parse.py");
    assert!(out.status.success(), "python-hcl2 refused the HCL: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("hcl_parse.py prints json")
}

/// `type.name` of every resource block.
fn resources(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in doc["resource"].as_array().into_iter().flatten() {
        for (kind, named) in r.as_object().expect("resource type") {
            for name in named.as_object().expect("resource name").keys() {
                out.insert(format!("{kind}.{name}"));
            }
        }
    }
    out
}

fn resource<'a>(doc: &'a Value, kind: &str, name: &str) -> &'a Value {
    doc["resource"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|r| r.get(kind).and_then(|k| k.get(name)))
        .unwrap_or_else(|| panic!("no resource {kind}.{name} in {doc}"))
}

fn ignore_changes(block: &Value) -> Vec<String> {
    block["lifecycle"][0]["ignore_changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no ignore_changes in {block}"))
        .iter()
        .map(|v| v.as_str().expect("a traversal").to_string())
        .collect()
}

/// `to` → `id` of every import block.
fn imports(doc: &Value) -> BTreeMap<String, String> {
    doc["import"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let to = i["to"].as_str().expect("to");
            let to = to.strip_prefix("${").and_then(|t| t.strip_suffix('}')).unwrap_or(to);
            (to.to_string(), i["id"].as_str().expect("id").to_string())
        })
        .collect()
}

fn label(name: &str) -> String {
    name.replace('-', "_")
}

/// The function's lifecycle: what mlambda moves besides the code.
fn model_ignores() -> Vec<String> {
    MODEL_KEYS.iter().map(|k| format!("${{environment[0].variables[\"{k}\"]}}")).collect()
}

fn alias_alarms(name: &str) -> BTreeSet<String> {
    ["latency-p99", "errors", "throttles", "client-errors", "model-errors"]
        .iter()
        .map(|k| format!("mlambda-{name}-production-{k}"))
        .collect()
}

/// An image project with a pushed (fake) image recorded and model v1 in S3, without `function.role`.
fn image_project(prefix: &str) -> Project {
    require_stack();
    let p = Project { dir: tempfile::tempdir().expect("tempdir"), name: unique(prefix) };
    let n = p.name.clone();
    p.write_config(&p.default_config().replace(&format!("  role: arn:aws:iam::123456789012:role/{n}\n"), ""));
    let state = serde_json::json!({"push": {
        "repository_uri": "127.0.0.1:17500/repo",
        "tag": "v1-abc",
        "digest": DIGEST,
        "image_uri": format!("127.0.0.1:17500/repo@{DIGEST}"),
    }});
    std::fs::create_dir_all(p.path(".mlambda")).expect("state dir");
    std::fs::write(p.path(".mlambda/state.json"), state.to_string()).expect("write state");
    put_object(&p, "models/churn/v1/model.onnx", b"not really onnx, deploy never loads it", "feedface");
    p
}

fn succeeds(args: &[&str]) -> bool {
    std::process::Command::new("aws").args(args).output().expect("run aws cli").status.success()
}

#[test]
fn export_of_an_image_function_parses_keeps_to_what_mlambda_moves_and_imports_what_exists() {
    let p = image_project("tf-img");
    let (n, fl) = (p.name.clone(), label(&p.name));
    p.json(&["deploy", "--create-role"]);
    p.json(&["alarms"]);
    // what `batch run --create-role` would have made
    let batch_role = format!("mlambda-{n}-batch-sfn");
    let role_arn =
        aws_cli(&["iam", "create-role", "--role-name", &batch_role, "--assume-role-policy-document", STATES_TRUST])
            ["Role"]["Arn"]
            .as_str()
            .expect("role arn")
            .to_string();
    let definition = r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}"#;
    let machine = format!("mlambda-{n}-batch");
    let machine_arn = aws_cli(&[
        "stepfunctions",
        "create-state-machine",
        "--name",
        &machine,
        "--definition",
        definition,
        "--role-arn",
        &role_arn,
    ])["stateMachineArn"]
        .as_str()
        .expect("state machine arn")
        .to_string();

    let out = p.json(&["export", "terraform", "--dir", "tf"]);
    let files = out["files"].as_object().expect("files");
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["alarms.tf", "batch.tf", "iam.tf", "imports.tf", "lambda.tf"], "{out}");
    for (name, text) in files {
        let written = std::fs::read_to_string(p.path(&format!("tf/{name}"))).expect("a file in --dir");
        assert_eq!(written, text.as_str().expect("hcl"), "--dir writes what --output json shows");
    }
    let file = |name: &str| hcl(files[name].as_str().expect("hcl"));

    let lambda = file("lambda.tf");
    let function = resource(&lambda, "aws_lambda_function", &fl);
    assert_eq!(function["function_name"], n.as_str());
    assert_eq!(function["package_type"], "Image");
    assert_eq!(function["image_uri"], format!("127.0.0.1:17500/repo@{DIGEST}").as_str());
    assert_eq!(function["role"], format!("${{aws_iam_role.{fl}.arn}}").as_str(), "the role written in iam.tf");
    assert_eq!((&function["memory_size"], &function["timeout"]), (&Value::from(512), &Value::from(10)));
    assert_eq!(function["architectures"], serde_json::json!(["x86_64"]));
    assert_eq!(function["publish"], true);
    let variables = &function["environment"][0]["variables"];
    assert_eq!((&variables["MODEL_VERSION"], &variables["MODEL_SHA256"]), (&"v1".into(), &"feedface".into()));
    let mut want = vec!["image_uri".to_string()];
    want.extend(model_ignores());
    want.push("publish".into());
    assert_eq!(ignore_changes(function), want, "exactly what mlambda moves");
    let raw = files["lambda.tf"].as_str().expect("hcl");
    assert!(raw.contains("ignore_changes = [\n      image_uri,\n"), "references, not strings: {raw}");
    let alias = resource(&lambda, "aws_lambda_alias", &format!("{fl}_production"));
    assert_eq!(alias["name"], "production");
    assert_eq!(alias["function_version"], format!("${{aws_lambda_function.{fl}.version}}").as_str());
    assert_eq!(ignore_changes(alias), ["function_version", "routing_config", "description"]);

    // no `function.role`: the role `--create-role` made, with its one inline policy
    let iam = file("iam.tf");
    let role = resource(&iam, "aws_iam_role", &fl);
    assert_eq!(role["name"], format!("mlambda-{n}").as_str());
    assert_eq!(role["assume_role_policy"], format!("${{jsonencode(local.{fl}_trust_policy)}}").as_str());
    let locals = &iam["locals"];
    let trust =
        locals.as_array().expect("locals").iter().find_map(|l| l.get(format!("{fl}_trust_policy"))).expect("trust");
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], "lambda.amazonaws.com");
    let policy = resource(&iam, "aws_iam_role_policy", &fl);
    assert_eq!(
        (&policy["name"], &policy["role"]),
        (&"mlambda-execution".into(), &format!("${{aws_iam_role.{fl}.name}}").into())
    );

    // the alias's alarms only, each ignoring what follows its traffic
    let alarms = file("alarms.tf");
    let kinds: BTreeSet<String> = resources(&alarms).into_iter().collect();
    let want: BTreeSet<String> = alias_alarms(&n)
        .iter()
        .map(|a| format!("aws_cloudwatch_metric_alarm.{}", label(a.trim_start_matches("mlambda-"))))
        .collect();
    assert_eq!(kinds, want, "no per-version alarm");
    let latency = resource(&alarms, "aws_cloudwatch_metric_alarm", &format!("{fl}_production_latency_p99"));
    assert_eq!(latency["dimensions"]["ModelVersion"], "v1");
    assert_eq!(ignore_changes(latency), ["dimensions", "alarm_description"]);
    let client = resource(&alarms, "aws_cloudwatch_metric_alarm", &format!("{fl}_production_client_errors"));
    assert!(client["metric_query"].as_array().is_some_and(|q| q.len() == 3), "{client}");
    assert_eq!(ignore_changes(client), ["metric_query"]);
    let errors = resource(&alarms, "aws_cloudwatch_metric_alarm", &format!("{fl}_production_errors"));
    assert!(errors.get("lifecycle").is_none(), "nothing of it moves: {errors}");

    // the batch state machine exists, so it is exported with its role
    let batch = file("batch.tf");
    let sfn = resource(&batch, "aws_sfn_state_machine", &format!("{fl}_batch"));
    assert_eq!(sfn["name"], machine.as_str());
    assert_eq!(sfn["role_arn"], format!("${{aws_iam_role.{fl}_batch.arn}}").as_str());
    assert_eq!(ignore_changes(sfn), ["definition"]);
    assert_eq!(resource(&batch, "aws_iam_role", &format!("{fl}_batch"))["name"], batch_role.as_str());

    // every resource that exists is imported, by the ID its provider documents
    let mut want: BTreeMap<String, String> = BTreeMap::from([
        (format!("aws_lambda_function.{fl}"), n.clone()),
        (format!("aws_lambda_alias.{fl}_production"), format!("{n}/production")),
        (format!("aws_iam_role.{fl}"), format!("mlambda-{n}")),
        (format!("aws_iam_role_policy.{fl}"), format!("mlambda-{n}:mlambda-execution")),
        (format!("aws_sfn_state_machine.{fl}_batch"), machine_arn.clone()),
        (format!("aws_iam_role.{fl}_batch"), batch_role.clone()),
    ]);
    for a in alias_alarms(&n) {
        want.insert(format!("aws_cloudwatch_metric_alarm.{}", label(a.trim_start_matches("mlambda-"))), a);
    }
    assert_eq!(imports(&file("imports.tf")), want);
    let listed: BTreeMap<String, String> = out["imports"]
        .as_array()
        .expect("imports")
        .iter()
        .map(|i| (i["to"].as_str().unwrap().to_string(), i["id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(listed, want, "--output json lists the same imports");

    // without --dir: one HCL text on stdout, every file in it
    let text = p.cmd().args(["export", "terraform"]).output().expect("run mlambda");
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    let all = hcl(&String::from_utf8_lossy(&text.stdout));
    assert_eq!(resources(&all).len(), 2 + 2 + 5 + 2, "function, alias, role, policy, 5 alarms, machine, role");
    assert_eq!(imports(&all).len(), want.len());
}

#[test]
fn export_without_a_role_or_anything_deployed_writes_the_role_and_imports_nothing() {
    let p = image_project("tf-new");
    let (n, fl) = (p.name.clone(), label(&p.name));
    let out = p.json(&["export", "terraform"]);
    let iam = hcl(out["files"]["iam.tf"].as_str().expect("iam.tf is written"));
    assert_eq!(resource(&iam, "aws_iam_role", &fl)["name"], format!("mlambda-{n}").as_str());
    assert_eq!(resource(&iam, "aws_iam_role_policy", &fl)["name"], "mlambda-execution");
    assert_eq!(out["imports"], serde_json::json!([]), "nothing exists yet");
    assert!(out["files"].get("imports.tf").is_none() && out["files"].get("batch.tf").is_none(), "{out}");
    let lambda = hcl(out["files"]["lambda.tf"].as_str().expect("lambda.tf"));
    assert_eq!(resource(&lambda, "aws_lambda_function", &fl)["role"], format!("${{aws_iam_role.{fl}.arn}}").as_str());
    assert!(!succeeds(&["lambda", "get-function", "--function-name", &n]), "export creates nothing");
}

/// A zip project whose function Terraform owns; `role` is the team's role.
fn terraform_zip_config(p: &Project, role: &str) -> String {
    let n = &p.name;
    format!(
        "function:\n  name: {n}\n  memory: 512\n  timeout: 10\n  package: zip\n  role: {role}\n  alias: production\n  \
         managed_by: terraform\n\
         model:\n  path: model.onnx\n  name: churn\n  version: v1\n  bucket: {n}\n  reference: reference.json\n  features: [{}]\n\
         alarms:\n  namespace: ChurnModel\n\
         rollout:\n  strategy: weight\n  weight: 0.1\n  interval: 1s\n",
        CHURN_FEATURES.join(", ")
    )
}

#[test]
fn a_function_terraform_owns_keeps_its_configuration_through_up_while_code_model_and_traffic_move() {
    let _ = crate::common::runtime_binary();
    let p = Project::churn("tf-zip");
    let (n, fl) = (p.name.clone(), label(&p.name));
    let team_role = format!("team-{n}");
    let role_arn =
        aws_cli(&["iam", "create-role", "--role-name", &team_role, "--assume-role-policy-document", LAMBDA_TRUST])
            ["Role"]["Arn"]
            .as_str()
            .expect("role arn")
            .to_string();
    p.write_config(&terraform_zip_config(&p, &role_arn));
    p.json(&["build"]);
    p.json(&["push", "--create-bucket"]);
    let pushed = p.state()["package_push"].clone();
    let (bucket, key) = (pushed["bucket"].as_str().expect("bucket"), pushed["key"].as_str().expect("key"));

    // what `terraform apply` would make: the function from the same zip, with the team's settings, and the alias
    let code = format!("S3Bucket={bucket},S3Key={key}");
    aws_cli(&[
        "lambda",
        "create-function",
        "--function-name",
        &n,
        "--runtime",
        "provided.al2023",
        "--handler",
        "bootstrap",
        "--code",
        &code,
        "--role",
        &role_arn,
        "--memory-size",
        "256",
        "--timeout",
        "20",
        "--description",
        "the team's function",
        "--environment",
        "Variables={TEAM=ml}",
    ]);
    aws_cli(&["lambda", "publish-version", "--function-name", &n]);
    aws_cli(&["lambda", "create-alias", "--function-name", &n, "--name", "production", "--function-version", "1"]);

    p.json(&["model", "push"]);
    let dry = p.json(&["deploy", "--dry-run"]);
    let plan = &dry["plan"];
    let sets: Vec<&str> =
        plan["terraform"]["mlambda_sets"].as_array().expect("sets").iter().filter_map(Value::as_str).collect();
    let keeps: Vec<&str> =
        plan["terraform"]["terraform_keeps"].as_array().expect("keeps").iter().filter_map(Value::as_str).collect();
    assert!(sets.contains(&"published versions") && sets.iter().any(|s| s.contains("MODEL_VERSION")), "{plan}");
    assert!(keeps.contains(&"memory 256 MB, timeout 20 s, x86_64"), "the function's own values: {plan}");
    assert!(keeps.contains(&"environment TEAM") && keeps.iter().any(|k| k.contains(&team_role)), "{plan}");
    let config = plan["function_step"]["config"].as_array().expect("config diffs");
    assert!(
        !config.is_empty()
            && config.iter().all(|d| d["field"]
                .as_str()
                .is_some_and(|f| f.starts_with("env.MODEL_") || f == "env.METRICS_NAMESPACE")),
        "only the model's variables change: {plan}"
    );
    let text = p.cmd().args(["deploy", "--dry-run"]).output().expect("run mlambda");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("function `{n}` is managed by Terraform")), "{text}");
    assert!(text.contains("Terraform keeps memory 256 MB, timeout 20 s"), "{text}");
    let err = p.fails(&["deploy", "--create-role"], 1);
    assert!(err.contains("`--create-role`") && err.contains("Terraform owns its role"), "{err}");

    let up = p.json(&["up"]);
    crate::common::assert_up_finished(&up);

    let latest = aws_cli(&["lambda", "get-function-configuration", "--function-name", &n]);
    assert_eq!((&latest["MemorySize"], &latest["Timeout"]), (&Value::from(256), &Value::from(20)), "{latest}");
    assert_eq!(latest["Role"], role_arn.as_str(), "{latest}");
    assert_eq!(latest["Description"], "the team's function", "{latest}");
    let vars = &latest["Environment"]["Variables"];
    assert_eq!(vars["TEAM"], "ml", "the team's variable survives: {latest}");
    assert_eq!((&vars["MODEL_VERSION"], &vars["MODEL_KEY"]), (&"v1".into(), &"models/churn/v1/model.onnx".into()));
    let v2 = aws_cli(&["lambda", "get-function-configuration", "--function-name", &n, "--qualifier", "2"]);
    assert_eq!((&v2["MemorySize"], &v2["Environment"]["Variables"]["TEAM"]), (&Value::from(256), &"ml".into()));
    assert!(v2["Description"].as_str().is_some_and(|d| d.starts_with("model v1 zip sha256:")), "{v2}");
    let alias = aws_cli(&["lambda", "get-alias", "--function-name", &n, "--name", "production"]);
    assert_eq!(alias["FunctionVersion"], "1", "{alias}");
    assert_eq!(alias["RoutingConfig"]["AdditionalVersionWeights"]["2"], 0.1, "the rollout moved the alias: {alias}");
    let arn = latest["FunctionArn"].as_str().expect("arn");
    let tags = aws_cli(&["lambda", "list-tags", "--resource", arn]);
    assert!(tags["Tags"].as_object().is_none_or(|t| !t.keys().any(|k| k.starts_with("mlambda:"))), "{tags}");

    // the export of a zip function Terraform owns: the team's role by ARN, the zip's location ignored
    let out = p.json(&["export", "terraform"]);
    assert!(out["files"].get("iam.tf").is_none(), "the team's role is not written: {out}");
    let lambda = hcl(out["files"]["lambda.tf"].as_str().expect("lambda.tf"));
    let function = resource(&lambda, "aws_lambda_function", &fl);
    assert_eq!(function["package_type"], "Zip");
    assert_eq!((function["s3_bucket"].as_str(), function["s3_key"].as_str()), (Some(bucket), Some(key)));
    assert_eq!(function["source_code_hash"], pushed["code_sha256"]);
    assert_eq!((&function["runtime"], &function["handler"]), (&"provided.al2023".into(), &"bootstrap".into()));
    assert_eq!(function["role"], role_arn.as_str());
    assert_eq!(function["environment"][0]["variables"]["TEAM"], "ml", "an import keeps the team's variable");
    let mut want = vec!["s3_bucket".to_string(), "s3_key".into(), "source_code_hash".into()];
    want.extend(model_ignores());
    want.push("publish".into());
    assert_eq!(ignore_changes(function), want);
    let ids: BTreeMap<String, String> = out["imports"]
        .as_array()
        .expect("imports")
        .iter()
        .map(|i| (i["to"].as_str().unwrap().to_string(), i["id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(ids[&format!("aws_lambda_function.{fl}")], n);
    assert_eq!(ids[&format!("aws_lambda_alias.{fl}_production")], format!("{n}/production"));
    // the alias's primary is Terraform's version 1, which serves no MODEL_VERSION: no latency alarm for it yet
    for a in alias_alarms(&n).into_iter().filter(|a| !a.ends_with("-latency-p99")) {
        let to = format!("aws_cloudwatch_metric_alarm.{}", label(a.trim_start_matches("mlambda-")));
        assert_eq!(ids.get(&to), Some(&a), "{ids:?}");
    }
    assert_eq!(ids.len(), 2 + 4, "{ids:?}");

    // `alarms --delete` leaves the alias's alarms, which are the team's Terraform's, and deletes the versions'
    let names = |prefix: &str| -> BTreeSet<String> {
        let out = aws_cli(&["cloudwatch", "describe-alarms", "--alarm-name-prefix", prefix]);
        out["MetricAlarms"]
            .as_array()
            .expect("alarms")
            .iter()
            .filter_map(|a| a["AlarmName"].as_str().map(str::to_string))
            .collect()
    };
    assert!(!names(&format!("mlambda-{n}-v2-")).is_empty(), "up put the candidate's alarms");
    p.json(&["alarms", "--delete"]);
    assert!(names(&format!("mlambda-{n}-v")).is_empty(), "{:?}", names(&format!("mlambda-{n}-")));
    assert_eq!(
        names(&format!("mlambda-{n}-production-")),
        alias_alarms(&n).into_iter().filter(|a| !a.ends_with("-latency-p99")).collect()
    );
}

#[test]
fn terraform_must_create_the_function_and_its_alias_before_mlambda_deploys() {
    let p = Project::churn("tf-missing");
    let n = p.name.clone();
    let config = p.default_config().replace("  alias: production\n", "  alias: production\n  managed_by: terraform\n");
    p.write_config(&config);
    let err = p.fails(&["up"], 1);
    assert!(err.contains(&format!("function `{n}` does not exist")) && err.contains("Terraform creates it"), "{err}");
    assert!(err.contains("terraform apply"), "{err}");
    assert!(!succeeds(&["lambda", "get-function", "--function-name", &n]), "nothing was created");
    assert!(!p.path(".mlambda/state.json").exists() || p.state().get("build").is_none(), "refused before the build");

    // the function exists, its alias does not: deploy refuses before any write
    let p = image_project("tf-noalias");
    let n = p.name.clone();
    p.write_config(
        &std::fs::read_to_string(p.path("mlambda.yaml"))
            .expect("config")
            .replace("  alias: production\n", "  alias: production\n  managed_by: terraform\n"),
    );
    aws_cli(&["iam", "create-role", "--role-name", &n, "--assume-role-policy-document", LAMBDA_TRUST]);
    let role = format!("arn:aws:iam::123456789012:role/{n}");
    crate::common::create_image_function(&n, &format!("127.0.0.1:17500/repo@{DIGEST}"), &role, &[]);
    let err = p.fails(&["deploy"], 1);
    assert!(err.contains("alias `production`") && err.contains("Terraform creates it"), "{err}");
    assert!(!succeeds(&["lambda", "get-alias", "--function-name", &n, "--name", "production"]), "no alias was made");
    let versions = aws_cli(&["lambda", "list-versions-by-function", "--function-name", &n]);
    assert_eq!(versions["Versions"].as_array().map(Vec::len), Some(1), "only $LATEST: {versions}");
}

#[test]
fn a_managed_by_other_than_mlambda_or_terraform_is_a_config_error_naming_the_key() {
    let p = image_project("tf-bad");
    let config = std::fs::read_to_string(p.path("mlambda.yaml")).expect("config");
    p.write_config(&config.replace("  alias: production\n", "  alias: production\n  managed_by: pulumi\n"));
    for args in [&["export", "terraform"][..], &["deploy", "--dry-run"][..]] {
        let err = p.fails(args, 1);
        assert!(err.contains("`function.managed_by` is `pulumi`"), "{args:?}: {err}");
        assert!(err.contains("`mlambda`") && err.contains("`terraform`"), "{args:?}: {err}");
    }
}
