//! IAM for the function's execution role: find it, create it, keep its inline policy current.
use super::{fail, Aws};
use crate::error::Result;

/// The role's ARN, or `None` when no role has that name.
pub async fn get_role_arn(aws: &Aws, name: &str) -> Result<Option<String>> {
    match aws.iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role().map(|r| r.arn().to_string())),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_entity_exception()) => Ok(None),
        Err(e) => Err(fail(format!("read role `{name}`"), e).into()),
    }
}

/// Whether the role has an inline policy of that name; a missing role has none.
pub async fn role_policy_exists(aws: &Aws, role: &str, policy_name: &str) -> Result<bool> {
    match aws.iam.get_role_policy().role_name(role).policy_name(policy_name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_entity_exception()) => Ok(false),
        Err(e) => Err(fail(format!("read inline policy `{policy_name}` of role `{role}`"), e).into()),
    }
}

/// Creates the role with `trust` as its assume-role policy and returns its ARN; an existing role is reused.
pub async fn create_role(aws: &Aws, name: &str, trust: &str, description: &str) -> Result<String> {
    match aws.iam.create_role().role_name(name).assume_role_policy_document(trust).description(description).send().await
    {
        Ok(out) => Ok(out.role().map(|r| r.arn().to_string()).unwrap_or_default()),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_entity_already_exists_exception()) => {
            Ok(get_role_arn(aws, name).await?.unwrap_or_default())
        }
        Err(e) => Err(fail(format!("create role `{name}`"), e).into()),
    }
}

/// Writes (creates or replaces) an inline policy on the role.
pub async fn put_role_policy(aws: &Aws, role: &str, policy_name: &str, document: &str) -> Result<()> {
    aws.iam
        .put_role_policy()
        .role_name(role)
        .policy_name(policy_name)
        .policy_document(document)
        .send()
        .await
        .map_err(|e| fail(format!("write inline policy `{policy_name}` on role `{role}`"), e))?;
    Ok(())
}

/// Deletes an inline policy from the role; `false` when it was not there.
pub async fn delete_role_policy(aws: &Aws, role: &str, policy_name: &str) -> Result<bool> {
    match aws.iam.delete_role_policy().role_name(role).policy_name(policy_name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_entity_exception()) => Ok(false),
        Err(e) => Err(fail(format!("delete inline policy `{policy_name}` from role `{role}`"), e).into()),
    }
}
