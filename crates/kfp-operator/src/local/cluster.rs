//! `kfp-operator local --cluster`: the same demo on real pods. A one-node cluster (kfp-testenv's cluster mode:
//! kubelet, containerd, the real Argo workflow-controller, in a network namespace of its own), the operator
//! installed by its Helm chart from an image of this very binary, the manifests applied (default
//! `examples/cluster/`), every Workflow and pod real.
//!
//! Pods share the node's network there (docs/development.md, "The cluster tier"), so the chart is installed with
//! [`chart_values`]: host network, each Service on its own port, Service names the pods call on 127.0.0.1. The
//! end-to-end tests (`tests/cluster_e2e.rs`) install the operator with the same functions.

use std::path::{Path, PathBuf};
use std::process::Command;

use kfp_testenv::cluster::{Cluster, ClusterOptions};

/// The Helm release and its namespace (the docs' names).
pub const RELEASE: &str = "kfp-operator";
/// The release namespace, where the Providers of `examples/cluster/` live.
pub const NAMESPACE: &str = "kfp-operator-system";
/// The name prefix `scripts/images.sh` gives the images (the chart's default `containerRegistry`).
pub const REGISTRY: &str = "kfp-operator.local";
/// The images' tag: the crate version, as `scripts/images.sh` and the chart's appVersion.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Providers whose provider-service names the Workflows call (`provider-<name>.<namespace>`).
pub const PROVIDERS: [&str; 1] = ["stub"];
/// Where provider services listen: the operator pod, on the same network, holds 8080-8082.
pub const PROVIDER_PORT: u16 = 8090;
/// The provider services' metrics port.
pub const PROVIDER_METRICS_PORT: u16 = 8091;
/// The images `scripts/images.sh` writes for the cluster (argoexec is the cluster's own).
pub const IMAGES: [&str; 6] = [
    "operator",
    "stub-provider",
    "stub-compiler",
    "tools",
    "kfpsdk-compiler",
    "example-pipelines",
];

/// `<registry>/<name>:<version>`, an image of [`IMAGES`] by its repository name.
pub fn image(repository: &str) -> String {
    format!("{REGISTRY}/{repository}:{VERSION}")
}

/// Starts the cluster with the provider Service names of [`PROVIDERS`] resolvable in Workflow pods.
pub fn start() -> Result<Cluster, kfp_testenv::Error> {
    Cluster::start(
        ClusterOptions::default()
            .workflow_hostnames(PROVIDERS.iter().map(|p| format!("provider-{p}.{NAMESPACE}"))),
    )
}

/// [`start`], then moves the calling thread into the cluster's network namespace: call it before building the
/// Tokio runtime, whose threads then inherit the namespace.
pub fn start_and_enter() -> Result<Cluster, kfp_testenv::Error> {
    let cluster = start()?;
    cluster.enter()?;
    Ok(cluster)
}

/// Writes the [`IMAGES`] from `binary` with the repository's `scripts/images.sh` (uncompressed, no release
/// build) into the cluster's state folder and imports them into the node.
pub fn load_images(cluster: &Cluster, repository: &Path, binary: &Path) -> Result<(), String> {
    let out = cluster.state_dir().join("kfp-images");
    let output = Command::new("bash")
        .arg(repository.join("scripts/images.sh"))
        .arg("--out")
        .arg(&out)
        .args(IMAGES)
        .env("KFP_OPERATOR_BINARY", binary)
        .env("KFP_IMAGES_GZIP", "0")
        .env("KFP_IMAGES_REGISTRY", REGISTRY)
        .output()
        .map_err(|e| format!("cannot run scripts/images.sh: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/images.sh failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    for entry in std::fs::read_dir(&out).map_err(|e| format!("{}: {e}", out.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "tar") {
            cluster.import_image(&path).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The chart's values for the cluster: the operator and provider pods on the node's network, each Service on its
/// own port (the feed on 80, the port provider services post to), names the pods call on 127.0.0.1, images never
/// pulled, the tools image for the WorkflowTemplates' steps.
pub fn chart_values() -> String {
    let feed_host = format!("{RELEASE}-runcompletion-webhook-service.{NAMESPACE}");
    let tools = image("kfp-operator-tools");
    format!(
        r#"manager:
  hostNetwork: true
  image: {{pullPolicy: Never}}
  runcompletionWebhook: {{servicePort: 80}}
  configuration:
    defaultProviderValues:
      podTemplateSpec:
        spec:
          hostNetwork: true
          dnsPolicy: ClusterFirstWithHostNet
          hostAliases: [{{ip: 127.0.0.1, hostnames: ["{feed_host}"]}}]
provider:
  servicePort: {PROVIDER_PORT}
  metricsPort: {PROVIDER_METRICS_PORT}
argo:
  namespaces: [{NAMESPACE}]
  images: {{curl: "{tools}", jq: "{tools}"}}
"#
    )
}

/// `helm install --wait` of `chart` with [`chart_values`], helm's own folders under the cluster's state folder.
pub fn install_chart(cluster: &Cluster, helm: &Path, chart: &Path) -> Result<(), String> {
    let home = cluster.state_dir().join("helm");
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let values = home.join("values.yaml");
    std::fs::write(&values, chart_values()).map_err(|e| format!("{}: {e}", values.display()))?;
    let output = helm_command(helm, &home, Some(&cluster.kubeconfig_path()))
        .args(["install", RELEASE])
        .arg(chart)
        .args([
            "--namespace",
            NAMESPACE,
            "--create-namespace",
            "--wait",
            "--timeout",
            "4m",
            "-f",
        ])
        .arg(&values)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", helm.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "helm install failed:\n{}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        ))
    }
}

/// A `helm` command with its own configuration, cache and data folders under `home` (nothing of the user's is
/// read or written), talking to the cluster of `kubeconfig` when given (none: only local commands work).
pub fn helm_command(helm: &Path, home: &Path, kubeconfig: Option<&Path>) -> Command {
    let mut command = Command::new(helm);
    for (variable, folder) in [
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_DATA_HOME", "data"),
    ] {
        command.env(variable, home.join(folder));
    }
    command.env_remove("KUBECONFIG");
    if let Some(kubeconfig) = kubeconfig {
        command.env("KUBECONFIG", kubeconfig);
    }
    command
}

/// The helm binary: `$HELM`, else the one `scripts/helm.sh` caches beside the test assets.
pub fn helm() -> Result<PathBuf, String> {
    if let Some(helm) = std::env::var_os("HELM").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(helm));
    }
    let cached = kfp_testenv::assets::cache_dir()
        .and_then(|d| d.parent().map(|p| p.join("helm-v3.22.0/helm")))
        .filter(|p| p.is_file());
    cached.ok_or_else(|| "helm is needed: run scripts/helm.sh, or set HELM to a helm 3 binary".to_string())
}
