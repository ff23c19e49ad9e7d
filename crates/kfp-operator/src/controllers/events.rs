//! Kubernetes Events (`events.k8s.io/v1`) on reconciled objects, reporting controller `kfp-operator`.
//!
//! kube-runtime's recorder folds events with the same reason into one series and keeps the first note, so
//! `Syncing: Updating` after `Syncing: Creating` would never show. Here an event is a repeat only when its type,
//! reason and note are all the same: a repeat within [`SERIES_WINDOW`] bumps the series count of the existing
//! Event (as `kubectl describe` shows "x3 over 2m"), anything else is a new Event.

use std::collections::HashMap;

use k8s_openapi::api::events::v1::{Event as KubeEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kfp_core::reconcile::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use std::sync::{Mutex, MutexGuard};

use super::REPORTER;

/// How long an identical event counts as a repeat of the last one.
pub const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
/// At most this many event series are remembered; older ones are forgotten (their repeats start a new Event).
const MAX_REMEMBERED: usize = 10_000;

/// What makes two events one series: the object (namespace, uid), type, reason and note. Kept as a 64-bit hash of
/// them: a note can be a kilobyte and the cache holds up to [`MAX_REMEMBERED`] keys (two different events sharing
/// a hash, about one chance in 10^11 at that size, would only fold into one series).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key(u64);

impl Key {
    fn of(namespace: &str, uid: &str, type_: &str, reason: &str, note: &str) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (namespace, uid, type_, reason, note).hash(&mut hasher);
        Self(hasher.finish())
    }
}

#[derive(Debug, Clone)]
struct Series {
    name: String,
    count: i32,
    last: Timestamp,
}

/// Records events; cheap to clone (shared cache).
///
/// The series cache is locked only to read or update it, never across an API call: every controller records
/// through one recorder, and holding the lock over the request would let only one Event be written at a time.
/// Two identical events recorded at the very same moment may then make two Events instead of one series of two.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    instance: String,
    series: std::sync::Arc<Mutex<HashMap<Key, Series>>>,
}

impl Recorder {
    /// `instance` is the reporting instance (the pod name); `None`: `kfp-operator`.
    pub fn new(client: Client, instance: Option<String>) -> Self {
        Self {
            client,
            instance: instance.unwrap_or_else(|| REPORTER.to_string()),
            series: Default::default(),
        }
    }

    /// Records `event` on `object`.
    pub async fn record<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        event: &Event,
    ) -> Result<(), kube::Error> {
        let namespace = object.namespace().unwrap_or_else(|| "default".to_string());
        let note = kfp_core::reconcile::unreadable::bounded(&event.message, 1000);
        let key = Key::of(
            &namespace,
            &object.uid().unwrap_or_default(),
            event.type_.as_str(),
            &event.reason,
            &note,
        );
        let now = Timestamp::now();
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), &namespace);
        let repeat = self
            .series()
            .get_mut(&key)
            .filter(|s| s.last + SERIES_WINDOW > now)
            .map(|existing| {
                existing.count += 1;
                existing.last = now;
                (existing.name.clone(), existing.count)
            });
        if let Some((name, count)) = repeat {
            let patch = json!({ "series": EventSeries {
                count,
                last_observed_time: MicroTime(now),
            }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // The Event expired (the API server's event TTL) or was deleted: record a new one.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        let name = format!("{}.{:x}", object.name_any(), now.as_nanosecond());
        let created = KubeEvent {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some("Reconcile".to_string()),
            reason: Some(event.reason.clone()),
            note: Some(note),
            type_: Some(event.type_.as_str().to_string()),
            regarding: Some(object.object_ref(&())),
            reporting_controller: Some(REPORTER.to_string()),
            reporting_instance: Some(self.instance.clone()),
            ..KubeEvent::default()
        };
        api.create(&PostParams::default(), &created).await?;
        let mut series = self.series();
        if series.len() >= MAX_REMEMBERED {
            series.retain(|_, s| s.last + SERIES_WINDOW > now);
            if series.len() >= MAX_REMEMBERED {
                series.clear();
            }
        }
        series.insert(
            key,
            Series {
                name,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }

    /// The series cache. A panic while it was held cannot leave it inconsistent (each use is one map call), so a
    /// poisoned lock is taken over.
    fn series(&self) -> MutexGuard<'_, HashMap<Key, Series>> {
        self.series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
