//! The Vertex AI provider's Cloud Storage calls against fake-gcs-server (github.com/fsouza/fake-gcs-server v1.56.1,
//! built from its Go module by `scripts/cluster/build-node-assets.sh`, which `scripts/test.sh` runs): the JSON
//! API's media upload, list by prefix, `alt=media` download and delete, as a server that is not ours answers them.
//! The aiplatform API and the metadata server stay the in-process fake (`FakeVai`): no real server of theirs runs
//! here. Each test starts its own server on a free loopback port (about 0.1 s).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kfp_core::definitions::{PipelineDefinitionWrapper, RunDefinition};
use kfp_core::provider::Provider;
use kfp_core::values::NamespacedName;
use kfp_providers::vai::fake::FakeVai;
use kfp_providers::vai::{VaiConfig, VaiProvider};
use serde_json::{Value, json};

const BUCKET: &str = "pipelines";

/// fake-gcs-server on a free loopback port, in memory; killed when dropped.
struct FakeGcsServer {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for FakeGcsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FakeGcsServer {
    /// `FAKE_GCS_SERVER`, else build-node-assets.sh's binary (`KFP_NODE_ASSETS` or the test assets' cache). Fails,
    /// never skips, when it is missing.
    fn binary() -> PathBuf {
        let binary = std::env::var_os("FAKE_GCS_SERVER")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("KFP_NODE_ASSETS").map(|d| PathBuf::from(d).join("fake-gcs-server")))
            .or_else(|| kfp_testenv::assets::cache_dir().map(|d| d.join("fake-gcs-server")))
            .expect("HOME or FAKE_GCS_SERVER must be set to find fake-gcs-server");
        assert!(
            binary.is_file(),
            "fake-gcs-server is missing at {}: run scripts/cluster/build-node-assets.sh (scripts/test.sh does), or \
             set FAKE_GCS_SERVER to the binary",
            binary.display()
        );
        binary
    }

    /// Starts it, waits until it answers, and creates [`BUCKET`].
    async fn start() -> Self {
        // reqwest is built without a default TLS provider in this workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let binary = Self::binary();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&binary)
            .args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-backend",
                "memory",
                "-log-level",
                "warn",
            ])
            .args([
                "-port",
                &port.to_string(),
                "-public-host",
                &format!("127.0.0.1:{port}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("fake-gcs-server exited with {status} before it answered");
            }
            let ready = server
                .http
                .get(format!("{}/storage/v1/b", server.url))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "fake-gcs-server did not answer on {} within 30 s",
                server.url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let created = server
            .http
            .post(format!("{}/storage/v1/b?project=proj", server.url))
            .json(&json!({"name": BUCKET}))
            .send()
            .await
            .unwrap();
        assert!(
            created.status().is_success(),
            "creating the bucket: {}",
            created.status()
        );
        server
    }

    /// The object names in [`BUCKET`], as the server lists them.
    async fn names(&self) -> Vec<String> {
        let page: Value = self
            .http
            .get(format!("{}/storage/v1/b/{BUCKET}/o", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut names: Vec<String> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// An object's content as JSON.
    async fn object(&self, name: &str) -> Value {
        let name = name.replace('/', "%2F");
        let response = self
            .http
            .get(format!("{}/storage/v1/b/{BUCKET}/o/{name}?alt=media", self.url))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{name}: {}", response.status());
        response.json().await.unwrap()
    }

    /// Uploads an object the provider did not write.
    async fn put(&self, name: &str, body: &str) {
        let response = self
            .http
            .post(format!(
                "{}/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={name}",
                self.url
            ))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{name}: {}", response.status());
    }
}

/// The provider with Cloud Storage at `gcs`, aiplatform and the metadata server at the in-process fake.
fn provider(gcs: &FakeGcsServer, vai: &FakeVai) -> VaiProvider {
    let mut config = VaiConfig::new(
        NamespacedName::new("kfp-operator-system", "vai"),
        "proj",
        "europe-west2",
        BUCKET,
    );
    config.gcs_endpoint = gcs.url.clone();
    config.aiplatform_endpoint = vai.url().to_string();
    config.metadata_endpoint = Some(vai.url().to_string());
    config.pipeline_root_storage = "gs://root".into();
    config.request_timeout = Duration::from_secs(5);
    config.operation_poll_interval = Duration::from_millis(10);
    VaiProvider::new(config).unwrap()
}

fn compiled(version: &str) -> Value {
    json!({
        "pipelineInfo": {"name": "ns-p"},
        "root": {"dag": {"tasks": {}}},
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.17.3",
        "x-version": version
    })
}

fn pipeline(version: &str) -> PipelineDefinitionWrapper {
    PipelineDefinitionWrapper {
        pipeline_definition: json!({
            "name": "ns/p", "version": version, "image": "img:1",
            "framework": {"name": "kfpsdk", "parameters": {}}
        }),
        compiled_pipeline: compiled(version),
    }
}

fn run(pipeline_version: &str) -> RunDefinition {
    serde_json::from_value(json!({
        "name": "ns/r", "version": "rv1", "pipelineName": "ns/p", "pipelineVersion": pipeline_version,
        "runConfigurationName": "ns/rc", "parameters": {}
    }))
    .unwrap()
}

#[tokio::test]
async fn pipeline_versions_are_uploaded_listed_by_prefix_and_deleted() {
    let gcs = FakeGcsServer::start().await;
    let vai = FakeVai::start().await.unwrap();
    let provider = provider(&gcs, &vai);

    let id = provider.create_pipeline(&pipeline("v1")).await.unwrap();
    assert_eq!(id, "ns/p");
    assert_eq!(
        provider.update_pipeline(&pipeline("v2"), &id).await.unwrap(),
        "ns/p"
    );
    assert_eq!(gcs.object("ns/p/v1").await, compiled("v1"));
    assert_eq!(gcs.object("ns/p/v2").await, compiled("v2"));

    // Objects of other pipelines, one whose name only starts like this one's: deleting ns/p keeps them.
    gcs.put("ns/p-2/v1", "{}").await;
    gcs.put("ns/other/v1", "{}").await;
    assert_eq!(
        gcs.names().await,
        ["ns/other/v1", "ns/p-2/v1", "ns/p/v1", "ns/p/v2"]
    );
    provider.delete_pipeline(&id).await.unwrap();
    assert_eq!(gcs.names().await, ["ns/other/v1", "ns/p-2/v1"]);
    // Gone already: still fine.
    provider.delete_pipeline(&id).await.unwrap();
}

#[tokio::test]
async fn a_run_reads_its_compiled_pipeline_from_cloud_storage() {
    let gcs = FakeGcsServer::start().await;
    let vai = FakeVai::start().await.unwrap();
    let provider = provider(&gcs, &vai);
    provider.create_pipeline(&pipeline("v1")).await.unwrap();
    provider.update_pipeline(&pipeline("v2"), "ns/p").await.unwrap();

    assert_eq!(provider.create_run(&run("v1")).await.unwrap(), "ns-r");
    let jobs = vai.pipeline_jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = jobs.into_values().next().unwrap();
    assert_eq!(
        job["pipelineSpec"],
        compiled("v1"),
        "the version the run names, not the latest"
    );
}

#[tokio::test]
async fn a_run_of_a_version_never_uploaded_fails_naming_the_object() {
    let gcs = FakeGcsServer::start().await;
    let vai = FakeVai::start().await.unwrap();
    let provider = provider(&gcs, &vai);
    provider.create_pipeline(&pipeline("v1")).await.unwrap();

    let error = provider.create_run(&run("v9")).await.unwrap_err();
    assert!(error.to_string().contains("gs://pipelines/ns/p/v9"), "{error}");
    assert!(vai.pipeline_jobs().is_empty());
}
