//! The chart's RBAC is exactly what the operator uses. A kube-apiserver with an audit log (and the
//! OwnerReferencesPermissionEnforcement admission plugin) gets the chart installed; the operator process runs as
//! the chart's ServiceAccount through a scenario that drives every controller and every kind of write they make;
//! then every (API group, resource, verb) in the audit log must be granted and allowed, and every grant of the
//! manager ClusterRole and the leader-election Role must have been used.
//!
//! What the audit log cannot show is checked otherwise or listed:
//! - server-side apply that creates an object is logged as `patch` (answered 201), but authorized as `create` too:
//!   a 201 `patch` counts as a `create`;
//! - `update` on `runconfigurations/finalizers` and `providers/finalizers` is what OwnerReferencesPermissionEnforcement
//!   checks when the operator sets `blockOwnerDeletion` owner references: no request uses it; the test shows the
//!   plugin is on (a user without it is refused), so the operator's owned RunSchedules and Deployments prove it;
//! - the self-managed webhook certificates' roles are compared by a second test, on their own control plane (the
//!   admission webhooks they secure would refuse the first test's objects: the API server cannot reach a Service);
//! - the roles of the run-completion feed (TokenReviews, status patches) and of the Job compiler are separate
//!   objects not compared here; each names the code that needs it.

use crate::support;

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kfp_core::resources::v1beta1::{
    Conditions, Experiment, Pipeline, Provider, Run, RunConfiguration, RunSchedule,
};
use kfp_core::values::{NamespacedName, SynchronizationState::Succeeded};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use support::chart::{self, NAMESPACE, OperatorProcess, RELEASE, SERVICE_ACCOUNT};
use support::{SimulatedArgo, wait_for_state, wait_gone, wait_until};

const ML: &str = "ml";

/// `(apiGroup, resource[/subresource], verb)`.
type Grant = (String, String, String);

fn grant(group: &str, resource: &str, verb: &str) -> Grant {
    (group.to_string(), resource.to_string(), verb.to_string())
}

/// What the audit log says the ServiceAccount did: the calls, and those that were not allowed.
struct Audit {
    used: BTreeSet<Grant>,
    refused: Vec<String>,
}

fn read_audit(log: &std::path::Path) -> Audit {
    let user = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    let text = std::fs::read_to_string(log).unwrap();
    let mut used = BTreeSet::new();
    let mut refused = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("audit line ({e}): {line}"));
        if event["user"]["username"] != user.as_str() {
            continue;
        }
        let Some(object) = event.get("objectRef") else {
            continue; // discovery and other non-resource requests
        };
        let group = object["apiGroup"].as_str().unwrap_or("");
        let mut resource = object["resource"].as_str().unwrap_or("").to_string();
        if let Some(sub) = object["subresource"].as_str() {
            resource = format!("{resource}/{sub}");
        }
        let verb = event["verb"].as_str().unwrap_or("");
        if event["annotations"]["authorization.k8s.io/decision"] == "forbid" {
            refused.push(format!("{verb} {group}/{resource}: {}", event["requestURI"]));
        }
        used.insert(grant(group, &resource, verb));
        // Server-side apply that creates the object: authorized as create as well.
        if verb == "patch" && event["responseStatus"]["code"] == 201 {
            used.insert(grant(group, &resource, "create"));
        }
    }
    Audit { used, refused }
}

fn grants_of<K: serde::Serialize>(role: &K) -> BTreeSet<Grant> {
    chart::grants(&serde_json::to_value(role).unwrap())
}

/// The audit log's calls of the ServiceAccount, after asserting that RBAC refused none.
fn allowed_calls(log: &std::path::Path) -> Audit {
    let audit = read_audit(log);
    assert!(
        audit.refused.is_empty(),
        "refused by RBAC:\n{}",
        audit.refused.join("\n")
    );
    audit
}

/// The grants of the installed ClusterRole `cluster_role` and Role `role` (in the release namespace).
async fn granted(client: &Client, cluster_role: &str, role: &str) -> BTreeSet<Grant> {
    let cluster_role: ClusterRole = Api::all(client.clone()).get(cluster_role).await.unwrap();
    let role: Role = Api::namespaced(client.clone(), NAMESPACE)
        .get(role)
        .await
        .unwrap();
    let mut granted = grants_of(&cluster_role);
    granted.extend(grants_of(&role));
    granted
}

async fn create<K>(client: &Client, namespace: &str, yaml: &str) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let object: K = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    Api::<K>::namespaced(client.clone(), namespace)
        .create(&Default::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

async fn patch_spec<K>(api: &Api<K>, name: &str, spec: Value)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": spec })),
    )
    .await
    .unwrap();
}

/// A Deployment and a Service the Go operator would have made for `provider` (generated names), which ours
/// replaces and deletes.
async fn legacy_children(client: &Client, provider: &Provider) {
    let owner = json!([{
        "apiVersion": "pipelines.kubeflow.org/v1beta1",
        "kind": "Provider",
        "name": provider.name_any(),
        "uid": provider.uid().unwrap(),
        "controller": true,
    }]);
    let labels = json!({"app": "provider-stub"});
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "provider-stub-x7k2p", "labels": labels, "ownerReferences": owner},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "provider-service", "image": "old:1"}]},
            },
        },
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), NAMESPACE)
        .create(&Default::default(), &deployment)
        .await
        .unwrap();
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "provider-stub-q9w4z", "labels": labels, "ownerReferences": owner},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 8080}]},
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), NAMESPACE)
        .create(&Default::default(), &service)
        .await
        .unwrap();
}

/// A control plane whose API server writes an audit log (the ServiceAccount's requests, metadata level) to
/// `dir/audit.log` and enforces OwnerReferencesPermissionEnforcement.
async fn audited_env(dir: &std::path::Path) -> (kfp_testenv::TestEnv, std::path::PathBuf) {
    let policy = dir.join("audit-policy.yaml");
    let log = dir.join("audit.log");
    let user = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
             - level: Metadata\n  users: [\"{user}\"]\n- level: None\n"
        ),
    )
    .unwrap();
    let options = kfp_testenv::StartOptions::default().apiserver_args([
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", log.display()),
        "--audit-log-format=json".to_string(),
        "--enable-admission-plugins=OwnerReferencesPermissionEnforcement".to_string(),
    ]);
    let env = kfp_testenv::TestEnv::start_with(options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (env, log)
}

/// `helm install` of the chart into `NAMESPACE` with `values` (YAML).
fn install(env: &kfp_testenv::TestEnv, dir: &std::path::Path, values: &str) {
    let values = chart::values_file(dir, "values.yaml", values);
    let chart_dir = chart::chart_dir();
    chart::run_helm(
        dir,
        Some(env.kubeconfig_path()),
        &[
            "install",
            RELEASE,
            chart_dir.to_str().unwrap(),
            "--namespace",
            NAMESPACE,
            "--create-namespace",
            "--values",
            values.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn the_chart_grants_exactly_the_api_calls_the_operator_makes() {
    kfp_providers::http::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (env, log) = audited_env(dir.path()).await;
    env.install_argo_crds().await.unwrap_or_else(|e| panic!("{e}"));
    let client = env.client().await.unwrap();

    install(
        &env,
        dir.path(),
        "manager:\n  webhooks:\n    enabled: false\n  configuration:\n    runCompletionTTL: 2s\n",
    );
    kfp_testenv::apply_yaml(
        &client,
        &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ML}}}\n"),
        &Default::default(),
    )
    .await
    .unwrap();

    // A Provider whose Go-operator children are still there.
    let provider: Provider = create(
        &client,
        NAMESPACE,
        &format!(
            "apiVersion: pipelines.kubeflow.org/v1beta1
kind: Provider
metadata: {{name: stub, namespace: {NAMESPACE}}}
spec:
  serviceImage: kfp-operator/provider-service:latest
  serviceAccount: default
  pipelineRootStorage: /tmp/pipeline-root
  frameworks: [{{name: stub, image: kfp-operator/stub-compiler:latest}}]
  allowedNamespaces: [{ML}]
"
        ),
    )
    .await;
    legacy_children(&client, &provider).await;

    let provider_url = support::serve_provider(
        &NamespacedName::new(NAMESPACE.to_string(), "stub".to_string()),
        Arc::new(kfp_providers::stub::StubProvider::new()),
    )
    .await;
    let _argo = SimulatedArgo::start(client.clone(), NAMESPACE, provider_url);
    let operator_kubeconfig = chart::service_account_kubeconfig(&env, dir.path()).await;
    let config = chart::installed_configuration(&client, dir.path()).await;
    let operator = OperatorProcess::start(&operator_kubeconfig, &config);
    operator.wait_ready().await;

    // Provider: Deployment and Service applied (created), the legacy ones deleted.
    let providers: Api<Provider> = Api::namespaced(client.clone(), NAMESPACE);
    wait_for_state(&providers, "stub", Succeeded, |p: &Provider| p.status.as_ref()).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    wait_gone(&deployments, "provider-stub-x7k2p").await;
    wait_gone(&services, "provider-stub-q9w4z").await;
    deployments.get("provider-stub").await.unwrap();

    // Pipeline: created, updated, and updated back, so the same Event is recorded twice (a series, patched).
    let provider_ref = format!("{NAMESPACE}/stub");
    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), ML);
    let pipeline = |image: &str| {
        format!(
            "apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {{name: p, namespace: {ML}}}
spec: {{provider: {provider_ref}, image: '{image}', framework: {{name: stub, parameters: {{}}}}}}
"
        )
    };
    create::<Pipeline>(&client, ML, &pipeline("alpine:1")).await;
    let first = wait_for_state(&pipelines, "p", Succeeded, |p: &Pipeline| p.status.as_ref()).await;
    let first_version = first.status.unwrap().version;
    for image in ["alpine:2", "alpine:1"] {
        patch_spec(&pipelines, "p", json!({"image": image})).await;
        wait_until(
            &pipelines,
            "p",
            &format!("p to be Succeeded with {image}"),
            |p: &Pipeline| {
                p.status.as_ref().is_some_and(|s| {
                    s.synchronization_state() == Succeeded
                        && Some(s.observed_generation) == p.metadata.generation
                        && s.version.starts_with(image.trim_start_matches("alpine:"))
                })
            },
        )
        .await;
    }
    assert_eq!(
        pipelines.get("p").await.unwrap().status.unwrap().version,
        first_version
    );

    // Experiment and RunSchedule.
    create::<Experiment>(
        &client,
        ML,
        &format!(
            "apiVersion: pipelines.kubeflow.org/v1beta1\nkind: Experiment\nmetadata: {{name: e, namespace: {ML}}}\n\
             spec: {{provider: {provider_ref}, description: audited}}\n"
        ),
    )
    .await;
    create::<RunSchedule>(
        &client,
        ML,
        &format!(
            "apiVersion: pipelines.kubeflow.org/v1beta1\nkind: RunSchedule\nmetadata: {{name: rs, namespace: {ML}}}\n\
             spec: {{provider: {provider_ref}, pipeline: p, schedule: {{cronExpression: '0 * * * *'}}}}\n"
        ),
    )
    .await;
    let experiments: Api<Experiment> = Api::namespaced(client.clone(), ML);
    let schedules: Api<RunSchedule> = Api::namespaced(client.clone(), ML);
    wait_for_state(&experiments, "e", Succeeded, |e: &Experiment| e.status.as_ref()).await;
    wait_for_state(&schedules, "rs", Succeeded, |s: &RunSchedule| s.status.as_ref()).await;

    // Run: completed (as the feed would record it), then deleted after runCompletionTTL.
    let runs: Api<Run> = Api::namespaced(client.clone(), ML);
    create::<Run>(
        &client,
        ML,
        &format!(
            "apiVersion: pipelines.kubeflow.org/v1beta1\nkind: Run\nmetadata: {{name: r, namespace: {ML}}}\n\
             spec: {{provider: {provider_ref}, pipeline: p}}\n"
        ),
    )
    .await;
    wait_for_state(&runs, "r", Succeeded, |r: &Run| r.status.as_ref()).await;
    runs.patch_status(
        "r",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"completionState": "Succeeded"}})),
    )
    .await
    .unwrap();
    wait_gone(&runs, "r").await;

    // RunConfiguration: a schedule (RunSchedule created), a changed schedule (created and deleted), a changed
    // run spec (a Run created).
    let rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), ML);
    create::<RunConfiguration>(
        &client,
        ML,
        &format!(
            "apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {{name: rc, namespace: {ML}}}
spec:
  run: {{provider: {provider_ref}, pipeline: p, parameters: [{{name: a, value: '1'}}]}}
  triggers:
    onChange: [runSpec]
    schedules: [{{cronExpression: '0 * * * *'}}]
"
        ),
    )
    .await;
    wait_for_state(&rcs, "rc", Succeeded, |r: &RunConfiguration| r.status.as_ref()).await;
    let owned = |cron: &'static str| {
        let schedules = schedules.clone();
        async move {
            let owned: Vec<RunSchedule> = schedules
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|s| s.name_any().starts_with("rc-"))
                .collect();
            !owned.is_empty()
                && owned
                    .iter()
                    .all(|s| s.spec.schedule.cron_expression.as_str() == cron)
        }
    };
    patch_spec(
        &rcs,
        "rc",
        json!({"triggers": {"onChange": ["runSpec"], "schedules": [{"cronExpression": "30 * * * *"}]},
               "run": {"provider": provider_ref, "pipeline": "p", "parameters": [{"name": "a", "value": "2"}]}}),
    )
    .await;
    kfp_testenv::wait_for(
        "the RunConfiguration's RunSchedule to be replaced",
        support::WAIT,
        || async { Ok::<_, String>(owned("30 * * * *").await.then_some(())) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nstderr:\n{}", operator.stderr()));
    wait_for_state(&rcs, "rc", Succeeded, |r: &RunConfiguration| r.status.as_ref()).await;
    kfp_testenv::wait_for("the RunConfiguration to trigger a Run", support::WAIT, || async {
        let list = runs
            .list(&ListParams::default().labels("pipelines.kubeflow.org/runconfiguration.name=rc"))
            .await?;
        Ok::<_, kube::Error>((!list.items.is_empty()).then_some(()))
    })
    .await
    .unwrap();

    // Deletions: provider deletes, then the finalizers are released.
    for (name, api) in [("e", experiments.clone())] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
        wait_gone(&api, name).await;
    }
    schedules.delete("rs", &DeleteParams::default()).await.unwrap();
    wait_gone(&schedules, "rs").await;
    pipelines.delete("p", &DeleteParams::default()).await.unwrap();
    wait_gone(&pipelines, "p").await;

    let stderr = operator.stop().await;
    let refused_in_log = chart::forbidden_lines(&stderr);
    assert!(
        refused_in_log.is_empty(),
        "refused calls:\n{}",
        refused_in_log.join("\n")
    );

    // OwnerReferencesPermissionEnforcement is on: without update on the owner's finalizers, a blockOwnerDeletion
    // owner reference is refused. The operator's owned RunSchedules and Deployments were not.
    let rc = rcs.get("rc").await.unwrap();
    let limited = env.client_for("limited-user", &[]).await.unwrap();
    kfp_testenv::apply_yaml(
        &client,
        &format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: limited, namespace: {ML}}}\n\
             rules: [{{apiGroups: [pipelines.kubeflow.org], resources: [runschedules], verbs: [create]}}]\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: limited, namespace: {ML}}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: limited}}\n\
             subjects: [{{kind: User, name: limited-user}}]\n"
        ),
        &Default::default(),
    )
    .await
    .unwrap();
    let mut blocked: RunSchedule = serde_saphyr::from_str(&format!(
        "apiVersion: pipelines.kubeflow.org/v1beta1\nkind: RunSchedule\nmetadata: {{name: blocked, namespace: {ML}}}\n\
         spec: {{provider: {provider_ref}, pipeline: p, schedule: {{cronExpression: '0 * * * *'}}}}\n"
    ))
    .unwrap();
    blocked.metadata.owner_references =
        Some(vec![kfp_core::reconcile::run_configuration::owner_reference(&rc)]);
    let error = Api::<RunSchedule>::namespaced(limited, ML)
        .create(&Default::default(), &blocked)
        .await
        .expect_err("refused without update on runconfigurations/finalizers");
    assert!(error.to_string().contains("blockOwnerDeletion"), "{error}");

    // The comparison.
    let audit = allowed_calls(&log);
    let granted = granted(
        &client,
        "kfp-operator-manager-role",
        "kfp-operator-leader-election-role",
    )
    .await;
    let enforced_by_admission: BTreeSet<Grant> = [
        grant("pipelines.kubeflow.org", "runconfigurations/finalizers", "update"),
        grant("pipelines.kubeflow.org", "providers/finalizers", "update"),
    ]
    .into();
    let ungranted: Vec<&Grant> = audit.used.difference(&granted).collect();
    assert!(
        ungranted.is_empty(),
        "calls the chart does not grant: {ungranted:?}"
    );
    let unused: Vec<&Grant> = granted
        .difference(&audit.used)
        .filter(|g| !enforced_by_admission.contains(*g))
        .collect();
    assert!(
        unused.is_empty(),
        "granted but never used (drop them from charts/kfp-operator/templates/rbac.yaml, or drive them here): \
         {unused:?}\nused: {:?}",
        audit.used
    );
    assert!(audit.used.len() > 30, "{:?}", audit.used);
}

/// The chart's default install (admission webhooks and conversion on, self-managed certificates): the operator,
/// as the chart's ServiceAccount, issues its certificate into the Secret, patches the caBundle of the CRDs and the
/// ValidatingWebhookConfiguration, and replaces a Secret that went bad. Every call is allowed, and every grant of
/// the certificate ClusterRole and Role is used.
#[tokio::test]
async fn the_certificate_roles_grant_exactly_what_self_managed_certificates_use() {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kfp_operator::webhook::certificates::CA_KEY;

    kfp_providers::http::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (env, log) = audited_env(dir.path()).await;
    env.install_argo_crds().await.unwrap_or_else(|e| panic!("{e}"));
    let client = env.client().await.unwrap();
    install(&env, dir.path(), "manager:\n  multiversion:\n    enabled: true\n");
    let operator_kubeconfig = chart::service_account_kubeconfig(&env, dir.path()).await;
    let config = chart::installed_configuration(&client, dir.path()).await;
    let operator = OperatorProcess::start(&operator_kubeconfig, &config);
    operator.wait_ready().await;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let secret_name = "kfp-operator-webhook-server-cert";
    // Every target carries the CA of the Secret.
    let trusted = || async {
        let Some(secret) = secrets.get_opt(secret_name).await? else {
            return Ok::<_, kube::Error>(None);
        };
        let ca = secret
            .data
            .as_ref()
            .and_then(|d| d.get(CA_KEY))
            .map(|b| b.0.clone())
            .unwrap_or_default();
        let crd = crds.get("pipelines.pipelines.kubeflow.org").await?;
        let crd_bundle = crd
            .spec
            .conversion
            .and_then(|c| c.webhook)
            .and_then(|w| w.client_config)
            .and_then(|c| c.ca_bundle)
            .map(|b| b.0);
        let configuration = validating
            .get("kfp-operator-validating-webhook-configuration")
            .await?;
        let all_webhooks = configuration
            .webhooks
            .unwrap_or_default()
            .iter()
            .all(|w| w.client_config.ca_bundle.as_ref().map(|b| &b.0) == Some(&ca));
        Ok((!ca.is_empty() && crd_bundle.as_ref() == Some(&ca) && all_webhooks).then_some(ca))
    };
    kfp_testenv::wait_for("the certificate issued and trusted", support::WAIT, trusted)
        .await
        .unwrap_or_else(|e| panic!("{e}\nstderr:\n{}", operator.stderr()));

    // A Secret that went bad is replaced (update) once a target changes (the operator watches them): clear the
    // caBundles of the validating configuration, as a `helm upgrade` does.
    let mut secret = secrets.get(secret_name).await.unwrap();
    let data = secret.data.get_or_insert_with(Default::default);
    data.insert(
        "tls.crt".to_string(),
        k8s_openapi::ByteString(b"not a certificate".to_vec()),
    );
    secrets
        .replace(secret_name, &Default::default(), &secret)
        .await
        .unwrap();
    let configuration = validating
        .get("kfp-operator-validating-webhook-configuration")
        .await
        .unwrap();
    let cleared: Vec<Value> = (0..configuration.webhooks.unwrap_or_default().len())
        .map(|i| json!({"op": "remove", "path": format!("/webhooks/{i}/clientConfig/caBundle")}))
        .collect();
    validating
        .patch(
            "kfp-operator-validating-webhook-configuration",
            &PatchParams::default(),
            &Patch::<()>::Json(serde_json::from_value(Value::Array(cleared)).unwrap()),
        )
        .await
        .unwrap();
    kfp_testenv::wait_for(
        "the bad Secret replaced and trusted again",
        support::WAIT,
        || async {
            let ca = trusted().await?;
            let secret = secrets.get(secret_name).await?;
            let cert_ok = secret
                .data
                .as_ref()
                .and_then(|d| d.get("tls.crt"))
                .is_some_and(|c| c.0.starts_with(b"-----BEGIN CERTIFICATE-----"));
            Ok::<_, kube::Error>((ca.is_some() && cert_ok).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nstderr:\n{}", operator.stderr()));

    let stderr = operator.stop().await;
    let refused_in_log = chart::forbidden_lines(&stderr);
    assert!(
        refused_in_log.is_empty(),
        "refused calls:\n{}",
        refused_in_log.join("\n")
    );
    let audit = allowed_calls(&log);
    let granted = granted(
        &client,
        "kfp-operator-webhook-certificates-role",
        "kfp-operator-webhook-certificates-role",
    )
    .await;
    let unused: Vec<&Grant> = granted.difference(&audit.used).collect();
    assert!(
        unused.is_empty(),
        "certificate grants never used (drop them from charts/kfp-operator/templates/rbac.yaml): {unused:?}\n\
         used: {:?}",
        audit.used
    );
}
