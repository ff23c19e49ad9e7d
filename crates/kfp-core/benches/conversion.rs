//! Conversion webhook cost: a v1alpha6 Pipeline and a v1alpha5 RunConfiguration round trip through the hub.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kfp_core::conversion::{ConversionConfig, convert};
use kfp_core::values::NamespacedName;
use serde_json::json;

fn config() -> ConversionConfig {
    ConversionConfig {
        workflow_namespace: "kfp-operator-system".into(),
        default_tfx_image: "kfp-operator/tfx-compiler:latest".into(),
        default_provider: NamespacedName::new("kfp-operator-system", "kfp"),
        default_framework: "tfx".into(),
    }
}

fn round_trips(c: &mut Criterion) {
    let config = config();
    let pipeline = json!({"apiVersion": "pipelines.kubeflow.org/v1alpha6", "kind": "Pipeline",
        "metadata": {"name": "penguin", "namespace": "default"},
        "spec": {"provider": "kfp", "image": "kfp-quickstart:v1", "tfxComponents": "penguin.pipeline.create_components",
                 "env": [{"name": "TRAINING_STEPS", "value": "100"}], "beamArgs": [{"name": "anArg", "value": "aValue"}]},
        "status": {"synchronizationState": "Succeeded", "version": "v1-abc123", "provider": {"name": "kfp", "id": "p-1"}}});
    let run_configuration = json!({"apiVersion": "pipelines.kubeflow.org/v1alpha5", "kind": "RunConfiguration",
        "metadata": {"name": "training", "namespace": "default", "annotations": {"pipelines.kubeflow.org/provider": "kfp"}},
        "spec": {"run": {"pipeline": "penguin", "experimentName": "Default",
                         "runtimeParameters": {"learning_rate": "0.01", "epochs": "3"}},
                 "triggers": {"schedules": ["0 * * * *"], "onChange": ["pipeline", "runSpec"]}}});
    c.bench_function("v1alpha6 Pipeline -> v1beta1 -> v1alpha6", |b| {
        b.iter(|| {
            let hub = convert(
                black_box(pipeline.clone()),
                "pipelines.kubeflow.org/v1beta1",
                &config,
            );
            hub.and_then(|h| convert(h, "pipelines.kubeflow.org/v1alpha6", &config))
        })
    });
    c.bench_function("v1alpha5 RunConfiguration -> v1beta1 -> v1alpha5", |b| {
        b.iter(|| {
            let hub = convert(
                black_box(run_configuration.clone()),
                "pipelines.kubeflow.org/v1beta1",
                &config,
            );
            hub.and_then(|h| convert(h, "pipelines.kubeflow.org/v1alpha5", &config))
        })
    });
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
