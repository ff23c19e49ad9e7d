//! One cache of the operator's unprocessed Argo Workflows, shared by the Argo executor and the controllers' wake-ups
//! (issue 18; docs/performance.md).
//!
//! A single watch (labels `pipelines.kubeflow.org/owner.kind` present, `pipelines.kubeflow.org/processed` absent)
//! fills a reflector store. Each event is applied to the store *before* the owner of the workflow is announced on
//! [`Completions`], which is how the controllers learn that a workflow changed: so the reconcile it wakes reads
//! outcomes at least as new as the event that woke it, and the outcomes of [`super::argo::ArgoExecutor`] need no
//! `LIST` per reconcile (it was a third of the API server's time, quadratic in the number of Workflows).
//!
//! The executor's own writes follow the own-writes rule of docs/decisions/0004-operator-shell.md: a workflow it
//! just created is an outcome at once, even before the watch delivers it; one it just marked processed is no longer
//! one, even before the watch delivers the mark. Marked workflows leave the watch's selection, so the cache holds
//! only operations in flight or not yet consumed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kfp_core::executor::ResourceRef;
use kfp_core::resources::labels;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};

use super::Completions;
use super::argo::{owner_of, workflow_api_resource};

/// How long a reconcile waits for the cache's first list before it fails (and is retried with backoff).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Own writes older than this that the watch never confirmed (the workflow was deleted meanwhile) are dropped.
const OWN_WRITE_TTL: Duration = Duration::from_secs(120);

/// The label selector of the cached workflows: ours, not yet processed.
pub fn selector() -> String {
    format!("{},!{}", labels::OWNER_KIND, labels::PROCESSED)
}

/// Workflows created or marked by this process that the watch has not confirmed yet, by `namespace/name`.
#[derive(Debug, Default)]
struct OwnWrites {
    created: HashMap<(String, String), (Arc<DynamicObject>, Instant)>,
    consumed: HashMap<(String, String), Instant>,
}

/// See the module documentation.
pub struct WorkflowCache {
    store: Store<DynamicObject>,
    own: Mutex<OwnWrites>,
    driver: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for WorkflowCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowCache")
            .field("cached", &self.store.len())
            .finish_non_exhaustive()
    }
}

impl Drop for WorkflowCache {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.lock().unwrap_or_else(|p| p.into_inner()).take() {
            driver.abort();
        }
    }
}

fn key_of(workflow: &DynamicObject) -> (String, String) {
    (workflow.namespace().unwrap_or_default(), workflow.name_any())
}

impl WorkflowCache {
    /// Starts watching the workflows `api` sees (all namespaces, or the watched one) and announcing their owners on
    /// `completions`. Needs a tokio runtime; the watch stops when the cache is dropped.
    pub fn start(api: Api<DynamicObject>, completions: Completions) -> Arc<Self> {
        let mut writer: Writer<DynamicObject> = Writer::new(workflow_api_resource());
        let cache = Arc::new(WorkflowCache {
            store: writer.as_reader(),
            own: Mutex::new(OwnWrites::default()),
            driver: Mutex::new(None),
        });
        // The task holds a weak reference (the cache owns the task), taken once the Arc exists: a task spawned
        // before would find nothing to upgrade and end at its first event (found by the chaos suite).
        let weak = Arc::downgrade(&cache);
        let config = watcher::Config::default().labels(&selector()).any_semantic();
        let driver = tokio::spawn(async move {
            let mut events = watcher::watcher(api, config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(error) => {
                        // Fails on every attempt while the API server is away: one line per 30 s.
                        if let Some(suppressed) = crate::telemetry::failure_log().check("watch/workflows") {
                            tracing::warn!(
                                failure = "watch/workflows",
                                %error,
                                suppressed,
                                "the Workflow watch failed; retrying with backoff"
                            );
                        }
                        continue;
                    }
                };
                writer.apply_watcher_event(&event);
                let Some(cache) = weak.upgrade() else { return };
                cache.confirm(&event);
                // Announced after the store has it: the woken reconcile sees this event's state.
                if let Event::Apply(workflow) | Event::InitApply(workflow) = &event
                    && let Some(owner) = owner_of(workflow)
                {
                    completions.notify(owner);
                }
            }
        });
        *cache.driver.lock().unwrap_or_else(|p| p.into_inner()) = Some(driver);
        cache
    }

    fn own(&self) -> MutexGuard<'_, OwnWrites> {
        // Each update is a single insert or remove: a panic elsewhere cannot leave it half-changed.
        self.own.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops own writes the watch has now delivered.
    fn confirm(&self, event: &Event<DynamicObject>) {
        let mut own = self.own();
        match event {
            Event::Apply(workflow) | Event::InitApply(workflow) => {
                own.created.remove(&key_of(workflow));
            }
            Event::Delete(workflow) => {
                let key = key_of(workflow);
                own.created.remove(&key);
                own.consumed.remove(&key);
            }
            Event::Init | Event::InitDone => {
                let now = Instant::now();
                own.created
                    .retain(|_, (_, at)| now.duration_since(*at) < OWN_WRITE_TTL);
                own.consumed
                    .retain(|_, at| now.duration_since(*at) < OWN_WRITE_TTL);
            }
        }
    }

    /// Waits until the first list filled the cache.
    pub async fn ready(&self) -> Result<(), String> {
        match tokio::time::timeout(READY_TIMEOUT, self.store.wait_until_ready()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("the Workflow cache stopped".to_string()),
            Err(_) => Err(format!(
                "the Workflow cache was not filled within {} s (is the API server reachable, may the operator \
                 list Workflows?)",
                READY_TIMEOUT.as_secs()
            )),
        }
    }

    /// Records a workflow this process created: an outcome at once.
    pub fn created(&self, workflow: DynamicObject) {
        let key = key_of(&workflow);
        if self
            .store
            .get(&ObjectRef::new_with(&key.1, workflow_api_resource()).within(&key.0))
            .is_none()
        {
            self.own()
                .created
                .insert(key, (Arc::new(workflow), Instant::now()));
        }
    }

    /// Records a workflow this process marked processed: no longer an outcome.
    pub fn consumed(&self, namespace: &str, name: &str) {
        self.own()
            .consumed
            .insert((namespace.to_string(), name.to_string()), Instant::now());
    }

    /// The workflow `namespace/name` as this process knows it: `None` when it is not cached, or consumed.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
        let key = (namespace.to_string(), name.to_string());
        let own = self.own();
        if own.consumed.contains_key(&key) {
            return None;
        }
        self.store
            .get(&ObjectRef::new_with(name, workflow_api_resource()).within(namespace))
            .or_else(|| own.created.get(&key).map(|(w, _)| w.clone()))
    }

    /// The unprocessed workflows of `owner`: the cached ones and those this process created, less those it marked.
    pub fn of(&self, owner: &ResourceRef) -> Vec<Arc<DynamicObject>> {
        let owned = |w: &DynamicObject| {
            !w.labels().contains_key(labels::PROCESSED) && owner_of(w).as_ref() == Some(owner)
        };
        let own = self.own();
        let mut found: Vec<Arc<DynamicObject>> = self
            .store
            .state_filter(|w| owned(w) && !own.consumed.contains_key(&key_of(w)));
        for (key, (workflow, _)) in &own.created {
            if owned(workflow) && !own.consumed.contains_key(key) && !found.iter().any(|w| key_of(w) == *key)
            {
                found.push(workflow.clone());
            }
        }
        found
    }

    /// How many workflows are cached (unprocessed ones only).
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether no workflow is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
