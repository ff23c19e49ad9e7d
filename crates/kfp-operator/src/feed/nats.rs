//! Publishing run-completion events to NATS (docs/run-completion-events.md, "The published event: NATS"; decision 0005,
//! "Publishing").
//!
//! One message per recorded event on `spec.runCompletionFeed.nats.subject` (default `events`), a CloudEvents 1.0
//! structured JSON body ([`kfp_core::event::CloudEvent`]) or, with `eventFormat: legacy`, the Go operator's
//! `{"data": <event>}`.
//!
//! A publish succeeds once the server has the message (a flush within `publishTimeout`); while the connection is
//! down it fails at once. The feed then answers 500 and the provider delivers the event again: at-least-once, with
//! the same CloudEvents `id` for every copy. The client reconnects by itself, forever (a short backoff capped at
//! 2 s), and starts even if NATS is not reachable yet. The connection is a *reported* readiness check,
//! `nats connection`: `/readyz?verbose` lists it and a disconnect is logged, but it never makes the replica unready,
//! since a NATS outage would otherwise empty the webhook Service and refuse every change (nothing is lost meanwhile:
//! the provider retries; docs/run-completion-events.md).

use std::sync::Arc;
use std::time::Duration;

use kfp_core::event::{RunCompletionEvent, to_go_json};

use crate::config::{EventFormat, NatsConfig};
use crate::controllers::now;
use crate::health::{Readiness, ReadinessFlag};

/// The reported readiness check of the NATS connection (listed by `/readyz?verbose`, not waited for).
pub const READINESS_CHECK: &str = "nats connection";

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The client could not be set up (e.g. the URL does not parse).
    #[error("cannot set up the NATS client for {url}: {message}")]
    Setup {
        /// The NATS URL as configured.
        url: String,
        /// Why not.
        message: String,
    },
    /// The client is not connected (the feed answers 500; the provider retries).
    #[error("NATS at {url} is not connected")]
    NotConnected {
        /// The NATS URL as configured.
        url: String,
    },
    /// The server refused the message.
    #[error("publishing to NATS subject {subject:?} failed: {message}")]
    Publish {
        /// The subject.
        subject: String,
        /// The server's answer.
        message: String,
    },
    /// The server did not confirm the message in time (`publishTimeout`).
    #[error("NATS did not confirm the message on subject {subject:?} within {timeout:?}")]
    Timeout {
        /// The subject.
        subject: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// The event could not be serialized.
    #[error("cannot encode the event: {0}")]
    Encode(String),
}

// Beside the NATS settings it masks (`config`), so that config validation need not depend on the feed.
pub use crate::config::redact_credentials;

/// Publishes events to NATS. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    client: async_nats::Client,
    url: String,
    subject: String,
    format: EventFormat,
    timeout: Duration,
    connected: ReadinessFlag,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("url", &self.url)
            .field("subject", &self.subject)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Starts the NATS client of `config` (connecting in the background) and registers its readiness check.
    pub async fn start(config: &NatsConfig, readiness: &Readiness) -> Result<Arc<Self>, PublishError> {
        let url = config.url.trim().to_string();
        // What logs and errors show: the URL may carry a user and password.
        let shown = redact_credentials(&url);
        let setup = |message: String| PublishError::Setup {
            url: shown.clone(),
            message: message.replace(&url, &shown),
        };
        let connected = readiness.register_reported(READINESS_CHECK);
        connected.set(false);
        let flag = connected.clone();
        let logged_url = shown.clone();
        let options = async_nats::ConnectOptions::new()
            .name("kfp-operator")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .reconnect_delay_callback(reconnect_delay)
            .event_callback(move |event| {
                let flag = flag.clone();
                let url = logged_url.clone();
                async move {
                    // Logged because readiness no longer shows an outage to the kubelet: the log and
                    // `/readyz?verbose` are where it is seen.
                    match event {
                        async_nats::Event::Connected => {
                            flag.set(true);
                            tracing::info!(url = %url, "connected to NATS");
                        }
                        async_nats::Event::Disconnected | async_nats::Event::Closed => {
                            flag.set(false);
                            tracing::warn!(url = %url, "disconnected from NATS; run completion events are answered 500 and retried by the provider until it is back");
                        }
                        _ => {}
                    }
                }
            });
        let servers: Vec<async_nats::ServerAddr> = url
            .split(',')
            .map(|s| s.trim().parse::<async_nats::ServerAddr>())
            .collect::<Result<_, _>>()
            .map_err(|e| setup(e.to_string()))?;
        let client = options.connect(servers).await.map_err(|e| setup(e.to_string()))?;
        tracing::info!(url = %shown, subject = %config.subject, format = ?config.event_format, "publishing run completion events to NATS");
        Ok(Arc::new(Self {
            client,
            url: shown,
            subject: config.subject.clone(),
            format: config.event_format,
            timeout: config.publish_timeout,
            connected,
        }))
    }

    /// Whether the client is connected now.
    pub fn is_connected(&self) -> bool {
        self.connected.is_set() && self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes `event` and waits until the server has it.
    pub async fn publish(&self, event: &RunCompletionEvent) -> Result<(), PublishError> {
        if !self.is_connected() {
            return Err(PublishError::NotConnected {
                url: self.url.clone(),
            });
        }
        let body = encode(self.format, event)?;
        let publish_error = |message: String| PublishError::Publish {
            subject: self.subject.clone(),
            message,
        };
        let sent = async {
            self.client
                .publish(self.subject.clone(), body.into())
                .await
                .map_err(|e| publish_error(e.to_string()))?;
            self.client
                .flush()
                .await
                .map_err(|e| publish_error(e.to_string()))
        };
        match tokio::time::timeout(self.timeout, sent).await {
            Ok(result) => result,
            Err(_) => Err(PublishError::Timeout {
                subject: self.subject.clone(),
                timeout: self.timeout,
            }),
        }
    }

    /// The subject events are published on.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

/// The message body of `event` in `format`, in the bytes Go's `json.Marshal` writes (the legacy body is then
/// byte for byte the Go operator's; docs/run-completion-events.md).
pub fn encode(format: EventFormat, event: &RunCompletionEvent) -> Result<Vec<u8>, PublishError> {
    let encoded = match format {
        EventFormat::CloudEvents => to_go_json(&event.clone().into_cloud_event(now())),
        EventFormat::Legacy => to_go_json(&event.clone().into_legacy_body()),
    };
    encoded.map_err(|e| PublishError::Encode(e.to_string()))
}

/// The backoff of NATS reconnects: 100 ms doubling, at most 2 s, jittered (docs/reliability.md).
const RECONNECT: crate::retry::Backoff =
    crate::retry::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));

/// The wait before reconnect attempt `attempts` (0 after the first failure): within [½, 1] of 100 ms doubling,
/// at most 2 s, so that replicas that lost NATS together do not reconnect in lockstep.
fn reconnect_delay(attempts: usize) -> Duration {
    RECONNECT.delay(u32::try_from(attempts).unwrap_or(u32::MAX).saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kfp_core::event::RunCompletionEventData;
    use serde_json::{Value, json};

    #[test]
    fn credentials_never_reach_logs() {
        assert_eq!(
            redact_credentials("nats://user:secret@nats.ops:4222"),
            "nats://***@nats.ops:4222"
        );
        assert_eq!(
            redact_credentials("nats://tok3n@a:4222, tls://u:p@b:4222"),
            "nats://***@a:4222,tls://***@b:4222"
        );
        assert_eq!(redact_credentials("nats://nats.ops:4222"), "nats://nats.ops:4222");
        assert_eq!(redact_credentials("nats.ops:4222"), "nats.ops:4222");
    }

    #[test]
    fn both_formats_carry_the_event() {
        let data: RunCompletionEventData = serde_json::from_value(json!({
            "status": "succeeded", "pipelineName": "ns/p", "runConfigurationName": "ns/rc",
            "runId": "r1", "runEndTime": "2026-01-01T10:05:00Z", "provider": "ops/stub"
        }))
        .unwrap();
        let event = data.to_event(&[]);
        let cloud: Value =
            serde_json::from_slice(&encode(EventFormat::CloudEvents, &event).unwrap()).unwrap();
        assert_eq!(cloud["type"], "org.kubeflow.pipelines.run-completion");
        assert_eq!(cloud["source"], "ops/stub");
        assert_eq!(cloud["subject"], "ns/rc");
        assert_eq!(cloud["data"]["runId"], "r1");
        let legacy: Value = serde_json::from_slice(&encode(EventFormat::Legacy, &event).unwrap()).unwrap();
        assert_eq!(legacy["data"]["runId"], "r1");
        assert_eq!(legacy.as_object().unwrap().len(), 1);
    }

    /// Recorded legacy bodies: each feed request below, with the artifacts the RunConfiguration selects, and the
    /// NATS message the Go operator publishes for it. Go's path (sky-uk/kfp-operator main: the feed converts the
    /// event to the trigger service's protobuf message, `internal/converters/converters.go` turns it back into
    /// `pkg/common` `RunCompletionEvent`, `internal/publisher/nats_publisher.go` writes `json.Marshal` of
    /// `{"data": event}`) fixes every byte:
    /// - keys in the struct's field order: status, pipelineName, runConfigurationName, runName, runId,
    ///   runStartTime, runEndTime, artifacts, provider;
    /// - runConfigurationName and runName always written, `""` when the event had none (the converter always sets
    ///   the pointer); artifacts always a list, `[]` when none (the converter starts from an empty slice);
    /// - runStartTime and runEndTime omitted when absent (`omitempty` on `*time.Time`), else UTC (protobuf
    ///   `Timestamp.AsTime`) in `RFC3339Nano`: the fraction with trailing zeros trimmed;
    /// - strings escaped by `encoding/json`: `<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026`, U+2028 as `\u2028`.
    #[test]
    fn legacy_bodies_are_byte_for_byte_go_s() {
        let cases = [
            (
                // A run with both names, times with nanoseconds and a trimmed fraction, one selected artifact.
                json!({"status": "succeeded", "pipelineName": "ml/training", "runConfigurationName": "ml/nightly",
                    "runName": "ml/nightly-x7k2p", "runId": "4f9a0c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b",
                    "runStartTime": "2026-03-01T10:00:35.123456789Z", "runEndTime": "2026-03-01T10:42:07.500Z",
                    "provider": "kfp-operator-system/kfp"}),
                vec![("serving-model", "gs://models/training/4f9a/pushed_model/1")],
                r#"{"data":{"status":"succeeded","pipelineName":"ml/training","runConfigurationName":"ml/nightly","runName":"ml/nightly-x7k2p","runId":"4f9a0c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b","runStartTime":"2026-03-01T10:00:35.123456789Z","runEndTime":"2026-03-01T10:42:07.5Z","artifacts":[{"name":"serving-model","location":"gs://models/training/4f9a/pushed_model/1"}],"provider":"kfp-operator-system/kfp"}}"#,
            ),
            (
                // A scheduled run (no Run object) that failed, times in another offset, no artifacts.
                json!({"status": "failed", "pipelineName": "ml/training", "runConfigurationName": "ml/nightly",
                    "runId": "run-77", "runStartTime": "2026-03-01T11:00:00.120000+01:00",
                    "runEndTime": "2026-03-01T11:00:01+01:00", "provider": "kfp-operator-system/vai"}),
                vec![],
                r#"{"data":{"status":"failed","pipelineName":"ml/training","runConfigurationName":"ml/nightly","runName":"","runId":"run-77","runStartTime":"2026-03-01T10:00:00.12Z","runEndTime":"2026-03-01T10:00:01Z","artifacts":[],"provider":"kfp-operator-system/vai"}}"#,
            ),
            (
                // A Run without a RunConfiguration nor times, with characters Go escapes.
                json!({"status": "succeeded", "pipelineName": "team-a/p", "runName": "team-a/adhoc",
                    "runId": "a<b>&c\u{2028}", "provider": "ops/stub"}),
                vec![("model", "s3://b/k?x=1&y=<2>")],
                r#"{"data":{"status":"succeeded","pipelineName":"team-a/p","runConfigurationName":"","runName":"team-a/adhoc","runId":"a\u003cb\u003e\u0026c\u2028","artifacts":[{"name":"model","location":"s3://b/k?x=1\u0026y=\u003c2\u003e"}],"provider":"ops/stub"}}"#,
            ),
        ];
        for (request, artifacts, go_body) in cases {
            let data: RunCompletionEventData = serde_json::from_value(request).unwrap();
            let artifacts = artifacts
                .into_iter()
                .map(|(name, location)| kfp_core::values::Artifact {
                    name: name.into(),
                    location: location.into(),
                })
                .collect();
            let event = data.to_event_with_artifacts(artifacts);
            let body = encode(EventFormat::Legacy, &event).unwrap();
            assert_eq!(String::from_utf8(body).unwrap(), go_body);
        }
    }

    #[test]
    fn reconnects_back_off_to_two_seconds() {
        let within = |attempts: usize, ceiling: Duration| {
            let delay = reconnect_delay(attempts);
            assert!(delay >= ceiling / 2 && delay <= ceiling, "{attempts}: {delay:?}");
        };
        within(0, Duration::from_millis(100));
        within(3, Duration::from_millis(800));
        within(100, Duration::from_secs(2));
    }
}
