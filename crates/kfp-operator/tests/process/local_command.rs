//! The README's first command: `kfp-operator local --once` brings up a control plane, serves the webhooks and
//! installs the CRDs pointed at them, starts the operator (direct executor, stub provider running schedules),
//! applies the example manifests as `kubectl apply` does and prints every resource in its settled state.

// Test code: failing loudly with the reason is the point.

use crate::support;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn local_once_applies_the_examples_and_prints_them() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO_BIN_EXE_kfp-operator"))
        .args(["local", "--once", "--manifests"])
        .arg(root.join("examples/local"))
        .output()
        .expect("kfp-operator runs");
    let stdout = succeeded_stdout(&output);
    assert!(
        stdout.contains("webhooks: conversion and admission at https://127.0.0.1:"),
        "{stdout}"
    );
    let table = &stdout[stdout.find("KIND ").expect("a table")..];
    let state_of = |prefix: &str| -> Vec<String> {
        table
            .lines()
            .filter(|line| line.starts_with(prefix))
            .map(|line| line.split_whitespace().nth(2).unwrap_or_default().to_string())
            .collect()
    };
    for (row, state) in [
        ("Provider          kfp-operator-system/stub", "Succeeded"),
        ("Pipeline          default/stub-pipeline", "Succeeded"),
        ("Pipeline          default/penguin-pipeline", "Succeeded"),
        ("Experiment        default/penguin-experiment", "Succeeded"),
        (
            "RunSchedule       default/penguin-pipeline-run-schedule-",
            "Succeeded",
        ),
        ("RunSchedule       default/stub-runconfiguration-", "Succeeded"),
        (
            "RunSchedule       base-namespace/penguin-pipeline-examples-rc-",
            "Succeeded",
        ),
        ("Run               default/stub-runconfiguration-", "Succeeded"),
        // `Pending` until now: it waited for its dependency's first succeeded run, the stub's scheduled run.
        ("Run               default/penguin-pipeline-run-", "Succeeded"),
        // The dependant's run, started by that scheduled run's completion.
        (
            "Run               dependant-namespace/penguin-pipeline-training-rc-",
            "Succeeded",
        ),
        ("RunConfiguration  default/stub-runconfiguration", "Succeeded"),
        (
            "RunConfiguration  base-namespace/penguin-pipeline-examples-rc",
            "Succeeded",
        ),
        (
            "RunConfiguration  dependant-namespace/penguin-pipeline-training-rc",
            "Succeeded",
        ),
    ] {
        let states = state_of(row);
        assert!(!states.is_empty(), "missing row {row:?} in:\n{stdout}");
        assert!(
            states.iter().all(|s| s == state),
            "{row:?} should be {state}:\n{stdout}"
        );
    }
}

/// The user documentation's v1alpha5 manifests go through the conversion webhook (no provider named: local's
/// default Provider), and a bad cron is refused by the admission webhook with the field as v1alpha5 spells it;
/// the other manifests are applied anyway and the command exits 1.
#[test]
fn local_once_converts_v1alpha5_manifests_and_prints_refusals() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let output = Command::new(env!("CARGO_BIN_EXE_kfp-operator"))
        .args(["local", "--once", "--manifests"])
        .arg(fixtures.join("v1alpha5"))
        .arg("--manifests")
        .arg(fixtures.join("local-v1alpha5"))
        .output()
        .expect("kfp-operator runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "refused RunSchedule bad-cron-schedule: admission webhook \"vrunschedule.pipelines.kubeflow.org\" denied \
             the request: RunSchedule.pipelines.kubeflow.org \"bad-cron-schedule\" is invalid: spec.schedule: \
             Invalid value: \"61 * * * *\": minute 61 is out of range 0-59"
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains("the API server refused 1 of the manifests"),
        "{stderr}"
    );
    let table = &stdout[stdout.find("KIND ").expect("a table")..];
    let row = |kind: &str, name: &str| -> Vec<String> {
        table
            .lines()
            .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .find(|cells| cells.first().map(String::as_str) == Some(kind) && cells[1].starts_with(name))
            .unwrap_or_else(|| panic!("no row {kind} {name}:\n{stdout}"))
    };
    // kind, name (prefix), state, provider (last column).
    for (kind, name, state) in [
        ("Pipeline", "default/penguin-pipeline", "Succeeded"),
        ("Experiment", "default/penguin-experiment", "Succeeded"),
        ("Experiment", "default/unannotated-experiment", "Succeeded"),
        (
            "RunConfiguration",
            "default/penguin-pipeline-recurring-run",
            "Succeeded",
        ),
        ("RunConfiguration", "default/penguin-pipeline-tuning", "Succeeded"),
        (
            "RunSchedule",
            "default/penguin-pipeline-run-schedule-",
            "Succeeded",
        ),
        ("Run", "default/penguin-pipeline-tuning-", "Succeeded"),
        // Its dependency (`penguin-pipeline-example-generator-runconfiguration`) is not among the manifests.
        ("Run", "default/penguin-pipeline-run-", "Pending"),
    ] {
        let cells = row(kind, name);
        assert_eq!(cells[2], state, "{kind} {name}:\n{stdout}");
        assert_eq!(
            cells.last().map(String::as_str),
            Some("kfp-operator-system/stub"),
            "{kind} {name}:\n{stdout}"
        );
    }
    assert!(!table.contains("bad-cron-schedule"), "{stdout}");
}

#[test]
fn local_names_missing_manifests() {
    let output = Command::new(env!("CARGO_BIN_EXE_kfp-operator"))
        .args(["local", "--once", "--manifests", "/nonexistent/manifests"])
        .output()
        .expect("kfp-operator runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no manifests found at /nonexistent/manifests"),
        "{stderr}"
    );
}

/// The state column of the table row of `kind` `name`.
fn state_in_table(stdout: &str, kind: &str, name: &str) -> Option<String> {
    let table = &stdout[stdout.find("KIND ")?..];
    table.lines().find_map(|line| {
        let cells: Vec<&str> = line.split_whitespace().collect();
        (cells.first() == Some(&kind) && cells.get(1) == Some(&name))
            .then(|| cells.get(2).map(|s| s.to_string()))
            .flatten()
    })
}

fn local_kfpsdk(python_env: &std::path::Path) -> (std::process::ExitStatus, String, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO_BIN_EXE_kfp-operator"))
        .args([
            "local",
            "--once",
            "--manifests",
            "examples/local-kfpsdk",
            "--python-env",
        ])
        .arg(python_env)
        .current_dir(&root)
        .env_remove("KFP_OPERATOR_VENV")
        .output()
        .expect("kfp-operator runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn local_compiles_a_kfp_sdk_pipeline_with_the_python_environment() {
    let venv = support::python::python_env();
    let (status, stdout, stderr) = local_kfpsdk(&venv);
    assert!(
        status.success(),
        "exit {status:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "kfpsdk compiler: compilers/kfpsdk/compile.sh with the Python environment {}",
            venv.display()
        )),
        "{stdout}"
    );
    assert_eq!(
        state_in_table(&stdout, "Pipeline", "default/add-pipeline").as_deref(),
        Some("Succeeded"),
        "{stdout}"
    );
}

#[test]
fn without_the_python_environment_the_kfp_sdk_pipeline_fails_and_says_why() {
    let (status, stdout, _) = local_kfpsdk(std::path::Path::new("/nonexistent/venv"));
    // Settled (Failed counts as settled), so the command itself succeeds.
    assert!(status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "kfpsdk compiler: not available: no Python environment at /nonexistent/venv (run scripts/python-env.sh)"
        ),
        "{stdout}"
    );
    assert_eq!(
        state_in_table(&stdout, "Pipeline", "default/add-pipeline").as_deref(),
        Some("Failed"),
        "{stdout}"
    );
}

/// `local --cluster --once` (the last step of scripts/local-cluster.sh): the cluster examples on real pods and real
/// Argo Workflows, every resource Succeeded, and nothing left behind once it exits.
#[test]
fn local_cluster_once_runs_the_cluster_examples_on_real_pods() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let child = Command::new(env!("CARGO_BIN_EXE_kfp-operator"))
        .args(["local", "--cluster", "--once"])
        .current_dir(&root)
        .env("HELM", support::chart::helm())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kfp-operator runs");
    let pid = child.id();
    let output = child.wait_with_output().expect("kfp-operator ends");
    let stdout = succeeded_stdout(&output);
    assert!(stdout.contains("running as a pod"), "{stdout}");
    let table = &stdout[stdout.find("KIND ").expect("a table")..];
    let rows: Vec<&str> = table.lines().skip(1).filter(|l| !l.trim().is_empty()).collect();
    for prefix in [
        "Provider          kfp-operator-system/stub",
        "Pipeline          default/stub-pipeline",
        "Pipeline          default/add-pipeline",
        "Experiment        default/demo-experiment",
        "RunSchedule       default/nightly-",
        "Run               default/add-run",
        "Run               default/upstream-rc-",
        "Run               default/dependant-rc-",
        "RunConfiguration  default/dependant-rc",
    ] {
        assert!(
            rows.iter().any(|r| r.starts_with(prefix)),
            "no row {prefix}:\n{table}"
        );
    }
    for row in &rows {
        assert_eq!(row.split_whitespace().nth(2), Some("Succeeded"), "{row}\n{table}");
    }
    let netns = PathBuf::from(format!("/run/netns/kfp-cluster-{pid}-0"));
    assert!(!netns.exists(), "{} is left behind", netns.display());
}

/// The standard output of a run that must have succeeded (else both outputs in the failure).
fn succeeded_stdout(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}
