//! An in-house operator: the KFP operator's six controllers embedded in a platform team's own binary, with the
//! direct executor (provider calls in-process, no Argo, no provider-service Deployments) and a provider registry
//! that holds the team's own provider type [`TYPE_NAME`] beside the defaults (`stub`, `http`, `kfp`, `vai`).
//!
//! Providers without the `pipelines.kubeflow.org/provider-type` annotation get [`TYPE_NAME`]. The in-house
//! "platform" here is [`InHousePlatform`], an in-memory record of what was submitted; a real one would call the
//! team's scheduler.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
};
use kfp_core::provider::{Provider, ProviderError};
use kfp_core::registry::{ProviderRegistry, RegistryError};
use kfp_operator::config::{ExecutorKind, OperatorConfig};
use kfp_operator::operator::{Operator, OperatorError, Shutdown};

/// The in-house provider type.
pub const TYPE_NAME: &str = "inhouse";

/// What the in-house platform was asked to do, by platform id: the kind and the resource's `ns/name`.
#[derive(Debug, Default)]
pub struct InHousePlatform {
    objects: Mutex<BTreeMap<String, (&'static str, String)>>,
    next: Mutex<u64>,
}

impl InHousePlatform {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, (&'static str, String)>> {
        self.objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every object the platform holds: id -> (kind, `ns/name`).
    pub fn objects(&self) -> BTreeMap<String, (&'static str, String)> {
        self.lock().clone()
    }

    fn create(&self, kind: &'static str, name: String) -> String {
        let mut next = self.next.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *next += 1;
        let id = format!("{kind}-{}", *next);
        self.lock().insert(id.clone(), (kind, name));
        id
    }

    fn update(&self, kind: &'static str, id: &str, name: String) -> Result<String, ProviderError> {
        match self.lock().get_mut(id) {
            Some(entry) if entry.0 == kind => {
                entry.1 = name;
                Ok(id.to_string())
            }
            _ => Err(ProviderError::not_found(format!(
                "the in-house platform has no {kind} {id}"
            ))),
        }
    }

    fn delete(&self, id: &str) -> Result<(), ProviderError> {
        self.lock().remove(id);
        Ok(())
    }
}

/// The in-house [`Provider`]: records every operation on the shared [`InHousePlatform`].
#[derive(Debug, Clone)]
pub struct InHouseProvider {
    platform: Arc<InHousePlatform>,
}

fn pipeline_name(pipeline: &PipelineDefinitionWrapper) -> String {
    pipeline.pipeline_definition["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[async_trait::async_trait]
impl Provider for InHouseProvider {
    async fn create_pipeline(&self, pipeline: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
        Ok(self.platform.create("pipeline", pipeline_name(pipeline)))
    }
    async fn update_pipeline(
        &self,
        pipeline: &PipelineDefinitionWrapper,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.platform.update("pipeline", id, pipeline_name(pipeline))
    }
    async fn delete_pipeline(&self, id: &str) -> Result<(), ProviderError> {
        self.platform.delete(id)
    }
    async fn create_run(&self, run: &RunDefinition) -> Result<String, ProviderError> {
        Ok(self.platform.create("run", run.name.to_string()))
    }
    async fn delete_run(&self, id: &str) -> Result<(), ProviderError> {
        self.platform.delete(id)
    }
    async fn create_run_schedule(&self, schedule: &RunScheduleDefinition) -> Result<String, ProviderError> {
        Ok(self.platform.create("runschedule", schedule.name.to_string()))
    }
    async fn update_run_schedule(
        &self,
        schedule: &RunScheduleDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.platform.update("runschedule", id, schedule.name.to_string())
    }
    async fn delete_run_schedule(&self, id: &str) -> Result<(), ProviderError> {
        self.platform.delete(id)
    }
    async fn create_experiment(&self, experiment: &ExperimentDefinition) -> Result<String, ProviderError> {
        Ok(self.platform.create("experiment", experiment.name.to_string()))
    }
    async fn update_experiment(
        &self,
        experiment: &ExperimentDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.platform
            .update("experiment", id, experiment.name.to_string())
    }
    async fn delete_experiment(&self, id: &str) -> Result<(), ProviderError> {
        self.platform.delete(id)
    }
}

/// The default registry plus [`TYPE_NAME`], whose providers all use `platform`.
pub fn registry(platform: Arc<InHousePlatform>) -> Result<ProviderRegistry, RegistryError> {
    let mut registry = kfp_providers::default_registry();
    registry.register(TYPE_NAME, move |_config| {
        Ok(Arc::new(InHouseProvider {
            platform: platform.clone(),
        }) as Arc<dyn Provider>)
    })?;
    Ok(registry)
}

/// The operator configuration of the in-house binary: the direct executor, [`TYPE_NAME`] by default, and
/// `watch_namespace` (empty: all namespaces).
pub fn config(watch_namespace: &str) -> OperatorConfig {
    let mut config = OperatorConfig::default();
    config.system.watch_namespace = watch_namespace.to_string();
    config.spec.executor = ExecutorKind::Direct;
    config.spec.direct.default_provider_type = TYPE_NAME.to_string();
    config
}

/// Runs the six controllers with `registry` and the executor `config.spec.executor` selects (here the direct
/// executor; its compiler is `config.spec.direct.compiler`, by default the local one with the built-in `stub`
/// framework), and the Providers' event sources, until `shutdown`: the operator's embedding API
/// ([`Operator::builder`]) with no endpoints of its own (no webhooks, feed, health or leader election).
pub async fn run(
    client: kube::Client,
    config: OperatorConfig,
    registry: ProviderRegistry,
    shutdown: Shutdown,
) -> Result<(), OperatorError> {
    Operator::builder(client)
        .config(config)
        .registry(registry)
        .build()
        .run(shutdown)
        .await
}
