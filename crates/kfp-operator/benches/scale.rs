//! The scale harness (issue 5): `kfp-operator run` as a release process on a real control plane (`kfp-testenv`)
//! with the stub provider, under the direct executor and the Argo executor (a simulated Argo controller completing
//! Workflows against a stub provider service). It creates Pipelines and Runs, measures the time until every one
//! is `Succeeded`, the reconciles per second, the operator's peak RSS and the API server's raw bound (a bare
//! client doing the same number of writes), then grows the cache to `--cached` resources and reads the RSS again.
//!
//! First, 100 Pipelines alone, then 100 Runs alone, measure the operator's API requests per resource to
//! `Succeeded` (issue 18); the main phase also reports latency percentiles (creation to `Succeeded`) and the CPU
//! seconds of the operator, kube-apiserver and etcd. `--memory N` then adds settled copies up to N resources and
//! reads the RSS once more (memory only: see `grow_settled`). The output ends with one line per executor:
//! `executor=<name> ratio=<operator/raw> requests_per_pipeline=<n> rss_cached_mib=<n>`.
//!
//! ```sh
//! cargo bench -p kfp-operator --bench scale -- [--executor direct|argo|both] [--pipelines 1000] [--runs 1000]
//!     [--cached 10000] [--memory 100000]
//! ```
//! Results go to `docs/performance.md` by hand, with the machine and the date.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kfp_core::resources::v1beta1::{Conditions, Pipeline, Provider, Run};
use kfp_core::values::{NamespacedName, SynchronizationState};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::Mode;
use support::process::OperatorProcess;

/// Concurrent requests of the harness's own clients (creates, the raw bound, the simulated Argo).
const CONCURRENCY: usize = 32;
/// How long one phase may take before the harness gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(1800);
const NAMESPACE: &str = "scale";

#[derive(Debug, Clone)]
struct Options {
    modes: Vec<Mode>,
    pipelines: usize,
    runs: usize,
    cached: usize,
    /// Resources cached in the memory-only phase (0: none).
    memory: usize,
}

fn options() -> Options {
    let mut options = Options {
        modes: vec![Mode::Direct, Mode::Argo],
        pipelines: 1000,
        runs: 1000,
        cached: 10_000,
        memory: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--executor" => {
                options.modes = match value().as_str() {
                    "direct" => vec![Mode::Direct],
                    "argo" => vec![Mode::Argo],
                    "both" => vec![Mode::Direct, Mode::Argo],
                    other => panic!("--executor takes direct, argo or both, not {other}"),
                }
            }
            "--pipelines" => options.pipelines = value().parse().expect("--pipelines N"),
            "--runs" => options.runs = value().parse().expect("--runs N"),
            "--cached" => options.cached = value().parse().expect("--cached N"),
            "--memory" => options.memory = value().parse().expect("--memory N"),
            // cargo bench passes --bench; filters do not apply to a harness of one benchmark.
            _ => {}
        }
    }
    options
}

fn pipeline(namespace: &str, index: usize) -> Pipeline {
    serde_json::from_value(json!({
        "apiVersion": "pipelines.kubeflow.org/v1beta1",
        "kind": "Pipeline",
        "metadata": {"name": format!("pipeline-{index}"), "namespace": namespace},
        "spec": {
            "provider": format!("{NAMESPACE}/stub"),
            "image": "alpine:3.20",
            "framework": {"name": "stub", "parameters": {}},
        },
    }))
    .unwrap()
}

fn run(namespace: &str, index: usize, pipelines: usize) -> Run {
    serde_json::from_value(json!({
        "apiVersion": "pipelines.kubeflow.org/v1beta1",
        "kind": "Run",
        "metadata": {"name": format!("run-{index}"), "namespace": namespace},
        "spec": {
            "provider": format!("{NAMESPACE}/stub"),
            "pipeline": format!("pipeline-{}", index % pipelines.max(1)),
            "parameters": [{"name": "index", "value": index.to_string()}],
        },
    }))
    .unwrap()
}

/// Creates Pipelines `from..to` and Runs `from..to` (Runs after Pipelines), `CONCURRENCY` at a time.
async fn create_objects(client: &Client, namespace: &str, pipelines: (usize, usize), runs: (usize, usize)) {
    let pipeline_api: Api<Pipeline> = Api::namespaced(client.clone(), namespace);
    let run_api: Api<Run> = Api::namespaced(client.clone(), namespace);
    futures::stream::iter(pipelines.0..pipelines.1)
        .map(|i| {
            let api = pipeline_api.clone();
            async move { api.create(&PostParams::default(), &pipeline(namespace, i)).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let total_pipelines = pipelines.1;
    futures::stream::iter(runs.0..runs.1)
        .map(|i| {
            let api = run_api.clone();
            async move {
                api.create(&PostParams::default(), &run(namespace, i, total_pipelines))
                    .await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
}

/// How many Pipelines and Runs in `namespace` are `Succeeded`.
async fn succeeded(client: &Client, namespace: &str) -> (usize, usize) {
    let pipelines = succeeded_named::<Pipeline>(client, namespace, "", pipeline_state).await;
    let runs = succeeded_named::<Run>(client, namespace, "", run_state).await;
    (pipelines.unwrap(), runs.unwrap())
}

fn pipeline_state(p: &Pipeline) -> Option<SynchronizationState> {
    p.status.as_ref().map(|s| s.synchronization_state())
}

fn run_state(r: &Run) -> Option<SynchronizationState> {
    r.status.as_ref().map(|s| s.synchronization_state())
}

/// Waits until `pipelines` Pipelines and `runs` Runs are `Succeeded` in `namespace`.
async fn wait_succeeded(
    client: &Client,
    namespace: &str,
    pipelines: usize,
    runs: usize,
    operator: &OperatorProcess,
) {
    let what = format!("{pipelines} Pipelines and {runs} Runs to be Succeeded");
    let waited = kfp_testenv::wait_for(&what, PHASE_TIMEOUT, || async {
        let (p, r) = succeeded(client, namespace).await;
        Ok::<_, String>((p >= pipelines && r >= runs).then_some(()))
    })
    .await;
    if let Err(error) = waited {
        let (p, r) = succeeded(client, namespace).await;
        let tail: Vec<String> = operator.stderr_lines().into_iter().rev().take(40).collect();
        panic!(
            "{error}: {p} Pipelines and {r} Runs are\noperator stderr (last lines):\n{}",
            tail.join("\n")
        );
    }
}

/// The API server's count of mutating requests (POST, PUT, PATCH, DELETE) since it started.
async fn apiserver_writes(client: &Client) -> u64 {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap();
    text.lines()
        .filter(|line| line.starts_with("apiserver_request_total{"))
        .filter(|line| {
            ["POST", "PUT", "PATCH", "DELETE"]
                .iter()
                .any(|v| line.contains(&format!("verb=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// The API server's requests by (verb, resource): count and summed latency in seconds, since it started.
async fn apiserver_requests(client: &Client) -> BTreeMap<(String, String), (f64, f64)> {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap();
    let label = |line: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        line.split_once(&key)
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(value, _)| value.to_string())
            .unwrap_or_default()
    };
    let mut requests: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let count = line.starts_with("apiserver_request_total{");
        let seconds = line.starts_with("apiserver_request_duration_seconds_sum{");
        if !count && !seconds {
            continue;
        }
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let entry = requests
            .entry((label(line, "verb"), label(line, "resource")))
            .or_default();
        if count {
            entry.0 += value;
        } else {
            entry.1 += value;
        }
    }
    requests
}

/// The requests between two [`apiserver_requests`] snapshots, most time-consuming first (watches left out: they
/// stay open), as `VERB resource: count (seconds)`.
fn request_breakdown(
    before: &BTreeMap<(String, String), (f64, f64)>,
    after: &BTreeMap<(String, String), (f64, f64)>,
) -> Vec<String> {
    let mut rows: Vec<(String, String, f64, f64)> = after
        .iter()
        .filter(|((verb, _), _)| verb != "WATCH")
        .map(|((verb, resource), (count, seconds))| {
            let (count0, seconds0) = before
                .get(&(verb.clone(), resource.clone()))
                .copied()
                .unwrap_or_default();
            (verb.clone(), resource.clone(), count - count0, seconds - seconds0)
        })
        .filter(|row| row.2 > 0.0)
        .collect();
    rows.sort_by(|a, b| b.3.total_cmp(&a.3));
    rows.into_iter()
        .take(10)
        .map(|(verb, resource, count, seconds)| format!("{verb} {resource}: {count} ({seconds:.1} s)"))
        .collect()
}

/// Sums the operator's counter `name` (all label sets) in its OpenMetrics text.
fn counter_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The raw bound: a bare client creating the same objects and doing `writes` status writes in all, spread over
/// them, `CONCURRENCY` at a time. Returns the elapsed time.
async fn raw_bound(client: &Client, pipelines: usize, runs: usize, writes: u64) -> Duration {
    let namespace = "raw";
    let started = Instant::now();
    create_objects(client, namespace, (0, pipelines), (0, runs)).await;
    let creates = (pipelines + runs) as u64;
    let updates = writes.saturating_sub(creates);
    let pipeline_api: Api<Pipeline> = Api::namespaced(client.clone(), namespace);
    let run_api: Api<Run> = Api::namespaced(client.clone(), namespace);
    let objects = (pipelines + runs).max(1) as u64;
    futures::stream::iter(0..updates)
        .map(|i| {
            let (pipeline_api, run_api) = (pipeline_api.clone(), run_api.clone());
            async move {
                let object = (i % objects) as usize;
                let status = json!({"status": {"version": format!("raw-{i}")}});
                let params = PatchParams::default();
                if object < pipelines {
                    pipeline_api
                        .patch_status(&format!("pipeline-{object}"), &params, &Patch::Merge(&status))
                        .await
                        .map(|_| ())
                } else {
                    run_api
                        .patch_status(
                            &format!("run-{}", object - pipelines),
                            &params,
                            &Patch::Merge(&status),
                        )
                        .await
                        .map(|_| ())
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    started.elapsed()
}

/// Pipelines of the floor probe: created alone, so every request the operator makes meanwhile is theirs.
const PROBE: usize = 100;

/// The API server's request count (every verb but WATCH, resource requests only) since it started.
fn request_total(requests: &BTreeMap<(String, String), (f64, f64)>) -> f64 {
    requests
        .iter()
        .filter(|((verb, resource), _)| verb != "WATCH" && !resource.is_empty())
        .map(|(_, (count, _))| count)
        .sum()
}

/// What the floor probe creates: Pipelines `floor-<i>`, or Runs `floor-run-<i>` of the (then Succeeded) Pipeline
/// `floor-0`.
#[derive(Debug, Clone, Copy)]
enum Probe {
    Pipelines,
    Runs,
}

/// How many of the probe's objects are `Succeeded`.
async fn probe_succeeded(client: &Client, probe: Probe) -> Result<usize, String> {
    match probe {
        Probe::Pipelines => succeeded_named::<Pipeline>(client, NAMESPACE, "floor-", pipeline_state).await,
        Probe::Runs => succeeded_named::<Run>(client, NAMESPACE, "floor-run-", run_state).await,
    }
}

/// How many objects of `K` named `<prefix>...` in `namespace` are `Succeeded`.
async fn succeeded_named<K>(
    client: &Client,
    namespace: &str,
    prefix: &str,
    state: fn(&K) -> Option<SynchronizationState>,
) -> Result<usize, String>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    Ok(Api::<K>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .items
        .iter()
        .filter(|o| o.meta().name.as_deref().is_some_and(|n| n.starts_with(prefix)))
        .filter(|o| state(o) == Some(SynchronizationState::Succeeded))
        .count())
}

/// Issue 18: the API requests the operator makes to bring one resource of a kind to `Succeeded`. [`PROBE`] objects
/// are created with nothing else going on; the requests of the probe's time, less the harness's own (the creates,
/// its polls, the simulated Argo's writes), are the operator's. Waits until the operator is quiet (no request for
/// 2 s) so that late writes (a completion mark) count too. Returns requests per object and the breakdown.
async fn requests_per_resource(client: &Client, probe: Probe, argo_writes: &AtomicU64) -> (f64, Vec<String>) {
    let before = apiserver_requests(client).await;
    let argo_before = argo_writes.load(Ordering::SeqCst);
    futures::stream::iter(0..PROBE)
        .map(|i| async move {
            match probe {
                Probe::Pipelines => {
                    let mut object = pipeline(NAMESPACE, i);
                    object.metadata.name = Some(format!("floor-{i}"));
                    Api::<Pipeline>::namespaced(client.clone(), NAMESPACE)
                        .create(&PostParams::default(), &object)
                        .await
                        .map(|_| ())
                }
                Probe::Runs => {
                    let mut object = run(NAMESPACE, i, 1);
                    object.metadata.name = Some(format!("floor-run-{i}"));
                    object.spec.pipeline.name = "floor-0".to_string();
                    Api::<Run>::namespaced(client.clone(), NAMESPACE)
                        .create(&PostParams::default(), &object)
                        .await
                        .map(|_| ())
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let polls = AtomicU64::new(0);
    kfp_testenv::wait_for(
        &format!("the probe's {probe:?} to be Succeeded"),
        PHASE_TIMEOUT,
        || async {
            polls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>((probe_succeeded(client, probe).await? >= PROBE).then_some(()))
        },
    )
    .await
    .unwrap();
    // Quiet: the same count twice, 2 s apart (a measurement window, not a synchronisation).
    let mut last = request_total(&apiserver_requests(client).await);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = request_total(&apiserver_requests(client).await);
        if now == last {
            break;
        }
        last = now;
    }
    let after = apiserver_requests(client).await;
    let harness = PROBE as f64
        + polls.load(Ordering::SeqCst) as f64
        + (argo_writes.load(Ordering::SeqCst) - argo_before) as f64;
    let operator = request_total(&after) - request_total(&before) - harness;
    (operator / PROBE as f64, request_breakdown(&before, &after))
}

/// p50 and p99 of the seconds from each object's creation to its `Succeeded` condition (whole seconds, as
/// Kubernetes keeps both times).
async fn latency_percentiles(client: &Client) -> (f64, f64) {
    let mut seconds: Vec<i64> = Vec::new();
    let mut add =
        |created: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
         conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>| {
            let done = conditions
                .and_then(|c| {
                    c.iter()
                        .find(|c| c.type_ == "Synchronized" && c.reason == "Succeeded")
                })
                .map(|c| c.last_transition_time.0.as_second());
            if let (Some(created), Some(done)) = (created, done) {
                seconds.push(done - created.0.as_second());
            }
        };
    for p in Api::<Pipeline>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        add(
            p.metadata.creation_timestamp.as_ref(),
            p.status.as_ref().map(|s| &s.conditions),
        );
    }
    for r in Api::<Run>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        add(
            r.metadata.creation_timestamp.as_ref(),
            r.status.as_ref().map(|s| &s.status.conditions),
        );
    }
    seconds.sort_unstable();
    let at = |q: f64| {
        seconds
            .get(((seconds.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default() as f64
    };
    (at(0.5), at(0.99))
}

async fn create_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &namespace).await.unwrap();
}

struct Report {
    mode: Mode,
    floor: f64,
    p50: f64,
    p99: f64,
    objects: usize,
    elapsed: Duration,
    reconciles: f64,
    operator_writes: u64,
    raw: Duration,
    peak_kib: u64,
    cached: usize,
    cached_rss_kib: u64,
    cached_peak_kib: u64,
    /// `--memory`: resources cached and the operator's memory then.
    memory_only: Option<(usize, support::process::Memory)>,
}

async fn measure(mode: Mode, options: &Options) -> Report {
    let (env, client) = support::dedicated_env().await;
    create_namespace(&client, NAMESPACE).await;
    create_namespace(&client, "raw").await;
    let providers: Api<Provider> = Api::namespaced(client.clone(), NAMESPACE);
    providers
        .create(
            &PostParams::default(),
            &support::provider_manifest(NAMESPACE, "stub"),
        )
        .await
        .unwrap();

    let mut settings = vec![
        ("KFP_OPERATOR_SYSTEM_WATCHNAMESPACE", NAMESPACE),
        ("KFP_OPERATOR_SYSTEM_LOGGING_FORMAT", "text"),
        ("KFP_OPERATOR_SYSTEM_LOGGING_LEVEL", "warn"),
    ];
    // The simulated Argo's own writes (one status patch per Workflow) are the harness's, not the operator's.
    let argo_writes = Arc::new(AtomicU64::new(0));
    let _argo = match mode {
        Mode::Argo => {
            settings.push(("KFP_OPERATOR_SPEC_EXECUTOR", "argo"));
            let provider = NamespacedName::new(NAMESPACE.to_string(), "stub".to_string());
            let url =
                support::serve_provider(&provider, Arc::new(kfp_providers::stub::StubProvider::new())).await;
            Some(support::SimulatedArgo::start_with(
                client.clone(),
                NAMESPACE,
                url,
                CONCURRENCY,
                argo_writes.clone(),
            ))
        }
        Mode::Direct => {
            settings.push(("KFP_OPERATOR_SPEC_EXECUTOR", "direct"));
            settings.push(("KFP_OPERATOR_SPEC_DIRECT_DEFAULTPROVIDERTYPE", "stub"));
            None
        }
    };
    let operator = OperatorProcess::start(
        Path::new(env!("CARGO_BIN_EXE_kfp-operator")),
        env.kubeconfig_path(),
        &settings,
    );
    operator.wait_ready(Duration::from_secs(60)).await;
    support::wait_for_state(
        &providers,
        "stub",
        SynchronizationState::Succeeded,
        |p: &Provider| p.status.as_ref(),
    )
    .await;

    let (floor, floor_requests) = requests_per_resource(&client, Probe::Pipelines, &argo_writes).await;
    eprintln!(
        "scale: {mode:?}: {floor:.1} API requests per Pipeline to Succeeded ({PROBE} alone); by time spent:\n  {}",
        floor_requests.join("\n  ")
    );
    let (run_floor, run_requests) = requests_per_resource(&client, Probe::Runs, &argo_writes).await;
    eprintln!(
        "scale: {mode:?}: {run_floor:.1} API requests per Run to Succeeded ({PROBE} alone); by time spent:\n  {}",
        run_requests.join("\n  ")
    );

    let (pipelines, runs) = (options.pipelines, options.runs);
    let writes_before = apiserver_writes(&client).await;
    let requests_before = apiserver_requests(&client).await;
    let argo_before = argo_writes.load(Ordering::SeqCst);
    let reconciles_before = counter_sum(&operator.metrics().await, "kfp_operator_reconciliations_total");
    let (apiserver_pid, etcd_pid) = env.pids();
    let cpu = || [operator.pid(), apiserver_pid, etcd_pid].map(support::process::cpu_seconds);
    let cpu_before = cpu();
    let started = Instant::now();
    create_objects(&client, NAMESPACE, (0, pipelines), (0, runs)).await;
    wait_succeeded(&client, NAMESPACE, pipelines + PROBE, runs + PROBE, &operator).await;
    let elapsed = started.elapsed();
    let cpu_after = cpu();
    let cpu = [0, 1, 2].map(|i| cpu_after[i] - cpu_before[i]);
    eprintln!(
        "scale: {mode:?}: CPU seconds in the run: operator {:.1}, kube-apiserver {:.1}, etcd {:.1} (the harness and the simulated Argo share the process of the bench)",
        cpu[0], cpu[1], cpu[2]
    );
    let (p50, p99) = latency_percentiles(&client).await;
    eprintln!("scale: {mode:?}: creation to Succeeded: p50 {p50} s, p99 {p99} s");
    let reconciles =
        counter_sum(&operator.metrics().await, "kfp_operator_reconciliations_total") - reconciles_before;
    let writes = apiserver_writes(&client).await - writes_before;
    let requests = request_breakdown(&requests_before, &apiserver_requests(&client).await);
    let harness_writes = (pipelines + runs) as u64 + (argo_writes.load(Ordering::SeqCst) - argo_before);
    let operator_writes = writes.saturating_sub(harness_writes);
    let peak_kib = operator.memory().peak_kib;
    eprintln!(
        "scale: {mode:?}: {} objects Succeeded in {elapsed:.1?}; {reconciles} reconciles; {operator_writes} operator writes; peak RSS {} MiB",
        pipelines + runs,
        peak_kib / 1024
    );
    eprintln!(
        "scale: {mode:?}: API requests during the run (operator and harness), by time spent in the API server:\n  {}",
        requests.join("\n  ")
    );

    // The raw bound, on the same API server and etcd, in a namespace the operator does not watch.
    let raw = raw_bound(
        &client,
        pipelines,
        runs,
        (pipelines + runs) as u64 + operator_writes,
    )
    .await;
    eprintln!(
        "scale: {mode:?}: raw bound: the same {} writes by a bare client in {raw:.1?}",
        (pipelines + runs) as u64 + operator_writes
    );

    // Grow the cache to `cached` resources, half Pipelines, half Runs.
    let target_pipelines = (options.cached / 2).max(pipelines);
    let target_runs = options.cached.saturating_sub(target_pipelines).max(runs);
    create_objects(
        &client,
        NAMESPACE,
        (pipelines, target_pipelines),
        (runs, target_runs),
    )
    .await;
    wait_succeeded(
        &client,
        NAMESPACE,
        target_pipelines + PROBE,
        target_runs + PROBE,
        &operator,
    )
    .await;
    let memory = operator.memory();
    eprintln!(
        "scale: {mode:?}: {} resources cached: RSS {} MiB ({} MiB anonymous, {} MiB of the executable), peak {} MiB",
        target_pipelines + target_runs,
        memory.rss_kib / 1024,
        memory.anon_kib / 1024,
        memory.file_kib / 1024,
        memory.peak_kib / 1024
    );
    let memory_only = if options.memory > target_pipelines + target_runs {
        Some(
            grow_settled(
                &client,
                &operator,
                options.memory - target_pipelines - target_runs,
            )
            .await,
        )
    } else {
        None
    };
    Report {
        mode,
        floor,
        p50,
        p99,
        objects: pipelines + runs,
        elapsed,
        reconciles,
        operator_writes,
        raw,
        peak_kib,
        cached: target_pipelines + target_runs,
        cached_rss_kib: memory.rss_kib,
        cached_peak_kib: memory.peak_kib,
        memory_only,
    }
}

/// The memory-only phase (`--memory N`): `added` more resources, half Pipelines, half Runs, created already settled
/// (the finalizer, and the status of `pipeline-0` / `run-0`, whose specs they copy), as an operator restarted over
/// that many settled resources finds them. Creating and settling 100,000 resources through the operator would take
/// hours here; settled copies cost the operator one read and a plan each, and are held in its caches the same way.
/// Waits until the operator has reconciled each, then reads its memory. Returns (resources cached, the memory).
async fn grow_settled(
    client: &Client,
    operator: &OperatorProcess,
    added: usize,
) -> (usize, support::process::Memory) {
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), NAMESPACE);
    let runs: Api<Run> = Api::namespaced(client.clone(), NAMESPACE);
    let pipeline_template = pipelines.get("pipeline-0").await.unwrap();
    let run_template = runs.get("run-0").await.unwrap();
    let cached_before = pipelines.list(&ListParams::default()).await.unwrap().items.len()
        + runs.list(&ListParams::default()).await.unwrap().items.len();
    let reconciles_before = counter_sum(&operator.metrics().await, "kfp_operator_reconciliations_total");
    let started = Instant::now();
    let settled = |metadata: &kube::api::ObjectMeta, name: String| kube::api::ObjectMeta {
        name: Some(name),
        namespace: metadata.namespace.clone(),
        finalizers: metadata.finalizers.clone(),
        ..kube::api::ObjectMeta::default()
    };
    futures::stream::iter(0..added)
        .map(|i| {
            let (pipelines, runs) = (pipelines.clone(), runs.clone());
            let (pipeline_template, run_template) = (&pipeline_template, &run_template);
            async move {
                let params = PatchParams::default();
                if i % 2 == 0 {
                    let name = format!("settled-pipeline-{i}");
                    let object = Pipeline {
                        metadata: settled(&pipeline_template.metadata, name.clone()),
                        spec: pipeline_template.spec.clone(),
                        status: None,
                    };
                    pipelines.create(&PostParams::default(), &object).await?;
                    let status = json!({"status": pipeline_template.status});
                    pipelines
                        .patch_status(&name, &params, &Patch::Merge(&status))
                        .await
                        .map(|_| ())
                } else {
                    let name = format!("settled-run-{i}");
                    let object = Run {
                        metadata: settled(&run_template.metadata, name.clone()),
                        spec: run_template.spec.clone(),
                        status: None,
                    };
                    runs.create(&PostParams::default(), &object).await?;
                    let status = json!({"status": run_template.status});
                    runs.patch_status(&name, &params, &Patch::Merge(&status))
                        .await
                        .map(|_| ())
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    eprintln!(
        "scale: {added} settled resources created in {:.1?}",
        started.elapsed()
    );
    kfp_testenv::wait_for(
        &format!("the operator to reconcile the {added} settled resources"),
        PHASE_TIMEOUT,
        || async {
            let reconciles = counter_sum(&operator.metrics().await, "kfp_operator_reconciliations_total");
            Ok::<_, String>((reconciles - reconciles_before >= added as f64).then_some(()))
        },
    )
    .await
    .unwrap();
    let memory = operator.memory();
    let cached = cached_before + added;
    eprintln!(
        "scale: {cached} resources cached (memory only, {:.1?} after the first create): RSS {} MiB ({} MiB anonymous, {} MiB of the executable), peak {} MiB",
        started.elapsed(),
        memory.rss_kib / 1024,
        memory.anon_kib / 1024,
        memory.file_kib / 1024,
        memory.peak_kib / 1024
    );
    (cached, memory)
}

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    kfp_providers::http::install_crypto_provider();
    let mut reports = Vec::new();
    for mode in &options.modes {
        reports.push(runtime.block_on(measure(*mode, &options)));
    }
    println!(
        "\n| executor | objects | time to all Succeeded | objects/s | reconciles/s | operator writes | raw bound (same writes) | operator / raw | peak RSS | resources cached | RSS then (peak) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &reports {
        let secs = r.elapsed.as_secs_f64();
        println!(
            "| {:?} | {} | {:.1} s | {:.0} | {:.0} | {} | {:.1} s | {:.2} | {:.1} MiB | {} | {:.1} MiB ({:.1} MiB) |",
            r.mode,
            r.objects,
            secs,
            r.objects as f64 / secs,
            r.reconciles / secs,
            r.operator_writes,
            r.raw.as_secs_f64(),
            r.raw.as_secs_f64() / secs,
            r.peak_kib as f64 / 1024.0,
            r.cached,
            r.cached_rss_kib as f64 / 1024.0,
            r.cached_peak_kib as f64 / 1024.0,
        );
    }
    for r in &reports {
        eprintln!("scale: {:?}: latency p50 {} s, p99 {} s", r.mode, r.p50, r.p99);
        if let Some((cached, memory)) = &r.memory_only {
            println!(
                "executor={} memory_only_cached={cached} rss_mib={:.1} peak_mib={:.1}",
                format!("{:?}", r.mode).to_lowercase(),
                memory.rss_kib as f64 / 1024.0,
                memory.peak_kib as f64 / 1024.0
            );
        }
    }
    // The summary line the issue asks for, one per executor, last.
    for r in &reports {
        println!(
            "executor={} ratio={:.2} requests_per_pipeline={:.1} rss_cached_mib={:.1}",
            format!("{:?}", r.mode).to_lowercase(),
            r.raw.as_secs_f64() / r.elapsed.as_secs_f64(),
            r.floor,
            r.cached_rss_kib as f64 / 1024.0
        );
    }
}
