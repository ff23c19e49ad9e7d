//! `kfp-operator run` as a real process against the test API server, configured through `KFP_OPERATOR_*`
//! environment overrides only (direct executor, stub provider, one watched namespace, leader election with the
//! Lease in that namespace, JSON logs): it becomes ready, reconciles a Pipeline and a Run to Succeeded, exposes
//! its metrics, logs JSON lines carrying the reconcile span, and on SIGTERM exits 0 and releases its Lease.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Mutex;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kfp_core::resources::v1beta1::{Pipeline, Provider, Run};
use kfp_core::values::SynchronizationState::Succeeded;
use kube::api::Api;
use serde_json::Value;
use support::process::{Operator, free_port};
use support::wait_for_state;

const LEASE: &str = "kfp-operator-lock";

fn start(namespace: &str, address: &str, kubeconfig: &std::path::Path) -> Operator {
    Operator::run(&[
        ("KUBECONFIG", kubeconfig.to_str().unwrap()),
        ("KFP_OPERATOR_SPEC_EXECUTOR", "direct"),
        ("KFP_OPERATOR_SPEC_DIRECT_DEFAULTPROVIDERTYPE", "stub"),
        ("KFP_OPERATOR_SYSTEM_WATCHNAMESPACE", namespace),
        ("KFP_OPERATOR_SYSTEM_HEALTHADDRESS", address),
        ("KFP_OPERATOR_SYSTEM_METRICSADDRESS", address),
        ("KFP_OPERATOR_SYSTEM_LEADERELECTION_ENABLED", "true"),
        ("KFP_OPERATOR_SYSTEM_LEADERELECTION_NAMESPACE", namespace),
        ("KFP_OPERATOR_SYSTEM_LEADERELECTION_LEASEDURATION", "2s"),
        ("KFP_OPERATOR_SYSTEM_LEADERELECTION_RENEWPERIOD", "500ms"),
        ("KFP_OPERATOR_SYSTEM_LOGGING_FORMAT", "json"),
        ("KFP_OPERATOR_SYSTEM_LOGGING_LEVEL", "info"),
    ])
}

async fn get(url: &str) -> Result<(u16, String), String> {
    let response = reqwest::get(url).await.map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.map_err(|e| e.to_string())?))
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
    let address = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{address}");
    let mut operator = start(&namespace, &address, env.kubeconfig_path());

    // Ready once the controllers' caches are filled (it leads at once: the Lease is free).
    let last = Mutex::new(None);
    kfp_testenv::wait_for("/readyz to answer 200", support::WAIT, || async {
        let answer = get(&format!("{base}/readyz")).await;
        let ready = matches!(&answer, Ok((200, _)));
        *last.lock().unwrap() = Some(answer);
        Ok::<_, String>(ready.then_some(()))
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}; last answer {:?}\nstderr:\n{}",
            last.lock().unwrap(),
            operator.stderr()
        )
    });
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

    let (status, metrics) = get(&format!("{base}/metrics")).await.unwrap();
    assert_eq!(status, 200);
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

    // SIGTERM: in-flight reconciles finish, the Lease is released, exit 0.
    let pid = operator.child.id().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::time::timeout(support::WAIT, operator.child.wait())
        .await
        .unwrap_or_else(|_| panic!("no exit after SIGTERM\nstderr:\n{}", operator.stderr()))
        .unwrap();
    assert_eq!(exit.code(), Some(0), "stderr:\n{}", operator.stderr());
    assert_eq!(lease_holder(&leases).await, None, "the Lease was released");

    // Every stderr line is a JSON object; reconcile lines carry the span's identity.
    let lines = operator.stderr.lock().unwrap().clone();
    let parsed: Vec<Value> = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(parsed.iter().all(Value::is_object));
    let reconcile_lines: Vec<&Value> = parsed
        .iter()
        .filter(|v| v.get("reconcile_id").is_some())
        .collect();
    assert!(
        reconcile_lines.iter().any(|v| v["kind"] == "pipeline"
            && v["namespace"] == namespace.as_str()
            && v["name"] == "pipeline"
            && v["reconcile_id"].as_str().is_some_and(|id| !id.is_empty())),
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
