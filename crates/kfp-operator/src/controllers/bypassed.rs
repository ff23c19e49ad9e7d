//! Resources deleted with the operator's finalizer still on them: their provider objects are deleted anyway.
//!
//! Kubernetes can delete an object whose finalizer was added while the DELETE was in flight: the API server decides
//! "no finalizers, delete now" on the version it read, and removes the object after the finalizer patch
//! (kubernetes/kubernetes#77988, open; its fix was reverted). The chaos suite saw it about once in ten runs: a Run
//! deleted right after it was created went in one step, finalizer and all, and its platform run was left behind.
//! No reconcile follows a deletion, so the watch's DELETED event is the only trace: when the deleted object still
//! carries [`FINALIZER`], this submits the provider delete the finalizer would have waited for (by the recorded id,
//! the id of a finished create, or by identity when the executor can look up), waiting first for an operation in
//! flight to finish, and consumes the outcomes nobody else will (docs/reliability.md "Exactly once"). Which delete
//! is `kfp_core::reconcile::generic::bypassed_delete`'s decision.

use std::sync::Arc;
use std::time::Duration;

use kfp_core::executor::{Operation, OperationOutcome, OutcomeState, ResourceRef};
use kfp_core::reconcile::generic::bypassed_delete;
use kfp_core::resources::FINALIZER;
use kfp_core::resources::v1beta1::Conditions;
use kfp_core::values::SynchronizationState;
use kube::ResourceExt;

use super::Context;
use super::generic::SynchronizedKind;

/// How long the clean-up waits for an operation in flight, and then for its own delete.
const PATIENCE: Duration = Duration::from_secs(300);
/// How often it looks again meanwhile.
const POLL: Duration = Duration::from_secs(1);
/// How long it looks for the operation of a resource deleted with its intent recorded (`Creating`, `Updating`)
/// but no operation seen yet: the reconcile that wrote the intent submits a moment later, possibly after the DELETE
/// (the chaos suite saw a Workflow created 30 ms after the DELETED event).
const SUBMIT_GRACE: Duration = Duration::from_secs(10);

/// Whether a deleted object went without the operator releasing its finalizer.
pub fn bypassed<K: SynchronizedKind>(deleted: &K) -> bool {
    deleted.finalizers().iter().any(|f| f == FINALIZER)
}

/// Starts the clean-up of `deleted` (see the module documentation) in the background.
pub fn clean_up<K: SynchronizedKind>(ctx: Arc<Context>, deleted: K) {
    tokio::spawn(async move {
        let resource = ResourceRef::new(
            K::KIND,
            deleted.namespace().unwrap_or_default(),
            deleted.name_any(),
        );
        tracing::warn!(
            %resource,
            "deleted while it still carried the operator's finalizer (a Kubernetes race, kubernetes#77988): \
             deleting its provider object"
        );
        let Some(mut outcomes) = settled(&ctx, &resource).await else {
            return;
        };
        let status = deleted
            .status()
            .map(|s| kfp_core::reconcile::generic::StatusLike::base(s).clone());
        let recorded = status
            .as_ref()
            .map(|s| s.provider.id.as_str())
            .unwrap_or_default();
        let finds = ctx.executor.finds_by_identity();
        let mut action = bypassed_delete(recorded, &outcomes, finds);
        let intended = status.as_ref().is_some_and(|s| {
            matches!(
                s.synchronization_state(),
                SynchronizationState::Creating | SynchronizationState::Updating
            )
        });
        let deadline = tokio::time::Instant::now() + SUBMIT_GRACE;
        while action.is_none() && intended && tokio::time::Instant::now() < deadline {
            // Nothing wakes this task when the late operation is submitted: look again.
            tokio::time::sleep(POLL).await;
            if let Some(again) = settled(&ctx, &resource).await {
                outcomes = again;
                action = bypassed_delete(recorded, &outcomes, finds);
            }
        }
        consume(&ctx, &resource, &outcomes).await;
        let Some(action) = action else {
            tracing::warn!(%resource, "no provider id was recorded and the executor cannot look it up: its provider object, if any, may be left behind");
            return;
        };
        let operation = Operation {
            resource: resource.clone(),
            provider: deleted.provider().clone(),
            action,
            version: status.map(|s| s.version).unwrap_or_default(),
            created: deleted.meta().creation_timestamp.clone(),
        };
        if let Err(error) = ctx.executor.submit(operation).await {
            tracing::warn!(%resource, %error, "could not delete the provider object of a resource deleted past its finalizer");
            return;
        }
        if let Some(outcomes) = settled(&ctx, &resource).await {
            let failed = outcomes
                .iter()
                .any(|o| matches!(o.state, OutcomeState::Failed { .. }));
            consume(&ctx, &resource, &outcomes).await;
            if failed {
                tracing::warn!(%resource, "the provider delete of a resource deleted past its finalizer failed");
            } else {
                tracing::info!(%resource, "deleted the provider object of a resource deleted past its finalizer");
            }
        }
    });
}

/// The resource's outcomes once none is in progress; `None` when that takes longer than [`PATIENCE`] or they cannot
/// be read.
async fn settled(ctx: &Context, resource: &ResourceRef) -> Option<Vec<OperationOutcome>> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match ctx.executor.outcomes(resource).await {
            Ok(outcomes) if !outcomes.iter().any(OperationOutcome::in_progress) => return Some(outcomes),
            Ok(_) => {}
            Err(error) => tracing::debug!(%resource, %error, "cannot read the outcomes yet"),
        }
        if tokio::time::Instant::now() > deadline {
            tracing::warn!(%resource, "gave up waiting for the operations of a resource deleted past its finalizer");
            return None;
        }
        // A background wait for a provider call or a Workflow to end: nothing wakes this task.
        tokio::time::sleep(POLL).await;
    }
}

async fn consume(ctx: &Context, resource: &ResourceRef, outcomes: &[OperationOutcome]) {
    let keys: Vec<String> = outcomes.iter().map(|o| o.key.clone()).collect();
    if !keys.is_empty()
        && let Err(error) = ctx.executor.mark_consumed(resource, &keys).await
    {
        tracing::debug!(%resource, %error, "could not mark the outcomes consumed");
    }
}
