//! What a provider author writes: a `Provider` and an `EventSource` outside this crate, registered and built by
//! type name, driven as trait objects.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, RunDefinition, RunScheduleDefinition,
};
use kfp_core::event::RunCompletionEventData;
use kfp_core::provider::{
    DeliveryOutcome, DeliveryReceipt, EventDelivery, EventSource, Provider, ProviderConfig, ProviderError,
};
use kfp_core::registry::ProviderRegistry;
use kfp_core::values::{NamespacedName, OutputArtifact};

/// A backend that only knows runs.
struct RunsOnly {
    prefix: String,
}

#[async_trait::async_trait]
impl Provider for RunsOnly {
    async fn create_pipeline(&self, _: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
        Err(ProviderError::unimplemented("pipelines are not supported"))
    }
    async fn update_pipeline(&self, _: &PipelineDefinitionWrapper, _: &str) -> Result<String, ProviderError> {
        Err(ProviderError::unimplemented("pipelines are not supported"))
    }
    async fn delete_pipeline(&self, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn create_run(&self, run: &RunDefinition) -> Result<String, ProviderError> {
        if run.pipeline_name.name.is_empty() {
            return Err(ProviderError::invalid(format!(
                "run {} names no pipeline",
                run.name
            )));
        }
        Ok(format!("{}-{}", self.prefix, run.name.name))
    }
    async fn delete_run(&self, id: &str) -> Result<(), ProviderError> {
        Err(ProviderError::not_found(format!("run {id} does not exist")))
    }
    async fn create_run_schedule(&self, _: &RunScheduleDefinition) -> Result<String, ProviderError> {
        Err(ProviderError::transient("scheduler unavailable"))
    }
    async fn update_run_schedule(&self, _: &RunScheduleDefinition, _: &str) -> Result<String, ProviderError> {
        Err(ProviderError::transient("scheduler unavailable"))
    }
    async fn delete_run_schedule(&self, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn create_experiment(&self, _: &ExperimentDefinition) -> Result<String, ProviderError> {
        Err(ProviderError::unimplemented("experiments are not supported"))
    }
    async fn update_experiment(&self, _: &ExperimentDefinition, _: &str) -> Result<String, ProviderError> {
        Err(ProviderError::unimplemented("experiments are not supported"))
    }
    async fn delete_experiment(&self, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// An in-memory queue that redelivers failed events, recording what was settled.
struct Queue {
    pending: VecDeque<EventDelivery>,
    settled: Arc<Mutex<Vec<(String, DeliveryOutcome)>>>,
}

#[async_trait::async_trait]
impl EventSource for Queue {
    async fn next_event(&mut self) -> Result<Option<EventDelivery>, ProviderError> {
        Ok(self.pending.pop_front())
    }

    async fn settle(
        &mut self,
        receipt: DeliveryReceipt,
        outcome: DeliveryOutcome,
    ) -> Result<(), ProviderError> {
        self.settled
            .lock()
            .map_err(|e| ProviderError::transient(e.to_string()))?
            .push((receipt.0, outcome));
        Ok(())
    }
}

fn event(run_id: &str) -> RunCompletionEventData {
    serde_json::from_value(serde_json::json!({
        "status": "succeeded", "pipelineName": "ns/p", "runConfigurationName": "ns/rc", "runId": run_id,
        "provider": "ops/mine",
        "pipelineComponents": [{"name": "Trainer", "componentArtifacts": [
            {"name": "model", "artifacts": [{"uri": format!("gs://b/{run_id}"), "metadata": {"score": 0.9}}]}
        ]}]
    }))
    .unwrap()
}

#[tokio::test]
async fn a_provider_of_your_own() {
    let settled = Arc::new(Mutex::new(Vec::new()));
    let for_source = settled.clone();
    let mut registry = ProviderRegistry::new();
    registry
        .register_with_events(
            "mine",
            |config: &ProviderConfig| {
                let prefix = config
                    .parameter_string("runPrefix")
                    .ok_or_else(|| ProviderError::invalid("parameter runPrefix is required"))?;
                Ok(Arc::new(RunsOnly { prefix }) as Arc<dyn Provider>)
            },
            move |_: &ProviderConfig| {
                let pending = ["r1", "r2"]
                    .into_iter()
                    .map(|id| EventDelivery {
                        event: event(id),
                        receipt: DeliveryReceipt(id.into()),
                    })
                    .collect();
                Ok(Box::new(Queue {
                    pending,
                    settled: for_source.clone(),
                }) as Box<dyn EventSource>)
            },
        )
        .unwrap();

    let env = [("PROVIDERNAME", "ops/mine"), ("PARAMETERS_RUNPREFIX", "mine")];
    let config = ProviderConfig::from_env_vars(env).unwrap();
    let provider = registry.build("mine", &config).unwrap();

    let run = RunDefinition {
        name: NamespacedName::new("ns", "run-1"),
        pipeline_name: NamespacedName::new("ns", "p"),
        ..Default::default()
    };
    assert_eq!(provider.create_run(&run).await, Ok("mine-run-1".to_string()));
    let invalid = provider.create_run(&RunDefinition::default()).await.unwrap_err();
    assert!(invalid.is_permanent() && invalid.http_status() == 400);
    assert!(provider.delete_run("x").await.unwrap_err().is_not_found());
    let transient = provider
        .create_run_schedule(&RunScheduleDefinition::default())
        .await
        .unwrap_err();
    assert!(!transient.is_permanent() && transient.http_status() == 500);
    assert_eq!(
        provider
            .create_experiment(&ExperimentDefinition::default())
            .await
            .unwrap_err()
            .http_status(),
        501
    );

    let missing = registry
        .build("mine", &ProviderConfig::new(config.name.clone()))
        .err()
        .unwrap();
    assert_eq!(
        missing.to_string(),
        "cannot build provider type \"mine\": parameter runPrefix is required"
    );

    // The delivery loop of a provider service, with the operator answering 200 then 410.
    let outputs: Vec<OutputArtifact> =
        serde_json::from_value(serde_json::json!([{"name": "model", "path": "Trainer:model[score > 0.5]"}]))
            .unwrap();
    let mut source = registry.build_event_source("mine", &config).unwrap();
    let mut answers = [200u16, 410].into_iter();
    let mut published = Vec::new();
    while let Some(delivery) = source.next_event().await.unwrap() {
        published.push(delivery.event.to_event(&outputs));
        let outcome = DeliveryOutcome::from_http_status(answers.next().unwrap_or(500));
        source.settle(delivery.receipt, outcome).await.unwrap();
    }
    assert_eq!(published[1].artifacts[0].location, "gs://b/r2");
    assert_eq!(
        *settled.lock().unwrap(),
        vec![
            ("r1".to_string(), DeliveryOutcome::Delivered),
            ("r2".to_string(), DeliveryOutcome::Rejected)
        ]
    );
}
