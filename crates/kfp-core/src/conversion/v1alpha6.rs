//! `v1alpha6` <-> `v1beta1` (docs/webhooks.md, "The conversion webhook"; decision 0003).

use super::{
    ConversionConfig, ConversionError, Remainder, RunOptions, Spoke, framework_from_hub, framework_to_hub,
    keys, parameters_from_hub, parameters_to_hub, provider_from_hub, provider_spec_from_hub,
    provider_spec_to_hub, provider_status_from_hub, provider_status_to_hub, provider_to_hub,
    sync_state_from_hub, sync_state_to_hub,
};
use crate::resources::v1alpha6 as spoke;
use crate::resources::v1beta1 as hub;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub(crate) fn object_name(meta: &ObjectMeta) -> String {
    meta.name
        .clone()
        .or_else(|| meta.generate_name.clone())
        .unwrap_or_default()
}

/// The spoke's remainder (taken off its metadata), and an empty one for the hub.
pub(crate) struct Up {
    pub(crate) metadata: ObjectMeta,
    pub(crate) spoke: Remainder,
    pub(crate) hub: Remainder,
}

impl Up {
    pub(crate) fn new(metadata: &ObjectMeta) -> Result<Self, ConversionError> {
        let mut metadata = metadata.clone();
        let spoke = Remainder::take_from(&mut metadata)?;
        Ok(Self {
            metadata,
            spoke,
            hub: Remainder::default(),
        })
    }

    pub(crate) fn finish(self) -> Result<ObjectMeta, ConversionError> {
        let Self {
            mut metadata,
            spoke,
            mut hub,
        } = self;
        spoke.pass_into(&mut hub);
        hub.write_to(&mut metadata)?;
        Ok(metadata)
    }
}

/// The hub's remainder (taken off its metadata), and an empty one for the spoke.
pub(crate) struct Down {
    pub(crate) metadata: ObjectMeta,
    pub(crate) hub: Remainder,
    pub(crate) spoke: Remainder,
}

impl Down {
    pub(crate) fn new(metadata: &ObjectMeta) -> Result<Self, ConversionError> {
        let mut metadata = metadata.clone();
        let hub = Remainder::take_from(&mut metadata)?;
        Ok(Self {
            metadata,
            hub,
            spoke: Remainder::default(),
        })
    }

    pub(crate) fn finish(self) -> Result<ObjectMeta, ConversionError> {
        let Self {
            mut metadata,
            hub,
            mut spoke,
        } = self;
        hub.pass_into(&mut spoke);
        spoke.write_to(&mut metadata)?;
        Ok(metadata)
    }
}

pub(crate) fn put_namespace(
    remainder: &mut Remainder,
    key: &str,
    namespace: Option<String>,
) -> Result<(), ConversionError> {
    match namespace {
        Some(ns) => remainder.put(key, &ns),
        None => Ok(()),
    }
}

fn status_to_hub(
    status: &spoke::Status,
    status_namespace: Option<String>,
    hub_remainder: &mut Remainder,
    config: &ConversionConfig,
) -> Result<hub::Status, ConversionError> {
    sync_state_to_hub(&status.synchronization_state, &status.conditions, hub_remainder)?;
    Ok(hub::Status {
        provider: hub::ProviderAndId {
            name: provider_to_hub(
                &status.provider.name,
                status_namespace,
                &config.workflow_namespace,
            ),
            id: status.provider.id.clone(),
        },
        version: status.version.clone(),
        observed_generation: status.observed_generation,
        conditions: status.conditions.clone(),
    })
}

fn status_from_hub(
    status: &hub::Status,
    down: &mut Down,
    config: &ConversionConfig,
) -> Result<spoke::Status, ConversionError> {
    let (name, namespace) = provider_from_hub(&status.provider.name, &config.workflow_namespace);
    put_namespace(&mut down.spoke, keys::PROVIDER_STATUS_NAMESPACE, namespace)?;
    Ok(spoke::Status {
        provider: spoke::ProviderAndId {
            name,
            id: status.provider.id.clone(),
        },
        synchronization_state: sync_state_from_hub(&status.conditions, &mut down.hub)?,
        version: status.version.clone(),
        observed_generation: status.observed_generation,
        conditions: status.conditions.clone(),
    })
}

fn run_spec_to_hub(
    spec: &spoke::RunSpec,
    up: &mut Up,
    config: &ConversionConfig,
) -> Result<hub::RunSpec, ConversionError> {
    let namespace = up.spoke.take(keys::PROVIDER_NAMESPACE)?;
    let optional: Vec<String> = up.spoke.take(keys::OPTIONAL_PARAMETERS)?.unwrap_or_default();
    let options = RunOptions::take(&mut up.spoke)?;
    Ok(hub::RunSpec {
        provider: provider_to_hub(&spec.provider, namespace, &config.workflow_namespace),
        pipeline: spec.pipeline.clone(),
        experiment_name: spec.experiment_name.clone(),
        parameters: parameters_to_hub(&spec.runtime_parameters, &optional),
        artifacts: spec.artifacts.clone(),
        service_account: options.service_account,
        labels: options.labels,
    })
}

fn run_spec_from_hub(
    spec: &hub::RunSpec,
    down: &mut Down,
    config: &ConversionConfig,
) -> Result<spoke::RunSpec, ConversionError> {
    let (provider, namespace) = provider_from_hub(&spec.provider, &config.workflow_namespace);
    put_namespace(&mut down.spoke, keys::PROVIDER_NAMESPACE, namespace)?;
    let (runtime_parameters, optional) = parameters_from_hub(&spec.parameters);
    down.spoke
        .put_nonempty(keys::OPTIONAL_PARAMETERS, &optional, Vec::is_empty)?;
    RunOptions::put(&mut down.spoke, &spec.service_account, &spec.labels)?;
    Ok(spoke::RunSpec {
        provider,
        pipeline: spec.pipeline.clone(),
        experiment_name: spec.experiment_name.clone(),
        runtime_parameters,
        artifacts: spec.artifacts.clone(),
    })
}

impl Spoke for spoke::Pipeline {
    type Hub = hub::Pipeline;

    fn to_hub(&self, config: &ConversionConfig) -> Result<hub::Pipeline, ConversionError> {
        let mut up = Up::new(&self.metadata)?;
        let namespace = up.spoke.take(keys::PROVIDER_NAMESPACE)?;
        let status_namespace = up.spoke.take(keys::PROVIDER_STATUS_NAMESPACE)?;
        let framework = framework_to_hub(
            up.spoke.take(keys::FRAMEWORK)?,
            &self.spec.tfx_components,
            &self.spec.beam_args,
        )?
        .ok_or_else(|| ConversionError::MissingTfxComponents {
            kind: "Pipeline",
            name: object_name(&self.metadata),
        })?;
        let status = self
            .status
            .as_ref()
            .map(|s| status_to_hub(s, status_namespace, &mut up.hub, config))
            .transpose()?;
        Ok(hub::Pipeline {
            spec: hub::PipelineSpec {
                provider: provider_to_hub(&self.spec.provider, namespace, &config.workflow_namespace),
                image: self.spec.image.clone(),
                env: self.spec.env.clone(),
                framework,
            },
            status,
            metadata: up.finish()?,
        })
    }

    fn from_hub(hub: &hub::Pipeline, config: &ConversionConfig) -> Result<Self, ConversionError> {
        let mut down = Down::new(&hub.metadata)?;
        let (provider, namespace) = provider_from_hub(&hub.spec.provider, &config.workflow_namespace);
        put_namespace(&mut down.spoke, keys::PROVIDER_NAMESPACE, namespace)?;
        let (tfx_components, beam_args, stash) = framework_from_hub(&hub.spec.framework)?;
        if let Some(framework) = stash {
            down.spoke.put(keys::FRAMEWORK, &framework)?;
        }
        let status = hub
            .status
            .as_ref()
            .map(|s| status_from_hub(s, &mut down, config))
            .transpose()?;
        Ok(spoke::Pipeline {
            spec: spoke::PipelineSpec {
                provider,
                image: hub.spec.image.clone(),
                tfx_components,
                env: hub.spec.env.clone(),
                beam_args,
            },
            status,
            metadata: down.finish()?,
        })
    }
}

impl Spoke for spoke::Run {
    type Hub = hub::Run;

    fn to_hub(&self, config: &ConversionConfig) -> Result<hub::Run, ConversionError> {
        let mut up = Up::new(&self.metadata)?;
        let spec = run_spec_to_hub(&self.spec, &mut up, config)?;
        let status_namespace = up.spoke.take(keys::PROVIDER_STATUS_NAMESPACE)?;
        let status = match &self.status {
            None => None,
            Some(s) => Some(hub::RunStatus {
                status: status_to_hub(&s.status, status_namespace, &mut up.hub, config)?,
                dependencies: hub::Dependencies {
                    run_configurations: s.dependencies.run_configurations.clone(),
                    pipeline: hub::ObservedPipeline {
                        version: s.observed_pipeline_version.clone(),
                    },
                },
                completion_state: s.completion_state,
                marked_completed_at: s.marked_completed_at.clone(),
            }),
        };
        Ok(hub::Run {
            spec,
            status,
            metadata: up.finish()?,
        })
    }

    fn from_hub(hub: &hub::Run, config: &ConversionConfig) -> Result<Self, ConversionError> {
        let mut down = Down::new(&hub.metadata)?;
        let spec = run_spec_from_hub(&hub.spec, &mut down, config)?;
        let status = match &hub.status {
            None => None,
            Some(s) => Some(spoke::RunStatus {
                status: status_from_hub(&s.status, &mut down, config)?,
                observed_pipeline_version: s.dependencies.pipeline.version.clone(),
                dependencies: spoke::Dependencies {
                    run_configurations: s.dependencies.run_configurations.clone(),
                },
                completion_state: s.completion_state,
                marked_completed_at: s.marked_completed_at.clone(),
            }),
        };
        Ok(spoke::Run {
            spec,
            status,
            metadata: down.finish()?,
        })
    }
}

pub(crate) fn rc_status_to_hub(
    s: &spoke::RunConfigurationStatus,
    status_namespace: Option<String>,
    default_namespace: &str,
    hub_remainder: &mut Remainder,
) -> Result<hub::RunConfigurationStatus, ConversionError> {
    sync_state_to_hub(&s.synchronization_state, &s.conditions, hub_remainder)?;
    Ok(hub::RunConfigurationStatus {
        provider: provider_to_hub(&s.provider, status_namespace, default_namespace),
        latest_runs: s.latest_runs.clone(),
        dependencies: hub::Dependencies {
            run_configurations: s.dependencies.run_configurations.clone(),
            pipeline: hub::ObservedPipeline {
                version: s.observed_pipeline_version.clone(),
            },
        },
        triggers: hub::TriggersStatus {
            run_configurations: s.triggers.run_configurations.clone(),
            run_spec: s.triggers.run_spec.clone(),
            pipeline: hub::TriggeredVersion {
                version: s.triggered_pipeline_version.clone(),
            },
        },
        observed_generation: s.observed_generation,
        conditions: s.conditions.clone(),
    })
}

pub(crate) fn rc_status_from_hub(
    s: &hub::RunConfigurationStatus,
    default_namespace: &str,
    hub_remainder: &mut Remainder,
    spoke_remainder: &mut Remainder,
) -> Result<spoke::RunConfigurationStatus, ConversionError> {
    let (provider, namespace) = provider_from_hub(&s.provider, default_namespace);
    put_namespace(spoke_remainder, keys::PROVIDER_STATUS_NAMESPACE, namespace)?;
    Ok(spoke::RunConfigurationStatus {
        synchronization_state: sync_state_from_hub(&s.conditions, hub_remainder)?,
        provider,
        observed_pipeline_version: s.dependencies.pipeline.version.clone(),
        triggered_pipeline_version: s.triggers.pipeline.version.clone(),
        latest_runs: s.latest_runs.clone(),
        dependencies: spoke::Dependencies {
            run_configurations: s.dependencies.run_configurations.clone(),
        },
        triggers: spoke::TriggersStatus {
            run_configurations: s.triggers.run_configurations.clone(),
            run_spec: s.triggers.run_spec.clone(),
        },
        observed_generation: s.observed_generation,
        conditions: s.conditions.clone(),
    })
}

impl Spoke for spoke::RunConfiguration {
    type Hub = hub::RunConfiguration;

    fn to_hub(&self, config: &ConversionConfig) -> Result<hub::RunConfiguration, ConversionError> {
        let mut up = Up::new(&self.metadata)?;
        let run = run_spec_to_hub(&self.spec.run, &mut up, config)?;
        let status_namespace = up.spoke.take(keys::PROVIDER_STATUS_NAMESPACE)?;
        let status = self
            .status
            .as_ref()
            .map(|s| rc_status_to_hub(s, status_namespace, &config.workflow_namespace, &mut up.hub))
            .transpose()?;
        Ok(hub::RunConfiguration {
            spec: hub::RunConfigurationSpec {
                run,
                triggers: self.spec.triggers.clone(),
            },
            status,
            metadata: up.finish()?,
        })
    }

    fn from_hub(hub: &hub::RunConfiguration, config: &ConversionConfig) -> Result<Self, ConversionError> {
        let mut down = Down::new(&hub.metadata)?;
        let run = run_spec_from_hub(&hub.spec.run, &mut down, config)?;
        let status = match &hub.status {
            None => None,
            Some(s) => Some(rc_status_from_hub(
                s,
                &config.workflow_namespace,
                &mut down.hub,
                &mut down.spoke,
            )?),
        };
        Ok(spoke::RunConfiguration {
            spec: spoke::RunConfigurationSpec {
                run,
                triggers: hub.spec.triggers.clone(),
            },
            status,
            metadata: down.finish()?,
        })
    }
}

impl Spoke for spoke::RunSchedule {
    type Hub = hub::RunSchedule;

    fn to_hub(&self, config: &ConversionConfig) -> Result<hub::RunSchedule, ConversionError> {
        let mut up = Up::new(&self.metadata)?;
        let namespace = up.spoke.take(keys::PROVIDER_NAMESPACE)?;
        let status_namespace = up.spoke.take(keys::PROVIDER_STATUS_NAMESPACE)?;
        let options = RunOptions::take(&mut up.spoke)?;
        let status = self
            .status
            .as_ref()
            .map(|s| status_to_hub(s, status_namespace, &mut up.hub, config))
            .transpose()?;
        Ok(hub::RunSchedule {
            spec: hub::RunScheduleSpec {
                provider: provider_to_hub(&self.spec.provider, namespace, &config.workflow_namespace),
                pipeline: self.spec.pipeline.clone(),
                experiment_name: self.spec.experiment_name.clone(),
                parameters: self.spec.runtime_parameters.clone(),
                artifacts: self.spec.artifacts.clone(),
                service_account: options.service_account,
                labels: options.labels,
                schedule: self.spec.schedule.clone(),
            },
            status,
            metadata: up.finish()?,
        })
    }

    fn from_hub(hub: &hub::RunSchedule, config: &ConversionConfig) -> Result<Self, ConversionError> {
        let mut down = Down::new(&hub.metadata)?;
        let (provider, namespace) = provider_from_hub(&hub.spec.provider, &config.workflow_namespace);
        put_namespace(&mut down.spoke, keys::PROVIDER_NAMESPACE, namespace)?;
        RunOptions::put(&mut down.spoke, &hub.spec.service_account, &hub.spec.labels)?;
        let status = hub
            .status
            .as_ref()
            .map(|s| status_from_hub(s, &mut down, config))
            .transpose()?;
        Ok(spoke::RunSchedule {
            spec: spoke::RunScheduleSpec {
                provider,
                pipeline: hub.spec.pipeline.clone(),
                experiment_name: hub.spec.experiment_name.clone(),
                runtime_parameters: hub.spec.parameters.clone(),
                artifacts: hub.spec.artifacts.clone(),
                schedule: hub.spec.schedule.clone(),
            },
            status,
            metadata: down.finish()?,
        })
    }
}

impl Spoke for spoke::Experiment {
    type Hub = hub::Experiment;

    fn to_hub(&self, config: &ConversionConfig) -> Result<hub::Experiment, ConversionError> {
        let mut up = Up::new(&self.metadata)?;
        let namespace = up.spoke.take(keys::PROVIDER_NAMESPACE)?;
        let status_namespace = up.spoke.take(keys::PROVIDER_STATUS_NAMESPACE)?;
        let status = self
            .status
            .as_ref()
            .map(|s| status_to_hub(s, status_namespace, &mut up.hub, config))
            .transpose()?;
        Ok(hub::Experiment {
            spec: hub::ExperimentSpec {
                provider: provider_to_hub(&self.spec.provider, namespace, &config.workflow_namespace),
                description: self.spec.description.clone(),
            },
            status,
            metadata: up.finish()?,
        })
    }

    fn from_hub(hub: &hub::Experiment, config: &ConversionConfig) -> Result<Self, ConversionError> {
        let mut down = Down::new(&hub.metadata)?;
        let (provider, namespace) = provider_from_hub(&hub.spec.provider, &config.workflow_namespace);
        put_namespace(&mut down.spoke, keys::PROVIDER_NAMESPACE, namespace)?;
        let status = hub
            .status
            .as_ref()
            .map(|s| status_from_hub(s, &mut down, config))
            .transpose()?;
        Ok(spoke::Experiment {
            spec: spoke::ExperimentSpec {
                provider,
                description: hub.spec.description.clone(),
            },
            status,
            metadata: down.finish()?,
        })
    }
}

impl Spoke for spoke::Provider {
    type Hub = hub::Provider;

    fn to_hub(&self, config: &ConversionConfig) -> Result<hub::Provider, ConversionError> {
        let mut up = Up::new(&self.metadata)?;
        let spec = provider_spec_to_hub(&self.spec, &mut up.spoke, &mut up.hub, config)?;
        let status = self
            .status
            .as_ref()
            .map(|s| provider_status_to_hub(s, &mut up.hub))
            .transpose()?;
        Ok(hub::Provider {
            spec,
            status,
            metadata: up.finish()?,
        })
    }

    fn from_hub(hub: &hub::Provider, config: &ConversionConfig) -> Result<Self, ConversionError> {
        let mut down = Down::new(&hub.metadata)?;
        let spec = provider_spec_from_hub(
            &hub.spec,
            &object_name(&hub.metadata),
            "v1alpha6",
            &mut down.hub,
            &mut down.spoke,
            config,
        )?;
        let status = hub
            .status
            .as_ref()
            .map(|s| provider_status_from_hub(s, &mut down.hub))
            .transpose()?;
        Ok(spoke::Provider {
            spec,
            status,
            metadata: down.finish()?,
        })
    }
}
