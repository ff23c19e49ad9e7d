//! Objects the operator cannot decode (issue 17, item 5).
//!
//! The CRD schema admits values the Rust types cannot hold: a `format: int32` field holding 2^32 (the API server
//! checks the format of strings only), an artifact path whose index overflows, a `date-time` after
//! 9999-12-30T22:00Z in a `Time` field. Such an object must not stop its kind's watch (one undecodable item in a
//! LIST fails the whole list), and its owner must learn which field and value are the problem. The controllers watch
//! raw objects and decode each with [`decode`]; what a failure says, as an Event and as a status condition, is
//! decided here.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Event, EventType};

/// The condition type that says whether the operator can read the object. Written only when it cannot
/// (`status: "False"`), and removed once the object reads again.
pub const READABLE: &str = "Readable";

/// The reason of the Warning Event and of the [`READABLE`] condition.
pub const UNREADABLE: &str = "Unreadable";

/// At most this many bytes of the offending value (as JSON) are quoted.
pub const MAX_VALUE: usize = 100;
/// At most this many bytes of the field path are quoted.
pub const MAX_FIELD: usize = 100;
/// At most this many bytes of the decoder's own message are quoted.
pub const MAX_DETAIL: usize = 200;

/// Why an object could not be decoded: where, what was there, and what the decoder said. Every part is bounded
/// ([`MAX_FIELD`], [`MAX_VALUE`], [`MAX_DETAIL`]), so the message stays under 500 bytes whatever the object holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The path of the field, e.g. `spec.artifacts[0].path`; `.` when the decoder could not say.
    pub field: String,
    /// The value found at that path as JSON, e.g. `"c:a:99999999999999999999"`; empty when there is none.
    pub value: String,
    /// The decoder's message, e.g. `invalid value: integer 4294967296, expected i32`.
    pub detail: String,
}

impl Unreadable {
    /// The message of the Event and the condition, naming the field and the value.
    pub fn message(&self) -> String {
        format!(
            "the operator cannot read this object: {} = {} ({}); it is not reconciled until the field is fixed",
            self.field, self.value, self.detail
        )
    }

    /// The Warning Event to record on the object.
    pub fn event(&self) -> Event {
        Event {
            type_: EventType::Warning,
            reason: UNREADABLE.to_string(),
            message: self.message(),
        }
    }

    /// The [`READABLE`] condition (`False`, reason [`UNREADABLE`]).
    pub fn condition(&self, observed_generation: Option<i64>, now: &Time) -> Condition {
        Condition {
            type_: READABLE.to_string(),
            status: "False".to_string(),
            reason: UNREADABLE.to_string(),
            message: self.message(),
            observed_generation,
            last_transition_time: now.clone(),
        }
    }

    /// The object's `status.conditions` (as stored, `current`) with the [`READABLE`] condition put in, or `None`
    /// when an identical one is there already (so reporting the same object again writes nothing, and the write
    /// does not wake the watch that reported it). Other conditions are kept as they are, undecodable ones too.
    pub fn conditions(
        &self,
        current: &[Value],
        observed_generation: Option<i64>,
        now: &Time,
    ) -> Option<Vec<Value>> {
        let message = self.message();
        let same = |c: &Value| {
            c["type"] == READABLE
                && c["status"] == "False"
                && c["reason"] == UNREADABLE
                && c["message"] == message.as_str()
                && c.get("observedGeneration").and_then(Value::as_i64) == observed_generation
        };
        if current.iter().any(same) {
            return None;
        }
        let condition = serde_json::to_value(self.condition(observed_generation, now)).ok()?;
        let mut conditions: Vec<Value> = current.to_vec();
        match conditions.iter_mut().find(|c| c["type"] == READABLE) {
            Some(existing) => *existing = condition,
            None => conditions.push(condition),
        }
        Some(conditions)
    }
}

/// The object's `status.conditions` without the [`READABLE`] condition, or `None` when it has none: what to write
/// once an object that was unreadable reads again.
pub fn cleared_conditions(current: &[Value]) -> Option<Vec<Value>> {
    current.iter().any(|c| c["type"] == READABLE).then(|| {
        current
            .iter()
            .filter(|c| c["type"] != READABLE)
            .cloned()
            .collect()
    })
}

/// Decodes `object` as a `K`, or says which field holds which value that `K` cannot hold.
pub fn decode<K: DeserializeOwned>(object: &Value) -> Result<K, Unreadable> {
    serde_path_to_error::deserialize::<_, K>(object).map_err(|error| {
        let path = error.path();
        let field = match path.to_string() {
            p if p.is_empty() => ".".to_string(),
            p => bounded(&p, MAX_FIELD),
        };
        let value = lookup(object, path)
            .map(|v| bounded(&v.to_string(), MAX_VALUE))
            .unwrap_or_default();
        Unreadable {
            field,
            value,
            detail: bounded(&error.into_inner().to_string(), MAX_DETAIL),
        }
    })
}

/// The value at `path` in `object`, when the path leads to one.
fn lookup<'a>(object: &'a Value, path: &serde_path_to_error::Path) -> Option<&'a Value> {
    use serde_path_to_error::Segment;
    path.iter().try_fold(object, |value, segment| match segment {
        Segment::Seq { index } => value.get(*index),
        Segment::Map { key } | Segment::Enum { variant: key } => value.get(key.as_str()),
        Segment::Unknown => None,
    })
}

/// `text` cut to at most `max` bytes (at a character boundary), with `…` when cut: how much of a user's input a
/// message, Event or log line quotes.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::resources::v1beta1::{Provider, Run};
    use serde_json::json;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
    }

    fn run_with_artifact(path: &str) -> Value {
        json!({
            "apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Run",
            "metadata": {"name": "r", "namespace": "n"},
            "spec": {"provider": "n/p", "pipeline": "p", "artifacts": [{"name": "a", "path": path}]}
        })
    }

    #[test]
    fn names_the_field_and_the_value() {
        let error = decode::<Run>(&run_with_artifact("c:a:99999999999999999999")).unwrap_err();
        assert_eq!(error.field, "spec.artifacts[0].path");
        assert_eq!(error.value, "\"c:a:99999999999999999999\"");
        assert!(
            error
                .message()
                .contains("spec.artifacts[0].path = \"c:a:99999999999999999999\"")
        );
    }

    #[test]
    fn an_int32_overflow_in_a_provider() {
        let provider = json!({
            "apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Provider",
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {"serviceImage": "x", "serviceAccount": "default", "pipelineRootStorage": "/x",
                     "podTemplateVolumes": [{"name": "v", "configMap": {"name": "c", "defaultMode": 4_294_967_296_u64}}]}
        });
        let error = decode::<Provider>(&provider).unwrap_err();
        assert_eq!(error.field, "spec.podTemplateVolumes[0].configMap.defaultMode");
        assert_eq!(error.value, "4294967296");
    }

    #[test]
    fn a_readable_object_decodes() {
        let run: Run = decode(&run_with_artifact("c:a:1")).unwrap();
        assert_eq!(run.spec.artifacts.len(), 1);
    }

    #[test]
    fn the_message_is_bounded_whatever_the_object_holds() {
        let huge = format!("c:a:{}", "9".repeat(1_000_000));
        let error = decode::<Run>(&run_with_artifact(&huge)).unwrap_err();
        assert!(error.message().len() < 600, "{}", error.message().len());
        assert!(error.value.ends_with('…'));
    }

    #[test]
    fn the_condition_is_written_once_and_keeps_the_others() {
        let error = decode::<Run>(&run_with_artifact("c:a:99999999999999999999")).unwrap_err();
        let other = json!({"type": "Synchronized", "status": "True", "reason": "Succeeded", "message": "",
                           "lastTransitionTime": "9999-12-31T23:00:00Z"});
        let written = error
            .conditions(std::slice::from_ref(&other), Some(1), &now())
            .unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(written[0], other);
        assert_eq!(written[1]["type"], READABLE);
        assert_eq!(
            error.conditions(&written, Some(1), &now()),
            None,
            "the same report writes nothing"
        );
        let moved = error.conditions(&written, Some(2), &now()).unwrap();
        assert_eq!(moved.len(), 2, "a new generation replaces the condition");
        assert_eq!(cleared_conditions(&moved), Some(vec![other]));
        assert_eq!(cleared_conditions(&[]), None);
    }
}
