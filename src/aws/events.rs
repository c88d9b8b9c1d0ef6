//! EventBridge schedule rules that ping an alias to keep it warm.
use aws_sdk_eventbridge::types::{RuleState, Target};

use super::{fail, Aws};
use crate::error::{Error, Result};

/// A schedule expression EventBridge accepts: `rate(5 minutes)` or a six-field `cron(...)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Schedule(String);

impl Schedule {
    pub fn parse(s: &str) -> Result<Schedule> {
        let s = s.trim();
        let bad = |why: &str| {
            Error::user(format!("schedule `{s}` is not valid: {why}"))
                .help("use `rate(5 minutes)`, `rate(1 hour)` or a six-field `cron(0/5 * * * ? *)`")
        };
        if let Some(inner) = s.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            let mut parts = inner.split_whitespace();
            let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("a rate is a number and a unit"));
            };
            let n = n
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("the rate must be a whole number above 0"))?;
            // EventBridge wants the singular unit for 1 and the plural for more.
            let ok = match unit {
                "minute" | "hour" | "day" => n == 1,
                "minutes" | "hours" | "days" => n > 1,
                _ => return Err(bad("the unit must be minutes, hours or days")),
            };
            if !ok {
                return Err(bad("use the singular unit for 1 (`rate(1 minute)`) and the plural above 1"));
            }
            return Ok(Schedule(s.to_string()));
        }
        if let Some(inner) = s.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            if inner.split_whitespace().count() != 6 {
                return Err(bad("a cron expression has six fields: minutes hours day-of-month month day-of-week year"));
            }
            return Ok(Schedule(s.to_string()));
        }
        Err(bad("it must be `rate(...)` or `cron(...)`"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Creates or updates the rule; returns its ARN.
pub async fn put_schedule_rule(aws: &Aws, name: &str, schedule: &Schedule, description: &str) -> Result<String> {
    let out = aws
        .events
        .put_rule()
        .name(name)
        .schedule_expression(schedule.as_str())
        .state(RuleState::Enabled)
        .description(description)
        .send()
        .await
        .map_err(|e| fail(format!("put EventBridge rule `{name}`"), e))?;
    Ok(out.rule_arn().unwrap_or_default().to_string())
}

/// Points the rule at `arn` with a constant JSON input; the same target id makes re-runs update in place.
pub async fn put_target(aws: &Aws, rule: &str, id: &str, arn: &str, input: &str) -> Result<()> {
    let target = Target::builder()
        .id(id)
        .arn(arn)
        .input(input)
        .build()
        .map_err(|e| Error::cloud(format!("cannot build the target of rule `{rule}`: {e}")))?;
    let out = aws
        .events
        .put_targets()
        .rule(rule)
        .targets(target)
        .send()
        .await
        .map_err(|e| fail(format!("put the target of EventBridge rule `{rule}`"), e))?;
    if let Some(f) = out.failed_entries().first() {
        return Err(Error::cloud(format!(
            "failed to put the target of EventBridge rule `{rule}`: {}: {}",
            f.error_code().unwrap_or("unknown error"),
            f.error_message().unwrap_or("no message")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_crons_eventbridge_accepts_pass() {
        for ok in ["rate(5 minutes)", "rate(1 minute)", "rate(2 hours)", "rate(1 day)", "cron(0/5 * * * ? *)"] {
            assert_eq!(Schedule::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn what_eventbridge_rejects_is_refused_with_examples() {
        for bad in [
            "rate(5 minute)",
            "rate(1 minutes)",
            "rate(0 minutes)",
            "rate(5 weeks)",
            "rate(five minutes)",
            "cron(* * * *)",
            "every 5m",
        ] {
            let e = Schedule::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 1);
            assert!(e.message.contains(bad), "{}", e.message);
            assert!(e.help.as_deref().unwrap_or("").contains("rate(5 minutes)"));
        }
    }
}
