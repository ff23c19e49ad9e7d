//! The REST artifact resolver against the in-process fake v2beta1 API: a run's task details and `GetArtifact`
//! become `pipelineComponents` that kfp_core's artifact selection resolves.

use std::time::Duration;

use kfp_core::artifact::select_artifacts;
use kfp_core::provider::Provider;
use kfp_core::values::{Artifact, NamespacedName, OutputArtifact};
use kfp_providers::conformance::ConformanceFixtures;
use kfp_providers::kfp::api::Run;
use kfp_providers::kfp::artifacts::{ArtifactResolver, RestArtifactResolver};
use kfp_providers::kfp::fake::FakeKfp;
use kfp_providers::kfp::{KfpConfig, KfpProvider};
use serde_json::json;

struct Setup {
    fake: FakeKfp,
    config: KfpConfig,
    run_id: String,
}

impl Setup {
    async fn new() -> Self {
        let fake = FakeKfp::start().await.unwrap();
        let mut config = KfpConfig::new(NamespacedName::new("kfp-operator-system", "kfp"));
        config.rest_url = fake.url().to_string();
        config.request_timeout = Duration::from_secs(5);
        let provider = KfpProvider::new(config.clone()).unwrap();
        let mut fixtures = ConformanceFixtures::default();
        // The kit's pipeline declares no inputs, and KFP (and the fake) refuse undeclared parameters.
        fixtures.run.parameters.clear();
        provider.create_pipeline(&fixtures.pipeline).await.unwrap();
        provider.create_experiment(&fixtures.experiment).await.unwrap();
        let run_id = provider.create_run(&fixtures.run).await.unwrap();
        Self { fake, config, run_id }
    }

    /// The run as `GET /apis/v2beta1/runs/{id}` answers it.
    async fn run(&self) -> Run {
        let url = format!("{}/apis/v2beta1/runs/{}", self.fake.url(), self.run_id);
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }
}

fn output(name: &str, path: &str) -> OutputArtifact {
    OutputArtifact {
        name: name.to_string(),
        path: path.parse().unwrap(),
    }
}

#[tokio::test]
async fn task_outputs_become_components_that_artifact_selection_resolves() {
    let setup = Setup::new().await;
    let fake = &setup.fake;
    let pushed = fake.add_artifact("model", "gs://bucket/trainer/model/1", json!({"pushed": 1}));
    let stats = fake.add_artifact("statistics", "gs://bucket/stats/1", json!({}));
    let not_pushed = fake.add_artifact("model", "gs://bucket/pusher/model/2", json!({"pushed": 0}));
    fake.add_task_detail(&setup.run_id, "root", &[]);
    fake.add_task_detail(
        &setup.run_id,
        "Trainer",
        &[("model", &[pushed]), ("statistics", &[stats])],
    );
    fake.add_task_detail(&setup.run_id, "Pusher", &[("pushed_model", &[not_pushed])]);

    let run = setup.run().await;
    let resolver = RestArtifactResolver::new(&setup.config).unwrap();
    let components = resolver.pipeline_components(&setup.run_id, &run).await.unwrap();
    assert_eq!(
        serde_json::to_value(&components).unwrap(),
        json!([
            {"name": "Trainer", "componentArtifacts": [
                {"name": "model", "artifacts": [{"uri": "gs://bucket/trainer/model/1", "metadata": {"pushed": 1}}]},
                {"name": "statistics", "artifacts": [{"uri": "gs://bucket/stats/1", "metadata": {}}]}
            ]},
            {"name": "Pusher", "componentArtifacts": [
                {"name": "pushed_model", "artifacts": [{"uri": "gs://bucket/pusher/model/2", "metadata": {"pushed": 0}}]}
            ]}
        ])
    );

    // The operator's artifact selection: the filter holds for the trainer's model, not for the pusher's.
    let outputs = [
        output("model", "Trainer:model:0[pushed == 1]"),
        output("stats", "Trainer:statistics:0"),
        output("pushed", "Pusher:pushed_model:0[pushed == 1]"),
        output("missing", "Trainer:model:1"),
    ];
    assert_eq!(
        select_artifacts(&outputs, &components),
        vec![
            Artifact {
                name: "model".into(),
                location: "gs://bucket/trainer/model/1".into()
            },
            Artifact {
                name: "stats".into(),
                location: "gs://bucket/stats/1".into()
            },
        ]
    );

    // One GetArtifact per artifact, at the official path.
    let reads: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/apis/v2beta1/artifacts/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(reads.len(), 3, "{reads:?}");
}

#[tokio::test]
async fn a_failed_artifact_read_is_an_error_not_a_missing_artifact() {
    let setup = Setup::new().await;
    let fake = &setup.fake;
    let model = fake.add_artifact("model", "gs://bucket/model", json!({}));
    fake.add_task_detail(&setup.run_id, "Trainer", &[("model", &[model])]);
    let run = setup.run().await;
    let resolver = RestArtifactResolver::new(&setup.config).unwrap();

    fake.fail_artifact_reads(1, 503);
    let err = resolver
        .pipeline_components(&setup.run_id, &run)
        .await
        .expect_err("a 503 from GetArtifact is an error");
    assert!(!err.is_permanent(), "{err:?}");

    // An artifact id KFP does not know is an error too.
    fake.add_task_detail(&setup.run_id, "Evaluator", &[("blessing", &["999".to_string()])]);
    let run = setup.run().await;
    resolver
        .pipeline_components(&setup.run_id, &run)
        .await
        .expect_err("an unknown artifact is an error");
}

#[tokio::test]
async fn a_run_without_task_details_has_no_components() {
    let setup = Setup::new().await;
    let run = setup.run().await;
    let resolver = RestArtifactResolver::new(&setup.config).unwrap();
    assert!(
        resolver
            .pipeline_components(&setup.run_id, &run)
            .await
            .unwrap()
            .is_empty()
    );
}
