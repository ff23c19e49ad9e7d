//! The Argo executor (docs/executors.md) on a real kube-apiserver with the Argo Workflows v3.7.9 CRDs (`kfp-testenv`).
//!
//! No Argo controller runs: the tests play it, as the Go operator's "decoupled" tests did, by writing
//! `status.phase` and the root node's output parameters onto the Workflow. Argo's CRD has no status subresource,
//! so an ordinary patch sets the status (checked by [`the_status_of_a_workflow_is_written_with_an_ordinary_patch`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kfp_core::definitions::{
    ExperimentDefinition, ProviderOutput, RunDefinition, RunScheduleDefinition, ScheduleDefinition,
    TriggerIndicator,
};
use kfp_core::executor::{
    Action, Executor, ExecutorError, FailureClass, Operation, OperationDefinition, OperationOutcome,
    OutcomeState, ResourceKind, ResourceRef,
};
use kfp_core::values::NamespacedName;
use kfp_operator::executor::argo::{
    ArgoExecutor, ArgoExecutorConfig, OPERATION_LABEL, TEMPLATE_NAMES, owner_of, template_name,
    workflow_api_resource, workflow_for,
};
use kfp_operator::telemetry::Metrics;
use kfp_testenv::{ApplyOptions, TestEnv};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const OWNER_KIND: &str = "pipelines.kubeflow.org/owner.kind";
const OWNER_NAME: &str = "pipelines.kubeflow.org/owner.name";
const OWNER_NAMESPACE: &str = "pipelines.kubeflow.org/owner.namespace";
const PROCESSED: &str = "pipelines.kubeflow.org/processed";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn templates_file() -> PathBuf {
    repo_root().join("config/argo/workflow-templates.yaml")
}

/// A test's world: an admin client, a provider namespace (where workflows go) and a resource namespace.
struct World {
    client: Client,
    provider: NamespacedName,
    resources: String,
    metrics: Arc<Metrics>,
    executor: ArgoExecutor,
}

async fn world() -> World {
    world_with(ArgoExecutorConfig::default()).await
}

async fn world_with(config: ArgoExecutorConfig) -> World {
    let env = TestEnv::shared().await.unwrap_or_else(|e| panic!("{e}"));
    env.install_argo_crds().await.unwrap_or_else(|e| panic!("{e}"));
    let provider_ns = env.namespace().await.unwrap_or_else(|e| panic!("{e}"));
    let resource_ns = env.namespace().await.unwrap_or_else(|e| panic!("{e}"));
    let client = env.client().await.unwrap_or_else(|e| panic!("{e}"));
    let metrics = Metrics::shared();
    World {
        executor: ArgoExecutor::new(client.clone(), config, metrics.clone()),
        client,
        provider: NamespacedName::new(provider_ns.name(), "kfp"),
        resources: resource_ns.name().to_string(),
        metrics,
    }
}

impl World {
    fn resource(&self, kind: ResourceKind, name: &str) -> ResourceRef {
        ResourceRef::new(kind, self.resources.as_str(), name)
    }

    fn operation(&self, resource: &ResourceRef, action: Action) -> Operation {
        Operation {
            resource: resource.clone(),
            provider: self.provider.clone(),
            action,
            version: String::new(),
            created: None,
        }
    }

    fn workflows(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.provider.namespace,
            &workflow_api_resource(),
        )
    }

    /// The workflows of `resource` in the provider namespace (whatever their `processed` label).
    async fn workflows_of(&self, resource: &ResourceRef) -> Vec<DynamicObject> {
        let selector = format!(
            "{OWNER_KIND}={},{OWNER_NAME}={},{OWNER_NAMESPACE}={}",
            resource.kind, resource.name, resource.namespace
        );
        self.workflows()
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items
    }

    /// Submits one operation and returns the one workflow it created.
    async fn submit(&self, resource: &ResourceRef, action: Action) -> DynamicObject {
        let before: BTreeSet<String> = self
            .workflows_of(resource)
            .await
            .iter()
            .map(ResourceExt::name_any)
            .collect();
        self.executor
            .submit(self.operation(resource, action))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut new: Vec<DynamicObject> = self
            .workflows_of(resource)
            .await
            .into_iter()
            .filter(|w| !before.contains(&w.name_any()))
            .collect();
        assert_eq!(new.len(), 1, "one new workflow for {resource}");
        new.remove(0)
    }

    /// Plays the Argo controller: sets the workflow's phase, message and root node outputs.
    async fn finish(&self, workflow: &DynamicObject, phase: &str, message: &str, outputs: &[(&str, &str)]) {
        let name = workflow.name_any();
        let parameters: Vec<Value> = outputs
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        let mut status = json!({
            "phase": phase,
            "nodes": {
                name.clone(): {
                    "id": name, "name": name, "displayName": name, "type": "Steps", "phase": phase,
                    "outputs": {"parameters": parameters},
                }
            }
        });
        if !message.is_empty() {
            status["message"] = json!(message);
        }
        self.workflows()
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
            .unwrap_or_else(|e| panic!("setting the status of {name}: {e}"));
    }

    async fn outcomes(&self, resource: &ResourceRef) -> Vec<OperationOutcome> {
        self.executor
            .outcomes(resource)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The only outcome of `resource`.
    async fn outcome(&self, resource: &ResourceRef) -> OperationOutcome {
        let mut outcomes = self.outcomes(resource).await;
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        outcomes.remove(0)
    }
}

fn key(workflow: &DynamicObject) -> String {
    format!("{}/{}", workflow.namespace().unwrap(), workflow.name_any())
}

fn arguments(workflow: &DynamicObject) -> BTreeMap<String, String> {
    workflow.data["spec"]["arguments"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn argument_names(workflow: &DynamicObject) -> Vec<String> {
    workflow.data["spec"]["arguments"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

fn pipeline_definition() -> OperationDefinition {
    OperationDefinition::Pipeline {
        definition: json!({
            "name": "team/penguin",
            "version": "v1-abc123",
            "image": "registry.example/penguin:v1",
            "env": [{"name": "A", "value": "1"}],
            "framework": {"name": "tfx", "parameters": {"components": "p.create_components"}},
        }),
        framework_image: "registry.example/tfx-compiler:1.0".to_string(),
    }
}

const PIPELINE_JSON: &str = r#"{"env":[{"name":"A","value":"1"}],"framework":{"name":"tfx","parameters":{"components":"p.create_components"}},"image":"registry.example/penguin:v1","name":"team/penguin","version":"v1-abc123"}"#;

fn run_definition() -> OperationDefinition {
    OperationDefinition::Run(RunDefinition {
        name: NamespacedName::new("team", "run-1"),
        version: "a1b2c3".to_string(),
        pipeline_name: NamespacedName::new("team", "penguin"),
        pipeline_version: "v1-abc123".to_string(),
        run_configuration_name: NamespacedName::new("team", "rc"),
        experiment_name: NamespacedName::new("team", "exp"),
        parameters: BTreeMap::from([("epochs".to_string(), "3".to_string())]),
        artifacts: Vec::new(),
        trigger_indicator: TriggerIndicator {
            type_: "onChangeRunSpec".to_string(),
            source: "rc".to_string(),
            source_namespace: "team".to_string(),
        },
        // Not set: the body stays byte for byte what a Go provider service reads (RUN_JSON).
        service_account: String::new(),
        labels: BTreeMap::new(),
    })
}

const RUN_JSON: &str = r#"{"experimentName":"team/exp","name":"team/run-1","parameters":{"epochs":"3"},"pipelineName":"team/penguin","pipelineVersion":"v1-abc123","runConfigurationName":"team/rc","triggerIndicator":{"source":"rc","sourceNamespace":"team","type":"onChangeRunSpec"},"version":"a1b2c3"}"#;

fn run_schedule_definition() -> OperationDefinition {
    OperationDefinition::RunSchedule(RunScheduleDefinition {
        name: NamespacedName::new("team", "nightly"),
        version: "d4e5f6".to_string(),
        pipeline_name: NamespacedName::new("team", "penguin"),
        pipeline_version: String::new(),
        run_configuration_name: NamespacedName::default(),
        experiment_name: NamespacedName::default(),
        parameters: BTreeMap::new(),
        artifacts: Vec::new(),
        trigger_indicator: TriggerIndicator::default(),
        schedule: ScheduleDefinition {
            cron_expression: "0 0 * * *".to_string(),
            start_time: None,
            end_time: None,
        },
        service_account: String::new(),
        labels: BTreeMap::new(),
    })
}

const RUN_SCHEDULE_JSON: &str = r#"{"experimentName":"","name":"team/nightly","pipelineName":"team/penguin","pipelineVersion":"","runConfigurationName":"","schedule":{"cronExpression":"0 0 * * *"},"triggerIndicator":{"source":"","sourceNamespace":"","type":""},"version":"d4e5f6"}"#;

fn experiment_definition() -> OperationDefinition {
    OperationDefinition::Experiment(ExperimentDefinition {
        name: NamespacedName::new("team", "exp"),
        version: "0a1b2c".to_string(),
        description: "An experiment".to_string(),
    })
}

const EXPERIMENT_JSON: &str = r#"{"description":"An experiment","name":"team/exp","version":"0a1b2c"}"#;

/// A definition of each kind and its `resource-definition` argument (`to_json()`: keys sorted).
fn definition(kind: ResourceKind) -> (OperationDefinition, &'static str) {
    match kind {
        ResourceKind::Pipeline => (pipeline_definition(), PIPELINE_JSON),
        ResourceKind::Run => (run_definition(), RUN_JSON),
        ResourceKind::RunSchedule => (run_schedule_definition(), RUN_SCHEDULE_JSON),
        ResourceKind::Experiment => (experiment_definition(), EXPERIMENT_JSON),
    }
}

#[tokio::test]
async fn submit_creates_a_workflow_with_the_spec_template_labels_and_arguments() {
    let w = world().await;
    let url = format!("http://provider-kfp.{}:8080", w.provider.namespace);
    let provider_name = w.provider.to_string();
    for kind in ResourceKind::ALL {
        let (definition, json) = definition(kind);
        let compiled = kind == ResourceKind::Pipeline;
        let cases = [
            (
                Action::Create {
                    definition: definition.clone(),
                },
                if compiled {
                    "create-compiled"
                } else {
                    "create-simple"
                },
            ),
            (
                Action::Update {
                    id: "id/with slash".to_string(),
                    definition: definition.clone(),
                },
                if compiled {
                    "update-compiled"
                } else {
                    "update-simple"
                },
            ),
            (
                Action::Delete {
                    id: "id/with slash".to_string(),
                },
                "delete",
            ),
        ];
        for (action, template) in cases {
            let action_name = action.name();
            let resource = w.resource(kind, &format!("{kind}-{action_name}"));
            let workflow = w.submit(&resource, action.clone()).await;
            let what = format!("{action_name} {kind}");

            assert_eq!(template_name(kind, &action), template, "{what}");
            assert_eq!(
                workflow.data["spec"]["workflowTemplateRef"],
                json!({"name": template}),
                "{what}"
            );
            assert_eq!(
                workflow.metadata.generate_name.as_deref(),
                Some(format!("{kind}-{kind}-{action_name}-").as_str()),
                "{what}"
            );
            assert!(
                workflow
                    .name_any()
                    .starts_with(&format!("{kind}-{kind}-{action_name}-")),
                "{what}"
            );
            assert_eq!(
                workflow.namespace().as_deref(),
                Some(w.provider.namespace.as_str()),
                "workflows go to the provider's namespace: {what}"
            );
            assert_eq!(
                workflow.labels(),
                &BTreeMap::from([
                    (OWNER_KIND.to_string(), kind.as_str().to_string()),
                    (OWNER_NAME.to_string(), resource.name.clone()),
                    (OWNER_NAMESPACE.to_string(), w.resources.clone()),
                    (OPERATION_LABEL.to_string(), action_name.to_string()),
                ]),
                "{what}"
            );

            let mut expected = vec![("resource-kind", kind.as_str())];
            if !matches!(action, Action::Delete { .. }) {
                expected.push(("resource-definition", json));
            }
            if !matches!(action, Action::Create { .. }) {
                expected.push(("resource-id", "id/with slash"));
            }
            expected.push(("provider-name", &provider_name));
            expected.push(("provider-service-url", &url));
            if compiled && !matches!(action, Action::Delete { .. }) {
                expected.push(("pipeline-framework-image", "registry.example/tfx-compiler:1.0"));
            }
            assert_eq!(
                argument_names(&workflow),
                expected.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(),
                "{what}"
            );
            assert_eq!(
                arguments(&workflow),
                expected
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
                "{what}"
            );
            assert_eq!(owner_of(&workflow), Some(resource.clone()), "{what}");
        }
    }
    let text = w.metrics.encode();
    for kind in ResourceKind::ALL {
        for action in ["create", "update", "delete"] {
            let line = format!(
                r#"kfp_operator_executor_operations_total{{kind="{kind}",action="{action}",result="submitted"}} 1"#
            );
            assert!(text.contains(&line), "{line} in\n{text}");
        }
    }
}

#[tokio::test]
async fn submit_uses_the_configured_template_prefix_and_service_port() {
    let w = world_with(ArgoExecutorConfig {
        template_prefix: "kfp-".to_string(),
        service_port: 9090,
    })
    .await;
    let resource = w.resource(ResourceKind::Experiment, "exp");
    let workflow = w
        .submit(
            &resource,
            Action::Create {
                definition: experiment_definition(),
            },
        )
        .await;
    assert_eq!(
        workflow.data["spec"]["workflowTemplateRef"]["name"],
        "kfp-create-simple"
    );
    assert_eq!(
        arguments(&workflow)["provider-service-url"],
        format!("http://provider-kfp.{}:9090", w.provider.namespace)
    );
}

#[tokio::test]
async fn submit_reports_what_went_wrong() {
    let w = world().await;
    let resource = w.resource(ResourceKind::Run, "run");
    let create = Action::Create {
        definition: run_definition(),
    };

    let missing_namespace = Operation {
        provider: NamespacedName::new("no-such-namespace", "kfp"),
        ..w.operation(&resource, create.clone())
    };
    let error = w.executor.submit(missing_namespace).await.unwrap_err();
    let ExecutorError::Submit {
        resource: r,
        action,
        message,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!((r, *action), (&resource, "create"));
    assert!(
        message.starts_with("the Workflow could not be created in namespace no-such-namespace: "),
        "{message}"
    );
    assert!(
        error.to_string().starts_with(&format!(
            "could not submit the create operation for run {}/run: ",
            w.resources
        )),
        "{error}"
    );

    let long = w.resource(ResourceKind::Run, &"r".repeat(64));
    let error = w
        .executor
        .submit(w.operation(&long, create.clone()))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("is longer than 63 characters"),
        "{error}"
    );
    assert_eq!(w.outcomes(&long).await, Vec::new());

    let mismatched = w.operation(
        &resource,
        Action::Create {
            definition: experiment_definition(),
        },
    );
    let error = w.executor.submit(mismatched).await.unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("the definition is of kind experiment, but the resource is of kind run"),
        "{error}"
    );
    assert!(w.workflows_of(&resource).await.is_empty());
}

#[tokio::test]
async fn the_status_of_a_workflow_is_written_with_an_ordinary_patch() {
    let w = world().await;
    let resource = w.resource(ResourceKind::Experiment, "exp");
    let workflow = w
        .submit(
            &resource,
            Action::Create {
                definition: experiment_definition(),
            },
        )
        .await;
    w.finish(&workflow, "Running", "", &[]).await;
    let stored = w.workflows().get(&workflow.name_any()).await.unwrap();
    assert_eq!(stored.data["status"]["phase"], "Running");
}

/// One workflow per case, each for its own resource; returns the outcome the executor reads.
async fn outcome_after(
    w: &World,
    name: &str,
    action: Action,
    phase: &str,
    message: &str,
    outputs: &[(&str, &str)],
) -> (OperationOutcome, DynamicObject) {
    let resource = w.resource(ResourceKind::RunSchedule, name);
    let workflow = w.submit(&resource, action).await;
    if !phase.is_empty() {
        w.finish(&workflow, phase, message, outputs).await;
    }
    let outcome = w.outcome(&resource).await;
    assert_eq!(outcome.key, key(&workflow), "{name}");
    assert_eq!(
        Some(&outcome.created),
        workflow.metadata.creation_timestamp.as_ref(),
        "{name}"
    );
    (outcome, workflow)
}

/// (resource name, action, phase set by the fake Argo, its message, root node outputs, expected outcome state)
type PhaseCase = (
    &'static str,
    Action,
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    OutcomeState,
);

#[tokio::test]
async fn outcomes_follow_the_workflow_phase_and_the_provider_answer() {
    let w = world().await;
    let create = || Action::Create {
        definition: run_schedule_definition(),
    };
    let delete = || Action::Delete {
        id: "rs-1".to_string(),
    };
    let succeeded = |id: &str, error: &str| OutcomeState::Succeeded {
        output: Ok(ProviderOutput {
            id: id.to_string(),
            provider_error: error.to_string(),
        }),
    };
    let failed = |class, message: &str| OutcomeState::Failed {
        class,
        message: message.to_string(),
    };
    let cases: Vec<PhaseCase> = vec![
        ("not-started", create(), "", "", vec![], OutcomeState::InProgress),
        (
            "pending",
            create(),
            "Pending",
            "",
            vec![],
            OutcomeState::InProgress,
        ),
        (
            "running",
            create(),
            "Running",
            "",
            vec![],
            OutcomeState::InProgress,
        ),
        (
            "with-id",
            create(),
            "Succeeded",
            "",
            vec![
                ("provider-output", r#"{"id":"rs-1"}"#),
                ("provider-status", "201"),
            ],
            succeeded("rs-1", ""),
        ),
        (
            "deleted",
            delete(),
            "Succeeded",
            "",
            vec![("provider-output", "{}"), ("provider-status", "200")],
            succeeded("", ""),
        ),
        (
            // A 5xx is worth a retry: the planner treats a providerError as transient.
            "server-error",
            create(),
            "Succeeded",
            "",
            vec![
                ("provider-output", r#"{"providerError":"backend unavailable"}"#),
                ("provider-status", "500"),
            ],
            succeeded("", "backend unavailable"),
        ),
        (
            "unreachable",
            create(),
            "Succeeded",
            "",
            vec![
                ("provider-output", r#"{"providerError":"could not be reached"}"#),
                ("provider-status", "000"),
            ],
            succeeded("", "could not be reached"),
        ),
        (
            // The provider refused the request as written: wait for a spec change (docs/executors.md).
            "bad-request",
            create(),
            "Succeeded",
            "",
            vec![
                ("provider-output", r#"{"providerError":"cron is invalid"}"#),
                ("provider-status", "400"),
            ],
            failed(FailureClass::Permanent, "cron is invalid"),
        ),
        (
            "unprocessable",
            create(),
            "Succeeded",
            "",
            vec![
                ("provider-output", r#"{"providerError":"no such pipeline"}"#),
                ("provider-status", "422"),
            ],
            failed(FailureClass::Permanent, "no such pipeline"),
        ),
        (
            // 403 is retried (a RoleBinding may come), as the direct executor and the http provider class it
            // (kfp_core::reconcile::failure, one table for both executors).
            "forbidden",
            create(),
            "Succeeded",
            "",
            vec![
                ("provider-output", r#"{"providerError":"forbidden"}"#),
                ("provider-status", "403"),
            ],
            succeeded("", "forbidden"),
        ),
        (
            // The provider does not implement it: waiting for a spec change, as under the direct executor.
            "unimplemented",
            create(),
            "Succeeded",
            "",
            vec![
                ("provider-output", r#"{"providerError":"no experiments here"}"#),
                ("provider-status", "501"),
            ],
            failed(FailureClass::Permanent, "no experiments here"),
        ),
        (
            // NotFound is retried for a create or update (ProviderError::NotFound)...
            "not-found",
            create(),
            "Succeeded",
            "",
            vec![
                ("provider-output", r#"{"providerError":"pipeline not found"}"#),
                ("provider-status", "404"),
            ],
            succeeded("", "pipeline not found"),
        ),
        (
            // ...and means there is nothing left to delete.
            "already-deleted",
            delete(),
            "Succeeded",
            "",
            vec![
                (
                    "provider-output",
                    r#"{"id":"rs-1","providerError":"schedule not found"}"#,
                ),
                ("provider-status", "404"),
            ],
            succeeded("", ""),
        ),
        (
            // The Go chart's templates have no provider-status: keep the Go behaviour.
            "go-templates",
            create(),
            "Succeeded",
            "",
            vec![("provider-output", r#"{"providerError":"cron is invalid"}"#)],
            succeeded("", "cron is invalid"),
        ),
        (
            "failed",
            create(),
            "Failed",
            "child 'x' failed",
            vec![],
            failed(FailureClass::Permanent, "child 'x' failed"),
        ),
        (
            "timed-out",
            create(),
            "Failed",
            "Step exceeded its deadline",
            vec![],
            failed(FailureClass::Transient, "Step exceeded its deadline"),
        ),
        (
            "error",
            create(),
            "Error",
            "pod deleted",
            vec![],
            failed(FailureClass::Transient, "pod deleted"),
        ),
        (
            "error-without-message",
            create(),
            "Error",
            "",
            vec![],
            failed(FailureClass::Transient, ""),
        ),
    ];
    for (name, action, phase, message, outputs, expected) in cases {
        let (outcome, _) = outcome_after(&w, name, action, phase, message, &outputs).await;
        assert_eq!(outcome.state, expected, "{name}");
    }

    for (name, outputs) in [
        ("no-output", vec![("provider-status", "200")]),
        ("not-json", vec![("provider-output", "<html>bad gateway</html>")]),
    ] {
        let (outcome, _) = outcome_after(&w, name, create(), "Succeeded", "", &outputs).await;
        let OutcomeState::Succeeded { output: Err(why) } = &outcome.state else {
            panic!("{name}: {outcome:?}");
        };
        assert!(
            why.starts_with("could not retrieve workflow output: "),
            "{name}: {why}"
        );
    }
}

#[tokio::test]
async fn outcomes_return_every_unprocessed_workflow_of_the_owner() {
    let w = world().await;
    let resource = w.resource(ResourceKind::Pipeline, "penguin");
    let first = w
        .submit(
            &resource,
            Action::Create {
                definition: pipeline_definition(),
            },
        )
        .await;
    let second = w
        .submit(
            &resource,
            Action::Update {
                id: "p-1".to_string(),
                definition: pipeline_definition(),
            },
        )
        .await;
    w.finish(&first, "Failed", "compile failed", &[]).await;
    let keys: BTreeSet<String> = w.outcomes(&resource).await.into_iter().map(|o| o.key).collect();
    assert_eq!(keys, BTreeSet::from([key(&first), key(&second)]));
}

#[tokio::test]
async fn outcomes_leave_out_workflows_of_other_owners() {
    let w = world().await;
    let other = world().await;
    let mine = w.resource(ResourceKind::Run, "shared-name");
    let same_name_other_kind = w.resource(ResourceKind::RunSchedule, "shared-name");
    let other_name = w.resource(ResourceKind::Run, "other-name");
    // Same kind and name, other resource namespace, and a provider in yet another namespace: workflows are found
    // across all namespaces, by their owner labels only.
    let same_name_other_namespace = other.resource(ResourceKind::Run, "shared-name");
    let delete = || Action::Delete { id: "x".to_string() };
    let workflow = w.submit(&mine, delete()).await;
    w.submit(&same_name_other_kind, delete()).await;
    w.submit(&other_name, delete()).await;
    let theirs = other.submit(&same_name_other_namespace, delete()).await;

    let outcomes = w.outcomes(&mine).await;
    assert_eq!(
        outcomes.iter().map(|o| o.key.clone()).collect::<Vec<_>>(),
        vec![key(&workflow)]
    );
    // The executor of `w` finds the other world's workflow too: outcomes do not depend on the provider.
    let outcomes = w.executor.outcomes(&same_name_other_namespace).await.unwrap();
    assert_eq!(
        outcomes.iter().map(|o| o.key.clone()).collect::<Vec<_>>(),
        vec![key(&theirs)]
    );
}

#[tokio::test]
async fn mark_consumed_hides_workflows_with_a_merge_patch_and_counts_each_once() {
    let w = world().await;
    let resource = w.resource(ResourceKind::Experiment, "exp");
    let create = Action::Create {
        definition: experiment_definition(),
    };
    let done = w.submit(&resource, create.clone()).await;
    let refused = w.submit(&resource, create.clone()).await;
    let running = w.submit(&resource, create.clone()).await;
    w.finish(
        &done,
        "Succeeded",
        "",
        &[("provider-output", r#"{"id":"e-1"}"#), ("provider-status", "201")],
    )
    .await;
    w.finish(
        &refused,
        "Succeeded",
        "",
        &[
            ("provider-output", r#"{"providerError":"no"}"#),
            ("provider-status", "400"),
        ],
    )
    .await;
    assert!(done.labels().get(PROCESSED).is_none(), "no label before");
    assert_eq!(w.outcomes(&resource).await.len(), 3);

    let keys = vec![key(&done), key(&refused)];
    w.executor.mark_consumed(&resource, &keys).await.unwrap();

    let remaining: Vec<String> = w.outcomes(&resource).await.into_iter().map(|o| o.key).collect();
    assert_eq!(remaining, vec![key(&running)]);
    let marked = w.workflows().get(&done.name_any()).await.unwrap();
    assert_eq!(marked.labels().get(PROCESSED).map(String::as_str), Some("true"));
    assert_eq!(
        marked.labels().get(OWNER_NAME),
        Some(&"exp".to_string()),
        "a merge patch keeps the other labels"
    );
    assert_eq!(marked.data["status"]["phase"], "Succeeded");

    // Again (a retried reconcile), and with a workflow that is gone: no error, nothing counted twice.
    w.workflows()
        .delete(&refused.name_any(), &Default::default())
        .await
        .unwrap();
    w.executor.mark_consumed(&resource, &keys).await.unwrap();
    w.executor
        .mark_consumed(&resource, &[format!("{}/no-such-workflow", w.provider.namespace)])
        .await
        .unwrap();

    let text = w.metrics.encode();
    for (result, count) in [("submitted", 3), ("succeeded", 1), ("failed", 1)] {
        let line = format!(
            r#"kfp_operator_executor_operations_total{{kind="experiment",action="create",result="{result}"}} {count}"#
        );
        assert!(text.contains(&line), "{line} in\n{text}");
    }

    let error = w
        .executor
        .mark_consumed(&resource, &["not-a-key".to_string()])
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with(r#""not-a-key" is not a workflow key (namespace/name)"#),
        "{error}"
    );
}

#[tokio::test]
async fn owner_of_ignores_workflows_that_are_not_ours() {
    let mut workflow = DynamicObject::new("w", &workflow_api_resource());
    assert_eq!(owner_of(&workflow), None);
    workflow.metadata.labels = Some(BTreeMap::from([
        (OWNER_KIND.to_string(), "Pipeline".to_string()),
        (OWNER_NAME.to_string(), "p".to_string()),
        (OWNER_NAMESPACE.to_string(), "ns".to_string()),
    ]));
    assert_eq!(owner_of(&workflow), None, "kinds are lowercase");
    workflow
        .labels_mut()
        .insert(OWNER_KIND.to_string(), "runschedule".to_string());
    assert_eq!(
        owner_of(&workflow),
        Some(ResourceRef::new(ResourceKind::RunSchedule, "ns", "p"))
    );
    workflow.labels_mut().remove(OWNER_NAMESPACE);
    assert_eq!(owner_of(&workflow), None);
}

/// The templates file: every object by `kind/name`.
fn template_objects() -> BTreeMap<String, Value> {
    kfp_testenv::read_manifests(&[templates_file()])
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o.value["kind"].as_str().unwrap(),
                    o.value["metadata"]["name"].as_str().unwrap()
                ),
                o.value,
            )
        })
        .collect()
}

#[tokio::test]
async fn workflow_templates_apply_into_a_provider_namespace() {
    let env = TestEnv::shared().await.unwrap_or_else(|e| panic!("{e}"));
    env.install_argo_crds().await.unwrap_or_else(|e| panic!("{e}"));
    let ns = env.namespace().await.unwrap_or_else(|e| panic!("{e}"));
    let client = env.client().await.unwrap_or_else(|e| panic!("{e}"));
    let applied =
        kfp_testenv::apply_yaml_file(&client, &templates_file(), &ApplyOptions::in_namespace(ns.name()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    let names: BTreeSet<String> = applied
        .iter()
        .map(|o| {
            assert_eq!(o.namespace().as_deref(), Some(ns.name()));
            format!("{}/{}", o.types.as_ref().unwrap().kind, o.name_any())
        })
        .collect();
    assert_eq!(names, template_objects().keys().cloned().collect());

    // The stored templates kept their content (no field dropped by the CRD's schema).
    let templates: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns.name(),
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "WorkflowTemplate"),
            "workflowtemplates",
        ),
    );
    let delete = templates.get("delete").await.unwrap();
    assert_eq!(
        delete.data["spec"],
        template_objects()["WorkflowTemplate/delete"]["spec"]
    );

    // The ServiceAccount of the workflows may do what the Argo executor needs, in this namespace only.
    let sa = env
        .service_account_client(ns.name(), "kfp-operator-argo")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(sa, ns.name());
    let error = pods.get("no-such-pod").await.unwrap_err();
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 404),
        "get pods is allowed (404, not 403): {error}"
    );
}

#[test]
fn every_template_the_executor_names_exists_and_declares_its_arguments() {
    let objects = template_objects();
    let operations = |kind: ResourceKind| {
        let (definition, _) = definition(kind);
        [
            Action::Create {
                definition: definition.clone(),
            },
            Action::Update {
                id: "x".to_string(),
                definition,
            },
            Action::Delete { id: "x".to_string() },
        ]
    };
    let mut named = BTreeSet::new();
    for kind in ResourceKind::ALL {
        for action in operations(kind) {
            let name = template_name(kind, &action);
            named.insert(name);
            let template = objects
                .get(&format!("WorkflowTemplate/{name}"))
                .unwrap_or_else(|| panic!("{name} is not in {}", templates_file().display()));
            let spec = &template["spec"];
            assert_eq!(spec["entrypoint"], "main", "{name}");
            assert_eq!(spec["serviceAccountName"], "kfp-operator-argo", "{name}");
            assert_eq!(
                spec["securityContext"],
                json!({"runAsNonRoot": true, "runAsUser": 1000, "fsGroup": 1000}),
                "{name}"
            );
            assert_eq!(
                spec["ttlStrategy"],
                json!({"secondsAfterCompletion": 3600}),
                "{name}"
            );

            // Every argument the executor passes is declared; every declared one without a default is passed.
            let declared: BTreeMap<String, bool> = spec["arguments"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["name"].as_str().unwrap().to_string(), p.get("value").is_some()))
                .collect();
            let workflow = workflow_for(
                &ArgoExecutorConfig::default(),
                &Operation {
                    resource: ResourceRef::new(kind, "ns", "n"),
                    provider: NamespacedName::new("p", "kfp"),
                    action: action.clone(),
                    version: String::new(),
                    created: None,
                },
            )
            .unwrap();
            let passed: BTreeSet<String> = argument_names(&workflow).into_iter().collect();
            for argument in &passed {
                assert!(
                    declared.contains_key(argument),
                    "{name} does not declare {argument}"
                );
            }
            for (argument, has_default) in &declared {
                assert!(
                    *has_default || passed.contains(argument),
                    "{name} needs {argument}, which the executor does not pass"
                );
            }

            let main = &spec["templates"][0];
            assert_eq!(main["name"], "main", "{name}");
            let outputs: Vec<&str> = main["outputs"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(outputs, ["provider-output", "provider-status"], "{name}");
            assert_eq!(
                main["steps"].as_array().unwrap().last().unwrap()[0]["name"],
                "provider",
                "{name}: the provider step comes last"
            );
        }
    }
    assert_eq!(named, TEMPLATE_NAMES.into_iter().collect());

    // Every templateRef points at a template of this file.
    for (id, object) in &objects {
        let Some(templates) = object["spec"]["templates"].as_array() else {
            continue;
        };
        for step in templates
            .iter()
            .filter_map(|t| t["steps"].as_array())
            .flatten()
            .flat_map(|group| group.as_array().unwrap())
        {
            let reference = &step["templateRef"];
            let target = format!("WorkflowTemplate/{}", reference["name"].as_str().unwrap());
            let exists = objects.get(&target).is_some_and(|t| {
                t["spec"]["templates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["name"] == reference["template"])
            });
            assert!(exists, "{id} refers to {reference}, which does not exist");
        }
    }
    // The step deadlines (docs/executors.md, "The templates").
    for (id, object) in &objects {
        for template in object["spec"]["templates"].as_array().into_iter().flatten() {
            if template.get("steps").is_some() {
                continue;
            }
            let expected = if template["name"] == "compile" { 1800 } else { 300 };
            assert_eq!(
                template["activeDeadlineSeconds"], expected,
                "{id} {}",
                template["name"]
            );
        }
    }
}

/// Issue 18: with the shared Workflow cache the executor makes no request to read outcomes. Its own create is an
/// outcome at once (before the watch delivers it); a workflow's change wakes its owner only once the cache has it,
/// so the woken reconcile reads the new state; its own mark hides the workflow at once, and the marked workflow
/// leaves the cache.
#[tokio::test]
async fn the_shared_cache_serves_outcomes_never_behind_their_wake_up() {
    use kfp_operator::executor::Completions;
    use kfp_operator::executor::workflows::WorkflowCache;
    let mut w = world().await;
    let completions = Completions::default();
    let mut woken = completions.subscribe();
    let cache = WorkflowCache::start(w.workflows(), completions);
    w.executor = ArgoExecutor::new(w.client.clone(), ArgoExecutorConfig::default(), w.metrics.clone())
        .with_cache(cache.clone());
    let resource = w.resource(ResourceKind::Experiment, "cached");
    cache.ready().await.unwrap();
    w.executor
        .submit(w.operation(
            &resource,
            Action::Create {
                definition: experiment_definition(),
            },
        ))
        .await
        .unwrap();
    // Reads make no request: an executor whose client reaches nothing reads the same outcomes from the cache.
    let unreachable = Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let reader = ArgoExecutor::new(unreachable, ArgoExecutorConfig::default(), w.metrics.clone())
        .with_cache(cache.clone());
    // At once, whether or not the watch has delivered it yet.
    let outcome = w.outcome(&resource).await;
    assert_eq!(reader.outcomes(&resource).await.unwrap(), vec![outcome.clone()]);
    assert_eq!(outcome.state, OutcomeState::InProgress);
    let workflow = w.workflows_of(&resource).await.remove(0);
    assert_eq!(outcome.key, key(&workflow));

    w.finish(
        &workflow,
        "Succeeded",
        "",
        &[("provider-output", r#"{"id":"e-1"}"#), ("provider-status", "201")],
    )
    .await;
    // Every wake-up of the owner is sent after the cache applied its event: after the one for the finished
    // workflow, the outcome is read as succeeded.
    let succeeded = OutcomeState::Succeeded {
        output: Ok(kfp_core::definitions::ProviderOutput {
            id: "e-1".into(),
            provider_error: String::new(),
        }),
    };
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let owner = woken.recv().await.unwrap();
            if owner == resource && w.outcome(&resource).await.state == succeeded {
                return;
            }
        }
    })
    .await
    .expect("a wake-up after which the outcome is read as succeeded");

    w.executor
        .mark_consumed(&resource, &[key(&workflow)])
        .await
        .unwrap();
    assert!(w.outcomes(&resource).await.is_empty(), "hidden at once");
    assert!(reader.outcomes(&resource).await.unwrap().is_empty());
    kfp_testenv::wait_for(
        "the processed workflow to leave the cache",
        Duration::from_secs(20),
        || async { Ok::<_, String>(cache.is_empty().then_some(())) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(w.outcomes(&resource).await.is_empty());
    let marked = w.workflows().get(&workflow.name_any()).await.unwrap();
    assert_eq!(marked.labels().get(PROCESSED).map(String::as_str), Some("true"));
}
