//! The two [`Executor`](kfp_core::executor::Executor)s (docs/executors.md; docs/concepts.md, "Executors: how an
//! operation reaches the provider"):
//! - [`argo::ArgoExecutor`] (default): one Argo `Workflow` per operation; with a
//!   [`workflows::WorkflowCache`] its outcomes come from one shared Workflow watch, which wakes a workflow's owner
//!   through [`Completions`] once the cache has the change.
//! - [`direct::DirectExecutor`]: calls the provider in-process; it wakes owners through [`Completions`].

use kfp_core::executor::ResourceRef;
use tokio::sync::broadcast;

pub mod argo;
pub mod direct;
pub mod workflows;

/// Tells controllers that an operation of a resource finished, so they reconcile it without waiting for a requeue.
/// Cheap to clone; every clone sends to the same subscribers. Lagging subscribers lose wake-ups, not operations:
/// the outcome stays with the executor until consumed, and controllers resync periodically.
#[derive(Debug, Clone)]
pub struct Completions {
    sender: broadcast::Sender<ResourceRef>,
}

impl Default for Completions {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(4096);
        Self { sender }
    }
}

impl Completions {
    /// Announces that an operation of `resource` finished.
    pub fn notify(&self, resource: ResourceRef) {
        // No subscriber (no controller running yet) is fine: the next reconcile reads the outcome anyway.
        let _ = self.sender.send(resource);
    }

    /// A receiver of every later announcement.
    pub fn subscribe(&self) -> broadcast::Receiver<ResourceRef> {
        self.sender.subscribe()
    }
}
