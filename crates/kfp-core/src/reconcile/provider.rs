//! Provider planning (docs/controllers.md, "Providers"; decision 0002): the provider service's Deployment and Service.
//!
//! The desired objects are pure functions of the Provider and [`DefaultProviderValues`]. The controller applies them
//! with server-side apply under the field manager [`FIELD_MANAGER`], so they get deterministic names
//! (`provider-<name>`, [`resource_name`]) instead of the Go operator's `generateName: provider-<name>-`: an apply
//! addresses an object by name, and a fixed name makes the apply idempotent. Objects the Go operator created under
//! a generated name (controlled by the same Provider) are deleted once their replacement exists, so exactly one
//! Service is controlled by the Provider, as the Argo executor's provider URL expects (docs/executors.md).
//!
//! Observed objects are compared with the desired ones on the fields the operator sets only (what server-side apply
//! owns), so fields the API server defaults never cause an apply. The Service is applied in place, never deleted
//! and recreated.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    EnvVar, ProjectedVolumeSource, Service, ServiceAccountTokenProjection, ServicePort, ServiceSpec, Volume,
    VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference, Time};
use serde::Serialize;
use serde_json::Value;

use crate::config::{
    DefaultProviderValues, FEED_TOKEN_DIR, FEED_TOKEN_EXPIRATION_SECONDS, FEED_TOKEN_FILE, FEED_TOKEN_VOLUME,
    FeedAccess, OPERATOR_WEBHOOK_ENV,
};
use crate::reconcile::run_configuration::status_event;
use crate::reconcile::{Event, Plan, merge_state_conditions};
use crate::resources::v1beta1::Conditions as _;
use crate::resources::v1beta1::{Provider, ProviderStatus};
use crate::values::SynchronizationState;

/// The field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "kfp-operator";
/// The label that ties the provider's Deployment, pods and Service together (`app=provider-<name>`).
pub const APP_LABEL: &str = "app";
/// Marks the Deployments and Services the operator manages (`app.kubernetes.io/managed-by: kfp-operator`), so
/// the controller watches only those instead of every Deployment and Service in the cluster.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Environment variable names the operator sets on the provider service container.
pub const PROVIDER_NAME_ENV: &str = "PROVIDERNAME";
/// The environment variable of `spec.pipelineRootStorage`.
pub const PIPELINE_ROOT_STORAGE_ENV: &str = "PIPELINEROOTSTORAGE";
/// The prefix of the environment variables of `spec.parameters`.
pub const PARAMETERS_ENV_PREFIX: &str = "PARAMETERS_";

/// Everything the Provider planner looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The Provider, with metadata (name, namespace, uid, generation, deletionTimestamp), spec and status.
    pub provider: Provider,
    /// Deployments controlled by the Provider.
    pub deployments: Vec<Deployment>,
    /// Services controlled by the Provider.
    pub services: Vec<Service>,
    /// The current time.
    pub now: Time,
}

/// What the Provider controller does, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Server-side apply (field manager [`FIELD_MANAGER`], force) of this Deployment.
    ApplyDeployment(Box<Deployment>),
    /// Server-side apply (field manager [`FIELD_MANAGER`], force) of this Service.
    ApplyService(Box<Service>),
    /// Delete a Deployment the Go operator created under a generated name (in the Provider's namespace).
    DeleteDeployment {
        /// The Deployment's name.
        name: String,
    },
    /// Delete a Service the Go operator created under a generated name (in the Provider's namespace).
    DeleteService {
        /// The Service's name.
        name: String,
    },
    /// Replace the status subresource, then record `event` if any.
    SetStatus {
        /// The new status.
        status: ProviderStatus,
        /// The Event recording the change, if any.
        event: Option<Event>,
    },
}

/// Why no desired Deployment can be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderPlanError {
    /// Operator misconfiguration: the controller logs it and does not requeue (the Provider's status is untouched).
    #[error(
        "defaultProviderValues.podTemplateSpec has no container named {name:?} (defaultProviderValues.serviceContainerName)"
    )]
    MissingServiceContainer {
        /// The container name configured.
        name: String,
    },
    /// A user error in the Provider: reported as its `Failed` state by [`plan`].
    #[error(
        "environment variable {name:?} in spec.podTemplateEnv is reserved by the operator (reserved: PROVIDERNAME, PIPELINEROOTSTORAGE, PARAMETERS_*)"
    )]
    ReservedEnv {
        /// The variable.
        name: String,
    },
    /// A user error in the Provider, reported as its `Failed` state: no provider service image. The Go operator's
    /// v1alpha5 had no `serviceImage`, so Providers written in it arrive without one (docs/decisions/0015).
    #[error(
        "spec.serviceImage is empty: set it (in v1beta1 or v1alpha6) to the image of the provider service the operator deploys for this Provider"
    )]
    MissingServiceImage,
}

/// Which child object a failed apply was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// The provider service's Deployment.
    Deployment,
    /// The provider service's Service.
    Service,
}

impl Subresource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::Service => "service",
        }
    }
}

/// The name of the provider's Deployment and Service, and the value of their `app` label: `provider-<name>`.
pub fn resource_name(provider: &Provider) -> String {
    format!(
        "provider-{}",
        provider.metadata.name.as_deref().unwrap_or_default()
    )
}

fn app_labels(provider: &Provider) -> BTreeMap<String, String> {
    BTreeMap::from([(APP_LABEL.to_string(), resource_name(provider))])
}

fn object_labels(provider: &Provider, config: &DefaultProviderValues) -> BTreeMap<String, String> {
    let mut labels = config.labels.clone();
    labels.extend(app_labels(provider));
    labels.insert(MANAGED_BY_LABEL.to_string(), FIELD_MANAGER.to_string());
    labels
}

fn owner_reference(provider: &Provider) -> OwnerReference {
    OwnerReference {
        api_version: format!("{}/v1beta1", crate::resources::GROUP),
        kind: "Provider".to_string(),
        name: provider.metadata.name.clone().unwrap_or_default(),
        uid: provider.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn object_metadata(provider: &Provider, config: &DefaultProviderValues) -> ObjectMeta {
    ObjectMeta {
        name: Some(resource_name(provider)),
        namespace: provider.metadata.namespace.clone(),
        labels: Some(object_labels(provider, config)),
        owner_references: Some(vec![owner_reference(provider)]),
        ..ObjectMeta::default()
    }
}

/// Whether the operator sets the environment variable `name` on the provider service itself (compared ignoring
/// case, as the provider service reads its environment): `PROVIDERNAME`, `PIPELINEROOTSTORAGE`, `PARAMETERS_*`
/// ([`operator_env`]). The admission webhook refuses these in `spec.podTemplateEnv`.
pub fn is_reserved_env_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper == PROVIDER_NAME_ENV
        || upper == PIPELINE_ROOT_STORAGE_ENV
        || upper.starts_with(PARAMETERS_ENV_PREFIX)
}

/// The first `spec.podTemplateEnv` name the operator reserves ([`is_reserved_env_name`]).
pub fn reserved_env_name(provider: &Provider) -> Option<&str> {
    provider
        .spec
        .pod_template_env
        .iter()
        .map(|e| e.name.as_str())
        .find(|name| is_reserved_env_name(name))
}

/// The environment the operator gives the provider service, sorted by name: `PROVIDERNAME=<ns>/<name>`,
/// `PIPELINEROOTSTORAGE`, and `PARAMETERS_<KEY>` per `spec.parameters` entry (a JSON string unquoted, any other
/// JSON value as JSON text).
pub fn operator_env(provider: &Provider) -> Vec<EnvVar> {
    let env = |name: String, value: String| EnvVar {
        name,
        value: Some(value),
        value_from: None,
    };
    let namespace = provider.metadata.namespace.as_deref().unwrap_or_default();
    let name = provider.metadata.name.as_deref().unwrap_or_default();
    let mut vars = vec![
        env(PROVIDER_NAME_ENV.to_string(), format!("{namespace}/{name}")),
        env(
            PIPELINE_ROOT_STORAGE_ENV.to_string(),
            provider.spec.pipeline_root_storage.clone(),
        ),
    ];
    for (key, value) in &provider.spec.parameters {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        vars.push(env(
            format!("{PARAMETERS_ENV_PREFIX}{}", key.to_ascii_uppercase()),
            text,
        ));
    }
    vars.sort_by(|a, b| a.name.cmp(&b.name));
    vars
}

/// Puts each of `additions` into `items`: replacing, in place, the item with the same key, else appending.
fn merge_by_key<T: Clone, K: PartialEq>(items: &mut Vec<T>, additions: &[T], key: impl Fn(&T) -> K) {
    for addition in additions {
        match items.iter_mut().find(|item| key(item) == key(addition)) {
            Some(existing) => *existing = addition.clone(),
            None => items.push(addition.clone()),
        }
    }
}

/// Lets the provider service post to the operator's feed (docs/run-completion-events.md, "Authentication"):
/// `OPERATORWEBHOOK` (unless the pod template sets it), and a projected ServiceAccount token for the feed's audience in
/// [`FEED_TOKEN_DIR`], where the provider service reads it by default (unless the pod template has a volume or mount
/// there). A Provider's own `podTemplateEnv`, volumes and mounts are merged afterwards and win.
fn add_feed_access(
    feed: &FeedAccess,
    env: &mut Vec<EnvVar>,
    volumes: &mut Vec<Volume>,
    mounts: &mut Vec<VolumeMount>,
) {
    if !env.iter().any(|e| e.name == OPERATOR_WEBHOOK_ENV) {
        env.push(EnvVar {
            name: OPERATOR_WEBHOOK_ENV.to_string(),
            value: Some(feed.webhook_url.clone()),
            value_from: None,
        });
    }
    let Some(audience) = &feed.token_audience else {
        return;
    };
    if !volumes.iter().any(|v| v.name == FEED_TOKEN_VOLUME) {
        volumes.push(Volume {
            name: FEED_TOKEN_VOLUME.to_string(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some(audience.clone()),
                        expiration_seconds: Some(FEED_TOKEN_EXPIRATION_SECONDS),
                        path: FEED_TOKEN_FILE.to_string(),
                    }),
                    ..VolumeProjection::default()
                }]),
                ..ProjectedVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    if !mounts.iter().any(|m| m.mount_path == FEED_TOKEN_DIR) {
        mounts.push(VolumeMount {
            name: FEED_TOKEN_VOLUME.to_string(),
            mount_path: FEED_TOKEN_DIR.to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
}

/// The provider service Deployment (docs/controllers.md, "Providers").
///
/// From `config.podTemplateSpec` with the `app` pod label and `serviceAccountName = spec.serviceAccount`; in the
/// container `config.serviceContainerName`: `image = spec.serviceImage`, the pod template's env followed by
/// [`operator_env`], then `spec.podTemplateEnv` merged by name; pod volumes merged with `spec.podTemplateVolumes`
/// by name, container mounts with `spec.podTemplateVolumeMounts` by `mountPath`.
pub fn desired_deployment(
    provider: &Provider,
    config: &DefaultProviderValues,
) -> Result<Deployment, ProviderPlanError> {
    if let Some(name) = reserved_env_name(provider) {
        return Err(ProviderPlanError::ReservedEnv {
            name: name.to_string(),
        });
    }
    let spec = &provider.spec;
    if spec.service_image.trim().is_empty() {
        return Err(ProviderPlanError::MissingServiceImage);
    }
    let mut template = config.pod_template_spec.clone();
    template
        .metadata
        .get_or_insert_default()
        .labels
        .get_or_insert_default()
        .extend(app_labels(provider));
    let pod = template.spec.get_or_insert_default();
    pod.service_account_name = Some(spec.service_account.clone());
    let container = pod
        .containers
        .iter_mut()
        .find(|c| c.name == config.service_container_name)
        .ok_or_else(|| ProviderPlanError::MissingServiceContainer {
            name: config.service_container_name.clone(),
        })?;
    container.image = Some(spec.service_image.clone());
    let env = container.env.get_or_insert_default();
    env.extend(operator_env(provider));
    if let Some(feed) = &config.feed {
        add_feed_access(
            feed,
            env,
            pod.volumes.get_or_insert_default(),
            container.volume_mounts.get_or_insert_default(),
        );
    }
    merge_by_key(env, &spec.pod_template_env, |e| e.name.clone());
    if !spec.pod_template_volume_mounts.is_empty() {
        let mounts = container.volume_mounts.get_or_insert_default();
        merge_by_key(mounts, &spec.pod_template_volume_mounts, |m| m.mount_path.clone());
    }
    if !spec.pod_template_volumes.is_empty() {
        merge_by_key(
            pod.volumes.get_or_insert_default(),
            &spec.pod_template_volumes,
            |v| v.name.clone(),
        );
    }
    Ok(Deployment {
        metadata: object_metadata(provider, config),
        spec: Some(DeploymentSpec {
            replicas: Some(config.replicas),
            selector: LabelSelector {
                match_labels: Some(app_labels(provider)),
                match_expressions: None,
            },
            template,
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}

/// The provider service Service: ClusterIP, selector `app`, TCP ports `http` (servicePort) and
/// `metrics` (metricsPort).
pub fn desired_service(provider: &Provider, config: &DefaultProviderValues) -> Service {
    let port = |name: &str, port: i32| ServicePort {
        name: Some(name.to_string()),
        port,
        protocol: Some("TCP".to_string()),
        ..ServicePort::default()
    };
    Service {
        metadata: object_metadata(provider, config),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(app_labels(provider)),
            ports: Some(vec![
                port("http", config.service_port),
                port("metrics", config.metrics_port),
            ]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// Whether `observed` holds every field `desired` sets, with the same values: what a server-side apply of
/// `desired` would leave unchanged. Fields only in `observed` (API defaults, other managers) are ignored; list
/// items are compared position by position, so a list that grew or shrank differs.
pub fn holds_owned_fields<T: Serialize>(desired: &T, observed: &T) -> bool {
    match (serde_json::to_value(desired), serde_json::to_value(observed)) {
        (Ok(desired), Ok(observed)) => contains(&observed, &desired),
        _ => false,
    }
}

fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn contains(observed: &Value, desired: &Value) -> bool {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d.iter().all(|(key, dv)| match o.get(key) {
            Some(ov) => contains(ov, dv),
            None => is_empty_value(dv),
        }),
        (Value::Array(d), Value::Array(o)) => {
            d.len() == o.len() && d.iter().zip(o).all(|(dv, ov)| contains(ov, dv))
        }
        (d, o) => d == o || (is_empty_value(d) && is_empty_value(o)),
    }
}

/// Plans one reconcile of a Provider (docs/controllers.md, "Providers").
///
/// Applies the Deployment and Service when missing (`Creating`) or when an owned field differs (`Updating`); when
/// both are in sync, `Succeeded` with `observedGeneration`. A generation change that leaves both objects as they
/// are goes straight to `Succeeded` (an `Updating` nobody would move on from, since the controller watches
/// generation changes only, would be worse). A reserved name in `spec.podTemplateEnv` is `Failed`.
///
/// Errors only for operator misconfiguration ([`ProviderPlanError::MissingServiceContainer`]): log, don't requeue.
pub fn plan(observed: &Observed, config: &DefaultProviderValues) -> Result<Plan<Command>, ProviderPlanError> {
    let provider = &observed.provider;
    if provider.metadata.deletion_timestamp.is_some() {
        return Ok(Plan::default());
    }
    let deployment = match desired_deployment(provider, config) {
        Ok(deployment) => deployment,
        Err(error @ (ProviderPlanError::ReservedEnv { .. } | ProviderPlanError::MissingServiceImage)) => {
            return Ok(Plan::new(conclude(
                observed,
                SynchronizationState::Failed,
                &error.to_string(),
            )));
        }
        Err(error) => return Err(error),
    };
    let service = desired_service(provider, config);
    let name = resource_name(provider);

    let mut commands = Vec::new();
    let mut missing = false;
    let current_deployment = observed
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some(&name));
    match current_deployment {
        None => {
            missing = true;
            commands.push(Command::ApplyDeployment(Box::new(deployment)));
        }
        Some(current) if !holds_owned_fields(&deployment, current) => {
            commands.push(Command::ApplyDeployment(Box::new(deployment)));
        }
        Some(_) => {}
    }
    let current_service = observed
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(&name));
    match current_service {
        None => {
            missing = true;
            commands.push(Command::ApplyService(Box::new(service)));
        }
        Some(current) if !holds_owned_fields(&service, current) => {
            commands.push(Command::ApplyService(Box::new(service)))
        }
        Some(_) => {}
    }
    let legacy_name = |meta: &ObjectMeta| {
        let legacy = meta.deletion_timestamp.is_none() && meta.name.as_deref().is_some_and(|n| n != name);
        if legacy { meta.name.clone() } else { None }
    };
    if current_deployment.is_some() {
        let legacy = observed
            .deployments
            .iter()
            .filter_map(|d| legacy_name(&d.metadata));
        commands.extend(legacy.map(|name| Command::DeleteDeployment { name }));
    }
    if current_service.is_some() {
        let legacy = observed.services.iter().filter_map(|s| legacy_name(&s.metadata));
        commands.extend(legacy.map(|name| Command::DeleteService { name }));
    }

    let applying = commands
        .iter()
        .any(|c| matches!(c, Command::ApplyDeployment(_) | Command::ApplyService(_)));
    let state = match (missing, applying) {
        (true, _) => SynchronizationState::Creating,
        (false, true) => SynchronizationState::Updating,
        (false, false) => SynchronizationState::Succeeded,
    };
    commands.extend(conclude(observed, state, ""));
    Ok(Plan::new(commands))
}

/// The plan after applying `subresource` failed: `Failed` "Failed to reconcile subresource <deployment|service>".
pub fn plan_apply_failure(observed: &Observed, subresource: Subresource) -> Plan<Command> {
    let message = format!("Failed to reconcile subresource {}", subresource.as_str());
    Plan::new(conclude(observed, SynchronizationState::Failed, &message))
}

/// The condition for `state`; `observedGeneration` in the status only once `Succeeded`. A
/// SetStatus only when something changed.
fn conclude(observed: &Observed, state: SynchronizationState, message: &str) -> Vec<Command> {
    let provider = &observed.provider;
    let generation = provider.metadata.generation.unwrap_or_default();
    let status = provider.status.clone().unwrap_or_default();
    let mut new = status.clone();
    if state == SynchronizationState::Succeeded {
        new.observed_generation = generation;
    }
    merge_state_conditions(&mut new.conditions, state, message, generation, &observed.now);
    if new == status {
        return Vec::new();
    }
    // An Event for a change of state or message, not for the kstatus conditions an upgrade adds.
    let event = (new.synchronized() != status.synchronized()).then(|| status_event(state, message));
    vec![Command::SetStatus { status: new, event }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

    #[test]
    fn decision_0015_a_provider_without_service_image_fails_naming_the_field() {
        let config = DefaultProviderValues {
            service_container_name: "provider-service".into(),
            pod_template_spec: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "provider-service".into(),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DefaultProviderValues::default()
        };
        let mut provider = Provider::default();
        provider.metadata.name = Some("converted-from-v1alpha5".into());
        provider.metadata.generation = Some(2);
        let observed = Observed {
            provider,
            deployments: Vec::new(),
            services: Vec::new(),
            now: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        };
        let plan = plan(&observed, &config).unwrap_or_default();
        let [Command::SetStatus { status, event }] = plan.commands.as_slice() else {
            unreachable!("only a status write, no Deployment: {plan:?}");
        };
        let condition = &status.conditions[0];
        assert_eq!(condition.reason, "Failed");
        assert!(
            condition
                .message
                .starts_with("spec.serviceImage is empty: set it"),
            "{}",
            condition.message
        );
        assert!(event.is_some(), "the failure is recorded as an Event");
    }
}
