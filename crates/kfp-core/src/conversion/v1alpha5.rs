//! `v1alpha5` <-> `v1beta1` (docs/webhooks.md, "The conversion webhook"): the provider annotation, list or map
//! `runtimeParameters`, cron-string schedules. Every v1alpha5 object round-trips through the hub unchanged.

use std::collections::{BTreeMap, BTreeSet};

use super::v1alpha6::{Down, Up, object_name, put_namespace, rc_status_from_hub, rc_status_to_hub};
use super::{
    ConversionConfig, ConversionError, Remainder, RunOptions, Spoke, framework_from_hub, framework_to_hub,
    keys, parameters_from_hub, parameters_to_hub, provider_from_hub, provider_spec_from_hub,
    provider_spec_to_hub, provider_status_from_hub, provider_status_to_hub, provider_to_hub,
    remove_annotation, set_annotation, sync_state_from_hub, sync_state_to_hub,
};
use crate::resources::labels::PROVIDER_ANNOTATION;
use crate::resources::v1alpha5 as spoke;
use crate::resources::v1alpha5::RuntimeParameters;
use crate::resources::v1alpha6;
use crate::resources::v1beta1 as hub;
use crate::values::{NamedValue, NamespacedName};

const MAP_FORM: &str = "map";

/// The annotation's provider, in the remainder's namespace or the default provider's; none -> the default provider.
fn provider_to_hub_annotation(
    up: &mut Up,
    config: &ConversionConfig,
) -> Result<NamespacedName, ConversionError> {
    let name = remove_annotation(&mut up.metadata, PROVIDER_ANNOTATION);
    let namespace = up.spoke.take(keys::PROVIDER_NAMESPACE)?;
    match name {
        Some(name) if !name.is_empty() => Ok(provider_to_hub(
            &name,
            namespace,
            &config.default_provider.namespace,
        )),
        _ => {
            up.hub.put(keys::PROVIDER_DEFAULTED, &true)?;
            Ok(config.default_provider.clone())
        }
    }
}

fn provider_from_hub_annotation(
    provider: &NamespacedName,
    down: &mut Down,
    config: &ConversionConfig,
) -> Result<(), ConversionError> {
    let defaulted: bool = down.hub.take(keys::PROVIDER_DEFAULTED)?.unwrap_or(false);
    if defaulted && *provider == config.default_provider {
        return Ok(());
    }
    let (name, namespace) = provider_from_hub(provider, &config.default_provider.namespace);
    set_annotation(&mut down.metadata, PROVIDER_ANNOTATION, &name);
    put_namespace(&mut down.spoke, keys::PROVIDER_NAMESPACE, namespace)
}

fn status_to_hub(
    status: &spoke::Status,
    provider: Option<NamespacedName>,
    hub_remainder: &mut Remainder,
) -> Result<hub::Status, ConversionError> {
    sync_state_to_hub(&status.synchronization_state, &status.conditions, hub_remainder)?;
    Ok(hub::Status {
        provider: hub::ProviderAndId {
            name: provider.unwrap_or_default(),
            id: status.provider_id.clone(),
        },
        version: status.version.clone(),
        observed_generation: status.observed_generation,
        conditions: status.conditions.clone(),
    })
}

fn status_from_hub(status: &hub::Status, down: &mut Down) -> Result<spoke::Status, ConversionError> {
    down.spoke.put_nonempty(
        keys::PROVIDER_STATUS_NAME,
        &status.provider.name,
        NamespacedName::is_empty,
    )?;
    Ok(spoke::Status {
        provider_id: status.provider.id.clone(),
        synchronization_state: sync_state_from_hub(&status.conditions, &mut down.hub)?,
        version: status.version.clone(),
        observed_generation: status.observed_generation,
        conditions: status.conditions.clone(),
    })
}

/// Either form to hub parameters (the map form sorted by name, and remembered on the hub).
fn runtime_parameters_to_hub(
    params: &RuntimeParameters,
    up: &mut Up,
) -> Result<Vec<hub::Parameter>, ConversionError> {
    let optional: Vec<String> = up.spoke.take(keys::OPTIONAL_PARAMETERS)?.unwrap_or_default();
    match params {
        RuntimeParameters::List(list) => Ok(parameters_to_hub(list, &optional)),
        RuntimeParameters::Map(map) => {
            if !map.is_empty() {
                up.hub.put(keys::RUNTIME_PARAMETERS_FORM, &MAP_FORM)?;
            }
            Ok(map
                .iter()
                .map(|(name, value)| hub::Parameter {
                    name: name.clone(),
                    value: value.clone(),
                    value_from: None,
                })
                .collect())
        }
    }
}

/// The map form again when it was the original one and the parameters still fit it (values only, unique names).
fn runtime_parameters_from_hub(
    params: &[hub::Parameter],
    down: &mut Down,
) -> Result<RuntimeParameters, ConversionError> {
    let form: Option<String> = down.hub.take(keys::RUNTIME_PARAMETERS_FORM)?;
    let (list, optional) = parameters_from_hub(params);
    down.spoke
        .put_nonempty(keys::OPTIONAL_PARAMETERS, &optional, Vec::is_empty)?;
    let unique = list.iter().map(|p| &p.name).collect::<BTreeSet<_>>().len() == list.len();
    if form.as_deref() == Some(MAP_FORM) && unique && list.iter().all(|p| p.value_from.is_none()) {
        Ok(RuntimeParameters::Map(
            list.into_iter()
                .map(|p| (p.name, p.value))
                .collect::<BTreeMap<_, _>>(),
        ))
    } else {
        Ok(RuntimeParameters::List(list))
    }
}

fn run_spec_to_hub(
    spec: &spoke::RunSpec,
    provider: NamespacedName,
    up: &mut Up,
) -> Result<hub::RunSpec, ConversionError> {
    let options = RunOptions::take(&mut up.spoke)?;
    Ok(hub::RunSpec {
        provider,
        pipeline: spec.pipeline.clone(),
        experiment_name: spec.experiment_name.clone(),
        parameters: runtime_parameters_to_hub(&spec.runtime_parameters, up)?,
        artifacts: spec.artifacts.clone(),
        service_account: options.service_account,
        labels: options.labels,
    })
}

fn run_spec_from_hub(spec: &hub::RunSpec, down: &mut Down) -> Result<spoke::RunSpec, ConversionError> {
    RunOptions::put(&mut down.spoke, &spec.service_account, &spec.labels)?;
    Ok(spoke::RunSpec {
        pipeline: spec.pipeline.clone(),
        experiment_name: spec.experiment_name.clone(),
        runtime_parameters: runtime_parameters_from_hub(&spec.parameters, down)?,
        artifacts: spec.artifacts.clone(),
    })
}

impl Spoke for spoke::Pipeline {
    type Hub = hub::Pipeline;

    fn to_hub(&self, config: &ConversionConfig) -> Result<hub::Pipeline, ConversionError> {
        let mut up = Up::new(&self.metadata)?;
        let provider = provider_to_hub_annotation(&mut up, config)?;
        let status_provider = up.spoke.take(keys::PROVIDER_STATUS_NAME)?;
        let framework = framework_to_hub(
            up.spoke.take(keys::FRAMEWORK)?,
            &self.spec.tfx_components,
            &self.spec.beam_args,
        )?
        .unwrap_or_else(|| hub::PipelineFramework {
            name: config.default_framework.clone(),
            parameters: Default::default(),
        });
        let status = self
            .status
            .as_ref()
            .map(|s| status_to_hub(s, status_provider, &mut up.hub))
            .transpose()?;
        Ok(hub::Pipeline {
            spec: hub::PipelineSpec {
                provider,
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
        provider_from_hub_annotation(&hub.spec.provider, &mut down, config)?;
        let default = hub::PipelineFramework {
            name: config.default_framework.clone(),
            parameters: Default::default(),
        };
        let (tfx_components, beam_args) = if hub.spec.framework == default {
            (String::new(), Vec::new())
        } else {
            let (components, beam_args, stash) = framework_from_hub(&hub.spec.framework)?;
            if let Some(framework) = stash {
                down.spoke.put(keys::FRAMEWORK, &framework)?;
            }
            (components, beam_args)
        };
        let status = hub
            .status
            .as_ref()
            .map(|s| status_from_hub(s, &mut down))
            .transpose()?;
        Ok(spoke::Pipeline {
            spec: spoke::PipelineSpec {
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
        let provider = provider_to_hub_annotation(&mut up, config)?;
        let status_provider = up.spoke.take(keys::PROVIDER_STATUS_NAME)?;
        let spec = run_spec_to_hub(&self.spec, provider, &mut up)?;
        let status = match &self.status {
            None => None,
            Some(s) => Some(hub::RunStatus {
                status: status_to_hub(&s.status, status_provider, &mut up.hub)?,
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
        provider_from_hub_annotation(&hub.spec.provider, &mut down, config)?;
        let spec = run_spec_from_hub(&hub.spec, &mut down)?;
        let status = match &hub.status {
            None => None,
            Some(s) => Some(spoke::RunStatus {
                status: status_from_hub(&s.status, &mut down)?,
                observed_pipeline_version: s.dependencies.pipeline.version.clone(),
                dependencies: v1alpha6::Dependencies {
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

impl Spoke for spoke::RunConfiguration {
    type Hub = hub::RunConfiguration;

    fn to_hub(&self, config: &ConversionConfig) -> Result<hub::RunConfiguration, ConversionError> {
        let mut up = Up::new(&self.metadata)?;
        let provider = provider_to_hub_annotation(&mut up, config)?;
        let run = run_spec_to_hub(&self.spec.run, provider, &mut up)?;
        let stashed: Option<Vec<hub::Schedule>> = up.spoke.take(keys::SCHEDULES)?;
        let schedules = match stashed {
            Some(s)
                if s.iter()
                    .map(|s| &s.cron_expression)
                    .eq(self.spec.triggers.schedules.iter()) =>
            {
                s
            }
            _ => self
                .spec
                .triggers
                .schedules
                .iter()
                .map(|cron| hub::Schedule {
                    cron_expression: cron.clone(),
                    start_time: None,
                    end_time: None,
                })
                .collect(),
        };
        let status_namespace = up.spoke.take(keys::PROVIDER_STATUS_NAMESPACE)?;
        let status = self
            .status
            .as_ref()
            .map(|s| {
                rc_status_to_hub(
                    s,
                    status_namespace,
                    &config.default_provider.namespace,
                    &mut up.hub,
                )
            })
            .transpose()?;
        Ok(hub::RunConfiguration {
            spec: hub::RunConfigurationSpec {
                run,
                triggers: hub::Triggers {
                    schedules,
                    on_change: self.spec.triggers.on_change.clone(),
                    run_configurations: self.spec.triggers.run_configurations.clone(),
                },
            },
            status,
            metadata: up.finish()?,
        })
    }

    fn from_hub(hub: &hub::RunConfiguration, config: &ConversionConfig) -> Result<Self, ConversionError> {
        let mut down = Down::new(&hub.metadata)?;
        provider_from_hub_annotation(&hub.spec.run.provider, &mut down, config)?;
        let run = run_spec_from_hub(&hub.spec.run, &mut down)?;
        let schedules = &hub.spec.triggers.schedules;
        if schedules
            .iter()
            .any(|s| s.start_time.is_some() || s.end_time.is_some())
        {
            down.spoke.put(keys::SCHEDULES, schedules)?;
        }
        let status = match &hub.status {
            None => None,
            Some(s) => Some(rc_status_from_hub(
                s,
                &config.default_provider.namespace,
                &mut down.hub,
                &mut down.spoke,
            )?),
        };
        Ok(spoke::RunConfiguration {
            spec: spoke::RunConfigurationSpec {
                run,
                triggers: spoke::Triggers {
                    schedules: schedules.iter().map(|s| s.cron_expression.clone()).collect(),
                    on_change: hub.spec.triggers.on_change.clone(),
                    run_configurations: hub.spec.triggers.run_configurations.clone(),
                },
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
        let provider = provider_to_hub_annotation(&mut up, config)?;
        let status_provider = up.spoke.take(keys::PROVIDER_STATUS_NAME)?;
        let options = RunOptions::take(&mut up.spoke)?;
        let parameters = runtime_parameters_to_hub(&self.spec.runtime_parameters, &mut up)?
            .into_iter()
            .enumerate()
            .map(|(i, p)| match p.value_from {
                None => Ok(NamedValue {
                    name: p.name,
                    value: p.value,
                }),
                Some(_) => Err(ConversionError::InvalidField {
                    field: format!("spec.runtimeParameters[{i}].valueFrom"),
                    reason: format!(
                        "parameter {:?} of a RunSchedule takes a value only, not valueFrom",
                        p.name
                    ),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stashed: Option<hub::Schedule> = up.spoke.take(keys::SCHEDULE)?;
        let schedule = match stashed {
            Some(s) if s.cron_expression == self.spec.schedule => s,
            _ => hub::Schedule {
                cron_expression: self.spec.schedule.clone(),
                start_time: None,
                end_time: None,
            },
        };
        let status = self
            .status
            .as_ref()
            .map(|s| status_to_hub(s, status_provider, &mut up.hub))
            .transpose()?;
        Ok(hub::RunSchedule {
            spec: hub::RunScheduleSpec {
                provider,
                pipeline: self.spec.pipeline.clone(),
                experiment_name: self.spec.experiment_name.clone(),
                parameters,
                artifacts: self.spec.artifacts.clone(),
                service_account: options.service_account,
                labels: options.labels,
                schedule,
            },
            status,
            metadata: up.finish()?,
        })
    }

    fn from_hub(hub: &hub::RunSchedule, config: &ConversionConfig) -> Result<Self, ConversionError> {
        let mut down = Down::new(&hub.metadata)?;
        provider_from_hub_annotation(&hub.spec.provider, &mut down, config)?;
        let parameters: Vec<hub::Parameter> = hub
            .spec
            .parameters
            .iter()
            .map(|p| hub::Parameter {
                name: p.name.clone(),
                value: p.value.clone(),
                value_from: None,
            })
            .collect();
        let runtime_parameters = runtime_parameters_from_hub(&parameters, &mut down)?;
        RunOptions::put(&mut down.spoke, &hub.spec.service_account, &hub.spec.labels)?;
        let schedule = &hub.spec.schedule;
        if schedule.start_time.is_some() || schedule.end_time.is_some() {
            down.spoke.put(keys::SCHEDULE, schedule)?;
        }
        let status = hub
            .status
            .as_ref()
            .map(|s| status_from_hub(s, &mut down))
            .transpose()?;
        Ok(spoke::RunSchedule {
            spec: spoke::RunScheduleSpec {
                pipeline: hub.spec.pipeline.clone(),
                experiment_name: hub.spec.experiment_name.clone(),
                runtime_parameters,
                artifacts: hub.spec.artifacts.clone(),
                schedule: schedule.cron_expression.clone(),
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
        let provider = provider_to_hub_annotation(&mut up, config)?;
        let status_provider = up.spoke.take(keys::PROVIDER_STATUS_NAME)?;
        let status = self
            .status
            .as_ref()
            .map(|s| status_to_hub(s, status_provider, &mut up.hub))
            .transpose()?;
        Ok(hub::Experiment {
            spec: hub::ExperimentSpec {
                provider,
                description: self.spec.description.clone(),
            },
            status,
            metadata: up.finish()?,
        })
    }

    fn from_hub(hub: &hub::Experiment, config: &ConversionConfig) -> Result<Self, ConversionError> {
        let mut down = Down::new(&hub.metadata)?;
        provider_from_hub_annotation(&hub.spec.provider, &mut down, config)?;
        let status = hub
            .status
            .as_ref()
            .map(|s| status_from_hub(s, &mut down))
            .transpose()?;
        Ok(spoke::Experiment {
            spec: spoke::ExperimentSpec {
                description: hub.spec.description.clone(),
            },
            status,
            metadata: down.finish()?,
        })
    }
}

fn provider_spec_to_a6(s: &spoke::ProviderSpec) -> v1alpha6::ProviderSpec {
    v1alpha6::ProviderSpec {
        service_image: s.service_image.clone(),
        image: s.image.clone(),
        execution_mode: s.execution_mode.clone(),
        service_account: s.service_account.clone(),
        default_beam_args: s.default_beam_args.clone(),
        pipeline_root_storage: s.pipeline_root_storage.clone(),
        parameters: s.parameters.clone(),
    }
}

fn provider_spec_from_a6(s: v1alpha6::ProviderSpec) -> spoke::ProviderSpec {
    spoke::ProviderSpec {
        service_image: s.service_image,
        image: s.image,
        execution_mode: s.execution_mode,
        service_account: s.service_account,
        default_beam_args: s.default_beam_args,
        pipeline_root_storage: s.pipeline_root_storage,
        parameters: s.parameters,
    }
}

impl Spoke for spoke::Provider {
    type Hub = hub::Provider;

    fn to_hub(&self, config: &ConversionConfig) -> Result<hub::Provider, ConversionError> {
        let mut up = Up::new(&self.metadata)?;
        let spec = provider_spec_to_hub(
            &provider_spec_to_a6(&self.spec),
            &mut up.spoke,
            &mut up.hub,
            config,
        )?;
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
            "v1alpha5",
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
            spec: provider_spec_from_a6(spec),
            status,
            metadata: down.finish()?,
        })
    }
}
