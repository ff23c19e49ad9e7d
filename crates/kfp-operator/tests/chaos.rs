//! The chaos suite (issue 17 item 6; docs/reliability.md "Chaos suite" has the commands and the figures). Bounded
//! in count and time, loopback only, seeded (each experiment prints its seed; `CHAOS_SEED` repeats it); the
//! machinery is in `support::chaos`:
//!
//! - **kills**, once per executor: `kfp-operator run` as a real process is SIGKILLed 12 times at seeded moments
//!   while the test creates 96 Runs and 8 RunConfigurations (upstreams started by their run spec, some with
//!   schedules, dependants fired by other RunConfigurations' successes, one behind another) and deletes 24 Runs.
//!   The Provider is a counting in-memory platform behind a provider service on loopback that forwards its runs'
//!   completions to the operator's feed (direct executor: provider type `http`; Argo executor: a simulated Argo in
//!   the test process runs the Workflows against it). After the last restart the test waits until everything
//!   settled and asserts 0 lost, 0 duplicated, 0 leaked, dependants fired exactly once per upstream success, and
//!   no panic;
//! - **an API server outage** of the operator process (a loopback proxy it talks through is cut): connection
//!   attempts per second stay under the documented bound and a Pipeline created meanwhile is reconciled after;
//! - **fuzz**: thousands of seeded requests to the feed of the operator process and to the webhook server: no
//!   panic, no 5xx, every answer within 1 s.
//!
//! The experiments run one at a time (they share a 2-core machine with the control plane).

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use kfp_core::resources::v1beta1::{Conditions, Pipeline};
use kfp_core::values::SynchronizationState::Succeeded;
use kube::api::Api;
use serde_json::json;
use support::chaos::experiments::{Executor, SERIAL, assert_clean, binary, kills, panics, parse, seed};
use support::chaos::fuzz;
use support::process::OperatorProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_of_a_direct_executor_operator_lose_duplicate_and_leak_nothing() {
    let figures = kills(Executor::Direct, 17_601).await;
    assert_clean(Executor::Direct, &figures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_of_an_argo_executor_operator_lose_duplicate_and_leak_nothing() {
    let figures = kills(Executor::Argo, 17_602).await;
    assert_clean(Executor::Argo, &figures);
}

/// How long the outage lasts (the experiment's own time, not a wait).
const OUTAGE: Duration = Duration::from_secs(10);

/// The operator process loses the API server for [`OUTAGE`] (the loopback proxy it talks through closes every
/// connection): it keeps running, tries again a few times per second at most (docs/reliability.md), and
/// reconciles a Pipeline created meanwhile once the API server is back. The longer in-process outage tests with
/// their log-line bounds are in `restart.rs` and `leader_election.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_outage_of_the_operator_process_costs_bounded_reconnects() {
    kfp_providers::http::install_crypto_provider();
    let _serial = SERIAL.lock().await;
    let env = support::env().await;
    let (client, namespace) = support::client_and_namespace().await;
    Api::<kfp_core::resources::v1beta1::Provider>::namespaced(client.clone(), &namespace)
        .create(
            &Default::default(),
            &support::provider_manifest(&namespace, "stub"),
        )
        .await
        .unwrap();
    let server = env.server_url().trim_start_matches("https://").to_string();
    let proxy = support::outage::Proxy::start(server.parse().unwrap()).await;
    let kubeconfig = std::fs::read_to_string(env.kubeconfig_path())
        .unwrap()
        .replace(env.server_url(), &format!("https://{}", proxy.address));
    assert!(
        kubeconfig.contains(&proxy.address.to_string()),
        "the kubeconfig names the API server as {}",
        env.server_url()
    );
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, kubeconfig.as_bytes()).unwrap();
    let mut operator = OperatorProcess::start(
        binary(),
        file.path(),
        &[
            ("KFP_OPERATOR_SPEC_EXECUTOR", "direct"),
            ("KFP_OPERATOR_SPEC_DIRECT_DEFAULTPROVIDERTYPE", "stub"),
            ("KFP_OPERATOR_SYSTEM_WATCHNAMESPACE", &namespace),
        ],
    );
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &namespace);
    let pipeline = |name: &str| -> Pipeline {
        parse(&format!(
            "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{provider: {namespace}/stub, image: 'alpine:3.20', framework: {{name: stub, parameters: {{}}}}}}
"
        ))
    };
    pipelines
        .create(&Default::default(), &pipeline("before"))
        .await
        .unwrap();
    support::wait_for_state(&pipelines, "before", Succeeded, |p: &Pipeline| p.status.as_ref()).await;

    let accepted = proxy.accepted();
    let started = Instant::now();
    proxy.cut();
    pipelines
        .create(&Default::default(), &pipeline("during"))
        .await
        .unwrap();
    tokio::time::sleep_until((started + OUTAGE).into()).await;
    let attempts = proxy.accepted() - accepted;
    let seconds = started.elapsed().as_secs_f64();
    proxy.restore();
    let back = Instant::now();
    kfp_testenv::wait_for(
        "the Pipeline created during the outage to be Succeeded",
        Duration::from_secs(90),
        || async {
            let pipeline = pipelines.get_opt("during").await?;
            Ok::<_, kube::Error>(pipeline.filter(|p| {
                p.status
                    .as_ref()
                    .is_some_and(|s| s.synchronization_state() == Succeeded)
            }))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nstderr:\n{}", operator.stderr()));
    let per_second = attempts as f64 / seconds;
    eprintln!(
        "chaos outage: {seconds:.1} s, {attempts} connection attempts ({per_second:.2}/s, bound {}/s); \
         reconciling again {:.1} s after the API server came back",
        support::outage::MAX_ATTEMPTS_PER_SECOND,
        back.elapsed().as_secs_f64()
    );
    assert!(attempts > 0, "the operator kept trying during the outage");
    assert!(
        per_second < support::outage::MAX_ATTEMPTS_PER_SECOND,
        "{per_second:.1} connection attempts per second during the outage"
    );
    assert!(
        operator.child.try_wait().unwrap().is_none(),
        "the operator exited during the outage:\n{}",
        operator.stderr()
    );
    let panicked = panics(std::slice::from_ref(&operator));
    assert!(panicked.is_empty(), "{panicked:?}");
}

/// The run-completion feed of the operator process and the webhook server get [`fuzz::REQUESTS`] seeded
/// requests each (bad_input.rs's generator, another seed): every one answered within 1 s, none with a 5xx, no
/// panic, and a good request answered afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_and_the_webhooks_answer_thousands_of_seeded_requests() {
    let _serial = SERIAL.lock().await;
    let seed = seed("fuzz", 17_603);
    let env = support::env().await;
    let (client, namespace) = support::client_and_namespace().await;
    let yaml = format!(
        "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Provider
metadata: {{name: stub, namespace: {namespace}}}
spec: {{serviceImage: unused, serviceAccount: provider-sa, pipelineRootStorage: /tmp, allowedNamespaces: [{namespace}]}}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {{name: run, namespace: {namespace}}}
spec: {{provider: {namespace}/stub, pipeline: p}}
"
    );
    kfp_testenv::apply_yaml(
        &client,
        &yaml,
        &kfp_testenv::ApplyOptions::in_namespace(&namespace),
    )
    .await
    .unwrap();
    // Accepting events without a token, so that the bodies are read and parsed whatever the Authorization.
    let operator = OperatorProcess::start(
        binary(),
        env.kubeconfig_path(),
        &[
            ("KFP_OPERATOR_SPEC_EXECUTOR", "direct"),
            ("KFP_OPERATOR_SPEC_DIRECT_DEFAULTPROVIDERTYPE", "stub"),
            ("KFP_OPERATOR_SYSTEM_WATCHNAMESPACE", &namespace),
            (
                "KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_AUTHENTICATION_TOKENREVIEW",
                "false",
            ),
            (
                "KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_AUTHENTICATION_ALLOWUNAUTHENTICATED",
                "true",
            ),
            ("KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_MAXBODYBYTES", "1048576"),
        ],
    );
    operator.wait_ready(support::WAIT).await;
    let event = |run: &str, run_id: &str| {
        json!({
            "status": "succeeded", "pipelineName": format!("{namespace}/p"), "runName": format!("{namespace}/{run}"),
            "runId": run_id, "runEndTime": "2026-12-07T10:00:00Z",
            "pipelineComponents": [{"name": "Trainer", "componentArtifacts": [{"name": "model",
                "artifacts": [{"uri": "gs://b/model", "metadata": {"pushed": 1}}]}]}],
            "provider": format!("{namespace}/stub")
        })
    };
    let feed = fuzz::Target {
        name: "run-completion feed (operator process)",
        addr: operator.feed_url.trim_start_matches("http://").parse().unwrap(),
        tls: None,
        paths: vec!["/events".into()],
        body: event("run", "run-1"),
    };
    // Afterwards: an event of a run nobody knows is answered 410.
    let feed_report =
        fuzz::fuzz_and_check(feed, seed, fuzz::post("/events", &event("nobody", "run-2")), 410).await;
    let (webhooks, check) = fuzz::webhook_target(client).await;
    let webhook_report = fuzz::fuzz_and_check(webhooks, seed + 1, check, 200).await;
    let panicked = panics(std::slice::from_ref(&operator));
    assert!(panicked.is_empty(), "{panicked:?}");
    eprintln!(
        "chaos fuzz (seed {seed}): feed {} requests, slowest {:?}; webhooks {} requests, slowest {:?}; 0 \
         unanswered, 0 5xx, 0 slower than {:?}, no panic",
        feed_report.sent,
        feed_report.slowest,
        webhook_report.sent,
        webhook_report.slowest,
        fuzz::BOUND
    );
}
