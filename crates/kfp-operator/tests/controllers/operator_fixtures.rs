//! `kfp-operator run`, as a real process, reconciles every acceptance fixture to its settled state on a real API
//! server, under both executors: Argo (Workflows completed by a simulated Argo controller that calls a stub
//! provider service, as the WorkflowTemplates' `curl` step would) and direct (the stub provider in-process).
//!
//! The manifests are `examples/local/`: the shared fixtures, with the Provider also allowing the namespaces of the
//! cross-namespace dependency example. Each test starts its own control plane, because the fixtures name fixed
//! namespaces (`default`, `kfp-operator-system`, ...) and the operator watches all of them.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kfp_core::values::NamespacedName;
use kfp_operator::local::{Row, all_rows, apply_all, settled, table};
use support::Mode;
use support::process::OperatorProcess;

/// Settling every fixture takes a few seconds; the rest is headroom for a loaded machine.
const SETTLE: Duration = Duration::from_secs(120);

/// Kind, `ns/name` prefix (RunConfiguration children have generated names), and the state every match must have.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("Provider", "kfp-operator-system/stub", "Succeeded"),
    ("Pipeline", "default/stub-pipeline", "Succeeded"),
    ("Pipeline", "default/penguin-pipeline", "Succeeded"),
    ("Experiment", "default/penguin-experiment", "Succeeded"),
    (
        "RunSchedule",
        "default/penguin-pipeline-run-schedule-",
        "Succeeded",
    ),
    ("RunSchedule", "default/stub-runconfiguration-", "Succeeded"),
    (
        "RunSchedule",
        "base-namespace/penguin-pipeline-examples-rc-",
        "Succeeded",
    ),
    ("Run", "default/stub-runconfiguration-", "Succeeded"),
    ("RunConfiguration", "default/stub-runconfiguration", "Succeeded"),
    (
        "RunConfiguration",
        "base-namespace/penguin-pipeline-examples-rc",
        "Succeeded",
    ),
    (
        "Pipeline",
        "base-namespace/penguin-pipeline-examples",
        "Succeeded",
    ),
    (
        "Pipeline",
        "dependant-namespace/penguin-pipeline-training",
        "Succeeded",
    ),
];

/// The dependency example. Direct: the stub runs the base RunConfiguration's schedule (`schedulePeriodSeconds`)
/// and its event completes the chain. Argo: the stub behind the provider service sends no events here, so the
/// Provider's schedule parameter is dropped and the dependants wait (`Pending`: no succeeded run to read yet).
fn expected_dependants(mode: Mode) -> &'static [(&'static str, &'static str, &'static str)] {
    match mode {
        Mode::Direct => &[
            ("Run", "default/penguin-pipeline-run-", "Succeeded"),
            (
                "RunConfiguration",
                "dependant-namespace/penguin-pipeline-training-rc",
                "Succeeded",
            ),
            (
                "Run",
                "dependant-namespace/penguin-pipeline-training-rc-",
                "Succeeded",
            ),
        ],
        Mode::Argo => &[
            ("Run", "default/penguin-pipeline-run-", "Pending"),
            (
                "RunConfiguration",
                "dependant-namespace/penguin-pipeline-training-rc",
                "Pending",
            ),
        ],
    }
}

/// What is still missing from `rows` (empty: every expectation holds and every resource is settled).
fn unmet(rows: &[Row], mode: Mode) -> Vec<String> {
    let mut unmet: Vec<String> = EXPECTED
        .iter()
        .chain(expected_dependants(mode))
        .filter_map(|(kind, prefix, state)| {
            let matching: Vec<&Row> = rows
                .iter()
                .filter(|[k, name, ..]| k == kind && name.starts_with(prefix))
                .collect();
            let holds = !matching.is_empty() && matching.iter().all(|[_, _, s, ..]| s == state);
            (!holds).then(|| format!("{kind} {prefix}* should be {state}"))
        })
        .collect();
    unmet.extend(
        rows.iter()
            .filter(|[_, _, state, ..]| !settled(state))
            .map(|[kind, name, state, ..]| format!("{kind} {name} is not settled ({state:?})")),
    );
    unmet
}

async fn every_fixture_settles(mode: Mode) {
    kfp_providers::http::install_crypto_provider();
    let (env, client) = support::dedicated_env().await;

    let stub_compiler = support::repo_root().join("compilers/stub/compile.sh");
    let compilers = format!("{{tfx: {}}}", stub_compiler.display());
    let mut settings = vec![
        ("KFP_OPERATOR_SYSTEM_LOGGING_FORMAT", "text"),
        ("KFP_OPERATOR_SYSTEM_LOGGING_LEVEL", "warn"),
    ];
    let _argo = match mode {
        Mode::Argo => {
            settings.push(("KFP_OPERATOR_SPEC_EXECUTOR", "argo"));
            let provider = NamespacedName::new("kfp-operator-system".to_string(), "stub".to_string());
            let url =
                support::serve_provider(&provider, Arc::new(kfp_providers::stub::StubProvider::new())).await;
            Some(support::SimulatedArgo::start_with(
                client.clone(),
                "kfp-operator-system",
                url,
                4,
                Default::default(),
            ))
        }
        Mode::Direct => {
            settings.push(("KFP_OPERATOR_SPEC_EXECUTOR", "direct"));
            settings.push(("KFP_OPERATOR_SPEC_DIRECT_DEFAULTPROVIDERTYPE", "stub"));
            // The fixtures' tfx Pipeline compiles with the stub compiler here, as in `kfp-operator local`.
            settings.push(("KFP_OPERATOR_SPEC_DIRECT_COMPILERS", &compilers));
            None
        }
    };
    let operator = OperatorProcess::start(
        Path::new(env!("CARGO_BIN_EXE_kfp-operator")),
        env.kubeconfig_path(),
        &settings,
    );
    operator.wait_ready(support::WAIT).await;

    let mut objects = kfp_testenv::read_manifests(&[support::repo_root().join("examples/local")]).unwrap();
    if mode == Mode::Argo {
        for object in objects.iter_mut().filter(|o| o.value["kind"] == "Provider") {
            if let Some(parameters) = object.value["spec"]["parameters"].as_object_mut() {
                parameters.remove(kfp_providers::stub::SCHEDULE_PERIOD_PARAMETER);
            }
        }
    }
    assert!(
        objects.len() >= 9,
        "examples/local holds the fixtures: {} objects",
        objects.len()
    );
    apply_all(&client, &objects).await.unwrap();

    let waited = kfp_testenv::wait_for("every fixture to settle as expected", SETTLE, || async {
        let rows = all_rows(&client).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(unmet(&rows, mode).is_empty().then_some(()))
    })
    .await;
    if let Err(error) = waited {
        let rows = all_rows(&client).await.unwrap();
        panic!(
            "{error} ({mode:?} executor):\n{}\n{}\noperator stderr:\n{}",
            unmet(&rows, mode).join("\n"),
            table(&client).await.unwrap(),
            operator.stderr()
        );
    }
}

#[tokio::test]
async fn every_fixture_settles_under_the_argo_executor() {
    every_fixture_settles(Mode::Argo).await;
}

#[tokio::test]
async fn every_fixture_settles_under_the_direct_executor() {
    every_fixture_settles(Mode::Direct).await;
}
