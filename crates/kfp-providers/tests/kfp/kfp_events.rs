//! The Kubeflow Pipelines event source against a real API server (kfp-testenv, Argo CRDs installed) and the
//! in-process fake v2beta1 API holding the runs.

use std::time::Duration;

use kfp_core::event::{ComponentArtifactInstance, RunCompletionStatus};
use kfp_core::provider::{DeliveryOutcome, EventDelivery, EventSource, Provider};
use kfp_core::values::{Artifact, NamespacedName, OutputArtifact};
use kfp_providers::conformance::ConformanceFixtures;
use kfp_providers::kfp::events::{EVENTS_PUBLISHED_LABEL, KfpEventSource, workflow_resource};
use kfp_providers::kfp::fake::FakeKfp;
use kfp_providers::kfp::{KfpConfig, KfpProvider};
use kfp_testenv::{TestEnv, TestNamespace, wait_for};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a source must stay quiet to count as "yields nothing" (after everything it could see was listed).
const QUIET: Duration = Duration::from_secs(2);

struct Setup {
    fake: FakeKfp,
    _namespace: TestNamespace,
    provider: KfpProvider,
    fixtures: ConformanceFixtures,
    workflows: Api<DynamicObject>,
    client: kube::Client,
    config: KfpConfig,
}

impl Setup {
    async fn new() -> Self {
        let env = TestEnv::shared().await.unwrap();
        env.install_argo_crds().await.unwrap();
        let namespace = env.namespace().await.unwrap();
        let client = env.client().await.unwrap();
        let fake = FakeKfp::start().await.unwrap();
        let mut config = KfpConfig::new(NamespacedName::new("kfp-operator-system", "kfp"));
        config.rest_url = fake.url().to_string();
        config.request_timeout = Duration::from_secs(5);
        config.kfp_namespace = namespace.name().to_string();
        let provider = KfpProvider::new(config.clone()).unwrap();
        let mut fixtures = ConformanceFixtures::default();
        // The kit's pipeline declares no inputs, and KFP (and the fake) refuse undeclared parameters.
        fixtures.run.parameters.clear();
        provider.create_pipeline(&fixtures.pipeline).await.unwrap();
        provider.create_experiment(&fixtures.experiment).await.unwrap();
        let workflows = Api::namespaced_with(client.clone(), namespace.name(), &workflow_resource());
        Self {
            fake,
            _namespace: namespace,
            provider,
            fixtures,
            workflows,
            client,
            config,
        }
    }

    /// A run in the fake, as the operator would create it.
    async fn run(&self) -> String {
        self.provider.create_run(&self.fixtures.run).await.unwrap()
    }

    fn source(&self) -> KfpEventSource {
        KfpEventSource::new(self.config.clone(), self.client.clone()).unwrap()
    }

    async fn workflow(&self, name: &str, run_id: &str, phase: &str, published: bool) {
        let mut labels = json!({"pipeline/runid": run_id, "workflows.argoproj.io/phase": phase});
        if published {
            labels[EVENTS_PUBLISHED_LABEL] = json!("true");
        }
        let workflow: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": name, "labels": labels},
            "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "busybox"}}]},
            "status": {"phase": phase}
        }))
        .unwrap();
        self.workflows
            .create(&PostParams::default(), &workflow)
            .await
            .unwrap();
    }

    async fn set_phase(&self, name: &str, phase: &str) {
        let patch = json!({"metadata": {"labels": {"workflows.argoproj.io/phase": phase}}});
        self.workflows
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    async fn published_label(&self, name: &str) -> Option<String> {
        let workflow = self.workflows.get(name).await.unwrap();
        workflow
            .metadata
            .labels
            .unwrap_or_default()
            .get(EVENTS_PUBLISHED_LABEL)
            .cloned()
    }
}

async fn next(source: &mut KfpEventSource) -> EventDelivery {
    tokio::time::timeout(EVENT_TIMEOUT, source.next_event())
        .await
        .expect("no event in time")
        .expect("the source failed")
        .expect("the source ended")
}

async fn assert_quiet(source: &mut KfpEventSource) {
    if let Ok(result) = tokio::time::timeout(QUIET, source.next_event()).await {
        panic!("expected no event, got {result:?}");
    }
}

#[tokio::test]
async fn a_succeeded_workflow_yields_one_event_and_delivered_labels_it() {
    let setup = Setup::new().await;
    let run_id = setup.run().await;
    setup.workflow("wf-succeeded", &run_id, "Succeeded", false).await;
    let mut source = setup.source();

    let delivery = next(&mut source).await;
    let run = &setup.fixtures.run;
    let event = &delivery.event;
    assert_eq!(event.status, RunCompletionStatus::Succeeded);
    assert_eq!(event.run_id, run_id);
    assert_eq!(event.run_name.as_ref(), Some(&run.name));
    assert_eq!(event.pipeline_name, run.pipeline_name);
    assert_eq!(
        event.run_configuration_name.as_ref(),
        Some(&run.run_configuration_name)
    );
    assert_eq!(event.provider, NamespacedName::new("kfp-operator-system", "kfp"));
    assert!(event.run_start_time.is_some() && event.run_end_time.is_some());
    assert!(event.pipeline_components.is_empty());
    assert_eq!(delivery.receipt.0, "wf-succeeded");

    source
        .settle(delivery.receipt, DeliveryOutcome::Delivered)
        .await
        .unwrap();
    assert_eq!(
        setup.published_label("wf-succeeded").await.as_deref(),
        Some("true")
    );

    // Not yielded again: the next event is a later workflow's, by this source and by a fresh one.
    let failed_run = setup.run().await;
    setup.workflow("wf-later", &failed_run, "Error", false).await;
    let later = next(&mut source).await;
    assert_eq!(later.receipt.0, "wf-later");
    assert_eq!(later.event.status, RunCompletionStatus::Failed);
    let mut fresh = setup.source();
    assert_eq!(next(&mut fresh).await.receipt.0, "wf-later");
    assert_quiet(&mut fresh).await;
}

#[tokio::test]
async fn a_failed_settle_redelivers_and_leaves_the_workflow_unlabelled() {
    let setup = Setup::new().await;
    let run_id = setup.run().await;
    setup.workflow("wf-failed", &run_id, "Failed", false).await;
    let mut source = setup.source();

    let first = next(&mut source).await;
    assert_eq!(first.event.status, RunCompletionStatus::Failed);
    source
        .settle(first.receipt.clone(), DeliveryOutcome::Failed)
        .await
        .unwrap();
    assert_eq!(setup.published_label("wf-failed").await, None);

    let again = next(&mut source).await;
    assert_eq!(again.receipt, first.receipt);
    // The same event, except the end time: the fake's run has no finished_at, so it is "now" each time.
    let without_end = |d: &EventDelivery| {
        let mut event = d.event.clone();
        event.run_end_time = None;
        event
    };
    assert_eq!(without_end(&again), without_end(&first));

    // Rejected counts as settled: labelled, not yielded again.
    source
        .settle(again.receipt, DeliveryOutcome::Rejected)
        .await
        .unwrap();
    wait_for("the workflow to be labelled published", EVENT_TIMEOUT, || async {
        Ok::<_, kube::Error>(
            (setup.published_label("wf-failed").await.as_deref() == Some("true")).then_some(()),
        )
    })
    .await
    .unwrap();
    assert_quiet(&mut source).await;
}

#[tokio::test]
async fn running_and_published_workflows_yield_nothing_until_finished() {
    let setup = Setup::new().await;
    let running_run = setup.run().await;
    let published_run = setup.run().await;
    setup.workflow("wf-running", &running_run, "Running", false).await;
    setup
        .workflow("wf-published", &published_run, "Succeeded", true)
        .await;
    let mut source = setup.source();
    assert_quiet(&mut source).await;

    // The running workflow finishes: now it is yielded.
    setup.set_phase("wf-running", "Succeeded").await;
    let delivery = next(&mut source).await;
    assert_eq!(delivery.receipt.0, "wf-running");
    assert_eq!(delivery.event.run_id, running_run);
    assert_eq!(delivery.event.status, RunCompletionStatus::Succeeded);
    source
        .settle(delivery.receipt, DeliveryOutcome::Delivered)
        .await
        .unwrap();
    assert_quiet(&mut source).await;
}

#[tokio::test]
async fn kfp_errors_and_a_cancelled_read_do_not_lose_the_workflow() {
    let setup = Setup::new().await;
    let run_id = setup.run().await;
    setup.workflow("wf-retry", &run_id, "Succeeded", false).await;
    let mut source = setup.source();

    // GetRun fails: the error is reported, and the next call reads the workflow again.
    setup.fake.fail_next(1, 503);
    let err = tokio::time::timeout(EVENT_TIMEOUT, source.next_event())
        .await
        .expect("no answer in time")
        .expect_err("a 503 from KFP is an error");
    assert!(!err.is_permanent(), "{err:?}");
    let delivery = next(&mut source).await;
    assert_eq!(delivery.receipt.0, "wf-retry");
    source
        .settle(delivery.receipt, DeliveryOutcome::Failed)
        .await
        .unwrap();

    // GetRun hangs and the caller gives up (drops the call) while the run is being read.
    setup.fake.clear_requests();
    setup.fake.hang_next(1);
    let run_path = format!("/apis/v2beta1/runs/{run_id}");
    {
        let pending = source.next_event();
        tokio::pin!(pending);
        tokio::select! {
            result = &mut pending => panic!("expected the read to hang, got {result:?}"),
            waited = wait_for("the source to ask KFP for the run", EVENT_TIMEOUT, || async {
                let asked = setup.fake.requests().iter().any(|r| r.method == "GET" && r.path == run_path);
                Ok::<_, String>(asked.then_some(()))
            }) => waited.unwrap(),
        }
    }
    let delivery = next(&mut source).await;
    assert_eq!(delivery.receipt.0, "wf-retry");
    assert_eq!(delivery.event.run_id, run_id);
}

#[tokio::test]
async fn an_update_seen_before_the_label_does_not_redeliver() {
    let setup = Setup::new().await;
    let run_id = setup.run().await;
    setup.workflow("wf-busy", &run_id, "Succeeded", false).await;
    let mut source = setup.source();
    let delivery = next(&mut source).await;

    // Argo keeps writing the workflow while the event is delivered: the watch queues that update unlabelled.
    let patch = json!({"metadata": {"annotations": {"example.com/touched": "yes"}}});
    setup
        .workflows
        .patch("wf-busy", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    source
        .settle(delivery.receipt, DeliveryOutcome::Delivered)
        .await
        .unwrap();
    assert_eq!(setup.published_label("wf-busy").await.as_deref(), Some("true"));
    assert_quiet(&mut source).await;
}

#[tokio::test]
async fn a_succeeded_run_carries_its_output_artifacts_and_a_failed_artifact_read_waits() {
    let setup = Setup::new().await;
    let run_id = setup.run().await;
    let fake = &setup.fake;
    let model = fake.add_artifact("model", "gs://bucket/trainer/model", json!({"pushed": 1}));
    let other = fake.add_artifact("model", "gs://bucket/trainer/model-2", json!({"pushed": 0}));
    fake.add_task_detail(&run_id, "Trainer", &[("model", &[model, other])]);
    setup.workflow("wf-artifacts", &run_id, "Succeeded", false).await;
    let mut source = setup.source();

    // GetArtifact fails: no event without its artifacts; the workflow is read again on the next call.
    fake.fail_artifact_reads(1, 503);
    let err = tokio::time::timeout(EVENT_TIMEOUT, source.next_event())
        .await
        .expect("no answer in time")
        .expect_err("a failed artifact read is an error");
    assert!(!err.is_permanent(), "{err:?}");

    let delivery = next(&mut source).await;
    assert_eq!(delivery.receipt.0, "wf-artifacts");
    let event = &delivery.event;
    assert_eq!(event.pipeline_components.len(), 1);
    let trainer = &event.pipeline_components[0];
    assert_eq!(trainer.name, "Trainer");
    assert_eq!(trainer.component_artifacts.len(), 1);
    assert_eq!(trainer.component_artifacts[0].name, "model");
    let pushed = json!({"pushed": 1}).as_object().cloned().unwrap();
    assert_eq!(
        trainer.component_artifacts[0].artifacts[0],
        ComponentArtifactInstance::new("gs://bucket/trainer/model", pushed)
    );

    // The operator's artifact selection resolves an OutputArtifact path with a filter.
    let outputs = [
        OutputArtifact {
            name: "model".into(),
            path: "Trainer:model:0[pushed == 1]".parse().unwrap(),
        },
        OutputArtifact {
            name: "second".into(),
            path: "Trainer:model:1[pushed == 1]".parse().unwrap(),
        },
    ];
    assert_eq!(
        event.to_event(&outputs).artifacts,
        vec![Artifact {
            name: "model".into(),
            location: "gs://bucket/trainer/model".into()
        }]
    );
    source
        .settle(delivery.receipt, DeliveryOutcome::Delivered)
        .await
        .unwrap();
    assert_eq!(
        setup.published_label("wf-artifacts").await.as_deref(),
        Some("true")
    );
}
