//! Run-completion events on the wire as the Go operator writes them (docs/run-completion-events.md), through the
//! real feed: the kube-apiserver of kfp-testenv for the status and a real `nats-server` for the published body.

use crate::support;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::resources::v1beta1::RunConfiguration;
use kfp_operator::config::EventFormat;
use kube::api::Api;
use serde_json::{Value, json};
use support::nats::{NatsServer, RunningFeed, service_account_token, subscribe};
use support::{WAIT, client_and_namespace, config_for};

fn event(ns: &str, run_id: &str, start: &str, end: &str) -> Value {
    json!({
        "status": "succeeded", "pipelineName": format!("{ns}/p"), "runConfigurationName": format!("{ns}/rc"),
        "runId": run_id, "runStartTime": start, "runEndTime": end,
        "pipelineComponents": [{"name": "CsvExampleGen", "componentArtifacts": [{"name": "examples",
            "artifacts": [{"uri": format!("gs://b/{run_id}/examples?a=1&b=<2>"), "metadata": {}}]}]}],
        "provider": format!("{ns}/stub")
    })
}

fn time(text: &str) -> Time {
    serde_json::from_value(json!(text)).unwrap()
}

/// Times with fractions of a second keep them in the RunConfiguration's status and in the legacy NATS body, whose
/// bytes are the Go operator's (see the derivation in `feed::nats` tests); a run that ended earlier in the same
/// second then does not replace the recorded one.
#[tokio::test]
async fn sub_second_times_reach_status_and_the_legacy_body_as_go_writes_them() {
    let (client, ns) = client_and_namespace().await;
    let yaml = format!(
        "
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Provider
metadata: {{name: stub, namespace: {ns}}}
spec: {{serviceImage: unused, serviceAccount: provider-sa, pipelineRootStorage: /tmp, allowedNamespaces: [{ns}]}}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {{name: rc, namespace: {ns}}}
spec: {{run: {{provider: {ns}/stub, pipeline: p, artifacts: [{{name: examples, path: 'CsvExampleGen:examples'}}]}}}}
"
    );
    kfp_testenv::apply_yaml(&client, &yaml, &kfp_testenv::ApplyOptions::in_namespace(&ns))
        .await
        .unwrap();
    let nats = NatsServer::start().await;
    let mut subscriber = subscribe(&nats.url(), "events").await;
    let mut config = config_for(&ns);
    config.spec.run_completion_feed.nats.url = nats.url();
    config.spec.run_completion_feed.nats.event_format = EventFormat::Legacy;
    let feed = RunningFeed::start(&client, config).await;
    feed.wait_connected().await;
    let token = service_account_token(&ns, "provider-sa", &["kfp-operator"]).await;
    let http = reqwest::Client::new();
    let post = |body: Value| http.post(&feed.url).bearer_auth(&token).json(&body).send();

    let response = post(event(
        &ns,
        "r1",
        "2026-03-01T10:00:35.123456789Z",
        "2026-03-01T10:42:07.500Z",
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let message = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut subscriber))
        .await
        .unwrap()
        .unwrap();
    let go_body = format!(
        r#"{{"data":{{"status":"succeeded","pipelineName":"{ns}/p","runConfigurationName":"{ns}/rc","runName":"","runId":"r1","runStartTime":"2026-03-01T10:00:35.123456789Z","runEndTime":"2026-03-01T10:42:07.5Z","artifacts":[{{"name":"examples","location":"gs://b/r1/examples?a=1\u0026b=\u003c2\u003e"}}],"provider":"{ns}/stub"}}}}"#
    );
    assert_eq!(std::str::from_utf8(&message.payload).unwrap(), go_body);

    let rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), &ns);
    let recorded = |rc: RunConfiguration| {
        let succeeded = rc.status.unwrap_or_default().latest_runs.succeeded;
        (succeeded.provider_id, succeeded.run_end_time)
    };
    assert_eq!(
        recorded(rcs.get("rc").await.unwrap()),
        ("r1".to_string(), Some(time("2026-03-01T10:42:07.5Z")))
    );

    // Ended 0.25 s before r1: older, so r1 stays recorded (with whole seconds both would read 10:42:07).
    let response = post(event(
        &ns,
        "r0",
        "2026-03-01T10:00:00Z",
        "2026-03-01T10:42:07.25Z",
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        recorded(rcs.get("rc").await.unwrap()),
        ("r1".to_string(), Some(time("2026-03-01T10:42:07.5Z")))
    );
}
