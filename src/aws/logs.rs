//! CloudWatch Logs: stream a log group's events page by page. The only module that imports `aws_sdk_cloudwatchlogs`.
use super::{fail, Target};
use crate::error::Result;

/// A CloudWatch Logs client from the same default chain as `Aws` (profile, region, `AWS_ENDPOINT_URL`).
/// Kept apart from `Aws` so the report needs no change to the shared client set; fold it in when convenient.
#[derive(Clone, Debug)]
pub struct Logs {
    client: aws_sdk_cloudwatchlogs::Client,
}

impl Logs {
    pub async fn connect(global: &Target) -> Logs {
        Logs { client: aws_sdk_cloudwatchlogs::Client::new(&global.load().await) }
    }
}

/// Hands every event message in `group` between `start_ms` and `end_ms` (epoch milliseconds, inclusive) that
/// matches `pattern` to `each`, one page at a time, so no more than a page (≤ 1 MB) is held. Returns the number
/// of events, or `None` when the log group does not exist.
pub async fn for_each_message(
    logs: &Logs,
    group: &str,
    pattern: &str,
    start_ms: i64,
    end_ms: i64,
    mut each: impl FnMut(&str),
) -> Result<Option<u64>> {
    let mut token: Option<String> = None;
    let mut n = 0u64;
    loop {
        let page = match logs
            .client
            .filter_log_events()
            .log_group_name(group)
            .filter_pattern(pattern)
            .start_time(start_ms)
            .end_time(end_ms)
            .set_next_token(token.take())
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) => return Ok(None),
            Err(e) => return Err(fail(format!("read the log events of `{group}`"), e).into()),
        };
        for ev in page.events() {
            if let Some(m) = ev.message() {
                n += 1;
                each(m);
            }
        }
        // an empty page with a token only means the search goes on
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(Some(n)),
        }
    }
}
