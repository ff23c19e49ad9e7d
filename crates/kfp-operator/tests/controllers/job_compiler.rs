//! The Job compiler on a real kube-apiserver (`kfp-testenv`). There is no Job controller and no kubelet: the tests
//! play both, creating the Job's pod and setting its status and the Job's conditions as they would. For the success
//! path a fake kubelet (a Node pointing at a local HTTPS server) serves the pod log that the API server proxies.
//! Not covered: real images, the Job controller's own timing, and log rotation on a real node.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kfp_core::compiler::{CompileError, CompileRequest, Compiler};
use kfp_operator::compiler::JobCompiler;
use kfp_operator::compiler::job::{
    COMPILE_CONTAINER, DEFINITION_KEY, FRAMEWORK_CONTAINER, PIPELINE_ANNOTATION,
};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

async fn api_server() -> (Client, kfp_testenv::TestNamespace) {
    let env = kfp_testenv::TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = env.namespace().await.unwrap_or_else(|e| panic!("{e}"));
    (env.client().await.unwrap_or_else(|e| panic!("{e}")), ns)
}

fn request() -> CompileRequest {
    CompileRequest {
        framework_image: "ghcr.io/kfp-operator/kfp-operator-tfx-compiler:1".into(),
        pipeline_image: "registry.example/pipelines/penguin:7".into(),
        pipeline_definition: json!({
            "name": "team/penguin", "version": "v1", "image": "registry.example/pipelines/penguin:7",
            "framework": {"name": "tfx", "parameters": {"components": "penguin.create_components"}}
        }),
    }
}

/// Starts a compilation in the background and waits (with a watch) for its Job to appear.
async fn start(
    compiler: JobCompiler,
    client: &Client,
    ns: &str,
) -> (
    tokio::task::JoinHandle<Result<serde_json::Value, CompileError>>,
    Job,
) {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let mut appeared = watcher(jobs, watcher::Config::default())
        .applied_objects()
        .boxed();
    let compile = tokio::spawn(async move { compiler.compile(&request()).await });
    let job = tokio::time::timeout(Duration::from_secs(20), appeared.try_next())
        .await
        .expect("the compile Job appears within 20s")
        .unwrap()
        .unwrap();
    (compile, job)
}

/// Creates the Job's pod as the Job controller would, with the status a kubelet would report.
async fn fake_pod(client: &Client, ns: &str, job: &Job, status: serde_json::Value) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut pod: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": format!("{}-pod", job.name_any()),
            "labels": {
                "batch.kubernetes.io/controller-uid": job.uid().unwrap(),
                "batch.kubernetes.io/job-name": job.name_any(),
            },
        },
        "spec": job.spec.as_ref().unwrap().template.spec,
    }))
    .unwrap();
    pod.spec.as_mut().unwrap().node_name = Some("node-1".into());
    let pod = pods.create(&PostParams::default(), &pod).await.unwrap();
    pods.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap();
}

/// Marks the Job finished as the Job controller would.
async fn finish_job(client: &Client, ns: &str, job: &Job, conditions: serde_json::Value) {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    jobs.patch_status(
        &job.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"startTime": now, "failed": 1, "conditions": conditions}})),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot set the Job status: {e}"));
}

fn failed_conditions(reason: &str, message: &str) -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    json!([
        {"type": "FailureTarget", "status": "True", "reason": reason, "message": message,
         "lastTransitionTime": now, "lastProbeTime": now},
        {"type": "Failed", "status": "True", "reason": reason, "message": message,
         "lastTransitionTime": now, "lastProbeTime": now},
    ])
}

async fn assert_cleaned_up(client: &Client, ns: &str, name: &str) {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    assert!(jobs.get_opt(name).await.unwrap().is_none(), "the Job is deleted");
    assert!(
        config_maps.get_opt(name).await.unwrap().is_none(),
        "the ConfigMap is deleted"
    );
}

#[tokio::test]
async fn the_job_runs_the_framework_then_the_pipeline_image_and_a_failing_compiler_is_permanent() {
    let (client, ns) = api_server().await;
    let ns = ns.name().to_string();
    let compiler = JobCompiler::new(client.clone(), &ns)
        .with_timeout(Duration::from_secs(600))
        .with_service_account("compiler")
        .with_ttl(Duration::from_secs(120));
    let (compile, job) = start(compiler, &client, &ns).await;
    let name = job.name_any();
    assert!(name.starts_with("kfp-compile-"), "{name}");

    // The Job.
    let spec = job.spec.clone().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(spec.active_deadline_seconds, Some(600));
    assert_eq!(spec.ttl_seconds_after_finished, Some(120));
    assert_eq!(job.annotations()[PIPELINE_ANNOTATION], "team/penguin");
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.service_account_name.as_deref(), Some("compiler"));
    let security = pod.security_context.unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.run_as_user, Some(1000));
    let init = &pod.init_containers.unwrap()[0];
    assert_eq!(init.name, FRAMEWORK_CONTAINER);
    assert_eq!(
        init.image.as_deref(),
        Some("ghcr.io/kfp-operator/kfp-operator-tfx-compiler:1")
    );
    assert_eq!(init.args, Some(vec!["/shared".to_string()]));
    let main = &pod.containers[0];
    assert_eq!(main.name, COMPILE_CONTAINER);
    assert_eq!(
        main.image.as_deref(),
        Some("registry.example/pipelines/penguin:7")
    );
    let command = main.command.clone().unwrap();
    assert_eq!(command[..2], ["sh".to_string(), "-c".to_string()]);
    assert!(
        command[2].contains(
            "/shared/compile.sh --pipeline_config /config/definition.json --output_file /tmp/out.json"
        ),
        "{}",
        command[2]
    );
    assert_eq!(
        main.security_context.as_ref().unwrap().allow_privilege_escalation,
        Some(false)
    );
    let volumes: Vec<_> = pod.volumes.unwrap();
    let config_volume = volumes.iter().find(|v| v.name == "config").unwrap();
    assert_eq!(config_volume.config_map.as_ref().unwrap().name, name);
    assert!(
        volumes
            .iter()
            .any(|v| v.name == "shared" && v.empty_dir.is_some())
    );

    // The ConfigMap holds the definition and is owned by the Job (set right after the Job is created).
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owned = kube::runtime::wait::await_condition(config_maps, &name, |cm: Option<&ConfigMap>| {
        cm.is_some_and(|cm| !cm.owner_references().is_empty())
    });
    let config_map = tokio::time::timeout(Duration::from_secs(20), owned)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let definition: serde_json::Value =
        serde_json::from_str(&config_map.data.as_ref().unwrap()[DEFINITION_KEY]).unwrap();
    assert_eq!(definition, request().pipeline_definition);
    assert_eq!(config_map.owner_references()[0].uid, job.uid().unwrap());

    // The compiler fails: the kubelet reports the container's termination message (FallbackToLogsOnError).
    fake_pod(
        &client,
        &ns,
        &job,
        json!({
            "phase": "Failed",
            "initContainerStatuses": [{
                "name": FRAMEWORK_CONTAINER, "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}
            }],
            "containerStatuses": [{
                "name": COMPILE_CONTAINER, "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error",
                    "message": "Traceback (most recent call last):\nModuleNotFoundError: No module named 'penguin'\n"}}
            }]
        }),
    )
    .await;
    finish_job(
        &client,
        &ns,
        &job,
        failed_conditions(
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ),
    )
    .await;
    let err = tokio::time::timeout(Duration::from_secs(20), compile)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err,
        CompileError::invalid(
            "pipeline team/penguin does not compile: the compile container \"compile\" exited with code 1: \
             Traceback (most recent call last):\nModuleNotFoundError: No module named 'penguin'"
        )
    );
    assert_cleaned_up(&client, &ns, &name).await;
}

#[tokio::test]
async fn a_job_past_its_deadline_or_without_a_failed_container_is_transient() {
    let (client, ns) = api_server().await;
    let ns = ns.name().to_string();

    let compiler = JobCompiler::new(client.clone(), &ns).with_timeout(Duration::from_secs(90));
    let (compile, job) = start(compiler, &client, &ns).await;
    finish_job(
        &client,
        &ns,
        &job,
        failed_conditions(
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ),
    )
    .await;
    let err = tokio::time::timeout(Duration::from_secs(20), compile)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err,
        CompileError::transient(format!(
            "the compile Job {ns}/{} of pipeline team/penguin did not finish within 90s: \
             Job was active longer than specified deadline",
            job.name_any()
        ))
    );
    assert_cleaned_up(&client, &ns, &job.name_any()).await;

    // The pod was evicted before any container ended: not the pipeline's fault.
    let compiler = JobCompiler::new(client.clone(), &ns);
    let (compile, job) = start(compiler, &client, &ns).await;
    fake_pod(
        &client,
        &ns,
        &job,
        json!({"phase": "Failed", "reason": "Evicted"}),
    )
    .await;
    finish_job(
        &client,
        &ns,
        &job,
        failed_conditions(
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ),
    )
    .await;
    let err = tokio::time::timeout(Duration::from_secs(20), compile)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&err, CompileError::Transient(m) if m.contains("without a container failure")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_job_that_never_finishes_times_out_as_transient_and_is_cleaned_up() {
    let (client, ns) = api_server().await;
    let ns = ns.name().to_string();
    let compiler = JobCompiler::new(client.clone(), &ns)
        .with_timeout(Duration::from_secs(1))
        .with_deadline_grace(Duration::ZERO);
    let compiler: Arc<dyn Compiler> = Arc::new(compiler);
    let err = compiler.compile(&request()).await.unwrap_err();
    assert!(
        matches!(&err, CompileError::Transient(m) if m.contains("did not finish within 1s")),
        "{err:?}"
    );
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    assert!(jobs.list(&Default::default()).await.unwrap().items.is_empty());
    assert!(
        config_maps
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|cm| !cm.name_any().starts_with("kfp-compile-"))
    );
}

#[tokio::test]
async fn a_definition_the_api_server_refuses_is_permanent_and_quoted_briefly() {
    // Issue 17: a definition over the ConfigMap limit (1 MiB) was retried forever as transient.
    let (client, ns) = api_server().await;
    let ns = ns.name().to_string();
    let compiler: Arc<dyn Compiler> = Arc::new(JobCompiler::new(client.clone(), &ns));
    let mut request = request();
    request.pipeline_definition["framework"]["parameters"]["huge"] = json!("x".repeat(1_200_000));
    let err = compiler.compile(&request).await.unwrap_err();
    let CompileError::Invalid(message) = &err else {
        panic!("a refused definition must be permanent: {err:?}")
    };
    assert!(
        message.contains("create the definition ConfigMap") && message.contains("team/penguin"),
        "{message}"
    );
    assert!(message.len() < 1_000, "{} bytes", message.len());
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    assert!(jobs.list(&Default::default()).await.unwrap().items.is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// The success path: a fake kubelet serves the pod log
// ---------------------------------------------------------------------------------------------------------------

/// A kubelet that answers every request with `log` over HTTPS (self-signed: the test API server has no
/// `--kubelet-certificate-authority`, so it does not verify kubelets), recording the request lines.
struct FakeKubelet {
    port: u16,
    requests: std::sync::mpsc::Receiver<String>,
}

impl FakeKubelet {
    fn start(log: String) -> Self {
        use std::io::{Read, Write};
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let cert = certified.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap();
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, requests) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let Ok(connection) = rustls::ServerConnection::new(config.clone()) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(connection, stream);
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let line = text.lines().next().unwrap_or_default().to_string();
                let _ = tx.send(line);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{log}",
                    log.len()
                );
                let _ = tls.write_all(response.as_bytes());
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        Self { port, requests }
    }
}

#[tokio::test]
async fn a_completed_job_yields_the_compiled_pipeline_from_the_pod_log() {
    use k8s_openapi::api::core::v1::Node;
    let (client, ns) = api_server().await;
    let ns = ns.name().to_string();
    let compiled = json!({"displayName": "team-penguin", "pipelineSpec": {"root": {}}});
    let kubelet = FakeKubelet::start(format!(
        "INFO compiling team/penguin\n{{\"not\": \"the result\"}}\n\n{}\n{compiled}\n",
        kfp_operator::compiler::job::COMPILED_MARKER
    ));

    // A Node whose kubelet is the fake one (nodes are cluster-wide: one per test namespace).
    let nodes: Api<Node> = Api::all(client.clone());
    let node_name = format!("fake-kubelet-{ns}");
    let node: Node = serde_json::from_value(json!({"metadata": {"name": node_name}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    nodes
        .patch_status(
            &node_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}}
            }})),
        )
        .await
        .unwrap();

    let compiler = JobCompiler::new(client.clone(), &ns);
    let (compile, job) = start(compiler, &client, &ns).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut pod: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": format!("{}-pod", job.name_any()),
            "labels": {"batch.kubernetes.io/controller-uid": job.uid().unwrap()},
        },
        "spec": job.spec.as_ref().unwrap().template.spec,
    }))
    .unwrap();
    pod.spec.as_mut().unwrap().node_name = Some(node_name.clone());
    pods.create(&PostParams::default(), &pod).await.unwrap();
    pods.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .unwrap();
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    jobs.patch_status(
        &job.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "startTime": now, "completionTime": now, "succeeded": 1,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                 "lastTransitionTime": now, "lastProbeTime": now},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                 "lastTransitionTime": now, "lastProbeTime": now},
            ]
        }})),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot complete the Job: {e}"));

    let result = tokio::time::timeout(Duration::from_secs(20), compile)
        .await
        .unwrap()
        .unwrap();
    nodes.delete(&node_name, &Default::default()).await.unwrap();
    assert_eq!(result.unwrap(), compiled);
    let request = kubelet.requests.try_recv().unwrap();
    assert!(
        request.starts_with(&format!(
            "GET /containerLogs/{ns}/{}-pod/{COMPILE_CONTAINER}",
            job.name_any()
        )),
        "{request}"
    );
    assert_cleaned_up(&client, &ns, &job.name_any()).await;
}
