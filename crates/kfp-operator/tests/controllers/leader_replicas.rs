//! Two operator replicas on one namespace behind one leader election Lease (`operator::run_as_leader`): only the
//! leader writes (every Event comes from its identity, the follower reconciles nothing), and when the leader shuts
//! down gracefully it releases the Lease, the follower takes over and reconciles new objects.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kfp_core::resources::v1beta1::Pipeline;
use kfp_core::values::SynchronizationState::Succeeded;
use kfp_operator::controllers::Context;
use kfp_operator::health::Readiness;
use kfp_operator::leader::{LeaderElector, LeaseConfig};
use kfp_operator::operator::{OperatorError, Shutdown, ShutdownTrigger, run_as_leader};
use kube::api::Api;
use support::{Harness, Mode, wait_for_state};
use tokio::task::JoinHandle;

const LEASE: &str = "kfp-operator-lock";

/// One replica: an operator context with its own executor, metrics and Event instance, run by `run_as_leader`.
struct Replica {
    identity: String,
    context: Arc<Context>,
    trigger: ShutdownTrigger,
    task: JoinHandle<Result<(), OperatorError>>,
}

impl Replica {
    fn start(harness: &Harness, identity: &str) -> Self {
        let context = harness.context().with_instance(identity);
        let elector = LeaderElector::new(
            harness.client.clone(),
            LeaseConfig {
                name: LEASE.to_string(),
                namespace: harness.namespace.clone(),
                identity: identity.to_string(),
                lease_duration: Duration::from_secs(2),
                renew_period: Duration::from_millis(500),
            },
        );
        let (trigger, shutdown) = Shutdown::new();
        let ctx = context.clone();
        let task = tokio::spawn(async move {
            let readiness = Readiness::new();
            run_as_leader(ctx, None, elector, shutdown, &readiness).await
        });
        Self {
            identity: identity.to_string(),
            context,
            trigger,
            task,
        }
    }

    /// Reconciles this replica ran, over all controllers.
    fn reconciles(&self) -> u64 {
        let text = self.context.metrics.encode();
        [
            "pipeline",
            "run",
            "runschedule",
            "experiment",
            "runconfiguration",
            "provider",
        ]
        .iter()
        .map(|c| support::reconciliations(&text, c))
        .sum()
    }

    /// Triggers a graceful shutdown and waits for `run_as_leader` to return.
    async fn stop(self) {
        self.trigger.trigger();
        tokio::time::timeout(support::WAIT, self.task)
            .await
            .expect("the replica stops within the timeout")
            .expect("the replica task does not panic")
            .unwrap_or_else(|e| panic!("replica {} stopped with an error: {e}", self.identity));
    }
}

async fn holder(harness: &Harness) -> Option<String> {
    let leases: Api<Lease> = harness.api();
    leases
        .get_opt(LEASE)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

async fn wait_for_holder(harness: &Harness, identity: Option<&str>) -> String {
    kfp_testenv::wait_for(
        format!("the Lease to be held by {identity:?}"),
        support::WAIT,
        || async {
            let current = holder(harness).await;
            Ok::<_, String>(current.filter(|h| identity.is_none_or(|i| i == h)))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The `reportingInstance` of every Event on the object `name`.
async fn event_instances(harness: &Harness, name: &str) -> Vec<String> {
    let events: Api<Event> = harness.api();
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| e.reporting_instance.unwrap_or_default())
        .collect()
}

fn pipeline(name: &str) -> String {
    format!(
        "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {{name: {name}, namespace: $NS}}
spec: {{provider: $PROVIDER, image: 'alpine:3.20', framework: {{name: stub, parameters: {{}}}}}}
"
    )
}

#[tokio::test]
async fn only_the_leader_writes_and_a_released_lease_hands_over() {
    let harness = Harness::prepare(Mode::Direct, |_| {}).await;
    let a = Replica::start(&harness, "replica-a");
    let b = Replica::start(&harness, "replica-b");
    let leader_identity = wait_for_holder(&harness, None).await;
    let (leader, follower) = if leader_identity == a.identity {
        (a, b)
    } else {
        (b, a)
    };

    let pipelines = harness.api::<Pipeline>();
    harness.create::<Pipeline>(&pipeline("first")).await;
    let first = wait_for_state(&pipelines, "first", Succeeded, |p: &Pipeline| p.status.as_ref()).await;
    let instances = event_instances(&harness, "first").await;
    assert!(!instances.is_empty(), "the leader recorded Events");
    assert!(
        instances.iter().all(|i| *i == leader.identity),
        "every Event comes from the leader {}: {instances:?}",
        leader.identity
    );
    assert!(leader.reconciles() > 0, "the leader reconciled");
    assert_eq!(follower.reconciles(), 0, "the follower reconciled nothing");
    assert_eq!(holder(&harness).await.as_deref(), Some(leader.identity.as_str()));

    // Graceful shutdown of the leader releases the Lease; the follower takes over.
    let leader_identity = leader.identity.clone();
    leader.stop().await;
    let new_holder = wait_for_holder(&harness, Some(&follower.identity)).await;
    assert_ne!(new_holder, leader_identity);

    // The new leader first looks at the first Pipeline (the only object), which is Succeeded: it writes nothing.
    kfp_testenv::wait_for(
        "the new leader to reconcile the first Pipeline",
        support::WAIT,
        || async {
            let text = follower.context.metrics.encode();
            Ok::<_, String>((support::reconciliations(&text, "pipeline") >= 1).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let first_now = pipelines.get("first").await.unwrap();
    assert_eq!(
        first_now.metadata.resource_version, first.metadata.resource_version,
        "the first Pipeline was not written again"
    );

    harness.create::<Pipeline>(&pipeline("second")).await;
    wait_for_state(&pipelines, "second", Succeeded, |p: &Pipeline| p.status.as_ref()).await;
    let instances = event_instances(&harness, "second").await;
    assert!(!instances.is_empty(), "the new leader recorded Events");
    assert!(
        instances.iter().all(|i| *i == follower.identity),
        "every Event on the second Pipeline comes from the new leader {}: {instances:?}",
        follower.identity
    );
    assert!(
        event_instances(&harness, "first")
            .await
            .iter()
            .all(|i| *i == leader_identity),
        "no new Events on the first Pipeline"
    );
    follower.stop().await;
    assert_eq!(
        holder(&harness).await,
        None,
        "the last replica released the Lease"
    );
}
