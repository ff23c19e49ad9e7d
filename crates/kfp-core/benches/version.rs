//! Version hashing of typical specs: `cargo bench -p kfp-core --bench version`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kfp_core::resources::v1beta1::{PipelineSpec, RunScheduleSpec, RunSpec};
use kfp_core::version::{
    HashAlgorithm, pipeline_version, run_schedule_version, run_spec_version, run_version,
};

/// The pipeline-tfx fixture's spec.
const PIPELINE_TFX: &str = r#"{"provider": "kfp-operator-system/stub", "image": "kfp-quickstart:v1",
  "env": [{"name": "TRAINING_STEPS", "value": "100"}],
  "framework": {"name": "tfx", "parameters": {"components": "penguin_pipeline.pipeline.create_components",
    "beamArgs": [{"name": "anArg", "value": "aValue"}]}}}"#;

/// The runschedule fixture's spec.
const RUN_SCHEDULE: &str = r#"{"provider": "kfp-operator-system/stub", "pipeline": "penguin-pipeline",
  "experimentName": "penguin-experiment", "parameters": [{"name": "TRAINING_RUNS", "value": "100"}],
  "schedule": {"cronExpression": "0 * * * *", "startTime": "2024-01-01T00:00:00Z", "endTime": "2024-12-31T23:59:59Z"}}"#;

/// The run fixture's spec.
const RUN: &str = r#"{"provider": "kfp-operator-system/stub", "pipeline": "penguin-pipeline",
  "experimentName": "penguin-experiment", "parameters": [{"name": "TRAINING_RUNS", "value": "100"},
    {"name": "EXAMPLES", "valueFrom": {"runConfigurationRef": {"name": "base-namespace/penguin-pipeline-examples-rc",
      "outputArtifact": "examples"}}}],
  "artifacts": [{"name": "serving-model", "path": "Pusher:pushed_model:0[pushed == 1]"}]}"#;

fn version(c: &mut Criterion) {
    let Ok(pipeline) = serde_json::from_str::<PipelineSpec>(PIPELINE_TFX) else {
        return;
    };
    let Ok(schedule) = serde_json::from_str::<RunScheduleSpec>(RUN_SCHEDULE) else {
        return;
    };
    let Ok(run) = serde_json::from_str::<RunSpec>(RUN) else {
        return;
    };
    c.bench_function("pipeline_version (pipeline-tfx)", |b| {
        b.iter(|| pipeline_version(black_box(&pipeline), HashAlgorithm::Head))
    });
    c.bench_function("run_schedule_version (runschedule)", |b| {
        b.iter(|| run_schedule_version(black_box(&schedule), HashAlgorithm::Head))
    });
    c.bench_function("run_spec_version (run)", |b| {
        b.iter(|| run_spec_version(black_box(&run), HashAlgorithm::Head))
    });
    c.bench_function("run_version (run)", |b| {
        b.iter(|| run_version(black_box(&run), black_box("v1-3929ba"), HashAlgorithm::Head))
    });
}

criterion_group!(benches, version);
criterion_main!(benches);
