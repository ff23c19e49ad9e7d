//! RunConfiguration planning, in sync (the common reconcile: nothing to do).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use kfp_core::reconcile::dependencies::PipelineObservation;
use kfp_core::reconcile::run_configuration::{self, Observed};
use kfp_core::reconcile::synchronized_condition;
use kfp_core::resources::v1beta1::{RunConfiguration, RunConfigurationStatus, Status};
use kfp_core::values::SynchronizationState;
use kfp_core::version;

const STUB_RC: &str = r#"{
  "apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "RunConfiguration",
  "metadata": {"name": "stub-runconfiguration", "namespace": "default", "uid": "rc-uid", "generation": 2},
  "spec": {
    "run": {"provider": "kfp-operator-system/stub", "pipeline": "stub-pipeline", "experimentName": "Default",
            "parameters": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]},
    "triggers": {"onChange": ["pipeline", "runSpec"], "schedules": [
      {"cronExpression": "0 * * * *", "startTime": "2025-01-01T00:00:00Z", "endTime": "2030-12-31T23:59:59Z"},
      {"cronExpression": "30 2 * * 1"}]}
  }
}"#;

fn in_sync() -> Observed {
    let now = Time(Timestamp::UNIX_EPOCH);
    let mut rc: RunConfiguration = serde_json::from_str(STUB_RC).unwrap();
    let mut status = RunConfigurationStatus::default();
    status.dependencies.pipeline.version = "v1".into();
    status.triggers.pipeline.version = "v1".into();
    status.triggers.run_spec.version = version::run_spec_version(&rc.spec.run, version::HashAlgorithm::Head);
    status.provider = rc.spec.run.provider.clone();
    status.observed_generation = 2;
    status.conditions = vec![synchronized_condition(
        SynchronizationState::Succeeded,
        "",
        2,
        &now,
    )];
    rc.status = Some(status.clone());
    let params = vec![
        kfp_core::values::NamedValue::new("a", "1"),
        kfp_core::values::NamedValue::new("b", "2"),
    ];
    let run_schedules = run_configuration::desired_run_schedules(&rc, &status, "default", &params)
        .into_iter()
        .enumerate()
        .map(|(i, mut rs)| {
            rs.metadata.name = Some(format!("stub-runconfiguration-{i}"));
            let condition = synchronized_condition(SynchronizationState::Succeeded, "", 1, &now);
            rs.status = Some(Status {
                conditions: vec![condition],
                ..Status::default()
            });
            rs
        })
        .collect();
    Observed {
        run_configuration: rc,
        pipeline: Some(PipelineObservation {
            state: SynchronizationState::Succeeded,
            version: "v1".into(),
        }),
        run_configurations: BTreeMap::new(),
        run_schedules,
        runs: Vec::new(),
        now,
    }
}

fn bench(c: &mut Criterion) {
    let observed = in_sync();
    assert!(
        run_configuration::plan(&observed).commands.is_empty(),
        "the bench input must be in sync"
    );
    c.bench_function("plan_rc_in_sync", |b| {
        b.iter(|| run_configuration::plan(std::hint::black_box(&observed)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
