//! The Argo executor (docs/executors.md, "Argo executor"): one Argo `Workflow` per provider operation, in the
//! provider's namespace.
//!
//! How the [`Executor`] calls map onto Argo (docs/executors.md, "The workflow of an operation"):
//! - [`Executor::submit`] creates a `Workflow` named `<kind>-<name>-<random>`, labelled with its owner
//!   (`pipelines.kubeflow.org/owner.{kind,name,namespace}`) and the action ([`OPERATION_LABEL`]), that references one
//!   of the `WorkflowTemplate`s of `config/argo/workflow-templates.yaml` (`create-compiled`/`update-compiled` for
//!   pipelines, `create-simple`/`update-simple` for the other kinds, `delete` for all) and passes the arguments:
//!   `resource-kind`, `resource-definition` (JSON, docs/provider-service.md, "Request bodies"), `resource-id`,
//!   `provider-name`, `provider-service-url`, `pipeline-framework-image`. The arguments are exactly the Go operator's,
//!   so the executor also drives the Go chart's templates during a migration.
//! - [`Executor::outcomes`] reads the owner's workflows without the `processed` label from the shared
//!   [`WorkflowCache`] (with [`ArgoExecutor::with_cache`], as the operator runs it: one watch, no request per
//!   reconcile; the executor's own creates and marks count at once), else lists them across all namespaces (a
//!   consistent list: a workflow that was just marked must not come back). Phase `Succeeded` carries the
//!   provider's answer (`provider-output` of the root node); `Failed` is permanent (the templates fail only on HTTP
//!   501, or a compile that fails), except a step deadline, which is a timeout and so transient (docs/reliability.md);
//!   `Error` is transient; anything else is in progress.
//! - [`Executor::mark_consumed`] adds `pipelines.kubeflow.org/processed: "true"` with a JSON merge patch
//!   (not a JSON-patch `replace`), so the label may be absent before; a workflow that is already gone is fine.
//!
//! Beyond the Go operator, this project's templates also output the provider's HTTP status (`provider-status`), so a
//! provider that refused the request (4xx other than 404, 408, 429) makes the outcome a permanent failure that waits
//! for a spec change instead of a retry loop (docs/executors.md, "Reading outcomes"), and a delete answered 404 (the
//! provider has no such object) counts as done, as `kfp_core::provider::ProviderError::NotFound` promises. Without the
//! parameter (the Go chart's templates) every `providerError` stays a `Succeeded` outcome, which the planner retries.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kfp_core::definitions::ProviderOutput;
use kfp_core::executor::{
    Action, Executor, ExecutorError, FailureClass, Operation, OperationDefinition, OperationOutcome,
    OutcomeState, ResourceKind, ResourceRef,
};
use kfp_core::reconcile::failure::{self, Verdict, WorkflowEnd};
use kfp_core::resources::labels;
use kfp_core::values::NamespacedName;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{GroupVersionKind, TypeMeta};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::workflows::WorkflowCache;
use crate::config::SpecConfig;
use crate::telemetry::Metrics;

/// The Argo Workflows API group and version of `Workflow` and `WorkflowTemplate`.
pub const ARGO_GROUP: &str = "argoproj.io";
/// The version of `ARGO_GROUP` the executor uses.
pub const ARGO_VERSION: &str = "v1alpha1";

/// Label with the action of a workflow (`create`, `update`, `delete`), so a finished operation is counted under
/// its action without parsing the template name. Workflows of the Go operator lack it: the template name is used.
pub const OPERATION_LABEL: &str = "pipelines.kubeflow.org/operation";

/// The output parameter with the provider's answer, `{"id"?, "providerError"?}` (docs/executors.md, "The templates").
pub const PROVIDER_OUTPUT_PARAMETER: &str = "provider-output";
/// The output parameter with the provider's HTTP status code (this project's templates only).
pub const PROVIDER_STATUS_PARAMETER: &str = "provider-status";

/// Why a succeeded workflow's answer cannot be used; the planner shows its own text for it.
pub const UNREADABLE_OUTPUT: &str = "could not retrieve workflow output";

/// The longest label value Kubernetes accepts; owner names and namespaces must fit in one.
const MAX_LABEL_VALUE: usize = 63;

/// The names of the `WorkflowTemplate`s a workflow can reference, without the configured prefix.
pub const TEMPLATE_NAMES: [&str; 5] = [
    "create-compiled",
    "update-compiled",
    "create-simple",
    "update-simple",
    "delete",
];

/// The `Workflow` resource, for a controller watch on workflows and for the executor's own calls.
pub fn workflow_api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(ARGO_GROUP, ARGO_VERSION, "Workflow"),
        "workflows",
    )
}

/// The resource a workflow was started for, from its three owner labels; `None` for workflows that are not ours
/// (a label is missing or the kind is unknown), so a controller watch can ignore them.
pub fn owner_of(workflow: &DynamicObject) -> Option<ResourceRef> {
    let labels = workflow.metadata.labels.as_ref()?;
    let kind = ResourceKind::from_str(labels.get(labels::OWNER_KIND)?).ok()?;
    let name = labels.get(labels::OWNER_NAME)?;
    let namespace = labels.get(labels::OWNER_NAMESPACE)?;
    Some(ResourceRef::new(kind, namespace.as_str(), name.as_str()))
}

/// The name of the template (without prefix) that carries out `action` for `kind` (docs/executors.md).
pub fn template_name(kind: ResourceKind, action: &Action) -> &'static str {
    let compiled = kind == ResourceKind::Pipeline;
    match (action, compiled) {
        (Action::Create { .. }, true) => "create-compiled",
        (Action::Update { .. }, true) => "update-compiled",
        (Action::Create { .. }, false) => "create-simple",
        (Action::Update { .. }, false) => "update-simple",
        (Action::Delete { .. }, _) => "delete",
    }
}

/// What the executor needs from the operator configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoExecutorConfig {
    /// Prepended to the template names (`spec.argo.workflowTemplatePrefix`).
    pub template_prefix: String,
    /// The port of every provider Service (`spec.defaultProviderValues.servicePort`).
    pub service_port: i32,
}

impl Default for ArgoExecutorConfig {
    fn default() -> Self {
        Self {
            template_prefix: String::new(),
            service_port: 8080,
        }
    }
}

impl ArgoExecutorConfig {
    /// The settings `spec.argo.*` of `spec` give.
    pub fn from_spec(spec: &SpecConfig) -> Self {
        Self {
            template_prefix: spec.argo.workflow_template_prefix.clone(),
            service_port: spec.default_provider_values.service_port,
        }
    }
}

/// The URL the templates call: the Service our Provider controller creates, `provider-<name>` in the
/// provider's namespace (`kfp_core::reconcile::provider::resource_name`).
pub fn provider_service_url(config: &ArgoExecutorConfig, provider: &NamespacedName) -> String {
    format!(
        "http://provider-{}.{}:{}",
        provider.name, provider.namespace, config.service_port
    )
}

/// The `Workflow` that carries out `operation` (docs/executors.md, "The workflow of an operation"), not yet created;
/// `Err` says why none can be built.
pub fn workflow_for(config: &ArgoExecutorConfig, operation: &Operation) -> Result<DynamicObject, String> {
    let resource = &operation.resource;
    let kind = resource.kind;
    let action = &operation.action;
    if operation.provider.namespace.is_empty() || operation.provider.name.is_empty() {
        return Err(format!(
            "the provider reference {:?} must name a namespace and a name",
            operation.provider.to_string()
        ));
    }
    if let Some(definition) = action.definition()
        && definition.kind() != kind
    {
        return Err(format!(
            "the definition is of kind {}, but the resource is of kind {kind}",
            definition.kind()
        ));
    }
    // Label values hold at most 63 characters; say so instead of relaying the API server's rejection.
    for (what, value) in [("name", &resource.name), ("namespace", &resource.namespace)] {
        if value.len() > MAX_LABEL_VALUE {
            return Err(format!(
                "the {what} {value:?} is longer than 63 characters, so it cannot be a workflow label value"
            ));
        }
    }

    let mut parameters = vec![json!({"name": "resource-kind", "value": kind.as_str()})];
    if let Some(definition) = action.definition() {
        let body = definition
            .to_json()
            .and_then(|json| serde_json::to_string(&json))
            .map_err(|e| format!("the resource definition cannot be written as JSON: {e}"))?;
        parameters.push(json!({"name": "resource-definition", "value": body}));
    }
    if let Some(id) = action.id() {
        parameters.push(json!({"name": "resource-id", "value": id}));
    }
    parameters.push(json!({"name": "provider-name", "value": operation.provider.to_string()}));
    parameters.push(
        json!({"name": "provider-service-url", "value": provider_service_url(config, &operation.provider)}),
    );
    if let Some(OperationDefinition::Pipeline { framework_image, .. }) = action.definition() {
        parameters.push(json!({"name": "pipeline-framework-image", "value": framework_image}));
    }

    let template = format!("{}{}", config.template_prefix, template_name(kind, action));
    let labels = [
        (labels::OWNER_KIND, kind.as_str()),
        (labels::OWNER_NAME, resource.name.as_str()),
        (labels::OWNER_NAMESPACE, resource.namespace.as_str()),
        (OPERATION_LABEL, action.name()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Ok(DynamicObject {
        types: Some(TypeMeta {
            api_version: format!("{ARGO_GROUP}/{ARGO_VERSION}"),
            kind: "Workflow".to_string(),
        }),
        metadata: ObjectMeta {
            generate_name: Some(format!("{kind}-{}-", resource.name)),
            namespace: Some(operation.provider.namespace.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        data: json!({
            "spec": {
                "workflowTemplateRef": {"name": template},
                "arguments": {"parameters": parameters},
            }
        }),
    })
}

/// Carries out provider operations as Argo workflows; see the module documentation.
#[derive(Clone)]
pub struct ArgoExecutor {
    client: Client,
    config: ArgoExecutorConfig,
    metrics: Arc<Metrics>,
    workflows: ApiResource,
    cache: Option<Arc<WorkflowCache>>,
}

impl std::fmt::Debug for ArgoExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgoExecutor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ArgoExecutor {
    /// An executor creating Workflows with `client`, as `config` says, counting operations in `metrics`.
    pub fn new(client: Client, config: ArgoExecutorConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            client,
            config,
            metrics,
            workflows: workflow_api_resource(),
            cache: None,
        }
    }

    /// Serves outcomes from `cache` (one shared watch) instead of a `LIST` per reconcile, and tells it about the
    /// workflows this executor creates and marks (issue 18).
    pub fn with_cache(mut self, cache: Arc<WorkflowCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    fn owner_selector(resource: &ResourceRef) -> String {
        format!(
            "{}={},{}={},{}={},!{}",
            labels::OWNER_KIND,
            resource.kind,
            labels::OWNER_NAME,
            resource.name,
            labels::OWNER_NAMESPACE,
            resource.namespace,
            labels::PROCESSED
        )
    }

    /// Marks one workflow processed; returns it as it was before, or `None` when there was nothing to do.
    async fn mark_one(&self, namespace: &str, name: &str) -> Result<Option<DynamicObject>, kube::Error> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &self.workflows);
        // Read first so a repeated call (e.g. after a failed status write) neither patches nor counts again: from
        // the cache when there is one (a workflow it does not have is gone or marked already).
        let workflow = match &self.cache {
            Some(cache) => cache.get(namespace, name).map(|w| w.as_ref().clone()),
            None => api.get_opt(name).await?,
        };
        let Some(workflow) = workflow else {
            return Ok(None);
        };
        if workflow.labels().contains_key(labels::PROCESSED) {
            return Ok(None);
        }
        let patch = json!({"metadata": {"labels": {labels::PROCESSED: "true"}}});
        let patched = match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(Some(workflow)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(e) => return Err(e),
        };
        if let Some(cache) = &self.cache {
            cache.consumed(namespace, name);
        }
        patched
    }
}

#[async_trait]
impl Executor for ArgoExecutor {
    async fn submit(&self, operation: Operation) -> Result<(), ExecutorError> {
        let submit_error = |message: String| ExecutorError::Submit {
            resource: operation.resource.clone(),
            action: operation.action.name(),
            message,
        };
        let workflow = workflow_for(&self.config, &operation).map_err(submit_error)?;
        let namespace = operation.provider.namespace.as_str();
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &self.workflows);
        let created = api.create(&PostParams::default(), &workflow).await.map_err(|e| {
            submit_error(format!(
                "the Workflow could not be created in namespace {namespace}: {e}"
            ))
        })?;
        tracing::info!(
            resource = %operation.resource,
            action = operation.action.name(),
            workflow = %format!("{namespace}/{}", created.name_any()),
            "submitted workflow"
        );
        if let Some(cache) = &self.cache {
            cache.created(created);
        }
        self.metrics.operation(
            operation.resource.kind.as_str(),
            operation.action.name(),
            "submitted",
        );
        Ok(())
    }

    async fn outcomes(&self, resource: &ResourceRef) -> Result<Vec<OperationOutcome>, ExecutorError> {
        if resource.name.len() > MAX_LABEL_VALUE || resource.namespace.len() > MAX_LABEL_VALUE {
            // No workflow can carry such a label value (submit refuses it), and the selector would be rejected.
            return Ok(Vec::new());
        }
        if let Some(cache) = &self.cache {
            cache.ready().await.map_err(|message| ExecutorError::Outcomes {
                resource: resource.clone(),
                message,
            })?;
            return Ok(cache.of(resource).iter().map(|w| outcome_of(w)).collect());
        }
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &self.workflows);
        // No resourceVersion: a consistent read from storage, never an older cached list.
        let params = ListParams::default().labels(&Self::owner_selector(resource));
        let list = api.list(&params).await.map_err(|e| ExecutorError::Outcomes {
            resource: resource.clone(),
            message: format!("the Workflows could not be listed: {e}"),
        })?;
        Ok(list.items.iter().map(outcome_of).collect())
    }

    async fn mark_consumed(&self, resource: &ResourceRef, keys: &[String]) -> Result<(), ExecutorError> {
        let error = |message: String| ExecutorError::MarkConsumed {
            resource: resource.clone(),
            keys: keys.to_vec(),
            message,
        };
        for key in keys {
            let Some((namespace, name)) = key.split_once('/') else {
                return Err(error(format!("{key:?} is not a workflow key (namespace/name)")));
            };
            let before = self
                .mark_one(namespace, name)
                .await
                .map_err(|e| error(format!("the Workflow {key} could not be patched: {e}")))?;
            if let Some(workflow) = before {
                let result = match outcome_of(&workflow).state {
                    OutcomeState::InProgress => None,
                    OutcomeState::Succeeded {
                        output: Ok(ProviderOutput { provider_error, .. }),
                    } if provider_error.is_empty() => Some("succeeded"),
                    _ => Some("failed"),
                };
                if let Some(result) = result {
                    self.metrics
                        .operation(resource.kind.as_str(), &action_of(&workflow), result);
                }
            }
        }
        Ok(())
    }
}

/// The action of a workflow: its [`OPERATION_LABEL`], else the template it references (`create-…`, `update-…`,
/// `delete`, after any prefix), else `unknown`.
pub fn action_of(workflow: &DynamicObject) -> String {
    if let Some(action) = workflow.labels().get(OPERATION_LABEL) {
        return action.clone();
    }
    let template = workflow.data["spec"]["workflowTemplateRef"]["name"]
        .as_str()
        .unwrap_or_default();
    ["create", "update", "delete"]
        .into_iter()
        .find(|action| {
            template.ends_with(&format!("{action}-compiled"))
                || template.ends_with(&format!("{action}-simple"))
                || (*action == "delete" && template.ends_with("delete"))
        })
        .unwrap_or("unknown")
        .to_string()
}

/// Reads how a workflow's operation stands (see the module documentation). `key` is `<namespace>/<name>`.
pub fn outcome_of(workflow: &DynamicObject) -> OperationOutcome {
    let name = workflow.name_any();
    let key = format!("{}/{name}", workflow.namespace().unwrap_or_default());
    let created = workflow
        .metadata
        .creation_timestamp
        .clone()
        .unwrap_or(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    let status = &workflow.data["status"];
    let message = status["message"].as_str().unwrap_or_default().to_string();
    let failed = |end: WorkflowEnd| OutcomeState::Failed {
        class: failure::workflow_failure(
            end,
            mentions(status, &message, &["Failed"], failure::deadline_exceeded),
            mentions(status, &message, &["Failed", "Error"], failure::input_too_large),
        ),
        message: failure_message(status, &key, &message),
    };
    let state = match status["phase"].as_str().unwrap_or_default() {
        "Succeeded" => succeeded(status, &name, &action_of(workflow)),
        "Failed" => failed(WorkflowEnd::Failed),
        "Error" => failed(WorkflowEnd::Error),
        _ => OutcomeState::InProgress,
    };
    OperationOutcome { key, created, state }
}

/// A `Succeeded` workflow: the provider's answer, judged by its HTTP status when the templates report it.
fn succeeded(status: &Value, name: &str, action: &str) -> OutcomeState {
    let parameter = |wanted: &str| -> Option<&str> {
        status["nodes"][name]["outputs"]["parameters"]
            .as_array()?
            .iter()
            .find(|p| p["name"].as_str() == Some(wanted))?["value"]
            .as_str()
    };
    let output = match parameter(PROVIDER_OUTPUT_PARAMETER) {
        None => Err(format!(
            "{UNREADABLE_OUTPUT}: the root node has no {PROVIDER_OUTPUT_PARAMETER} output parameter"
        )),
        Some(text) => serde_json::from_str::<ProviderOutput>(text).map_err(|e| {
            format!("{UNREADABLE_OUTPUT}: {PROVIDER_OUTPUT_PARAMETER} is not the provider's JSON answer: {e}")
        }),
    };
    let http_status = parameter(PROVIDER_STATUS_PARAMETER).and_then(|s| s.trim().parse::<u16>().ok());
    match (output, http_status) {
        (Ok(answer), Some(code)) if !answer.provider_error.is_empty() => {
            match failure::http_answer(code, action == "delete") {
                // The provider has no such object: a delete has nothing left to do.
                Verdict::Done => OutcomeState::Succeeded {
                    output: Ok(ProviderOutput::default()),
                },
                Verdict::Failed(FailureClass::Permanent) => OutcomeState::Failed {
                    class: FailureClass::Permanent,
                    message: answer.provider_error,
                },
                // Transient: the planner retries an answer that carries a providerError.
                Verdict::Failed(FailureClass::Transient) => OutcomeState::Succeeded { output: Ok(answer) },
            }
        }
        (output, _) => OutcomeState::Succeeded { output },
    }
}

/// What a failed workflow's status says: Argo's own message names only the failed child (`child '...' failed`), so
/// the failed step's template (`compile`, `create`, ...) and its message (`Error (exit code 1)`, `OOMKilled`, ...)
/// come first, and where to read its log; Argo's message when no step failed.
fn failure_message(status: &Value, workflow: &str, message: &str) -> String {
    let failed_step = status["nodes"].as_object().and_then(|nodes| {
        nodes
            .values()
            .filter(|node| {
                node["type"].as_str() == Some("Pod")
                    && matches!(node["phase"].as_str(), Some("Failed" | "Error"))
            })
            // The first to fail when several did (RFC 3339 times of one writer compare as text).
            .min_by_key(|node| node["finishedAt"].as_str().unwrap_or_default().to_string())
    });
    let Some(step) = failed_step else {
        return message.to_string();
    };
    // A step of a referenced WorkflowTemplate names it in templateRef, a local one in templateName.
    let template = step["templateRef"]["template"]
        .as_str()
        .or_else(|| step["templateName"].as_str())
        .or_else(|| step["displayName"].as_str())
        .unwrap_or("unknown");
    let step_message = step["message"].as_str().unwrap_or("failed");
    format!(
        "the {} step failed: {} (its pod's log says why; workflow {workflow})",
        kfp_core::validation::bounded(template),
        kfp_core::validation::bounded(step_message)
    )
}

/// Whether the workflow's message, or that of a node in one of `phases`, `says` something
/// ([`failure::deadline_exceeded`], [`failure::input_too_large`]).
fn mentions(status: &Value, message: &str, phases: &[&str], says: fn(&str) -> bool) -> bool {
    says(message)
        || status["nodes"].as_object().is_some_and(|nodes| {
            nodes.values().any(|node| {
                node["phase"]
                    .as_str()
                    .is_some_and(|phase| phases.contains(&phase))
                    && node["message"].as_str().is_some_and(says)
            })
        })
}

#[cfg(test)]
mod failure_message_tests {
    use serde_json::json;

    use super::failure_message;

    #[test]
    fn the_failed_step_and_its_message_are_named_instead_of_the_child() {
        let status = json!({"phase": "Failed", "message": "child 'wf-123' failed", "nodes": {
            "wf": {"type": "Steps", "phase": "Failed", "message": "child 'wf-123' failed"},
            "wf-123": {"type": "Pod", "phase": "Failed", "displayName": "compile(0)",
                       "templateRef": {"name": "compiled-workflow-steps", "template": "compile"},
                       "message": "Error (exit code 1)", "finishedAt": "2026-12-07T12:40:01Z"},
            "wf-789": {"type": "Pod", "phase": "Failed", "templateName": "combine-files",
                       "message": "Error (exit code 2)", "finishedAt": "2026-12-07T12:40:09Z"},
            "wf-456": {"type": "Pod", "phase": "Succeeded", "templateName": "select-resource-image"},
        }});
        assert_eq!(
            failure_message(&status, "ns/wf", "child 'wf-123' failed"),
            "the compile step failed: Error (exit code 1) (its pod's log says why; workflow ns/wf)"
        );
    }

    #[test]
    fn without_a_failed_step_argos_message_is_kept() {
        let status = json!({"phase": "Error", "message": "pod deleted", "nodes": {}});
        assert_eq!(failure_message(&status, "ns/wf", "pod deleted"), "pod deleted");
    }
}

#[cfg(test)]
mod input_too_large_tests {
    use kfp_core::reconcile::failure;
    use serde_json::{Value, json};

    use super::mentions;

    fn input_too_large(status: &Value, message: &str) -> bool {
        mentions(status, message, &["Failed", "Error"], failure::input_too_large)
    }

    /// A 1 MB `env` value keeps the compile pod from starting (E2BIG): Argo says `Error`, which was retried forever
    /// (issue 17); it is the pipeline's input, permanent. The words are found in the workflow's message or a
    /// failed node's.
    #[test]
    fn a_step_that_cannot_start_for_its_input_is_told_apart() {
        let status = json!({"phase": "Error", "message": "child 'wf-1' errored", "nodes": {
            "wf-1": {"type": "Pod", "phase": "Error", "templateName": "compile",
                     "message": "failed to start container: exec: argument list too long"}}});
        assert!(input_too_large(&status, "child 'wf-1' errored"));
        assert!(input_too_large(&json!({"nodes": {}}), "E2BIG"));
        let deleted = json!({"phase": "Error", "message": "pod deleted", "nodes": {}});
        assert!(!input_too_large(&deleted, "pod deleted"));
        let deadline = json!({"nodes": {"n": {"phase": "Failed", "message": "Step exceeded its deadline"}}});
        assert!(
            mentions(&deadline, "", &["Failed"], failure::deadline_exceeded)
                && !input_too_large(&deadline, "")
        );
    }
}
