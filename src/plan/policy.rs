//! IAM policy documents: the function's least-privilege execution role and the deployer's own permissions.
use serde_json::{json, Value};

use crate::config::Config;
use crate::domain::PackageType;
use crate::plan::naming;

/// The inline policy's name on the execution role.
pub const EXECUTION_POLICY_NAME: &str = "mlambda-execution";

/// The role `--create-role` makes for a function.
pub fn role_name(function: &str) -> String {
    // IAM role names stop at 64 characters; function names may be 64 on their own.
    let name = format!("mlambda-{function}");
    name.chars().take(64).collect()
}

/// Lets Lambda, and only Lambda, assume the role.
pub fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

fn log_group(function: &str) -> String {
    format!("arn:aws:logs:*:*:log-group:/aws/lambda/{function}")
}

/// What the running function needs: its own log group, and reading model versions under the model's root.
pub fn execution_policy(function: &str, bucket: &str, model_root: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [log_group(function), format!("{}:*", log_group(function))]
            },
            {
                "Sid": "ReadModels",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [format!("arn:aws:s3:::{bucket}/{model_root}*")]
            }
        ]
    })
}

/// What a person or CI running mlambda needs, scoped to this project's repository, bucket, function and role.
pub fn deployer_policy(c: &Config) -> Value {
    let mut policy = image_deployer_policy(c);
    if c.function.package == PackageType::Zip {
        if let Some(statements) = policy["Statement"].as_array_mut() {
            statements.retain(|s| !s["Sid"].as_str().is_some_and(|sid| sid.starts_with("Ecr")));
            statements.extend(package_statements(c));
        }
    }
    policy
}

/// A zip function needs no ECR; it needs its package's bucket and, to create or update the function from S3,
/// `s3:GetObject` on the package key (Lambda reads it with the deployer's permissions).
fn package_statements(c: &Config) -> Vec<Value> {
    let bucket = c.package_bucket();
    let keys = naming::package_key(c.package_prefix(), &c.function.name, "*");
    vec![
        json!({
            "Sid": "PackageBucket",
            "Effect": "Allow",
            "Action": [
                "s3:ListBucket", "s3:GetBucketLocation", "s3:CreateBucket", "s3:PutBucketVersioning",
                "s3:PutEncryptionConfiguration"
            ],
            "Resource": format!("arn:aws:s3:::{bucket}")
        }),
        json!({
            "Sid": "PackageObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            "Resource": format!("arn:aws:s3:::{bucket}/{keys}")
        }),
    ]
}

fn image_deployer_policy(c: &Config) -> Value {
    let f = &c.function.name;
    let bucket = &c.model.bucket;
    let root = naming::model_root(&c.model.prefix, &c.model.name);
    let role = c.function.role.clone().unwrap_or_else(|| format!("arn:aws:iam::*:role/{}", role_name(f)));
    let function_arn = format!("arn:aws:lambda:*:*:function:{f}");
    let machine = crate::plan::batch::state_machine_name(f);
    let batch_role =
        c.batch.role.clone().unwrap_or_else(|| format!("arn:aws:iam::*:role/{}", crate::plan::batch::role_name(f)));
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
            {
                "Sid": "EcrRepository",
                "Effect": "Allow",
                "Action": [
                    "ecr:CreateRepository", "ecr:DescribeRepositories", "ecr:DescribeImages",
                    "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                    "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability"
                ],
                "Resource": format!("arn:aws:ecr:*:*:repository/{}", c.image.repository)
            },
            {
                "Sid": "ModelBucket",
                "Effect": "Allow",
                "Action": [
                    "s3:ListBucket", "s3:GetBucketLocation", "s3:CreateBucket", "s3:PutBucketVersioning",
                    "s3:PutEncryptionConfiguration"
                ],
                "Resource": format!("arn:aws:s3:::{bucket}")
            },
            {
                "Sid": "ModelObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                "Resource": format!("arn:aws:s3:::{bucket}/{root}*")
            },
            {
                "Sid": "Function",
                "Effect": "Allow",
                "Action": [
                    "lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:CreateFunction",
                    "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:PublishVersion",
                    "lambda:ListVersionsByFunction", "lambda:DeleteFunction", "lambda:TagResource",
                    "lambda:GetAlias", "lambda:ListAliases", "lambda:CreateAlias", "lambda:UpdateAlias",
                    "lambda:InvokeFunction", "lambda:AddPermission", "lambda:RemovePermission",
                    "lambda:PutProvisionedConcurrencyConfig", "lambda:DeleteProvisionedConcurrencyConfig",
                    "lambda:GetProvisionedConcurrencyConfig", "lambda:GetFunctionUrlConfig",
                    "lambda:CreateFunctionUrlConfig"
                ],
                "Resource": [function_arn.clone(), format!("{function_arn}:*")]
            },
            {
                "Sid": "ExecutionRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole", "iam:GetRole", "iam:CreateRole", "iam:PutRolePolicy"],
                "Resource": role,
                "Condition": {"StringEqualsIfExists": {"iam:PassedToService": "lambda.amazonaws.com"}}
            },
            {
                "Sid": "Alarms",
                "Effect": "Allow",
                "Action": [
                    "cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms",
                    "cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics", "logs:FilterLogEvents"
                ],
                "Resource": "*"
            },
            {
                "Sid": "BatchStateMachine",
                "Effect": "Allow",
                "Action": [
                    "states:CreateStateMachine", "states:UpdateStateMachine", "states:DescribeStateMachine",
                    "states:StartExecution", "states:DescribeExecution", "states:ListExecutions",
                    "states:StopExecution", "states:ListMapRuns", "states:DescribeMapRun"
                ],
                "Resource": [
                    format!("arn:aws:states:*:*:stateMachine:{machine}"),
                    format!("arn:aws:states:*:*:execution:{machine}:*"),
                    format!("arn:aws:states:*:*:mapRun:{machine}/*")
                ]
            },
            {"Sid": "BatchList", "Effect": "Allow", "Action": ["states:ListStateMachines"], "Resource": "*"},
            {
                "Sid": "BatchRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole", "iam:GetRole", "iam:CreateRole", "iam:PutRolePolicy"],
                "Resource": batch_role,
                "Condition": {"StringEqualsIfExists": {"iam:PassedToService": "states.amazonaws.com"}}
            },
            {
                // the datasets' buckets are named per run (`batch run INPUT --out`); narrow this to yours
                "Sid": "BatchData",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                "Resource": "*"
            },
            {
                "Sid": "WarmSchedule",
                "Effect": "Allow",
                "Action": [
                    "events:PutRule", "events:DescribeRule", "events:DeleteRule", "events:PutTargets",
                    "events:RemoveTargets"
                ],
                "Resource": format!("arn:aws:events:*:*:rule/{f}*")
            }
        ]
    })
}

/// Lets Step Functions, and only Step Functions, assume the batch role.
pub fn batch_trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "states.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The batch state machine's own role: invoke this one function (any qualifier), read the run's manifest, and
/// run its Distributed Map's children (which are executions of the same state machine).
pub fn batch_state_machine_policy(function_arn: &str, machine_arn: &str, bucket: &str, prefix: &str) -> Value {
    let execution_arn = machine_arn.replacen(":stateMachine:", ":execution:", 1);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeTheFunction",
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction"],
                "Resource": [function_arn, format!("{function_arn}:*")]
            },
            {
                "Sid": "ReadTheManifest",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}*")]
            },
            {
                "Sid": "DistributedMap",
                "Effect": "Allow",
                "Action": ["states:StartExecution", "states:DescribeExecution", "states:StopExecution"],
                "Resource": [machine_arn, format!("{execution_arn}:*")]
            }
        ]
    })
}

/// What the function needs to score a run under `s3://bucket/prefix`: read its slices and markers, write its
/// output, failures and markers. Nothing outside the prefix.
pub fn batch_function_policy(bucket: &str, prefix: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "BatchSlices",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}*")]
        }]
    })
}

/// The inline policy's name on the function's role for one output prefix (one per prefix, so runs into other
/// prefixes keep theirs).
pub fn batch_function_policy_name(bucket: &str, prefix: &str) -> String {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(format!("{bucket}/{prefix}").as_bytes()));
    format!("mlambda-batch-{}", &h[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lambda_may_assume_the_role() {
        let t = trust_policy();
        assert_eq!(t["Statement"][0]["Principal"]["Service"], "lambda.amazonaws.com");
        assert_eq!(t["Statement"][0]["Action"], "sts:AssumeRole");
    }

    #[test]
    fn the_function_reads_only_its_models_and_writes_only_its_logs() {
        let p = execution_policy("churn", "models-bucket", "models/churn/");
        let s = p["Statement"].as_array().unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1]["Action"], json!(["s3:GetObject"]));
        assert_eq!(s[1]["Resource"], json!(["arn:aws:s3:::models-bucket/models/churn/*"]));
        let logs = s[0]["Resource"].as_array().unwrap();
        assert!(logs.iter().all(|r| r.as_str().unwrap().contains("log-group:/aws/lambda/churn")), "{logs:?}");
        assert!(!p.to_string().contains("\"Resource\":\"*\""), "no wildcard resource: {p}");
    }

    #[test]
    fn role_names_fit_iam_limits() {
        assert_eq!(role_name("churn"), "mlambda-churn");
        assert_eq!(role_name(&"f".repeat(64)).len(), 64);
    }

    #[test]
    fn the_deployer_policy_is_scoped_to_this_project() {
        let text = "function:\n  name: churn\nimage:\n  repository: churn-repo\nmodel:\n  path: m.onnx\n  name: churn\n  version: v1\n  bucket: b1\n  features: [a]\n";
        let c = crate::config::parse(text, std::path::Path::new("m.yaml")).unwrap();
        let p = deployer_policy(&c);
        let by_sid = |sid: &str| p["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid).unwrap().clone();
        assert_eq!(by_sid("EcrRepository")["Resource"], "arn:aws:ecr:*:*:repository/churn-repo");
        assert_eq!(by_sid("ModelObjects")["Resource"], "arn:aws:s3:::b1/models/churn/*");
        assert_eq!(by_sid("ExecutionRole")["Resource"], "arn:aws:iam::*:role/mlambda-churn");
        assert!(by_sid("ExecutionRole")["Action"].as_array().unwrap().contains(&json!("iam:PassRole")));
        assert_eq!(by_sid("Function")["Resource"][0], "arn:aws:lambda:*:*:function:churn");
        assert_eq!(by_sid("BatchStateMachine")["Resource"][0], "arn:aws:states:*:*:stateMachine:mlambda-churn-batch");
        assert_eq!(by_sid("BatchRole")["Resource"], "arn:aws:iam::*:role/mlambda-churn-batch-sfn");
    }

    #[test]
    fn the_batch_roles_reach_only_the_function_and_the_prefix() {
        let f = "arn:aws:lambda:us-east-1:1:function:churn";
        let m = "arn:aws:states:us-east-1:1:stateMachine:mlambda-churn-batch";
        let p = batch_state_machine_policy(f, m, "data", "scores/");
        let s = p["Statement"].as_array().unwrap();
        assert_eq!(s[0]["Resource"], json!([f, format!("{f}:*")]));
        assert_eq!(s[1]["Resource"], json!(["arn:aws:s3:::data/scores/*"]));
        assert_eq!(s[2]["Resource"][1], "arn:aws:states:us-east-1:1:execution:mlambda-churn-batch:*");
        let fp = batch_function_policy("data", "scores/");
        assert_eq!(fp["Statement"][0]["Resource"], json!(["arn:aws:s3:::data/scores/*"]));
        assert!(!p.to_string().contains("\"*\"") && !fp.to_string().contains("\"*\""), "no wildcard resource");
        assert_ne!(batch_function_policy_name("data", "a/"), batch_function_policy_name("data", "b/"));
        assert_eq!(batch_trust_policy()["Statement"][0]["Principal"]["Service"], "states.amazonaws.com");
    }

    #[test]
    fn a_zip_deployer_gets_the_package_keys_and_no_ecr() {
        let text = "function:\n  name: churn\n  package: zip\nmodel:\n  path: m.onnx\n  name: churn\n  version: v1\n  bucket: b1\npackage:\n  bucket: code\n";
        let c = crate::config::parse(text, std::path::Path::new("m.yaml")).unwrap();
        let p = deployer_policy(&c);
        let sids: Vec<&str> = p["Statement"].as_array().unwrap().iter().filter_map(|s| s["Sid"].as_str()).collect();
        assert!(!sids.iter().any(|s| s.starts_with("Ecr")), "{sids:?}");
        let by_sid = |sid: &str| p["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid).unwrap().clone();
        assert_eq!(by_sid("PackageObjects")["Resource"], "arn:aws:s3:::code/packages/churn/*.zip");
        assert!(by_sid("PackageObjects")["Action"].as_array().unwrap().contains(&json!("s3:GetObject")));
        assert_eq!(by_sid("ModelObjects")["Resource"], "arn:aws:s3:::b1/models/churn/*");
    }
}
