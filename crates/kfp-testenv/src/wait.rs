//! Waiting on conditions, instead of sleeping.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// Polls `condition` until it returns `Ok(Some(value))`, and returns that value.
///
/// `Ok(None)` means "not yet"; `Err(e)` also means "not yet" (e.g. a 404 before an object exists) and
/// is remembered for the message. After `timeout` it fails with [`Error::Timeout`], whose message says
/// it was waiting for `what` and shows the last error. Polls often at first (20 ms), then every 500 ms.
///
/// The shape fits kube's `Api::get_opt` directly:
///
/// ```no_run
/// # async fn demo(pods: kube::Api<k8s_openapi::api::core::v1::Pod>) -> Result<(), kfp_testenv::Error> {
/// use std::time::Duration;
/// let pod = kfp_testenv::wait_for("pod `p` to exist", Duration::from_secs(10), || pods.get_opt("p")).await?;
/// // A boolean condition:
/// kfp_testenv::wait_for("pod `p` to have an IP", Duration::from_secs(10), || async {
///     let pod = pods.get("p").await?;
///     Ok::<_, kube::Error>(pod.status.and_then(|s| s.pod_ip).map(|_| ()))
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn wait_for<T, E, F, Fut>(what: impl Display, timeout: Duration, mut condition: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<Option<T>, E>>,
    E: Display,
{
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(20);
    let mut last_error = None;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, condition()).await {
            Ok(Ok(Some(value))) => return Ok(value),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => last_error = Some(e.to_string()),
            Err(_) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                timeout,
                last_error,
            });
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_value_once_the_condition_holds() {
        let mut calls = 0;
        let value = wait_for("the third call", Duration::from_secs(5), || {
            calls += 1;
            let now = calls;
            async move { Ok::<_, String>((now >= 3).then_some(now)) }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn times_out_naming_what_it_waited_for_and_the_last_error() {
        let err = wait_for("the answer", Duration::from_millis(100), || async {
            Err::<Option<()>, _>("not found")
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out after 100ms waiting for the answer (last error: not found)"
        );
    }
}
