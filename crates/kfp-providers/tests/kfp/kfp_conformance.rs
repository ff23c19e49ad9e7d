//! The Kubeflow Pipelines provider passes the conformance kit against the in-process fake v2beta1 API (and against
//! the real API server in `kfp_apiserver.rs`, with the same fixtures).

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use kfp_core::values::NamespacedName;
use kfp_providers::conformance;
use kfp_providers::kfp::fake::FakeKfp;
use kfp_providers::kfp::{KfpConfig, KfpProvider};

#[tokio::test]
async fn kfp_provider_conforms_against_the_fake() {
    let fake = FakeKfp::start().await.unwrap();
    let mut config = KfpConfig::new(NamespacedName::new("kfp-operator-system", "kfp"));
    config.rest_url = fake.url().to_string();
    config.request_timeout = Duration::from_secs(5);
    let provider = Arc::new(KfpProvider::new(config).unwrap());
    let compiled = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipelines/add_pipeline.json"),
    )
    .unwrap();
    let fixtures = support::kfp_conformance_fixtures(serde_json::from_str(&compiled).unwrap());
    let report = conformance::run_all(provider, &fixtures).await;
    assert!(report.passed(), "{report}");
    // Everything the checks created was cleaned up.
    assert!(fake.pipelines().is_empty(), "{:?}", fake.pipelines());
    assert!(
        fake.experiments()
            .iter()
            .all(|e| e.display_name != "conformance-experiment")
    );
    assert!(fake.recurring_runs().is_empty());
}
