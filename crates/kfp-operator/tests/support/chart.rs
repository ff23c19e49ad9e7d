//! The Helm chart in tests: the real `helm` binary (`scripts/helm.sh` builds it from its Go module), rendering and
//! installing `charts/kfp-operator`, and the objects it renders.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The release name and namespace the docs use.
pub const RELEASE: &str = "kfp-operator";
pub const NAMESPACE: &str = "kfp-operator-system";
/// The operator's ServiceAccount (`manager.serviceAccount.name`).
pub const SERVICE_ACCOUNT: &str = "kfp-operator-controller-manager";

pub fn chart_dir() -> PathBuf {
    super::repo_root().join("charts/kfp-operator")
}

/// The helm binary (`$HELM`, else the one `scripts/helm.sh` caches: `kfp_operator::local::cluster::helm`). Fails
/// (never skips) when there is none or it does not work.
pub fn helm() -> PathBuf {
    let candidate = kfp_operator::local::cluster::helm().unwrap_or_else(|e| panic!("the chart tests: {e}"));
    let works = Command::new(&candidate)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "helm is needed by the chart tests, and {} is not a working helm binary: run scripts/helm.sh or set HELM",
        candidate.display()
    );
    candidate
}

/// A helm command of its own folders under `home` (`kfp_operator::local::cluster::helm_command`).
pub fn helm_command(home: &Path, kubeconfig: Option<&Path>) -> Command {
    kfp_operator::local::cluster::helm_command(&helm(), home, kubeconfig)
}

/// Runs helm with `args`; `Ok(stdout)` or `Err(stderr)`.
pub fn run_helm(home: &Path, kubeconfig: Option<&Path>, args: &[&str]) -> Result<String, String> {
    let output = helm_command(home, kubeconfig)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run helm: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!("helm {} failed:\n{stderr}{stdout}", args.join(" ")))
    }
}

/// `helm template` of the chart in [`NAMESPACE`] with extra arguments (`--set ...`, `-f ...`).
pub fn try_template(args: &[&str]) -> Result<String, String> {
    let home = tempfile::tempdir().unwrap();
    let chart = chart_dir();
    let mut all = vec![
        "template",
        RELEASE,
        chart.to_str().unwrap(),
        "--namespace",
        NAMESPACE,
    ];
    all.extend_from_slice(args);
    run_helm(home.path(), None, &all)
}

/// [`try_template`] that must succeed, parsed into objects.
pub fn template(args: &[&str]) -> Vec<Value> {
    let yaml = try_template(args).unwrap_or_else(|e| panic!("{e}"));
    objects(&yaml)
}

/// The objects of multi-document YAML.
pub fn objects(yaml: &str) -> Vec<Value> {
    kfp_testenv::parse_yaml(yaml, Path::new("<helm output>"))
        .unwrap_or_else(|e| panic!("helm rendered invalid YAML: {e}"))
        .into_iter()
        .map(|o| o.value)
        .collect()
}

/// The rendered object of `kind` named `name` (panics naming what was rendered when there is none).
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} was rendered; rendered: {:?}", names(objects)))
}

/// Every rendered object of `kind`.
pub fn all_of<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// `Kind namespace/name` of every object, for messages.
pub fn names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// The operator's configuration file as the chart renders it into its ConfigMap.
pub fn configuration(objects: &[Value]) -> String {
    find(objects, "ConfigMap", "kfp-operator-manager-config")["data"]["config.yaml"]
        .as_str()
        .expect("the ConfigMap holds config.yaml")
        .to_string()
}

/// Writes `yaml` as a values file in `dir` and returns its path.
pub fn values_file(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `(apiGroup, resource, verb)` of every rule of a rendered ClusterRole or Role, expanded.
pub fn grants(role: &Value) -> std::collections::BTreeSet<(String, String, String)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let mut grants = std::collections::BTreeSet::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    grants.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    grants
}

/// `kfp-operator run` as a separate process, as the chart's Deployment runs it: `--config` with the file the chart
/// rendered, `POD_NAME`/`POD_NAMESPACE` as the downward API sets them, a kubeconfig with the identity to act as.
/// Only the listening addresses are moved to free loopback ports. Killed when dropped.
pub struct OperatorProcess {
    child: tokio::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// `http://127.0.0.1:<port>`: `/healthz`, `/readyz`, `/metrics`.
    pub base: String,
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl OperatorProcess {
    pub fn start(kubeconfig: &Path, config: &Path) -> Self {
        use tokio::io::AsyncBufReadExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        // The webhook server and the feed listen where the chart puts them (all interfaces, fixed ports); moved
        // to free loopback ports so that tests run side by side.
        let webhook = format!("127.0.0.1:{}", super::process::free_port());
        let feed_port = super::process::free_port().to_string();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kfp-operator"));
        for (key, _) in std::env::vars() {
            if key.starts_with("KFP_OPERATOR_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command
            .args(["run", "--config"])
            .arg(config)
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", "kfp-operator-controller-manager-test")
            .env("POD_NAMESPACE", NAMESPACE)
            .env("KFP_OPERATOR_SYSTEM_HEALTHADDRESS", &address)
            .env("KFP_OPERATOR_SYSTEM_METRICSADDRESS", &address)
            .env("KFP_OPERATOR_SYSTEM_WEBHOOK_ADDRESS", &webhook)
            .env("KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_ADDRESS", "127.0.0.1")
            .env("KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_PORT", &feed_port)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            stderr,
            base: format!("http://{address}"),
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until `/readyz` answers 200 (the Lease is held and every controller's cache is filled).
    pub async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.base);
        let result = kfp_testenv::wait_for("the operator's /readyz to answer 200", super::WAIT, || async {
            let ready = reqwest::get(&url).await.is_ok_and(|r| r.status() == 200);
            Ok::<_, String>(ready.then_some(()))
        })
        .await;
        if let Err(e) = result {
            panic!("{e}\nstderr:\n{}", self.stderr());
        }
    }

    /// The operator's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// SIGTERM, then waits for the exit; asserts it exits 0 (in-flight reconciles finished, Lease released).
    pub async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let exit = tokio::time::timeout(super::WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit after SIGTERM\nstderr:\n{}", self.stderr()))
            .unwrap();
        assert_eq!(exit.code(), Some(0), "stderr:\n{}", self.stderr());
        self.stderr()
    }
}

/// Lines of the operator's log that report a refused API call (the API server's 403 message says `forbidden`).
pub fn forbidden_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("forbidden"))
        .collect()
}

/// A kubeconfig file in `dir` acting as the chart's ServiceAccount (a TokenRequest token).
pub async fn service_account_kubeconfig(env: &kfp_testenv::TestEnv, dir: &Path) -> PathBuf {
    let token = env
        .service_account_token(NAMESPACE, SERVICE_ACCOUNT, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("operator.kubeconfig");
    env.write_kubeconfig_with_token(&token, &path)
        .unwrap_or_else(|e| panic!("{e}"));
    path
}

/// The configuration file of the installed release (its ConfigMap), written to `dir`.
pub async fn installed_configuration(client: &kube::Client, dir: &Path) -> PathBuf {
    let config_maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), NAMESPACE);
    let config_map = config_maps.get("kfp-operator-manager-config").await.unwrap();
    let text = config_map
        .data
        .and_then(|d| d.get("config.yaml").cloned())
        .expect("the ConfigMap holds config.yaml");
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}
