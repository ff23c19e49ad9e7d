//! `kfp-operator run` as a real process against the test API server, configured through `KFP_OPERATOR_*`
//! environment overrides only (direct executor, stub provider, one watched namespace, leader election with the
//! Lease in that namespace, JSON logs): it becomes ready, reconciles a Pipeline and a Run to Succeeded, exposes
//! its metrics, logs JSON lines carrying the reconcile span, and on SIGTERM exits 0 and releases its Lease.

use crate::support;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kfp_core::resources::v1beta1::{Pipeline, Provider, Run};
use kfp_core::values::SynchronizationState::Succeeded;
use kube::api::Api;
use serde_json::Value;
use support::process::OperatorProcess;
use support::wait_for_state;

const LEASE: &str = "kfp-operator-lock";

fn start(namespace: &str, kubeconfig: &std::path::Path) -> OperatorProcess {
    OperatorProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_kfp-operator")),
        kubeconfig,
        &[
            ("KFP_OPERATOR_SPEC_EXECUTOR", "direct"),
            ("KFP_OPERATOR_SPEC_DIRECT_DEFAULTPROVIDERTYPE", "stub"),
            ("KFP_OPERATOR_SYSTEM_WATCHNAMESPACE", namespace),
            ("KFP_OPERATOR_SYSTEM_LEADERELECTION_ENABLED", "true"),
            ("KFP_OPERATOR_SYSTEM_LEADERELECTION_NAMESPACE", namespace),
            ("KFP_OPERATOR_SYSTEM_LEADERELECTION_LEASEDURATION", "2s"),
            ("KFP_OPERATOR_SYSTEM_LEADERELECTION_RENEWPERIOD", "500ms"),
            ("KFP_OPERATOR_SYSTEM_LOGGING_FORMAT", "json"),
            ("KFP_OPERATOR_SYSTEM_LOGGING_LEVEL", "info"),
        ],
    )
}

async fn lease_holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

#[tokio::test]
async fn the_operator_process_runs_configured_from_the_environment() {
    kfp_providers::http::install_crypto_provider();
    let (client, namespace) = support::client_and_namespace().await;
    let env = support::env().await;
    let providers: Api<Provider> = Api::namespaced(client.clone(), &namespace);
    providers
        .create(
            &Default::default(),
            &support::provider_manifest(&namespace, "stub"),
        )
        .await
        .unwrap();
    let mut operator = start(&namespace, env.kubeconfig_path());

    // Ready once the controllers' caches are filled (it leads at once: the Lease is free).
    operator.wait_ready(support::WAIT).await;
    // The run-completion feed is served too, and wants a token.
    let feed = reqwest::Client::new()
        .post(format!("{}/events", operator.feed_url))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 401, "stderr:\n{}", operator.stderr());
    let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    let holder = kfp_testenv::wait_for("the Lease to be held", support::WAIT, || async {
        Ok::<_, String>(lease_holder(&leases).await)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nstderr:\n{}", operator.stderr()));

    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &namespace);
    let runs: Api<Run> = Api::namespaced(client.clone(), &namespace);
    let pipeline: Pipeline = serde_saphyr::from_str(&format!(
        "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {{name: pipeline, namespace: {namespace}}}
spec: {{provider: {namespace}/stub, image: 'alpine:3.20', framework: {{name: stub, parameters: {{}}}}}}
"
    ))
    .unwrap();
    pipelines.create(&Default::default(), &pipeline).await.unwrap();
    let run: Run = serde_saphyr::from_str(&format!(
        "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {{name: run, namespace: {namespace}}}
spec: {{provider: {namespace}/stub, pipeline: pipeline, parameters: [{{name: a, value: '1'}}]}}
"
    ))
    .unwrap();
    runs.create(&Default::default(), &run).await.unwrap();
    wait_for_state(&pipelines, "pipeline", Succeeded, |p: &Pipeline| {
        p.status.as_ref()
    })
    .await;
    let run = wait_for_state(&runs, "run", Succeeded, |r: &Run| r.status.as_ref()).await;
    assert_eq!(run.status.unwrap().status.provider.id, "create-run-succeeded");

    // Events name the replica the way the Lease does.
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let instances: Vec<String> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reporting_instance)
        .collect();
    assert!(!instances.is_empty());
    assert!(
        instances.iter().all(|i| *i == holder),
        "Events report the Lease holder {holder}: {instances:?}"
    );

    let metrics = operator.metrics().await;
    assert!(
        metrics.contains("kfp_operator_reconciliations_total{"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"kfp_operator_resources{kind="pipeline",state="Succeeded"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"kfp_operator_resources{kind="run",state="Succeeded"} 1"#),
        "{metrics}"
    );

    // Issue 19: the names dashboards and alerts for controller-runtime operators use, with their labels.
    let sample = |prefix: &str| metrics.lines().any(|l| l.starts_with(prefix));
    for expected in [
        r#"controller_runtime_reconcile_total{controller="pipeline",result="success"} "#,
        r#"controller_runtime_reconcile_time_seconds_count{controller="run"} "#,
        r#"controller_runtime_active_workers{controller="pipeline"} "#,
        r#"workqueue_adds_total{name="pipeline"} "#,
        r#"workqueue_work_duration_seconds_count{name="run"} "#,
        r#"rest_client_requests_total{code="200",method="GET",host="127.0.0.1:"#,
        r#"rest_client_requests_total{code="201",method="POST",host="127.0.0.1:"#,
        &format!(r#"leader_election_master_status{{name="{LEASE}"}} 1"#),
    ] {
        assert!(sample(expected), "no sample {expected:?} in\n{metrics}");
    }
    // At 0 from a controller's first reconcile, as controller-runtime has them (the feed's Go name: support::nats).
    for expected in [
        r#"controller_runtime_reconcile_errors_total{controller="pipeline"} "#,
        r#"workqueue_retries_total{name="run"} "#,
    ] {
        assert!(sample(expected), "no sample {expected:?} in\n{metrics}");
    }

    // SIGTERM: in-flight reconciles finish, the Lease is released, exit 0.
    let exit = operator.terminate(support::WAIT).await;
    assert_eq!(exit, Some(0), "stderr:\n{}", operator.stderr());
    assert_eq!(lease_holder(&leases).await, None, "the Lease was released");

    // Every stderr line is a JSON object; reconcile lines carry the span's identity.
    let lines = operator.stderr_lines();
    let parsed: Vec<Value> = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(parsed.iter().all(Value::is_object));
    // Issue 19: the seed's shape (timestamp, level, logger, message; reconcile lines add reconciliation_id and the
    // resource, and `duration_ms` once recorded: telemetry.rs's unit test).
    for line in &parsed {
        for key in ["timestamp", "level", "logger", "message"] {
            assert!(line.get(key).is_some(), "no `{key}` in {line}");
        }
    }
    let reconcile_lines: Vec<&Value> = parsed
        .iter()
        .filter(|v| v.get("reconciliation_id").is_some())
        .collect();
    assert!(
        reconcile_lines.iter().any(|v| v["kind"] == "pipeline"
            && v["namespace"] == namespace.as_str()
            && v["name"] == "pipeline"
            && v["reconciliation_id"].as_str().is_some_and(|id| !id.is_empty())),
        "no reconcile line of the Pipeline:\n{}",
        lines.join("\n")
    );
    assert!(
        reconcile_lines
            .iter()
            .any(|v| v["kind"] == "run" && v["name"] == "run"),
        "no reconcile line of the Run:\n{}",
        lines.join("\n")
    );
}
