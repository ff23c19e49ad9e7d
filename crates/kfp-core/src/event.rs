//! Run-completion events (docs/run-completion-events.md): what a provider reports when a run finishes, and what the
//! operator publishes.
//!
//! Two wire types, both with field names exactly as the Go operator writes them:
//! - [`RunCompletionEventData`]: the body a provider service POSTs to the operator's run-completion feed
//!   (`POST /events`). It carries every output artifact of every pipeline component.
//! - [`RunCompletionEvent`]: what the operator publishes (NATS, gRPC endpoints). The components are replaced by the
//!   artifacts the RunConfiguration (or Run) asked for in `spec.run.artifacts`, resolved with
//!   [`crate::artifact::select_artifacts`]; `runConfigurationName`, `runName` and `artifacts` are always present.
//!
//! Decoding is tolerant where Go's `encoding/json` is tolerant (unknown fields are ignored, `null` is "absent") and
//! strict where the value has a shape (status `succeeded|failed`, `ns/name` names, RFC 3339 times), so a malformed
//! body is refused with a serde error naming the field.
//!
//! Encoding follows Go as well (docs/run-completion-events.md): times keep their fraction of a second
//! ([`format_time`]), and [`to_go_json`] writes the bytes Go's `json.Marshal` writes.

use std::io;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::artifact;
use crate::values::{Artifact, NamespacedName, OutputArtifact};

/// The CloudEvents `type` of a published run-completion event (docs/run-completion-events.md, "The published event:
/// NATS").
pub const CLOUD_EVENT_TYPE: &str = "org.kubeflow.pipelines.run-completion";

/// How a run ended: `succeeded` or `failed` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunCompletionStatus {
    /// The run succeeded.
    Succeeded,
    /// The run failed (or was cancelled).
    Failed,
}

/// A provider's report that a run finished: the body of `POST /events` on the operator's run-completion feed.
///
/// Provider authors build one per finished run and yield it from their [`crate::provider::EventSource`]. Names are the
/// Kubernetes objects that started the run (the provider recovers them from the labels or runtime parameters it
/// attached when creating the run, docs/providers/kubeflow-pipelines.md, "Run parameters"); `run_id` is the provider's
/// own id of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCompletionEventData {
    /// How the run ended.
    pub status: RunCompletionStatus,
    /// The Pipeline resource the run ran.
    pub pipeline_name: NamespacedName,
    /// The RunConfiguration that started the run, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_configuration_name: Option<NamespacedName>,
    /// The Run object that started the run, if any (scheduled runs have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_name: Option<NamespacedName>,
    /// The provider's id of the run.
    pub run_id: String,
    /// When the run started, if the provider knows.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_optional_time"
    )]
    pub run_start_time: Option<Time>,
    /// When the run ended; the operator keeps the newest succeeded run per RunConfiguration by this (decision 0005).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_optional_time"
    )]
    pub run_end_time: Option<Time>,
    /// Every component of the run with its output artifacts. Absent or `null` decodes as empty.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub pipeline_components: Vec<PipelineComponent>,
    /// The Provider resource (`ns/name`) whose service reports the event.
    pub provider: NamespacedName,
}

/// One component (step) of a finished run and its named outputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineComponent {
    /// The component's name in the pipeline (e.g. `Pusher`).
    pub name: String,
    /// Its output artifacts, by output name. Absent or `null` decodes as empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub component_artifacts: Vec<ComponentArtifact>,
}

/// One named output of a component; a component may produce several instances of it (selected by index).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentArtifact {
    /// The output's name (e.g. `pushed_model`).
    pub name: String,
    /// Its instances, in order (`COMPONENT:ARTIFACT:INDEX` picks one). Absent or `null` decodes as empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub artifacts: Vec<ComponentArtifactInstance>,
}

/// One artifact instance: where it is stored and its metadata (the properties artifact filters look at).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentArtifactInstance {
    /// Where the artifact is.
    #[serde(default)]
    pub uri: String,
    /// A JSON object (Go `map[string]interface{}`); absent or `null` decodes as empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl ComponentArtifactInstance {
    /// An instance at `uri` with `metadata`.
    pub fn new(uri: impl Into<String>, metadata: serde_json::Map<String, serde_json::Value>) -> Self {
        Self {
            uri: uri.into(),
            metadata,
        }
    }
}

/// The event the operator publishes once a run finished (the data of the NATS message, docs/run-completion-events.md).
///
/// Unlike [`RunCompletionEventData`], `runConfigurationName` and `runName` are always written (`""` when the run
/// had none) and `artifacts` is always a list (`[]` when nothing was selected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCompletionEvent {
    /// How the run ended.
    pub status: RunCompletionStatus,
    /// The Pipeline resource the run ran.
    pub pipeline_name: NamespacedName,
    /// The RunConfiguration that started the run; empty when none.
    #[serde(default)]
    pub run_configuration_name: NamespacedName,
    /// The Run object; empty when none.
    #[serde(default)]
    pub run_name: NamespacedName,
    /// The provider's id of the run.
    pub run_id: String,
    /// When the run started, if known.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_optional_time"
    )]
    pub run_start_time: Option<Time>,
    /// When the run ended, if known.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_optional_time"
    )]
    pub run_end_time: Option<Time>,
    /// The artifacts selected by the RunConfiguration's (or Run's) `spec.run.artifacts`, with their locations.
    #[serde(default, deserialize_with = "null_as_default")]
    pub artifacts: Vec<Artifact>,
    /// The Provider that reported the run.
    pub provider: NamespacedName,
}

/// The Go operator's NATS body, `{"data": <event>}` (published when `eventFormat: legacy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyEventBody {
    /// The event.
    pub data: RunCompletionEvent,
}

impl RunCompletionEventData {
    /// The RunConfiguration named by the event, if the name is present and not empty.
    pub fn run_configuration(&self) -> Option<&NamespacedName> {
        self.run_configuration_name
            .as_ref()
            .filter(|n| !n.name.is_empty())
    }

    /// The Run named by the event, if the name is present and not empty.
    pub fn run(&self) -> Option<&NamespacedName> {
        self.run_name.as_ref().filter(|n| !n.name.is_empty())
    }

    /// The event to publish, with the artifacts `outputs` select from this run's components: outputs that
    /// cannot be resolved (missing component, index out of range, empty uri, filter false or invalid) are left out.
    pub fn to_event(&self, outputs: &[OutputArtifact]) -> RunCompletionEvent {
        self.to_event_with_artifacts(artifact::select_artifacts(outputs, &self.pipeline_components))
    }

    /// The event to publish, with artifacts already resolved by the caller.
    pub fn to_event_with_artifacts(&self, artifacts: Vec<Artifact>) -> RunCompletionEvent {
        RunCompletionEvent {
            status: self.status,
            pipeline_name: self.pipeline_name.clone(),
            run_configuration_name: self.run_configuration_name.clone().unwrap_or_default(),
            run_name: self.run_name.clone().unwrap_or_default(),
            run_id: self.run_id.clone(),
            run_start_time: self.run_start_time.clone(),
            run_end_time: self.run_end_time.clone(),
            artifacts,
            provider: self.provider.clone(),
        }
    }
}

impl RunCompletionEvent {
    /// The CloudEvents `subject`: the RunConfiguration if the run had one, else the Run.
    pub fn subject(&self) -> &NamespacedName {
        if self.run_configuration_name.name.is_empty() {
            &self.run_name
        } else {
            &self.run_configuration_name
        }
    }

    /// Wraps the event in the Go operator's `{"data": ...}` body.
    pub fn into_legacy_body(self) -> LegacyEventBody {
        LegacyEventBody { data: self }
    }
}

/// The CloudEvents 1.0 `specversion` of published events.
pub const CLOUD_EVENTS_SPEC_VERSION: &str = "1.0";

/// A published run-completion event in the CloudEvents 1.0 structured JSON format (docs/run-completion-events.md), the
/// body of a NATS message:
///
/// ```json
/// {"specversion": "1.0", "id": "5d0c...", "source": "kfp-operator-system/stub",
///  "type": "org.kubeflow.pipelines.run-completion", "subject": "default/stub-runconfiguration",
///  "time": "2026-01-01T10:05:00Z", "datacontenttype": "application/json", "data": {...}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// `1.0`.
    pub specversion: String,
    /// Unique per run completion and the same for every replay of it ([`RunCompletionEvent::cloud_event_id`]):
    /// consumers drop duplicates by `source` + `id`.
    pub id: String,
    /// The Provider that reported the run (`ns/name`).
    pub source: String,
    /// [`CLOUD_EVENT_TYPE`].
    #[serde(rename = "type")]
    pub type_: String,
    /// The RunConfiguration (`ns/name`) if the run had one, else the Run.
    pub subject: String,
    /// When the run ended (`runEndTime`); when the provider did not say, when the operator received the event.
    #[serde(serialize_with = "serialize_time")]
    pub time: Time,
    /// `application/json`.
    pub datacontenttype: String,
    /// The event (the legacy body's `data`).
    pub data: RunCompletionEvent,
}

impl RunCompletionEvent {
    /// The CloudEvents `id`: a SHA-1 over what identifies the run completion (provider, run id, status, names and
    /// end time), so a replayed event gets the same id and two completions never share one.
    pub fn cloud_event_id(&self) -> String {
        use sha1::Digest;
        let end = self
            .run_end_time
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        let status = match self.status {
            RunCompletionStatus::Succeeded => "succeeded",
            RunCompletionStatus::Failed => "failed",
        };
        let parts = [
            self.provider.to_string(),
            self.run_id.clone(),
            status.to_string(),
            self.run_configuration_name.to_string(),
            self.run_name.to_string(),
            self.pipeline_name.to_string(),
            end,
        ];
        let mut hasher = sha1::Sha1::new();
        for part in parts {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        hex::encode(hasher.finalize())
    }

    /// Wraps the event in its CloudEvents envelope; `received` is the `time` when the event has no `runEndTime`.
    pub fn into_cloud_event(self, received: Time) -> CloudEvent {
        CloudEvent {
            specversion: CLOUD_EVENTS_SPEC_VERSION.to_string(),
            id: self.cloud_event_id(),
            source: self.provider.to_string(),
            type_: CLOUD_EVENT_TYPE.to_string(),
            subject: self.subject().to_string(),
            time: self.run_end_time.clone().unwrap_or(received),
            datacontenttype: "application/json".to_string(),
            data: self,
        }
    }
}

/// `time` as Go's `time.Time` writes itself in JSON (`RFC3339Nano`): RFC 3339, with the fraction of a second
/// when there is one, trailing zeros trimmed (`10:05:00.12Z`, `10:05:00Z`). The Go operator's published times are
/// UTC (they pass through a protobuf `Timestamp`), as ours are. `Time`'s own JSON form drops the fraction, which
/// would change the bytes consumers compare and lose the order of runs that end within one second.
pub fn format_time(time: &Time) -> String {
    // jiff prints a timestamp in UTC with the shortest fraction that is exact, which is Go's trimming.
    time.0.to_string()
}

/// Serializes a [`Time`] with [`format_time`] (`#[serde(serialize_with = "kfp_core::event::serialize_time")]`).
pub fn serialize_time<S: Serializer>(time: &Time, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_time(time))
}

/// Serializes an optional [`Time`] with [`format_time`]; `None` is `null` (usually skipped with
/// `skip_serializing_if`).
pub fn serialize_optional_time<S: Serializer>(time: &Option<Time>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serialize_time(time, serializer),
        None => serializer.serialize_none(),
    }
}

/// `value` in the bytes Go's `json.Marshal` writes: compact, and in strings `<`, `>`, `&`, U+2028 and U+2029
/// escaped as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029` (Go escapes them for HTML and JavaScript). The
/// other escapes already agree with Go (since Go 1.22): `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and
/// `\u00xx` for the other control characters. Consumers of the Go operator's messages may compare bodies byte
/// for byte (deduplication, recorded fixtures), so published events use this.
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut serializer)?;
    Ok(out)
}

/// serde_json's compact formatter with Go's extra escapes in strings (and object keys, which are strings too).
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            let escaped: &[u8] = match c {
                '<' => b"\\u003c",
                '>' => b"\\u003e",
                '&' => b"\\u0026",
                '\u{2028}' => b"\\u2028",
                '\u{2029}' => b"\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..at])?;
            writer.write_all(escaped)?;
            start = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Decodes `null` as the type's default, as Go's `encoding/json` leaves a nil slice or map.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const FIXTURE: &str = include_str!("../../../fixtures/event-run-succeeded.json");

    #[test]
    fn feed_request_fixture_round_trips() {
        let data: RunCompletionEventData = serde_json::from_str(FIXTURE).unwrap();
        assert_eq!(data.status, RunCompletionStatus::Succeeded);
        assert_eq!(
            data.pipeline_name,
            NamespacedName::new("default", "stub-pipeline")
        );
        assert_eq!(
            data.run_configuration(),
            Some(&NamespacedName::new("default", "stub-runconfiguration"))
        );
        assert_eq!(
            data.run(),
            Some(&NamespacedName::new("default", "stub-runconfiguration-abcde"))
        );
        assert_eq!(data.run_id, "stub-run-1754550000");
        assert_eq!(data.provider, NamespacedName::new("kfp-operator-system", "stub"));
        assert_eq!(
            data.pipeline_components[0].component_artifacts[0].artifacts[0].uri,
            "gs://bucket/models/1"
        );
        let expected: Value = serde_json::from_str(FIXTURE).unwrap();
        assert_eq!(serde_json::to_value(&data).unwrap(), expected);
    }

    /// A feed request with components and the legacy NATS message it becomes, the selected artifact in place of the
    /// components.
    const A5_REQUEST: &str = r#"{"status":"succeeded","pipelineName":"default/stub-pipeline","runConfigurationName":"default/stub-runconfiguration","runName":"default/stub-runconfiguration-abcde","runId":"stub-run-1754550000","pipelineComponents":[{"name":"Pusher","componentArtifacts":[{"name":"pushed_model","artifacts":[{"uri":"gs://b/m/1","metadata":{"pushed":1}}]}]}],"provider":"kfp-operator-system/stub"}"#;

    #[test]
    fn appendix_a5_request_becomes_the_nats_body() {
        let data: RunCompletionEventData = serde_json::from_str(A5_REQUEST).unwrap();
        assert_eq!(
            serde_json::to_value(&data).unwrap(),
            serde_json::from_str::<Value>(A5_REQUEST).unwrap()
        );
        let outputs: Vec<OutputArtifact> = serde_json::from_value(
            json!([{"name": "serving-model", "path": "Pusher:pushed_model:0[pushed == 1]"}]),
        )
        .unwrap();
        let body = data.to_event(&outputs).into_legacy_body();
        let expected = json!({"data": {
            "status": "succeeded",
            "pipelineName": "default/stub-pipeline",
            "runConfigurationName": "default/stub-runconfiguration",
            "runName": "default/stub-runconfiguration-abcde",
            "runId": "stub-run-1754550000",
            "artifacts": [{"name": "serving-model", "location": "gs://b/m/1"}],
            "provider": "kfp-operator-system/stub"
        }});
        assert_eq!(serde_json::to_value(&body).unwrap(), expected);
        let back: LegacyEventBody = serde_json::from_value(expected).unwrap();
        assert_eq!(back, body);
        assert_eq!(
            body.data.subject(),
            &NamespacedName::new("default", "stub-runconfiguration")
        );
    }

    #[test]
    fn published_event_always_has_names_and_artifacts() {
        let data: RunCompletionEventData = serde_json::from_value(json!({
            "status": "failed", "pipelineName": "ns/p", "runId": "r1", "provider": "ops/kfp",
            "pipelineComponents": null, "runStartTime": "2026-01-01T10:00:00.250+01:00"
        }))
        .unwrap();
        assert!(data.run_configuration().is_none() && data.run().is_none());
        let event = serde_json::to_value(data.to_event(&[])).unwrap();
        assert_eq!(
            event,
            json!({
                "status": "failed", "pipelineName": "ns/p", "runConfigurationName": "", "runName": "",
                "runId": "r1", "runStartTime": "2026-01-01T09:00:00.25Z", "artifacts": [], "provider": "ops/kfp"
            })
        );
    }

    #[test]
    fn empty_names_count_as_absent() {
        let data: RunCompletionEventData = serde_json::from_value(json!({
            "status": "succeeded", "pipelineName": "ns/p", "runId": "r", "provider": "ops/kfp",
            "runConfigurationName": "", "runName": "ns/r"
        }))
        .unwrap();
        assert_eq!(data.run_configuration(), None);
        assert_eq!(data.to_event(&[]).subject(), &NamespacedName::new("ns", "r"));
    }

    #[test]
    fn malformed_bodies_give_errors_naming_the_problem() {
        let base =
            json!({"status": "succeeded", "pipelineName": "ns/p", "runId": "r", "provider": "ops/kfp"});
        let with = |key: &str, value: Value| {
            let mut body = base.clone();
            body[key] = value;
            serde_json::from_value::<RunCompletionEventData>(body)
                .unwrap_err()
                .to_string()
        };
        let without = |key: &str| {
            let mut body = base.clone();
            body.as_object_mut().unwrap().remove(key);
            serde_json::from_value::<RunCompletionEventData>(body)
                .unwrap_err()
                .to_string()
        };
        let cases = [
            (
                with("status", json!("running")),
                "unknown variant `running`, expected `succeeded` or `failed`",
            ),
            (
                with("pipelineName", json!("a/b/c")),
                "invalid namespaced name \"a/b/c\"",
            ),
            (with("runEndTime", json!("yesterday")), ""),
            (
                with("pipelineComponents", json!({"name": "x"})),
                "invalid type: map, expected a sequence",
            ),
            (
                with(
                    "pipelineComponents",
                    json!([{"name": "c", "componentArtifacts": [{"name": "a", "artifacts": [{"uri": "u", "metadata": [1]}]}]}]),
                ),
                "invalid type: sequence, expected a map",
            ),
            (without("runId"), "missing field `runId`"),
            (without("status"), "missing field `status`"),
            (without("provider"), "missing field `provider`"),
        ];
        for (err, expected) in cases {
            assert!(
                !err.is_empty() && err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
        assert!(serde_json::from_str::<RunCompletionEventData>("{").is_err());
        assert!(serde_json::from_str::<RunCompletionEventData>("[]").is_err());
    }

    #[test]
    fn the_cloud_event_envelope_names_provider_subject_and_a_stable_id() {
        let data: RunCompletionEventData = serde_json::from_str(FIXTURE).unwrap();
        let received: Time = serde_json::from_value(json!("2030-01-01T00:00:00Z")).unwrap();
        let envelope = data.to_event(&[]).into_cloud_event(received.clone());
        let value = serde_json::to_value(&envelope).unwrap();
        assert_eq!(value["specversion"], "1.0");
        assert_eq!(value["type"], "org.kubeflow.pipelines.run-completion");
        assert_eq!(value["source"], "kfp-operator-system/stub");
        assert_eq!(value["subject"], "default/stub-runconfiguration");
        assert_eq!(value["time"], "2026-01-01T10:05:00Z", "the run's end time");
        assert_eq!(value["datacontenttype"], "application/json");
        assert_eq!(value["data"]["runId"], "stub-run-1754550000");
        assert_eq!(value["data"]["artifacts"], json!([]));
        assert_eq!(envelope.id.len(), 40);
        let again = data.to_event(&[]).into_cloud_event(received.clone());
        assert_eq!(again.id, envelope.id, "a replay has the same id");
        let mut other = data.clone();
        other.run_id = "stub-run-1754550001".into();
        assert_ne!(
            other.to_event(&[]).into_cloud_event(received.clone()).id,
            envelope.id
        );
        let mut untimed = data;
        untimed.run_end_time = None;
        assert_eq!(
            untimed.to_event(&[]).into_cloud_event(received.clone()).time,
            received
        );
        let back: CloudEvent = serde_json::from_value(value).unwrap();
        assert_eq!(back, envelope);
    }

    /// Go reads the times with `time.Time`'s `UnmarshalJSON` (any RFC 3339 fraction and offset) and writes them
    /// with its `MarshalJSON` (`RFC3339Nano`: the fraction with trailing zeros trimmed, none when it is zero); the
    /// published times are UTC because they pass through a protobuf `Timestamp`.
    #[test]
    fn times_keep_their_fraction_of_a_second_as_go_writes_them() {
        let cases = [
            ("2026-03-01T10:00:35Z", "2026-03-01T10:00:35Z"),
            ("2026-03-01T10:00:35.000Z", "2026-03-01T10:00:35Z"),
            ("2026-03-01T10:00:35.5Z", "2026-03-01T10:00:35.5Z"),
            ("2026-03-01T10:00:35.120000Z", "2026-03-01T10:00:35.12Z"),
            ("2026-03-01T10:00:35.000000001Z", "2026-03-01T10:00:35.000000001Z"),
            ("2026-03-01T10:00:35.123456789Z", "2026-03-01T10:00:35.123456789Z"),
            ("2026-03-01T11:00:35.25+01:00", "2026-03-01T10:00:35.25Z"),
        ];
        let received: Time = serde_json::from_value(json!("2030-01-01T00:00:00Z")).unwrap();
        for (sent, written) in cases {
            let data: RunCompletionEventData = serde_json::from_value(json!({
                "status": "succeeded", "pipelineName": "ns/p", "runId": "r", "provider": "ops/kfp",
                "runStartTime": sent, "runEndTime": sent
            }))
            .unwrap();
            let request = serde_json::to_value(&data).unwrap();
            assert_eq!(
                (&request["runStartTime"], &request["runEndTime"]),
                (&json!(written), &json!(written)),
                "{sent}"
            );
            let event = data.to_event(&[]);
            let published = serde_json::to_value(&event).unwrap();
            assert_eq!(
                (&published["runStartTime"], &published["runEndTime"]),
                (&json!(written), &json!(written)),
                "{sent}"
            );
            let envelope = serde_json::to_value(event.into_cloud_event(received.clone())).unwrap();
            assert_eq!(envelope["time"], written, "{sent}");
            assert_eq!(format_time(data.run_end_time.as_ref().unwrap()), written);
        }
    }

    /// Go's `json.Marshal` escapes `<`, `>`, `&`, U+2028 and U+2029 in strings and keys; the other escapes are
    /// serde_json's already (Go 1.22 and later write `\b` and `\f` too).
    #[test]
    fn go_json_escapes_as_go_does() {
        let value = json!({"a<b>": "x & y <z> \u{2028}\u{2029} \" \\ / \n\t\u{8}\u{c}\u{1}\u{7f} é ☃"});
        let bytes = to_go_json(&value).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            // DEL and other non-ASCII characters stay as they are, in Go too.
            "{\"a\\u003cb\\u003e\":\"x \\u0026 y \\u003cz\\u003e \\u2028\\u2029 \\\" \\\\ / \\n\\t\\b\\f\\u0001\u{7f} é ☃\"}"
        );
    }

    #[test]
    fn unknown_fields_are_ignored_like_go() {
        let data: RunCompletionEventData = serde_json::from_value(json!({
            "status": "succeeded", "pipelineName": "ns/p", "runId": "r", "provider": "ops/kfp", "futureField": 1
        }))
        .unwrap();
        assert_eq!(data.run_id, "r");
    }
}
