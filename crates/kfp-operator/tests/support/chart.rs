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

/// The helm binary: `$HELM`, else the one `scripts/helm.sh` caches. Fails (never skips) when there is none.
pub fn helm() -> PathBuf {
    let fix = "run `scripts/helm.sh` (it builds helm v3.22.0 from its Go module into ~/.cache/kfp-testenv) \
               or set HELM to a helm 3 binary";
    let candidate = match std::env::var_os("HELM").filter(|v| !v.is_empty()) {
        Some(helm) => PathBuf::from(helm),
        None => {
            let Some(cache) =
                kfp_testenv::assets::cache_dir().and_then(|d| d.parent().map(Path::to_path_buf))
            else {
                panic!("helm is needed by the chart tests and HOME is not set: {fix}");
            };
            cache.join("helm-v3.22.0/helm")
        }
    };
    let works = Command::new(&candidate)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "helm is needed by the chart tests, and {} is not a working helm binary: {fix}",
        candidate.display()
    );
    candidate
}

/// A helm command with its own configuration, cache and data folders (nothing of the user's is read or written),
/// talking to the cluster of `kubeconfig` when given.
pub fn helm_command(home: &Path, kubeconfig: Option<&Path>) -> Command {
    let mut command = Command::new(helm());
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
