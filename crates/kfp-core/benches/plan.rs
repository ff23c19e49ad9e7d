//! `plan` latency: a Pipeline in Succeeded-and-unchanged (the common steady state) and Unknown (create), and a Run.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::reconcile::generic::{Observed, plan_pipeline};
use kfp_core::reconcile::run::{PipelineObservation, RunInputs, plan_run};
use kfp_core::reconcile::synchronized_condition;
use kfp_core::resources::FINALIZER;
use kfp_core::resources::v1beta1::*;
use kfp_core::values::{NamespacedName, PipelineIdentifier, SynchronizationState};
use kfp_core::version;

fn now() -> Time {
    Time("2024-01-01T00:00:00Z".parse().unwrap_or_default())
}

fn provider() -> Provider {
    let mut p = Provider::new(
        "kfp",
        ProviderSpec {
            frameworks: vec![Framework {
                name: "tfx".into(),
                image: "compiler:1".into(),
                patches: vec![],
            }],
            ..Default::default()
        },
    );
    p.metadata.namespace = Some("prov".into());
    p
}

fn pipeline() -> Pipeline {
    let mut p = Pipeline::new(
        "p",
        PipelineSpec {
            provider: NamespacedName::new("prov", "kfp"),
            image: "img:1".into(),
            env: vec![],
            framework: PipelineFramework {
                name: "tfx".into(),
                parameters: BTreeMap::from([("components".into(), "m.create_components".into())]),
            },
        },
    );
    p.metadata.namespace = Some("ns".into());
    p.metadata.generation = Some(1);
    p.metadata.finalizers = Some(vec![FINALIZER.into()]);
    p
}

fn bench(c: &mut Criterion) {
    let prov = provider();
    let unknown = pipeline();
    let mut succeeded = pipeline();
    succeeded.status = Some(Status {
        provider: ProviderAndId {
            name: NamespacedName::new("prov", "kfp"),
            id: "id-1".into(),
        },
        version: version::pipeline_version(&succeeded.spec, version::HashAlgorithm::Head),
        observed_generation: 1,
        conditions: vec![synchronized_condition(
            SynchronizationState::Succeeded,
            "",
            1,
            &now(),
        )],
    });
    c.bench_function("plan_pipeline/succeeded_unchanged", |b| {
        b.iter(|| {
            plan_pipeline(black_box(&Observed {
                resource: &succeeded,
                provider: Some(&prov),
                outcomes: &[],
                now: now(),
                finds_by_identity: false,
            }))
        })
    });
    c.bench_function("plan_pipeline/unknown_create", |b| {
        b.iter(|| {
            plan_pipeline(black_box(&Observed {
                resource: &unknown,
                provider: Some(&prov),
                outcomes: &[],
                now: now(),
                finds_by_identity: false,
            }))
        })
    });
    let mut run = Run::new(
        "r",
        RunSpec {
            provider: NamespacedName::new("prov", "kfp"),
            pipeline: PipelineIdentifier::new("p", ""),
            experiment_name: String::new(),
            parameters: vec![Parameter {
                name: "a".into(),
                value: "1".into(),
                value_from: None,
            }],
            ..RunSpec::default()
        },
    );
    run.metadata.namespace = Some("ns".into());
    run.metadata.generation = Some(1);
    run.metadata.finalizers = Some(vec![FINALIZER.into()]);
    run.status = Some(RunStatus {
        dependencies: Dependencies {
            run_configurations: BTreeMap::new(),
            pipeline: ObservedPipeline {
                version: "pv1".into(),
            },
        },
        ..Default::default()
    });
    let inputs = RunInputs {
        pipeline: Some(PipelineObservation {
            state: SynchronizationState::Succeeded,
            version: "pv1".into(),
        }),
        ..Default::default()
    };
    c.bench_function("plan_run/create", |b| {
        b.iter(|| {
            plan_run(
                black_box(&Observed {
                    resource: &run,
                    provider: Some(&prov),
                    outcomes: &[],
                    now: now(),
                    finds_by_identity: false,
                }),
                &inputs,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
