//! The webhook's serving certificates on a real API server: `self` mode creates the Secret, patches the caBundles
//! so that the API server trusts the webhook (conversion and admission work through it), and rotates while the API
//! server keeps trusting it; replicas racing for the Secret agree on one certificate; a valid Secret is adopted and
//! a broken one replaced. `kfp-operator run` serves the webhooks on every replica and `/readyz` waits for a
//! certificate, in `files` mode (hot reload of renewed files) and in `self` mode.
//!
//! The end-to-end test patches the CRDs' caBundle, so it starts a control plane of its own; the other tests share
//! this binary's.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kfp_core::conversion::ConversionConfig;
use kfp_core::values::NamespacedName;
use kfp_operator::operator::Shutdown;
use kfp_operator::webhook::certificates::{
    CA_KEY, CERT_KEY, CaBundleTargets, Material, PRIVATE_KEY_KEY, SECRET_TYPE, SelfManaged,
    SelfManagedSettings, service_dns_names,
};
use kfp_operator::webhook::configuration::{self, Endpoint};
use kfp_operator::webhook::tls::certificates_from_pem;
use kfp_operator::webhook::{ServingCertificate, WebhookState};
use kfp_testenv::TestEnv;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use support::process::{OperatorProcess, free_port};

const SECRET: &str = "kfp-operator-webhook-server-cert";
const A5: &str = "pipelines.kubeflow.org/v1alpha5";

fn conversion_config(provider_namespace: &str) -> ConversionConfig {
    ConversionConfig {
        workflow_namespace: "kfp-operator-system".into(),
        default_provider: NamespacedName::new(provider_namespace, "stub"),
        ..ConversionConfig::default()
    }
}

/// This module's control plane with the checked-in CRDs (its tests point the CRDs' conversion at their own
/// webhook servers, which no other module's tests expect).
async fn shared_env() -> &'static TestEnv {
    static ENV: tokio::sync::OnceCell<TestEnv> = tokio::sync::OnceCell::const_new();
    let env = ENV
        .get_or_init(|| async { TestEnv::start().await.unwrap_or_else(|e| panic!("{e}")) })
        .await;
    env.install_crds(&[support::repo_root().join("config/crd")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    env
}

fn settings(namespace: &str, validity: Duration, rotate_before: Duration) -> SelfManagedSettings {
    let mut dns_names = service_dns_names("kfp-operator-webhook-service", namespace);
    // The API server reaches the test's webhook server by IP.
    dns_names.push("127.0.0.1".to_string());
    SelfManagedSettings {
        namespace: namespace.to_string(),
        secret_name: SECRET.to_string(),
        dns_names,
        validity,
        rotate_before,
        targets: CaBundleTargets::default(),
    }
}

fn no_targets(mut settings: SelfManagedSettings) -> SelfManagedSettings {
    settings.targets = CaBundleTargets {
        crds: Vec::new(),
        validating: Vec::new(),
        mutating: Vec::new(),
    };
    settings
}

fn data(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

fn dynamic(client: &Client, namespace: &str, api_version: &str, kind: &str) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap();
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_ascii_lowercase()));
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Every caBundle target (six CRDs, six validating webhooks) carries `bundle`.
async fn ca_bundles_are(client: &Client, bundle: &str) -> Result<bool, kube::Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in CaBundleTargets::default().crds {
        let crd = crds.get(&name).await?;
        let current = crd
            .spec
            .conversion
            .and_then(|c| c.webhook)
            .and_then(|w| w.client_config)
            .and_then(|c| c.ca_bundle);
        if current.as_ref().map(|b| b.0.as_slice()) != Some(bundle.as_bytes()) {
            return Ok(false);
        }
    }
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let validating = configurations
        .get(configuration::VALIDATING_CONFIGURATION_NAME)
        .await?;
    Ok(validating
        .webhooks
        .unwrap_or_default()
        .iter()
        .all(|w| w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) == Some(bundle.as_bytes())))
}

/// `self` mode end to end on a control plane of its own: the Secret appears, the caBundles follow it, the API
/// server calls the conversion and admission webhooks over TLS trusting it, and a short validity makes the
/// manager rotate: every read through the conversion webhook succeeds before, during and after the rotation.
#[tokio::test]
async fn self_mode_issues_patches_and_rotates_while_the_api_server_keeps_trusting_the_webhook() {
    let env = TestEnv::start().await.unwrap_or_else(|e| panic!("{e}"));
    let client = env.client().await.unwrap();
    let operator_ns = env.namespace().await.unwrap().name().to_string();
    let ns = env.namespace().await.unwrap().name().to_string();

    // The webhook server, with no certificate yet, and the CRDs and webhook configuration pointing at it without
    // a caBundle: the certificate manager fills both in.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = Endpoint::Url(format!("https://{}", listener.local_addr().unwrap()));
    let serving = ServingCertificate::new();
    let (trigger, shutdown) = Shutdown::new();
    let router = kfp_operator::webhook::router(WebhookState {
        client: client.clone(),
        conversion: Arc::new(conversion_config(&ns)),
    });
    tokio::spawn(kfp_operator::webhook::tls::serve(
        listener,
        serving.clone(),
        router,
        shutdown.signalled(),
    ));
    let apply = PatchParams::apply("kfp-webhook-tests").force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in configuration::crds(&endpoint, None).unwrap() {
        crds.patch(&crd.name_any(), &apply, &Patch::Apply(&crd))
            .await
            .unwrap();
        kfp_testenv::wait_until_served(&client, &crd.name_any(), support::WAIT)
            .await
            .unwrap();
    }
    let validating = configuration::validating(&endpoint, None);
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(&validating.name_any(), &apply, &Patch::Apply(&validating))
        .await
        .unwrap();
    let providers: Api<kfp_core::resources::v1beta1::Provider> = Api::namespaced(client.clone(), &ns);

    let manager = SelfManaged::new(
        client.clone(),
        settings(&operator_ns, Duration::from_secs(14), Duration::from_secs(5)),
        serving.clone(),
    )
    .with_resync(Duration::from_secs(1))
    .with_switch_after(Duration::from_secs(2));
    let task = tokio::spawn(manager.run(shutdown.clone()));

    // 1. The Secret, of the contract's type and keys, and the caBundles carrying its CA.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &operator_ns);
    let secret = kfp_testenv::wait_for("the certificate Secret", support::WAIT, || {
        secrets.get_opt(SECRET)
    })
    .await
    .unwrap();
    assert_eq!(secret.type_.as_deref(), Some(SECRET_TYPE));
    for key in [CERT_KEY, PRIVATE_KEY_KEY, CA_KEY] {
        assert!(!data(&secret, key).is_empty(), "{key}");
    }
    kfp_testenv::wait_for(
        "the caBundles to carry the Secret's CA",
        support::WAIT,
        || async {
            let secret = secrets.get(SECRET).await?;
            Ok::<_, kube::Error>(
                ca_bundles_are(&client, &data(&secret, CA_KEY))
                    .await?
                    .then_some(()),
            )
        },
    )
    .await
    .unwrap();

    // 2. The API server trusts the webhook: a v1alpha5 object is converted on write and on read, and an invalid
    //    one is refused by the admission webhook.
    let mut stub = support::provider_manifest(&ns, "stub");
    stub.spec.allowed_namespaces.clear();
    providers.create(&PostParams::default(), &stub).await.unwrap();
    let experiments = dynamic(&client, &ns, A5, "Experiment");
    let experiment: DynamicObject = serde_json::from_value(json!({"apiVersion": A5, "kind": "Experiment",
        "metadata": {"name": "penguin-experiment", "annotations": {"pipelines.kubeflow.org/provider": "stub"}},
        "spec": {"description": "An experiment for the penguin pipeline"}}))
    .unwrap();
    experiments
        .patch(
            "penguin-experiment",
            &PatchParams::apply("kubectl"),
            &Patch::Apply(&experiment),
        )
        .await
        .unwrap_or_else(|e| panic!("applying through the conversion webhook failed: {e}"));
    let refused = dynamic(&client, &ns, "pipelines.kubeflow.org/v1beta1", "Experiment")
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Experiment",
                "metadata": {"name": "orphan"}, "spec": {"provider": format!("{ns}/missing")}}),
            )
            .unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains(r#"admission webhook "vexperiment.pipelines.kubeflow.org" denied"#),
        "{refused}"
    );

    // 3. Rotation: the manager replaces the certificate before it expires; the new bundle keeps the previous CA;
    //    every read through the conversion webhook keeps working until the new certificate is served.
    let first = secrets.get(SECRET).await.unwrap();
    let first_cert = data(&first, CERT_KEY);
    let first_ca = certificates_from_pem(data(&first, CA_KEY).as_bytes()).unwrap()[0].clone();
    let reads = std::sync::atomic::AtomicUsize::new(0);
    let rotated = kfp_testenv::wait_for("a rotated certificate to be served", support::WAIT, || async {
        let read = experiments.get("penguin-experiment").await;
        let reads = reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let read = read.unwrap_or_else(|e| panic!("read {reads} through the conversion webhook failed: {e}"));
        assert_eq!(
            read.data["spec"]["description"],
            "An experiment for the penguin pipeline"
        );
        let secret = secrets.get(SECRET).await?;
        let cert = data(&secret, CERT_KEY);
        let served = serving.certificate_pem().unwrap_or_default();
        Ok::<_, kube::Error>((cert != first_cert && served == cert.as_bytes()).then_some(secret))
    })
    .await
    .unwrap();
    let bundle = certificates_from_pem(data(&rotated, CA_KEY).as_bytes()).unwrap();
    assert_eq!(bundle.len(), 2, "the new CA and the previous one");
    assert_ne!(bundle[0], first_ca, "a rotation issues a new CA");
    kfp_testenv::wait_for("the caBundles to follow the rotation", support::WAIT, || async {
        let secret = secrets.get(SECRET).await?;
        Ok::<_, kube::Error>(
            ca_bundles_are(&client, &data(&secret, CA_KEY))
                .await?
                .then_some(()),
        )
    })
    .await
    .unwrap();
    let after = experiments.get("penguin-experiment").await.unwrap();
    assert_eq!(
        after.data["spec"]["description"],
        "An experiment for the penguin pipeline"
    );

    trigger.trigger();
    tokio::time::timeout(support::WAIT, task).await.unwrap().unwrap();
}

/// Runs one pass of `a` and of `b` at once: exactly one of them writes the Secret (`what` it did), and both end
/// with the same material.
async fn race(a: &SelfManaged, b: &SelfManaged, what: &str) {
    let (pass_a, pass_b) = tokio::join!(a.pass(), b.pass());
    let (pass_a, pass_b) = (pass_a.unwrap(), pass_b.unwrap());
    let writers = [pass_a.wrote_secret, pass_b.wrote_secret]
        .iter()
        .filter(|w| **w)
        .count();
    assert_eq!(writers, 1, "exactly one replica {what}");
    assert_eq!(pass_a.material, pass_b.material);
}

/// Two replicas start at once: one creates the Secret, the other's create conflicts and it serves the winner's
/// certificate; later both find it due for rotation at once: one replaces it (resourceVersion-guarded), the
/// other adopts the result. They never serve different certificates.
#[tokio::test]
async fn replicas_racing_for_the_secret_agree_on_one_certificate() {
    let env = shared_env().await;
    let client = env.client().await.unwrap();
    let ns = env.namespace().await.unwrap().name().to_string();
    let replica = |settings: SelfManagedSettings| {
        let serving = ServingCertificate::new();
        (
            SelfManaged::new(client.clone(), no_targets(settings), serving.clone()),
            serving,
        )
    };
    let long = settings(&ns, Duration::from_secs(3600), Duration::from_secs(60));
    let (a, served_a) = replica(long.clone());
    let (b, served_b) = replica(long);
    race(&a, &b, "created the Secret").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let created = secrets.get(SECRET).await.unwrap();
    assert_eq!(
        served_a.certificate_pem().unwrap(),
        data(&created, CERT_KEY).as_bytes()
    );
    assert_eq!(
        served_b.certificate_pem().unwrap(),
        data(&created, CERT_KEY).as_bytes()
    );

    // The certificate is valid for an hour; replicas told to rotate two hours ahead both find it due.
    let due = settings(&ns, Duration::from_secs(4 * 3600), Duration::from_secs(2 * 3600));
    let (a, _) = replica(due.clone());
    let (b, _) = replica(due);
    race(&a, &b, "rotated").await;
    let rotated = secrets.get(SECRET).await.unwrap();
    assert_ne!(data(&rotated, CERT_KEY), data(&created, CERT_KEY));
    let bundle = certificates_from_pem(data(&rotated, CA_KEY).as_bytes()).unwrap();
    let previous = certificates_from_pem(data(&created, CA_KEY).as_bytes()).unwrap();
    assert_eq!(bundle.len(), 2);
    assert_eq!(bundle[1], previous[0], "the previous CA stays trusted");
}

/// A Secret that holds a certificate for the right names with time to spare is adopted as it is; a
/// `kubernetes.io/tls` Secret with anything else is given new content; a Secret of another type is reported.
#[tokio::test]
async fn a_valid_secret_is_adopted_and_a_broken_one_replaced() {
    let env = shared_env().await;
    let client = env.client().await.unwrap();
    let ns = env.namespace().await.unwrap().name().to_string();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let settings = no_targets(settings(&ns, Duration::from_secs(3600), Duration::from_secs(600)));
    let secret = |data: [(&str, &str); 3], type_: &str| -> Secret {
        serde_json::from_value(
            json!({"metadata": {"name": SECRET, "labels": {"owner": "platform"}}, "type": type_,
            "data": data.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<std::collections::BTreeMap<_, _>>()}),
        )
        .unwrap()
    };

    let material = Material::generate(
        &settings.dns_names,
        SystemTime::now(),
        Duration::from_secs(3600),
        None,
    )
    .unwrap();
    let valid = secret(
        [
            (CERT_KEY, &material.cert_pem),
            (PRIVATE_KEY_KEY, &material.key_pem),
            (CA_KEY, &material.ca_pem),
        ],
        SECRET_TYPE,
    );
    let before = secrets.create(&PostParams::default(), &valid).await.unwrap();
    let serving = ServingCertificate::new();
    let pass = SelfManaged::new(client.clone(), settings.clone(), serving.clone())
        .pass()
        .await
        .unwrap();
    assert!(!pass.wrote_secret, "a valid Secret is adopted");
    assert_eq!(pass.material, material);
    assert_eq!(serving.certificate_pem().unwrap(), material.cert_pem.as_bytes());
    assert_eq!(
        secrets.get(SECRET).await.unwrap().resource_version(),
        before.resource_version(),
        "and not written"
    );

    secrets.delete(SECRET, &Default::default()).await.unwrap();
    secrets
        .create(
            &PostParams::default(),
            &secret(
                [(CERT_KEY, "garbage"), (PRIVATE_KEY_KEY, ""), (CA_KEY, "")],
                SECRET_TYPE,
            ),
        )
        .await
        .unwrap();
    let pass = SelfManaged::new(client.clone(), settings.clone(), ServingCertificate::new())
        .pass()
        .await
        .unwrap();
    assert!(pass.wrote_secret, "a broken Secret gets new content");
    let replaced = secrets.get(SECRET).await.unwrap();
    assert_eq!(
        replaced.labels().get("owner").map(String::as_str),
        Some("platform"),
        "the Secret itself is kept"
    );
    let adopted = Material {
        cert_pem: data(&replaced, CERT_KEY),
        key_pem: data(&replaced, PRIVATE_KEY_KEY),
        ca_pem: data(&replaced, CA_KEY),
    };
    adopted.check(&settings.dns_names, SystemTime::now()).unwrap();

    secrets.delete(SECRET, &Default::default()).await.unwrap();
    secrets
        .create(
            &PostParams::default(),
            &secret([(CERT_KEY, "a"), (PRIVATE_KEY_KEY, "b"), (CA_KEY, "c")], "Opaque"),
        )
        .await
        .unwrap();
    let error = SelfManaged::new(client.clone(), settings, ServingCertificate::new())
        .pass()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("{ns}/{SECRET}"))
            && error.contains(r#""Opaque""#)
            && error.contains(SECRET_TYPE),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// `kfp-operator run`
// ---------------------------------------------------------------------------------------------------------------

fn start(
    namespace: &str,
    webhook: &str,
    extra: &[(&str, &str)],
    kubeconfig: &std::path::Path,
) -> OperatorProcess {
    let mut env = vec![
        ("POD_NAMESPACE", namespace),
        ("KFP_OPERATOR_SPEC_EXECUTOR", "direct"),
        ("KFP_OPERATOR_SPEC_DIRECT_DEFAULTPROVIDERTYPE", "stub"),
        ("KFP_OPERATOR_SYSTEM_WATCHNAMESPACE", namespace),
        ("KFP_OPERATOR_SYSTEM_WEBHOOK_ENABLED", "true"),
        ("KFP_OPERATOR_SYSTEM_WEBHOOK_ADDRESS", webhook),
        ("KFP_OPERATOR_SYSTEM_LOGGING_FORMAT", "text"),
    ];
    env.extend_from_slice(extra);
    OperatorProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_kfp-operator")),
        kubeconfig,
        &env,
    )
}

async fn wait_readyz(operator: &OperatorProcess, what: &str, accept: impl Fn(u16, &str) -> bool) {
    let last = Mutex::new(None);
    kfp_testenv::wait_for(what, support::WAIT, || async {
        let answer = operator.get("/readyz").await;
        let done = matches!(&answer, Ok((status, body)) if accept(*status, body));
        *last.lock().unwrap() = Some(answer);
        Ok::<_, String>(done.then_some(()))
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}; last answer {:?}\nstderr:\n{}",
            last.lock().unwrap(),
            operator.stderr()
        )
    });
}

/// A client that trusts only `ca_pem`, and reaches `name` at `address`.
fn https(ca_pem: &str, name: &str, address: std::net::SocketAddr) -> reqwest::Client {
    kfp_providers::http::install_crypto_provider();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .resolve(name, address)
        .build()
        .unwrap()
}

async fn convert_one(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let body = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {
        "uid": "u-1", "desiredAPIVersion": "pipelines.kubeflow.org/v1beta1", "objects": [
            {"apiVersion": A5, "kind": "Experiment", "metadata": {"name": "e", "namespace": "ns",
             "annotations": {"pipelines.kubeflow.org/provider": "kfp"}}, "spec": {}}]}});
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| kfp_providers::http::error_chain(&e))?;
    response.json().await.map_err(|e| e.to_string())
}

/// `files` mode through the binary: not ready until a certificate appears in `certDir`, then ready and serving
/// it; renewed files (a new CA, as after a re-issue) are served without a restart.
#[tokio::test]
async fn the_operator_process_serves_certificates_from_files_and_reloads_them() {
    let env = shared_env().await;
    let ns = env.namespace().await.unwrap().name().to_string();
    let dir = tempfile::tempdir().unwrap();
    let webhook: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let operator = start(
        &ns,
        &webhook.to_string(),
        &[
            ("KFP_OPERATOR_SYSTEM_WEBHOOK_CERTIFICATES_MODE", "files"),
            (
                "KFP_OPERATOR_SYSTEM_WEBHOOK_CERTDIR",
                dir.path().to_str().unwrap(),
            ),
        ],
        env.kubeconfig_path(),
    );
    wait_readyz(
        &operator,
        "/readyz to wait for the certificate only",
        |status, body| status == 503 && body == "not ready: webhook serving certificate\n",
    )
    .await;

    let name = format!("kfp-operator-webhook-service.{ns}.svc");
    let issue = || {
        Material::generate(
            std::slice::from_ref(&name),
            SystemTime::now(),
            Duration::from_secs(3600),
            None,
        )
        .unwrap()
    };
    let write = |material: &Material| {
        // As a mounted Secret changes: each file replaced whole.
        for (file, content) in [
            (CERT_KEY, &material.cert_pem),
            (PRIVATE_KEY_KEY, &material.key_pem),
        ] {
            let temporary = dir.path().join(format!(".{file}.new"));
            std::fs::write(&temporary, content).unwrap();
            std::fs::rename(&temporary, dir.path().join(file)).unwrap();
        }
    };
    let first = issue();
    write(&first);
    wait_readyz(
        &operator,
        "/readyz to pass once the files are there",
        |status, _| status == 200,
    )
    .await;
    let url = format!("https://{name}:{}/convert", webhook.port());
    let answer = convert_one(&https(&first.ca_pem, &name, webhook), &url)
        .await
        .unwrap();
    assert_eq!(answer["response"]["result"]["status"], "Success", "{answer}");

    let second = issue();
    write(&second);
    let trusting_second = https(&second.ca_pem, &name, webhook);
    kfp_testenv::wait_for("the renewed certificate to be served", support::WAIT, || async {
        Ok::<_, String>(convert_one(&trusting_second, &url).await.ok().map(|_| ()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nstderr:\n{}", operator.stderr()));
    let stale = convert_one(&https(&first.ca_pem, &name, webhook), &url).await;
    assert!(
        stale.is_err(),
        "the old certificate is no longer served: {stale:?}"
    );
}

/// `self` mode through the binary: ready once it has created the Secret in its namespace (`POD_NAMESPACE`), with
/// a certificate for the webhook Service's names, and the CRDs' caBundle patched to its CA.
#[tokio::test]
async fn the_operator_process_manages_its_own_certificate() {
    let env = shared_env().await;
    let client = env.client().await.unwrap();
    let ns = env.namespace().await.unwrap().name().to_string();
    let webhook: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let operator = start(&ns, &webhook.to_string(), &[], env.kubeconfig_path());
    wait_readyz(&operator, "/readyz to pass", |status, _| status == 200).await;

    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get(SECRET)
        .await
        .unwrap();
    let material = Material {
        cert_pem: data(&secret, CERT_KEY),
        key_pem: data(&secret, PRIVATE_KEY_KEY),
        ca_pem: data(&secret, CA_KEY),
    };
    material
        .check(
            &service_dns_names("kfp-operator-webhook-service", &ns),
            SystemTime::now(),
        )
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    kfp_testenv::wait_for("the CRDs' caBundle", support::WAIT, || async {
        let crd = crds.get("pipelines.pipelines.kubeflow.org").await?;
        let bundle = crd
            .spec
            .conversion
            .and_then(|c| c.webhook)
            .and_then(|w| w.client_config)
            .and_then(|c| c.ca_bundle);
        Ok::<_, kube::Error>((bundle.map(|b| b.0) == Some(material.ca_pem.as_bytes().to_vec())).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nstderr:\n{}", operator.stderr()));
    let name = format!("kfp-operator-webhook-service.{ns}.svc");
    let answer = convert_one(
        &https(&material.ca_pem, &name, webhook),
        &format!("https://{name}:{}/convert", webhook.port()),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nstderr:\n{}", operator.stderr()));
    assert_eq!(answer["response"]["result"]["status"], "Success", "{answer}");
}

/// `kfp-operator webhook-configurations` prints what `webhook::configuration::validating` builds, and the real API
/// server accepts it (server-side dry run).
#[tokio::test]
async fn the_printed_webhook_configuration_is_the_library_one_and_valid() {
    let env = shared_env().await;
    let client = env.client().await.unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kfp-operator"))
        .args(["webhook-configurations", "--namespace", "ops"])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let documents = kfp_testenv::parse_yaml(&text, std::path::Path::new("<stdout>")).unwrap();
    assert_eq!(
        documents.len(),
        1,
        "only a ValidatingWebhookConfiguration: no kind is defaulted"
    );
    let printed: ValidatingWebhookConfiguration = serde_json::from_value(documents[0].value.clone()).unwrap();
    assert_eq!(
        printed,
        configuration::validating(&Endpoint::service("ops"), None)
    );
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let accepted = api.create(&dry_run, &printed).await.unwrap();
    assert_eq!(accepted.webhooks.unwrap().len(), 6);
}
