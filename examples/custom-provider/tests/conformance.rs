//! The folder provider passes the conformance kit in process (with its event source) and over HTTP through the
//! provider service and `HttpProvider`, and its events reach the operator's feed through the service.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use kfp_core::definitions::PipelineDefinitionWrapper;
use kfp_core::event::RunCompletionEventData;
use kfp_core::provider::{EventSource, Provider, ProviderConfig};
use kfp_core::values::NamespacedName;
use kfp_example_custom_provider::{FolderEventSource, FolderPlatform, FolderProvider, Kind};
use kfp_providers::config::ServiceConfig;
use kfp_providers::conformance::{self, ConformanceFixtures, Operation};
use kfp_providers::http::HttpProvider;
use kfp_providers::service::ProviderServer;
use serde_json::json;

fn provider_name() -> NamespacedName {
    NamespacedName::new("kfp-operator-system", "folder")
}

/// The kit's default requests plus one this platform must refuse: a compiled pipeline that is not an object.
fn fixtures() -> ConformanceFixtures {
    let mut fixtures = ConformanceFixtures::default();
    let mut bad = fixtures.pipeline.clone();
    bad.compiled_pipeline = json!("not a pipeline spec");
    fixtures.invalid.push(Operation::CreatePipeline(bad));
    fixtures.event_timeout = Duration::from_secs(10);
    fixtures
}

#[tokio::test]
async fn in_process_the_folder_provider_and_its_events_pass_the_conformance_kit() {
    let dir = tempfile::tempdir().unwrap();
    let platform = FolderPlatform::open(dir.path()).unwrap();
    let provider: Arc<dyn Provider> = Arc::new(FolderProvider::new(platform.clone(), provider_name()));
    let mut events = FolderEventSource::new(platform.clone());
    let report = conformance::run_all_with_events(provider, &mut events, &fixtures()).await;
    assert!(report.passed(), "{report}");
    // The kit's run was reported and marked so: a new event source (a restarted service) does not repeat it.
    let reported = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".reported")
        })
        .count();
    assert!(reported >= 1);
}

#[tokio::test]
async fn a_failed_delivery_is_delivered_again_and_a_settled_one_never() {
    let dir = tempfile::tempdir().unwrap();
    let platform = FolderPlatform::open(dir.path()).unwrap();
    let provider = FolderProvider::new(platform.clone(), provider_name());
    let run = ConformanceFixtures::default().run;
    let id = provider.create_run(&run).await.unwrap();
    let mut events = FolderEventSource::new(platform.clone());
    let first = events.next_event().await.unwrap().unwrap();
    assert_eq!(first.event.run_id, id);
    assert_eq!(first.event.run_name, Some(run.name.clone()));
    assert_eq!(first.event.provider, provider_name());
    events
        .settle(first.receipt, kfp_core::provider::DeliveryOutcome::Failed)
        .await
        .unwrap();
    let again = events.next_event().await.unwrap().unwrap();
    assert_eq!(again.event.run_id, id);
    events
        .settle(again.receipt, kfp_core::provider::DeliveryOutcome::Delivered)
        .await
        .unwrap();
    let mut restarted = FolderEventSource::new(platform);
    let nothing = tokio::time::timeout(Duration::from_millis(300), restarted.next_event()).await;
    assert!(
        nothing.is_err(),
        "a delivered run is not reported again: {nothing:?}"
    );
}

#[tokio::test]
async fn bad_ids_and_missing_objects_get_specific_errors() {
    let dir = tempfile::tempdir().unwrap();
    let platform = FolderPlatform::open(dir.path()).unwrap();
    let provider = FolderProvider::new(platform.clone(), provider_name());
    let fixtures = ConformanceFixtures::default();
    let err = provider
        .update_experiment(&fixtures.experiment, "../escape")
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(err.message().contains("is not an id of this platform"), "{err:?}");
    let err = provider
        .update_run_schedule(&fixtures.run_schedule, "nope")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    let config = ProviderConfig::new(provider_name());
    let err = FolderProvider::from_config(&config).unwrap_err();
    assert_eq!(
        err.message(),
        "the folder provider kfp-operator-system/folder needs parameter root: the platform's folder"
    );
    let pipeline: PipelineDefinitionWrapper = fixtures.pipeline.clone();
    let id = provider.create_pipeline(&pipeline).await.unwrap();
    assert_eq!(
        platform.read(Kind::Pipeline, &id).unwrap()["compiled"],
        pipeline.compiled_pipeline
    );
}

#[tokio::test]
async fn over_http_the_provider_service_passes_the_conformance_kit_and_forwards_events() {
    // The operator's run-completion feed, played by a loopback server recording what it is sent.
    let received: Arc<Mutex<Vec<RunCompletionEventData>>> = Arc::default();
    let feed = {
        let received = received.clone();
        axum::Router::new().route(
            "/events",
            post(move |Json(event): Json<RunCompletionEventData>| {
                let received = received.clone();
                async move {
                    received.lock().unwrap().push(event);
                    "ok"
                }
            }),
        )
    };
    let feed_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let feed_url = format!("http://{}/events", feed_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(feed_listener, feed).await });

    let dir = tempfile::tempdir().unwrap();
    let mut provider_config = ProviderConfig::new(provider_name());
    provider_config
        .parameters
        .insert("root".into(), json!(dir.path().display().to_string()));
    let mut registry = kfp_providers::default_registry();
    kfp_example_custom_provider::register(&mut registry).unwrap();
    let provider = registry.build("folder", &provider_config).unwrap();
    let events = registry.build_event_source("folder", &provider_config).unwrap();

    let mut config = ServiceConfig::new(provider_config);
    config.server_host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.server_port = 0;
    config.metrics_port = 0;
    config.operator_webhook = Some(feed_url);
    let server = ProviderServer::bind(&config, provider, Some(events))
        .await
        .unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run(std::future::pending()));

    let http: Arc<dyn Provider> = Arc::new(HttpProvider::new(&url).unwrap());
    let report = conformance::run_all(http.clone(), &fixtures()).await;
    assert!(report.passed(), "{report}");

    let run = ConformanceFixtures::default().run;
    let id = http.create_run(&run).await.unwrap();
    let delivered = async {
        loop {
            if received.lock().unwrap().iter().any(|e| e.run_id == id) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), delivered)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the event of run {id} reached the feed: {:?}",
                received.lock().unwrap()
            )
        });
    let event = received
        .lock()
        .unwrap()
        .iter()
        .find(|e| e.run_id == id)
        .cloned()
        .unwrap();
    assert_eq!(event.run_name, Some(run.name));
    assert_eq!(event.pipeline_name, run.pipeline_name);
}
