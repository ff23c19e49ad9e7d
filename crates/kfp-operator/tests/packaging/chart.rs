//! The Helm chart `charts/kfp-operator`, rendered by the real helm binary: it lints, its copy of the Argo templates
//! matches `config/argo/` (its CRDs are checked by `crds_drift.rs`), every value is documented, the defaults and each
//! switch (cert-manager, custom certificates, monitoring, providers, multiversion, the direct executor's Job compiler)
//! render what the webhook contract and the chart README say, more than one replica gets a PodDisruptionBudget and
//! spread, a ServiceMonitor has its Service, bad values fail on the schema or with messages that name them (the Go
//! operator's values name their replacement), and everything rendered is accepted by a real API server (server-side dry
//! run).

use crate::support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::chart::{self, all_of, configuration, find, names, template, try_template};

const KINDS: [(&str, &str); 6] = [
    ("pipeline", "pipelines"),
    ("run", "runs"),
    ("runconfiguration", "runconfigurations"),
    ("runschedule", "runschedules"),
    ("experiment", "experiments"),
    ("provider", "providers"),
];

/// Every monitoring object on.
const MONITORING: [&str; 4] = [
    "manager.monitoring.create=true",
    "manager.monitoring.serviceMonitor.create=true",
    "manager.monitoring.prometheusRule.create=true",
    "manager.monitoring.grafanaDashboard.create=true",
];

/// The operator on the node's network, with /etc/hosts entries and its own health and metrics ports.
const HOST_NETWORK: [&str; 6] = [
    "manager.hostNetwork=true",
    "manager.hostAliases[0].ip=10.0.0.5",
    "manager.hostAliases[0].hostnames={nats.local,api.local}",
    "manager.healthPort=18081",
    "manager.metricsPort=18080",
    "manager.monitoring.create=true",
];

/// `--set` arguments for `values`.
fn sets(values: &[&'static str]) -> Vec<&'static str> {
    values.iter().flat_map(|v| ["--set", *v]).collect()
}

/// The value switches worth rendering and applying beside the defaults.
fn switches() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("defaults", vec![]),
        (
            "cert-manager",
            vec!["--set", "manager.webhookCertificates.provider=cert-manager"],
        ),
        (
            "custom certificates",
            vec![
                "--set",
                "manager.webhookCertificates.provider=custom",
                "--set",
                "manager.webhookCertificates.caBundle=Q0EK",
            ],
        ),
        ("monitoring", sets(&MONITORING)),
        (
            "monitoring behind kube-rbac-proxy",
            vec![
                "--set",
                "manager.monitoring.create=true",
                "--set",
                "manager.monitoring.rbacSecured=true",
                "--set",
                "manager.monitoring.serviceMonitor=true",
            ],
        ),
        (
            "multiversion",
            vec![
                "--set",
                "manager.multiversion.enabled=true",
                "--set",
                "manager.webhookCertificates.provider=cert-manager",
            ],
        ),
        ("provider", provider_args()),
        ("two replicas", vec!["--set", "manager.replicas=2"]),
        (
            "a ServiceMonitor alone, behind kube-rbac-proxy",
            vec![
                "--set",
                "manager.monitoring.serviceMonitor.create=true",
                "--set",
                "manager.monitoring.rbacSecured=true",
            ],
        ),
        (
            "webhooks off",
            vec![
                "--set",
                "manager.webhooks.enabled=false",
                "--set",
                "networkPolicy.enabled=false",
            ],
        ),
        (
            "migration mode",
            vec![
                "--set",
                "manager.runcompletionWebhook.allowUnauthenticated=true",
                "--set",
                "networkPolicy.providerNames={kfp,vai}",
            ],
        ),
        ("host network with its own ports", sets(&HOST_NETWORK)),
        (
            "direct executor with the Job compiler",
            vec![
                "--set",
                "manager.configuration.executor=direct",
                "--set",
                "manager.configuration.direct.compiler=job",
            ],
        ),
    ]
}

fn provider_args() -> Vec<&'static str> {
    vec![
        "--set",
        "providers[0].name=stub",
        "--set",
        "providers[0].namespace=ml-providers",
        "--set",
        "providers[0].serviceImage=ghcr.io/kfp-operator/kfp-operator-stub-provider-service:0.1.0",
        "--set",
        "providers[0].pipelineRootStorage=gs://bucket/root",
        "--set",
        "providers[0].frameworks[0].name=stub",
        "--set",
        "providers[0].frameworks[0].image=ghcr.io/kfp-operator/kfp-operator-stub-compiler:0.1.0",
        "--set",
        "providers[0].allowedNamespaces[0]=ml",
        "--set",
        "providers[0].rbac[0].namespace=kubeflow",
        "--set",
        "providers[0].rbac[0].rules[0].apiGroups[0]=argoproj.io",
        "--set",
        "providers[0].rbac[0].rules[0].resources[0]=workflows",
        "--set",
        "providers[0].rbac[0].rules[0].verbs={get,list,watch,patch}",
    ]
}

#[test]
fn the_chart_lints_with_every_switch() {
    let home = tempfile::tempdir().unwrap();
    let chart = chart::chart_dir();
    for (name, args) in switches() {
        let mut all = vec![
            "lint",
            "--strict",
            chart.to_str().unwrap(),
            "--namespace",
            chart::NAMESPACE,
        ];
        all.extend(args);
        let out = chart::run_helm(home.path(), None, &all).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out.contains("0 chart(s) failed"), "{name}: {out}");
    }
}

#[test]
fn the_app_version_is_the_crate_version() {
    let text = std::fs::read_to_string(chart::chart_dir().join("Chart.yaml")).unwrap();
    let meta: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        meta["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "charts/kfp-operator/Chart.yaml: appVersion must be the kfp-operator crate version"
    );
}

#[test]
fn the_chart_workflow_templates_are_those_of_config_argo() {
    let source =
        std::fs::read_to_string(support::repo_root().join("config/argo/workflow-templates.yaml")).unwrap();
    let copy =
        std::fs::read_to_string(chart::chart_dir().join("files/argo/workflow-templates.yaml")).unwrap();
    assert!(
        source == copy,
        "charts/kfp-operator/files/argo/workflow-templates.yaml drifted from config/argo/workflow-templates.yaml: \
         copy it over (cp config/argo/workflow-templates.yaml charts/kfp-operator/files/argo/)"
    );
}

/// Every key path of a values tree: `a`, `a.b`, ... (list items are not walked: a list is one value).
fn key_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            out.push(path.clone());
            key_paths(child, &path, out);
        }
    }
}

#[test]
fn every_value_is_documented_in_the_chart_readme() {
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart::chart_dir().join("values.yaml")).unwrap())
            .unwrap();
    let readme = std::fs::read_to_string(chart::chart_dir().join("README.md")).unwrap();
    let mut paths = Vec::new();
    key_paths(&values, "", &mut paths);
    // Free-form maps (labels, resources, node selectors) are documented as a whole, not key by key.
    let free_form = [
        "manager.resources.",
        "manager.monitoring.rbacProxy.resources.",
        "manager.monitoring.grafanaDashboard.labels.",
    ];
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| !free_form.iter().any(|f| p.starts_with(f)))
        .filter(|p| !readme.contains(&format!("`{p}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "values without a row in charts/kfp-operator/README.md (write them as `path`): {missing:?}"
    );
    assert!(paths.len() > 60, "the walk found the values: {paths:?}");
}

fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

#[test]
fn the_default_deployment_is_locked_down() {
    let objects = template(&[]);
    let deployment = find(&objects, "Deployment", "kfp-operator-controller-manager");
    assert_eq!(deployment["metadata"]["namespace"], chart::NAMESPACE);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], chart::SERVICE_ACCOUNT);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["enableServiceLinks"], false);
    let manager = container(deployment, "manager");
    assert_eq!(
        manager["image"], "kfp-operator.local/kfp-operator-controller:0.1.0",
        "the name scripts/images.sh gives the operator image"
    );
    assert_eq!(
        manager["args"],
        json!(["run", "--config", "/etc/kfp-operator/config.yaml"])
    );
    let security = &manager["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(
        manager["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "health"})
    );
    assert_eq!(
        manager["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "health"})
    );
    let ports: BTreeSet<(String, i64)> = manager["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    for port in [
        ("health", 8081),
        ("http-metrics", 8080),
        ("webhook-server", 9443),
        ("runcompletion", 8082),
    ] {
        assert!(ports.contains(&(port.0.to_string(), port.1)), "{ports:?}");
    }
    assert!(manager["resources"]["requests"]["cpu"].is_string());
    assert!(manager["resources"]["limits"]["memory"].is_string());
    let env: Vec<(&str, &str)> = manager["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(env.contains(&("POD_NAME", "metadata.name")), "{env:?}");
    assert!(env.contains(&("POD_NAMESPACE", "metadata.namespace")), "{env:?}");
    // The config file comes from the ConfigMap, and a changed configuration rolls the pods.
    let config_volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "config")
        .unwrap();
    assert_eq!(config_volume["configMap"]["name"], "kfp-operator-manager-config");
    assert!(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"].is_string());
}

/// The container ports of `container`, by name.
fn ports_of(container: &Value) -> Vec<(String, i64)> {
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The number of the container port a probe names (`port: health`), or its number.
fn probe_port(container: &Value, probe: &str) -> i64 {
    let port = &container[probe]["httpGet"]["port"];
    match port.as_str() {
        Some(name) => {
            ports_of(container)
                .into_iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{probe} names port {name}, which the container does not have"))
                .1
        }
        None => port.as_i64().unwrap(),
    }
}

#[test]
fn host_network_host_aliases_and_the_health_and_metrics_ports_follow_the_values() {
    let objects = template(&sets(&HOST_NETWORK));
    let deployment = find(&objects, "Deployment", "kfp-operator-controller-manager");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(
        pod["dnsPolicy"], "ClusterFirstWithHostNet",
        "Service names (NATS, provider services) still resolve"
    );
    assert_eq!(
        pod["hostAliases"],
        json!([{"ip": "10.0.0.5", "hostnames": ["nats.local", "api.local"]}])
    );
    let manager = container(deployment, "manager");
    let ports = ports_of(manager);
    for port in [
        ("health", 18081),
        ("http-metrics", 18080),
        ("webhook-server", 9443),
        ("runcompletion", 8082),
    ] {
        assert!(ports.contains(&(port.0.to_string(), port.1)), "{ports:?}");
    }
    assert_eq!(ports.len(), 4, "{ports:?}");
    assert_eq!(probe_port(manager, "livenessProbe"), 18081);
    assert_eq!(probe_port(manager, "readinessProbe"), 18081);
    // The operator listens where the container ports are, and loads the file.
    let text = configuration(&objects);
    let config: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(config["system"]["healthAddress"], "0.0.0.0:18081");
    assert_eq!(config["system"]["metricsAddress"], "0.0.0.0:18080");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).unwrap();
    let loaded = kfp_operator::config::OperatorConfig::load(Some(&path), std::iter::empty())
        .unwrap_or_else(|e| panic!("the operator refuses the chart's configuration: {e}"));
    assert_eq!(loaded.system.health_address, "0.0.0.0:18081");
    assert_eq!(loaded.system.metrics_address, "0.0.0.0:18080");
    let service = find(
        &objects,
        "Service",
        "kfp-operator-controller-manager-metrics-service",
    );
    assert_eq!(
        service["spec"]["ports"][0],
        json!({"name": "http-metrics", "port": 18080, "targetPort": "http-metrics", "protocol": "TCP"})
    );
    // The NetworkPolicy opens the ports by name, so it follows them.
    let policy = find(&objects, "NetworkPolicy", "kfp-operator-controller-manager");
    let opened: BTreeSet<String> = policy["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["ports"].as_array().unwrap().iter())
        .map(|p| p["port"].as_str().unwrap().to_string())
        .collect();
    for name in ["health", "http-metrics", "webhook-server", "runcompletion"] {
        assert!(opened.contains(name), "{opened:?}");
    }

    // Behind kube-rbac-proxy: the operator on the loopback at metricsPort, the proxy's upstream there.
    let secured = template(&[
        "--set",
        "manager.hostNetwork=true",
        "--set",
        "manager.metricsPort=18080",
        "--set",
        "manager.monitoring.rbacSecured=true",
    ]);
    let config: Value = serde_saphyr::from_str(&configuration(&secured)).unwrap();
    assert_eq!(config["system"]["metricsAddress"], "127.0.0.1:18080");
    assert_eq!(config["system"]["healthAddress"], "0.0.0.0:8081");
    let deployment = find(&secured, "Deployment", "kfp-operator-controller-manager");
    let proxy = container(deployment, "kube-rbac-proxy");
    assert!(
        proxy["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--upstream=http://127.0.0.1:18080/")),
        "{}",
        proxy["args"]
    );
    assert!(
        !ports_of(container(deployment, "manager"))
            .iter()
            .any(|(name, _)| name == "http-metrics"),
        "metrics only through the proxy"
    );

    // Defaults: the pod network, cluster DNS, no host aliases, 8081 and 8080.
    let objects = template(&[]);
    let deployment = find(&objects, "Deployment", "kfp-operator-controller-manager");
    let pod = &deployment["spec"]["template"]["spec"];
    for key in ["hostNetwork", "dnsPolicy", "hostAliases"] {
        assert!(pod.get(key).is_none(), "{key}: {}", pod[key]);
    }
    let manager = container(deployment, "manager");
    assert_eq!(probe_port(manager, "livenessProbe"), 8081);
    assert_eq!(probe_port(manager, "readinessProbe"), 8081);
    let config: Value = serde_saphyr::from_str(&configuration(&objects)).unwrap();
    assert_eq!(config["system"]["healthAddress"], "0.0.0.0:8081");
    assert_eq!(config["system"]["metricsAddress"], "0.0.0.0:8080");
}

#[test]
fn the_default_configuration_follows_the_webhook_contract() {
    let objects = template(&[]);
    let config: Value = serde_saphyr::from_str(&configuration(&objects)).unwrap();
    assert_eq!(
        config["system"]["leaderElection"],
        json!({"enabled": true, "id": "kfp-operator-lock"})
    );
    assert_eq!(config["system"]["healthAddress"], "0.0.0.0:8081");
    assert_eq!(
        config["system"]["webhook"],
        json!({
            "enabled": true,
            "address": "0.0.0.0:9443",
            "serviceName": "kfp-operator-webhook-service",
            "certificates": {"mode": "self", "secretName": "kfp-operator-webhook-server-cert"},
        })
    );
    let spec = &config["spec"];
    assert_eq!(spec["workflowNamespace"], chart::NAMESPACE);
    assert_eq!(spec["multiversion"], false);
    assert_eq!(spec["runCompletionFeed"]["port"], 8082);
    assert_eq!(
        spec["defaultTfxImage"],
        "kfp-operator.local/kfp-operator-tfx-compiler:0.1.0"
    );
    let provider_env = &spec["defaultProviderValues"]["podTemplateSpec"]["spec"]["containers"][0]["env"];
    assert!(
        provider_env.as_array().unwrap().contains(&json!({
            "name": "OPERATORWEBHOOK",
            "value": "http://kfp-operator-runcompletion-webhook-service.kfp-operator-system:80/events"
        })),
        "{provider_env}"
    );
}

#[test]
fn the_rendered_configuration_is_one_the_operator_loads() {
    // The whole file as the chart renders it, webhook server included: the operator's own loader must accept it.
    let objects = template(&[
        "--set",
        "manager.configuration.runCompletionTTL=24h",
        "--set",
        "manager.systemConfiguration.concurrency.run=32",
        "--set",
        "logging.verbosity=1",
        "--set",
        "provider.replicas=2",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, configuration(&objects)).unwrap();
    let config = kfp_operator::config::OperatorConfig::load(Some(&path), std::iter::empty())
        .unwrap_or_else(|e| panic!("the operator refuses the chart's configuration: {e}"));
    assert!(config.system.leader_election.enabled);
    assert_eq!(config.system.concurrency.run, 32);
    assert_eq!(config.system.logging.level, "1");
    assert_eq!(config.spec.default_provider_values.replicas, 2);
    assert_eq!(
        config.spec.run_completion_ttl,
        Some(std::time::Duration::from_secs(24 * 3600))
    );
    assert_eq!(config.spec.workflow_namespace, chart::NAMESPACE);
    let webhook = &config.system.webhook;
    assert!(webhook.enabled);
    assert_eq!(webhook.address, "0.0.0.0:9443");
    assert_eq!(webhook.service_name, "kfp-operator-webhook-service");
    assert_eq!(
        webhook.certificates.mode,
        kfp_operator::config::CertificateMode::SelfManaged
    );
}

#[test]
fn the_validating_webhooks_follow_the_contract() {
    let objects = template(&[]);
    let configuration = find(
        &objects,
        "ValidatingWebhookConfiguration",
        "kfp-operator-validating-webhook-configuration",
    );
    let webhooks = configuration["webhooks"].as_array().unwrap();
    assert_eq!(webhooks.len(), 6);
    for (kind, plural) in KINDS {
        let webhook = webhooks
            .iter()
            .find(|w| w["name"] == format!("v{kind}.pipelines.kubeflow.org"))
            .unwrap_or_else(|| panic!("no webhook for {kind}"));
        assert_eq!(
            webhook["clientConfig"]["service"],
            json!({
                "name": "kfp-operator-webhook-service",
                "namespace": chart::NAMESPACE,
                "path": format!("/validate-pipelines-kubeflow-org-v1beta1-{kind}"),
                "port": 443,
            })
        );
        assert_eq!(webhook["failurePolicy"], "Fail");
        assert_eq!(webhook["sideEffects"], "None");
        assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(webhook["matchPolicy"], "Equivalent");
        assert_eq!(
            webhook["rules"],
            json!([{
                "apiGroups": ["pipelines.kubeflow.org"],
                "apiVersions": ["v1beta1"],
                "resources": [plural],
                "operations": ["CREATE", "UPDATE"],
            }])
        );
    }
    // No kind is defaulted at admission, so there is no mutating webhook (docs/webhooks.md).
    assert!(all_of(&objects, "MutatingWebhookConfiguration").is_empty());
    // Services: webhook 443 -> 9443, feed 80 -> 8082; no metrics Service unless asked for.
    let webhook_service = find(&objects, "Service", "kfp-operator-webhook-service");
    assert_eq!(webhook_service["spec"]["ports"][0]["port"], 443);
    assert_eq!(
        webhook_service["spec"]["ports"][0]["targetPort"],
        "webhook-server"
    );
    let feed = find(&objects, "Service", "kfp-operator-runcompletion-webhook-service");
    assert_eq!(feed["spec"]["ports"][0]["port"], 80);
    assert_eq!(feed["spec"]["ports"][0]["targetPort"], "runcompletion");
    assert_eq!(all_of(&objects, "Service").len(), 2, "{:?}", names(&objects));
}

/// The names of a CRD's versions (only the stored one with `stored_only`).
fn versions(crd: &Value, stored_only: bool) -> Vec<String> {
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| !stored_only || v["storage"] == true)
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn crds_serve_v1beta1_only_unless_multiversion_is_enabled() {
    let objects = template(&[]);
    let crds = all_of(&objects, "CustomResourceDefinition");
    assert_eq!(crds.len(), 6);
    for crd in &crds {
        assert_eq!(versions(crd, false), ["v1beta1"], "{}", crd["metadata"]["name"]);
        assert_eq!(versions(crd, true), ["v1beta1"]);
        assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    }
    let not_kept = template(&["--set", "crds.keep=false"]);
    for crd in all_of(&not_kept, "CustomResourceDefinition") {
        assert!(
            crd["metadata"]["annotations"]
                .get("helm.sh/resource-policy")
                .is_none()
        );
    }
    let none = template(&["--set", "crds.create=false"]);
    assert!(all_of(&none, "CustomResourceDefinition").is_empty());

    // Multiversion: all three versions, the stored one chosen, converted by the webhook in the release namespace.
    let objects = template(&sets(&[
        "manager.multiversion.enabled=true",
        "manager.multiversion.storedVersion=v1alpha6",
    ]));
    for crd in all_of(&objects, "CustomResourceDefinition") {
        assert_eq!(versions(crd, false), ["v1beta1", "v1alpha5", "v1alpha6"]);
        assert_eq!(versions(crd, true), ["v1alpha6"]);
        let webhook = &crd["spec"]["conversion"]["webhook"];
        assert_eq!(crd["spec"]["conversion"]["strategy"], "Webhook");
        assert_eq!(
            webhook["clientConfig"]["service"],
            json!({"name": "kfp-operator-webhook-service", "namespace": chart::NAMESPACE, "path": "/convert", "port": 443})
        );
    }
    let config: Value = serde_saphyr::from_str(&configuration(&objects)).unwrap();
    assert_eq!(config["spec"]["multiversion"], true);

    // The conversion webhook follows the release namespace, and its server runs without admission webhooks.
    let other = support::chart::run_helm(
        tempfile::tempdir().unwrap().path(),
        None,
        &[
            "template",
            "kfp",
            chart::chart_dir().to_str().unwrap(),
            "--namespace",
            "platform",
            "--set",
            "manager.multiversion.enabled=true",
            "--set",
            "manager.webhooks.enabled=false",
        ],
    )
    .unwrap();
    let objects = chart::objects(&other);
    for crd in all_of(&objects, "CustomResourceDefinition") {
        assert_eq!(
            crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["namespace"],
            "platform"
        );
    }
    assert!(all_of(&objects, "ValidatingWebhookConfiguration").is_empty());
    find(&objects, "Service", "kfp-operator-webhook-service");
    let config: Value = serde_saphyr::from_str(&configuration(&objects)).unwrap();
    assert_eq!(config["system"]["webhook"]["enabled"], true);
}

#[test]
fn cert_manager_issues_the_serving_certificate_and_injects_the_ca() {
    let objects = template(&[
        "--set",
        "manager.webhookCertificates.provider=cert-manager",
        "--set",
        "manager.multiversion.enabled=true",
    ]);
    let certificate = find(&objects, "Certificate", "kfp-operator-serving-cert");
    assert_eq!(
        certificate["spec"]["dnsNames"],
        json!([
            "kfp-operator-webhook-service.kfp-operator-system.svc",
            "kfp-operator-webhook-service.kfp-operator-system.svc.cluster.local"
        ])
    );
    assert_eq!(
        certificate["spec"]["secretName"],
        "kfp-operator-webhook-server-cert"
    );
    assert_eq!(
        certificate["spec"]["issuerRef"]["name"],
        "kfp-operator-selfsigned-issuer"
    );
    find(&objects, "Issuer", "kfp-operator-selfsigned-issuer");
    let injected = "kfp-operator-system/kfp-operator-serving-cert";
    let validating = find(
        &objects,
        "ValidatingWebhookConfiguration",
        "kfp-operator-validating-webhook-configuration",
    );
    assert_eq!(
        validating["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        injected
    );
    for crd in all_of(&objects, "CustomResourceDefinition") {
        assert_eq!(
            crd["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            injected
        );
    }
    // The operator reads the files cert-manager writes into the Secret, mounted where it looks for them.
    let config: Value = serde_saphyr::from_str(&configuration(&objects)).unwrap();
    assert_eq!(config["system"]["webhook"]["certificates"]["mode"], "files");
    assert_eq!(
        config["system"]["webhook"]["certDir"],
        "/tmp/k8s-webhook-server/serving-certs"
    );
    let deployment = find(&objects, "Deployment", "kfp-operator-controller-manager");
    let mounts = &container(deployment, "manager")["volumeMounts"];
    assert!(
        mounts
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/tmp/k8s-webhook-server/serving-certs"),
        "{mounts}"
    );
    // Nobody patches caBundles or Secrets: the self-managed mode's permissions are not granted.
    assert!(
        !objects
            .iter()
            .any(|o| o["metadata"]["name"] == "kfp-operator-webhook-certificates-role"),
        "{:?}",
        names(&objects)
    );

    let issuer = template(&[
        "--set",
        "manager.webhookCertificates.provider=cert-manager",
        "--set",
        "manager.webhookCertificates.certManager.issuerRef.name=platform-ca",
        "--set",
        "manager.webhookCertificates.certManager.issuerRef.kind=ClusterIssuer",
    ]);
    assert!(all_of(&issuer, "Issuer").is_empty());
    let certificate = find(&issuer, "Certificate", "kfp-operator-serving-cert");
    assert_eq!(
        certificate["spec"]["issuerRef"],
        json!({"name": "platform-ca", "kind": "ClusterIssuer"})
    );

    let custom = template(&[
        "--set",
        "manager.webhookCertificates.provider=custom",
        "--set",
        "manager.webhookCertificates.caBundle=Q0EK",
    ]);
    let validating = find(
        &custom,
        "ValidatingWebhookConfiguration",
        "kfp-operator-validating-webhook-configuration",
    );
    for webhook in validating["webhooks"].as_array().unwrap() {
        assert_eq!(webhook["clientConfig"]["caBundle"], "Q0EK");
    }
    assert!(all_of(&custom, "Certificate").is_empty());
}

#[test]
fn self_managed_certificates_get_exactly_the_contract_permissions() {
    let objects = template(&[]);
    let cluster = find(&objects, "ClusterRole", "kfp-operator-webhook-certificates-role");
    let names_of = |rule: &Value| rule["resourceNames"].as_array().map(|a| a.len()).unwrap_or(0);
    let crd_rules: Vec<&Value> = cluster["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resources"] == json!(["customresourcedefinitions"]))
        .collect();
    assert_eq!(crd_rules[0]["verbs"], json!(["get", "patch"]));
    assert_eq!(names_of(crd_rules[0]), 6, "patching is limited to our six CRDs");
    let role = find(&objects, "Role", "kfp-operator-webhook-certificates-role");
    assert_eq!(role["metadata"]["namespace"], chart::NAMESPACE);
    assert_eq!(
        role["rules"][0]["resourceNames"],
        json!(["kfp-operator-webhook-server-cert"]),
        "only the certificate Secret"
    );
    assert_eq!(
        chart::grants(role),
        BTreeSet::from([
            ("".into(), "secrets".into(), "get".into()),
            ("".into(), "secrets".into(), "update".into()),
            ("".into(), "secrets".into(), "create".into()),
        ])
    );
    let feed = find(&objects, "ClusterRole", "kfp-operator-runcompletion-feed-role");
    assert_eq!(
        chart::grants(feed),
        BTreeSet::from([
            (
                "authentication.k8s.io".into(),
                "tokenreviews".into(),
                "create".into()
            ),
            (
                "pipelines.kubeflow.org".into(),
                "runs/status".into(),
                "patch".into()
            ),
            (
                "pipelines.kubeflow.org".into(),
                "runconfigurations/status".into(),
                "patch".into()
            ),
        ])
    );
}

#[test]
fn monitoring_renders_scraping_alerts_and_a_dashboard_on_the_real_metric_names() {
    let objects = template(&sets(&MONITORING));
    let service = find(
        &objects,
        "Service",
        "kfp-operator-controller-manager-metrics-service",
    );
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    let monitor = find(
        &objects,
        "ServiceMonitor",
        "kfp-operator-controller-manager-metrics-monitor",
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http-metrics");
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"],
        "metrics"
    );
    assert_eq!(
        service["metadata"]["labels"]["app.kubernetes.io/component"],
        "metrics"
    );
    let rule = find(&objects, "PrometheusRule", "kfp-operator-alerts");
    let alerts: Vec<&str> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    for alert in [
        "KfpOperatorReconcileErrors",
        "KfpOperatorResourcesStuck",
        "KfpOperatorRunCompletionFeedFailures",
        "KfpOperatorNoLeader",
    ] {
        assert!(alerts.contains(&alert), "{alerts:?}");
    }
    // Every operator metric an alert or a dashboard panel queries is one the operator registers.
    let known: BTreeSet<String> = operator_metric_names();
    let mut queried = metric_names_in(&serde_json::to_string(rule).unwrap());
    let dashboard = find(&objects, "ConfigMap", "kfp-operator-grafana-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json_text = dashboard["data"]["kfp-operator.json"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(json_text).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().unwrap().len() >= 6);
    queried.extend(metric_names_in(json_text));
    let unknown: Vec<&String> = queried.iter().filter(|m| !known.contains(*m)).collect();
    assert!(
        unknown.is_empty(),
        "queried but not registered by the operator: {unknown:?}; registered: {known:?}"
    );
    assert!(queried.len() >= 6, "{queried:?}");

    let secured = template(&[
        "--set",
        "manager.monitoring.create=true",
        "--set",
        "manager.monitoring.rbacSecured=true",
        "--set",
        "manager.monitoring.serviceMonitor=true",
    ]);
    let deployment = find(&secured, "Deployment", "kfp-operator-controller-manager");
    let proxy = container(deployment, "kube-rbac-proxy");
    assert_eq!(proxy["ports"][0]["containerPort"], 8443);
    let config: Value = serde_saphyr::from_str(&configuration(&secured)).unwrap();
    assert_eq!(
        config["system"]["metricsAddress"], "127.0.0.1:8080",
        "metrics only through the proxy"
    );
    let monitor = find(
        &secured,
        "ServiceMonitor",
        "kfp-operator-controller-manager-metrics-monitor",
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["scheme"], "https");
    find(&secured, "ClusterRole", "kfp-operator-metrics-reader");
    assert_scrapes_with_the_scraper_token(&secured);
}

/// The rbacSecured ServiceMonitor authenticates with the `authorization` block (not the deprecated
/// `bearerTokenFile`), from the token Secret of a ServiceAccount bound to the metrics reader role.
fn assert_scrapes_with_the_scraper_token(objects: &[Value]) {
    let monitor = find(
        objects,
        "ServiceMonitor",
        "kfp-operator-controller-manager-metrics-monitor",
    );
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert!(endpoint.get("bearerTokenFile").is_none(), "{endpoint}");
    assert_eq!(
        endpoint["authorization"],
        json!({"type": "Bearer", "credentials": {"name": "kfp-operator-metrics-scraper-token", "key": "token"}})
    );
    let secret = find(objects, "Secret", "kfp-operator-metrics-scraper-token");
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    assert_eq!(
        secret["metadata"]["annotations"]["kubernetes.io/service-account.name"],
        "kfp-operator-metrics-scraper"
    );
    find(objects, "ServiceAccount", "kfp-operator-metrics-scraper");
    let binding = find(objects, "ClusterRoleBinding", "kfp-operator-metrics-scraper");
    assert_eq!(binding["roleRef"]["name"], "kfp-operator-metrics-reader");
    assert_eq!(binding["subjects"][0]["name"], "kfp-operator-metrics-scraper");
}

#[test]
fn a_service_monitor_alone_selects_a_rendered_metrics_service() {
    let objects = template(&sets(&[
        "manager.monitoring.serviceMonitor.create=true",
        "manager.monitoring.rbacSecured=true",
    ]));
    let monitor = find(
        &objects,
        "ServiceMonitor",
        "kfp-operator-controller-manager-metrics-monitor",
    );
    let service = find(
        &objects,
        "Service",
        "kfp-operator-controller-manager-metrics-service",
    );
    let selector = monitor["spec"]["selector"]["matchLabels"].as_object().unwrap();
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(&service["metadata"]["labels"][key], value, "label {key}");
    }
    let port = monitor["spec"]["endpoints"][0]["port"].as_str().unwrap();
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == port),
        "the Service has no port {port}: {service}"
    );
    assert_scrapes_with_the_scraper_token(&objects);

    // A Secret of one's own replaces the chart's scraper.
    let own = template(&sets(&[
        "manager.monitoring.serviceMonitor.create=true",
        "manager.monitoring.rbacSecured=true",
        "manager.monitoring.serviceMonitor.tokenSecret.name=prometheus-token",
        "manager.monitoring.serviceMonitor.tokenSecret.key=bearer",
    ]));
    let monitor = find(
        &own,
        "ServiceMonitor",
        "kfp-operator-controller-manager-metrics-monitor",
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["authorization"]["credentials"],
        json!({"name": "prometheus-token", "key": "bearer"})
    );
    assert!(
        !names(&own).iter().any(|n| n.contains("metrics-scraper")),
        "{:?}",
        names(&own)
    );
}

/// A Go operator values file that keeps the Go defaults of the keys this chart refuses still loads: only values
/// that would change something are refused.
#[test]
fn go_operator_defaults_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let values = chart::values_file(
        dir.path(),
        "go.yaml",
        "namespace: {create: true, name: kfp-operator-system}\n\
         manager:\n  metadata: {}\n  argo:\n    serviceAccount: {name: kfp-operator-argo, create: true}\n    \
         containerDefaults: {}\n    metadata: {}\n  monitoring:\n    serviceMonitor: {create: false, endpointConfiguration: {}}\n",
    );
    template(&["-f", values.to_str().unwrap()]);
}

#[test]
fn more_than_one_replica_gets_a_disruption_budget_and_spread() {
    let selector = json!({
        "app.kubernetes.io/name": "kfp-operator",
        "app.kubernetes.io/instance": "kfp-operator",
        "app.kubernetes.io/component": "controller-manager",
    });
    let two = template(&["--set", "manager.replicas=2"]);
    let deployment = find(&two, "Deployment", "kfp-operator-controller-manager");
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"],
        "controller-manager"
    );
    let budget = find(&two, "PodDisruptionBudget", "kfp-operator-controller-manager");
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    assert_eq!(budget["spec"]["selector"]["matchLabels"], selector);
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], selector);
    let spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        .as_array()
        .unwrap();
    let keys: Vec<&str> = spread
        .iter()
        .map(|c| c["topologyKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
    for constraint in spread {
        assert_eq!(constraint["whenUnsatisfiable"], "ScheduleAnyway");
        assert_eq!(constraint["labelSelector"]["matchLabels"], selector);
    }

    let one = template(&[]);
    assert!(all_of(&one, "PodDisruptionBudget").is_empty());
    let deployment = find(&one, "Deployment", "kfp-operator-controller-manager");
    assert!(
        deployment["spec"]["template"]["spec"]
            .get("topologySpreadConstraints")
            .is_none()
    );

    // Both are overridable.
    let tuned = template(&[
        "--set",
        "manager.replicas=3",
        "--set",
        "manager.podDisruptionBudget.maxUnavailable=50%",
        "--set",
        "manager.topologySpreadConstraints[0].maxSkew=2",
        "--set",
        "manager.topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
        "--set",
        "manager.topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
    ]);
    let budget = find(&tuned, "PodDisruptionBudget", "kfp-operator-controller-manager");
    assert_eq!(budget["spec"]["maxUnavailable"], "50%");
    let deployment = find(&tuned, "Deployment", "kfp-operator-controller-manager");
    let spread = &deployment["spec"]["template"]["spec"]["topologySpreadConstraints"];
    assert_eq!(spread.as_array().unwrap().len(), 1);
    assert_eq!(spread[0]["whenUnsatisfiable"], "DoNotSchedule");
    let off = template(&[
        "--set",
        "manager.replicas=2",
        "--set",
        "manager.podDisruptionBudget.create=false",
    ]);
    assert!(all_of(&off, "PodDisruptionBudget").is_empty());
}

/// The metric names the operator's registry exposes (`kfp_operator_*`, counters with `_total`, histograms with
/// `_bucket`), from a registry that recorded one of each.
fn operator_metric_names() -> BTreeSet<String> {
    let metrics = kfp_operator::telemetry::Metrics::new();
    metrics.reconciled("pipeline", std::time::Duration::from_millis(1), Some("api"));
    metrics.reconciled("pipeline", std::time::Duration::from_millis(1), None);
    metrics.resource_state("pipeline", "ns/p", Some("Succeeded"));
    metrics.operation("pipeline", "create", "submitted");
    metrics.provider_call(
        "pipeline",
        "create",
        "succeeded",
        std::time::Duration::from_millis(1),
    );
    metrics.feed.request("POST", "/events", 200);
    metrics.feed.event("feed", "recorded");
    metrics.feed.published(true);
    metrics.reconcile_started("pipeline");
    metrics.standard.leading("kfp-operator-lock", true);
    metrics.standard.rest_request("200", "GET", "10.0.0.1:443");
    metrics
        .encode()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Every `kfp_operator_[a-z_]+` word of `text`.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    // The project's own names and controller-runtime's (issue 19).
    for prefix in [
        "kfp_operator_",
        "controller_runtime_",
        "workqueue_",
        "rest_client_",
        "leader_election_",
    ] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(tail.len());
            found.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    found
}

#[test]
fn providers_get_their_service_account_templates_and_a_post_install_provider() {
    let objects = template(&provider_args());
    let provider = find(&objects, "Provider", "stub");
    assert_eq!(provider["metadata"]["namespace"], "ml-providers");
    assert_eq!(
        provider["metadata"]["annotations"]["helm.sh/hook"],
        "post-install,post-upgrade"
    );
    assert_eq!(provider["spec"]["serviceAccount"], "kfp-provider-stub");
    assert_eq!(provider["spec"]["allowedNamespaces"], json!(["ml"]));
    // For GitOps (docs/gitops.md): an ordinary object in Argo CD sync wave 1, not a hook Argo CD recreates.
    let as_resource = template(&[provider_args(), vec!["--set", "providerObjects=resource"]].concat());
    let annotations = &find(&as_resource, "Provider", "stub")["metadata"]["annotations"];
    assert_eq!(annotations["argocd.argoproj.io/sync-wave"], "1", "{annotations}");
    assert!(annotations.get("helm.sh/hook").is_none(), "{annotations}");
    assert!(
        annotations.get("helm.sh/hook-delete-policy").is_none(),
        "{annotations}"
    );
    let account = find(&objects, "ServiceAccount", "kfp-provider-stub");
    assert_eq!(account["metadata"]["namespace"], "ml-providers");
    let role = find(&objects, "Role", "kfp-provider-stub-0");
    assert_eq!(role["metadata"]["namespace"], "kubeflow");
    // The WorkflowTemplates are in the release namespace and in the provider's.
    let mut namespaces: Vec<&str> = all_of(&objects, "WorkflowTemplate")
        .iter()
        .map(|t| t["metadata"]["namespace"].as_str().unwrap())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    assert_eq!(namespaces, ["kfp-operator-system", "ml-providers"]);
    let templates: BTreeSet<&str> = all_of(&objects, "WorkflowTemplate")
        .iter()
        .map(|t| t["metadata"]["name"].as_str().unwrap())
        .collect();
    for name in kfp_operator::executor::argo::TEMPLATE_NAMES {
        assert!(templates.contains(name), "{templates:?}");
    }

    // Argo namespaces, ServiceAccount name and helper images come from the values.
    let argo = template(&[
        "--set",
        "argo.namespaces={team-a,team-b}",
        "--set",
        "argo.serviceAccount.name=pipelines-runner",
        "--set",
        "argo.images.curl=mirror.example/curl:1",
    ]);
    let templates = all_of(&argo, "WorkflowTemplate");
    assert_eq!(templates.len(), 14, "seven templates in each of two namespaces");
    for template in &templates {
        let namespace = template["metadata"]["namespace"].as_str().unwrap();
        assert!(["team-a", "team-b"].contains(&namespace), "{namespace}");
        if let Some(account) = template["spec"].get("serviceAccountName") {
            assert_eq!(account, "pipelines-runner");
        }
        for parameter in template["spec"]["arguments"]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if parameter["name"] == "curl-image" {
                assert_eq!(parameter["value"], "mirror.example/curl:1");
            }
        }
    }
    let binding = argo
        .iter()
        .find(|o| o["kind"] == "RoleBinding" && o["metadata"]["namespace"] == "team-b")
        .unwrap();
    assert_eq!(binding["subjects"][0]["name"], "pipelines-runner");
}

#[test]
fn the_job_compiler_gets_its_role_only_when_configured() {
    let direct = template(&[
        "--set",
        "manager.configuration.executor=direct",
        "--set",
        "manager.configuration.direct.compiler=job",
        "--set",
        "manager.configuration.direct.compileNamespace=compile",
    ]);
    let role = find(&direct, "Role", "kfp-operator-job-compiler-role");
    assert_eq!(role["metadata"]["namespace"], "compile");
    assert!(chart::grants(role).contains(&("".into(), "pods/log".into(), "get".into())));
    let argo = template(&[]);
    assert!(
        !argo
            .iter()
            .any(|o| o["metadata"]["name"] == "kfp-operator-job-compiler-role")
    );
}

#[test]
fn viewer_and_editor_roles_aggregate_into_the_built_in_roles() {
    let objects = template(&[]);
    for (kind, plural) in KINDS {
        let viewer = find(
            &objects,
            "ClusterRole",
            &format!("kfp-operator-{kind}-viewer-role"),
        );
        assert_eq!(
            viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
            "true"
        );
        assert_eq!(viewer["rules"][0]["resources"], json!([plural]));
        assert_eq!(viewer["rules"][0]["verbs"], json!(["get", "list", "watch"]));
        let editor = find(
            &objects,
            "ClusterRole",
            &format!("kfp-operator-{kind}-editor-role"),
        );
        let labels = &editor["metadata"]["labels"];
        assert_eq!(labels["rbac.authorization.k8s.io/aggregate-to-admin"], "true");
        // A Provider deploys a service: namespace editors do not get to create one.
        assert_eq!(
            labels
                .get("rbac.authorization.k8s.io/aggregate-to-edit")
                .is_some(),
            kind != "provider",
            "{kind}"
        );
    }
}

/// The `from` peers of the NetworkPolicy rule that opens the feed port (`None`: any peer).
fn feed_peers(objects: &[Value]) -> Option<Value> {
    let policy = find(objects, "NetworkPolicy", "kfp-operator-controller-manager");
    let rules = policy["spec"]["ingress"].as_array().unwrap();
    let rule = rules
        .iter()
        .find(|r| r["ports"][0]["port"] == "runcompletion")
        .expect("a rule for the feed port");
    rule.get("from").cloned()
}

#[test]
fn migration_mode_accepts_tokenless_events_only_from_provider_pods() {
    // Off by default: tokens are required and the feed port is open to any peer (tokens keep others out).
    let objects = template(&[]);
    assert!(!configuration(&objects).contains("allowUnauthenticated"));
    assert_eq!(feed_peers(&objects), None);

    let mut args = provider_args();
    args.extend([
        "--set",
        "manager.runcompletionWebhook.allowUnauthenticated=true",
        "--set",
        "networkPolicy.providerNames={kfp,stub}",
    ]);
    let objects = template(&args);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, configuration(&objects)).unwrap();
    let config = kfp_operator::config::OperatorConfig::load(Some(&path), std::iter::empty()).unwrap();
    let auth = &config.spec.run_completion_feed.authentication;
    assert!(auth.allow_unauthenticated);
    assert!(auth.token_review, "tokens are still checked when sent");
    // Only the provider service pods (app: provider-<name>, any namespace) reach the feed; `stub` is named twice
    // (a chart-created provider and in providerNames) and listed once.
    assert_eq!(
        feed_peers(&objects),
        Some(json!([{
            "namespaceSelector": {},
            "podSelector": {"matchExpressions": [
                {"key": "app", "operator": "In", "values": ["provider-kfp", "provider-stub"]}
            ]}
        }]))
    );

    // Explicit peers win, for provider pods labelled otherwise (e.g. deployed by the Go operator's chart).
    let objects = template(&[
        "--set",
        "manager.runcompletionWebhook.allowUnauthenticated=true",
        "--set",
        "networkPolicy.feedFrom[0].podSelector.matchLabels.role=go-provider",
    ]);
    assert_eq!(
        feed_peers(&objects),
        Some(json!([{"podSelector": {"matchLabels": {"role": "go-provider"}}}]))
    );
}

#[test]
fn bad_values_fail_with_messages_that_name_them() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // Types and enums: values.schema.json, checked by helm before any template runs.
        (
            vec!["--set", "manager.webhookCertificates.provider=vault"],
            "at '/manager/webhookCertificates/provider': value must be one of 'self', 'cert-manager', 'custom'",
        ),
        (
            vec!["--set", "manager.replicas=two"],
            "at '/manager/replicas': got string, want integer",
        ),
        (
            vec!["--set", "networkPolicy.enabled=yes"],
            "at '/networkPolicy/enabled': got string, want boolean",
        ),
        (
            vec!["--set", "manager.monitoring.serviceMonitor=weekly"],
            "at '/manager/monitoring/serviceMonitor': got string, want boolean or object",
        ),
        (
            vec!["--set", "manager.hostNetwork=yes"],
            "at '/manager/hostNetwork': got string, want boolean",
        ),
        (
            vec!["--set", "manager.hostAliases[0].hostnames={nats.local}"],
            "at '/manager/hostAliases/0': missing property 'ip'",
        ),
        (
            vec!["--set", "manager.metricsPort=70000"],
            "at '/manager/metricsPort'",
        ),
        (
            vec!["--set", "crds.install=true"],
            "at '/crds': additional properties 'install' not allowed",
        ),
        (
            vec!["--set", "providerObjects=helm"],
            "at '/providerObjects': value must be one of 'hook', 'resource'",
        ),
        // The Go operator's (v0.7.0) values this chart does not have, each refused naming its replacement.
        (
            vec!["--set", "nameOverride=kfp"],
            "nameOverride is a value of the Go operator's chart; this chart names objects by fullnameOverride",
        ),
        (
            vec!["--set", "namespace.metadata.labels.team=ml"],
            "namespace.metadata is a value of the Go operator's chart",
        ),
        (
            vec!["--set", "manager.metadata.labels.team=ml"],
            "manager.metadata is a value of the Go operator's chart; use manager.podLabels and manager.podAnnotations",
        ),
        (
            vec!["--set", "manager.argo.serviceAccount.name=argo"],
            "manager.argo.serviceAccount is a value of the Go operator's chart; the Argo Workflows' ServiceAccount is argo.serviceAccount.name",
        ),
        (
            vec!["--set", "manager.argo.ttlStrategy.secondsAfterCompletion=3600"],
            "manager.argo.ttlStrategy is a value of the Go operator's chart; this chart has no equivalent",
        ),
        (
            vec!["--set", "manager.argo.containerDefaults.resources.limits.cpu=1"],
            "manager.argo.containerDefaults is a value of the Go operator's chart",
        ),
        (
            vec!["--set", "manager.runcompletionWebhook.port=8082"],
            "the feed's container port is manager.runcompletionWebhook.servicePort",
        ),
        (
            vec![
                "--set",
                "manager.monitoring.serviceMonitor.endpointConfiguration.honorLabels=true",
            ],
            "manager.monitoring.serviceMonitor.endpointConfiguration is a value of the Go operator's chart",
        ),
        (
            vec!["--set", "eventsourceServer.port=8080"],
            "this operator serves the run-completion feed itself (manager.runcompletionWebhook)",
        ),
        (
            vec!["--set", "manager.webhookCertificates.provider=custom"],
            "manager.webhookCertificates.caBundle is empty",
        ),
        (
            vec!["--set", "manager.multiversion.storedVersion=v1alpha6"],
            "manager.multiversion.storedVersion is \"v1alpha6\" but manager.multiversion.enabled is false",
        ),
        (
            vec![
                "--set",
                "manager.replicas=2",
                "--set",
                "manager.leaderElection.enabled=false",
            ],
            "manager.replicas is 2 but manager.leaderElection.enabled is false",
        ),
        // With hostNetwork the pod's ports are the node's: they must differ.
        (
            vec!["--set", "manager.metricsPort=8081"],
            "manager.healthPort and manager.metricsPort are both 8081; the operator pod's ports must differ",
        ),
        (
            vec!["--set", "manager.healthPort=9443"],
            "manager.healthPort and manager.webhookServicePort are both 9443",
        ),
        (
            vec![
                "--set",
                "manager.metricsPort=8443",
                "--set",
                "manager.monitoring.rbacSecured=true",
            ],
            "manager.metricsPort and kube-rbac-proxy's port (manager.monitoring.rbacSecured) are both 8443",
        ),
        (
            vec!["--set", "namespace.create=true", "--set", "namespace.name=kfp"],
            "namespace.name is \"kfp\", but this chart installs into the release namespace \"kfp-operator-system\"",
        ),
        (
            vec!["--set", "runcompletionEventTrigger.enabled=true"],
            "runcompletionEventTrigger.enabled is true, but this operator publishes run-completion events to NATS itself",
        ),
        (
            vec![
                "--set",
                "providers[0].name=p",
                "--set",
                "providers[0].serviceImage=i",
            ],
            "providers[0].pipelineRootStorage is required.",
        ),
        (
            [
                provider_args(),
                vec![
                    "--set",
                    "providers[0].frameworks[0].patches[0].type=json",
                    "--set",
                    "providers[0].frameworks[0].patches[0].patch=x",
                ],
            ]
            .concat(),
            "providers[0].frameworks[0].patches[0] has a `patch` field; the field is called `payload`.",
        ),
        (
            [
                provider_args(),
                vec![
                    "--set",
                    "providers[0].podTemplateEnv[0].name=parameters_token",
                    "--set",
                    "providers[0].podTemplateEnv[0].value=x",
                ],
            ]
            .concat(),
            "providers[0].podTemplateEnv[0].name is \"parameters_token\", which is reserved by the operator",
        ),
        (
            vec![
                "--set",
                "manager.runcompletionWebhook.allowUnauthenticated=true",
                "--set",
                "networkPolicy.enabled=false",
            ],
            "manager.runcompletionWebhook.allowUnauthenticated is true but networkPolicy.enabled is false",
        ),
        (
            vec!["--set", "manager.runcompletionWebhook.allowUnauthenticated=true"],
            "name the Providers in networkPolicy.providerNames",
        ),
    ];
    for (args, message) in cases {
        let error = try_template(&args).expect_err(&format!("{args:?} must fail"));
        assert!(
            error.contains(message),
            "{args:?}: expected {message:?} in:\n{error}"
        );
    }
}

#[tokio::test]
async fn every_rendered_manifest_is_accepted_by_the_api_server() {
    let env = kfp_testenv::TestEnv::shared()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    env.install_argo_crds().await.unwrap_or_else(|e| panic!("{e}"));
    // The Prometheus Operator's and cert-manager's kinds, as minimal CRDs (no schema: any content is stored);
    // their real schemas are not on this machine, so for these kinds the dry run checks names and scope only.
    env.install_crds(&[support::repo_root().join("crates/kfp-operator/tests/chart-data/external-crds.yaml")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = env.client().await.unwrap();
    for namespace in [chart::NAMESPACE, "ml-providers", "kubeflow", "compile"] {
        kfp_testenv::apply_yaml(
            &client,
            &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n"),
            &Default::default(),
        )
        .await
        .unwrap();
    }
    let dry_run = kfp_testenv::ApplyOptions::default()
        .field_manager("helm")
        .dry_run();
    let mut installed_crds = false;
    for (name, args) in switches() {
        let yaml = try_template(&args).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (crds, rest): (Vec<Value>, Vec<Value>) = chart::objects(&yaml)
            .into_iter()
            .partition(|o| o["kind"] == "CustomResourceDefinition");
        let as_yaml = |objects: &[Value]| {
            objects
                .iter()
                .map(|o| serde_json::to_string(o).unwrap())
                .collect::<Vec<_>>()
                .join("\n---\n")
        };
        // CRDs first: validated by a dry run, then (once, the multiversion ones: a superset) installed for real,
        // so the Providers that follow are checked against their schema.
        // As the manager that installed them, so fields a value set drops (the conversion webhook) go away.
        let crd_dry_run = dry_run.clone().field_manager(kfp_testenv::CRD_FIELD_MANAGER);
        kfp_testenv::apply_yaml(&client, &as_yaml(&crds), &crd_dry_run)
            .await
            .unwrap_or_else(|e| panic!("{name}: a CRD was refused: {e}"));
        if name == "multiversion" && !installed_crds {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("crds.yaml");
            std::fs::write(&path, as_yaml(&crds)).unwrap();
            env.install_crds(&[&path]).await.unwrap_or_else(|e| panic!("{e}"));
            installed_crds = true;
        }
        let applied = kfp_testenv::apply_yaml(&client, &as_yaml(&rest), &dry_run)
            .await
            .unwrap_or_else(|e| panic!("{name}: refused by the API server: {e}"));
        assert_eq!(applied.len(), rest.len(), "{name}");
    }
    assert!(installed_crds);
}

#[test]
fn the_dockerfile_image_runs_the_way_the_chart_runs_it() {
    // No container engine here: the Dockerfile is checked against the chart and the workspace instead.
    let dockerfile = std::fs::read_to_string(support::repo_root().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    let objects = template(&[]);
    let pod = &find(&objects, "Deployment", "kfp-operator-controller-manager")["spec"]["template"]["spec"];
    let user = format!(
        "USER {}:{}",
        pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    );
    assert!(
        lines.contains(&user.as_str()),
        "the image runs as the chart's user ({user})"
    );
    assert!(
        lines.contains(&r#"ENTRYPOINT ["/kfp-operator"]"#),
        "the chart passes `run --config ...` as args"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("FROM gcr.io/distroless/")),
        "a runtime image without a shell"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cargo build --release --locked -p kfp-operator --bin kfp-operator")),
        "the release build of the binary"
    );
    // Everything the build reads: the workspace manifests, every workspace member (cargo loads them all, even to
    // build one package: `docker build` failed when the examples were left out), and the stub compile shim the
    // binary embeds.
    let mut folders = vec!["crates".to_string(), "compilers".to_string()];
    folders.extend(
        workspace_members()
            .iter()
            .map(|m| m.split('/').next().unwrap().to_string()),
    );
    folders.sort();
    folders.dedup();
    assert!(lines.contains(&"COPY Cargo.toml Cargo.lock ./"));
    let ignored = std::fs::read_to_string(support::repo_root().join(".dockerignore")).unwrap();
    for folder in &folders {
        let copy = format!("COPY {folder} {folder}");
        assert!(lines.contains(&copy.as_str()), "the Dockerfile lacks `{copy}`");
        assert!(
            !ignored.lines().any(|l| l.trim().trim_end_matches('/') == folder),
            ".dockerignore leaves {folder}/ out of the build context"
        );
    }
}

#[test]
fn the_image_script_builds_the_image_the_chart_runs() {
    // scripts/images.sh (no Docker) and the Dockerfile must make the same image, under the chart's default name.
    let script = std::fs::read_to_string(support::repo_root().join("scripts/images.sh")).unwrap();
    let objects = template(&[]);
    let pod = &find(&objects, "Deployment", "kfp-operator-controller-manager")["spec"]["template"]["spec"];
    let image = container(
        find(&objects, "Deployment", "kfp-operator-controller-manager"),
        "manager",
    )["image"]
        .as_str()
        .unwrap()
        .to_string();
    let (registry, rest) = image.split_once('/').unwrap();
    let (repository, tag) = rest.split_once(':').unwrap();
    assert_eq!(tag, env!("CARGO_PKG_VERSION"));
    for expected in [
        format!("REGISTRY=\"${{KFP_IMAGES_REGISTRY:-{registry}}}\""),
        format!("operator_image \"$REGISTRY/{repository}:$VERSION\" --cmd '[\"run\"]'"),
        "image \"$name\" \"$bin:/kfp-operator\"".to_string(),
        format!(
            "--user {}:{} --entrypoint '[\"/kfp-operator\"]'",
            pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
        ),
        "cargo build --release --locked -p kfp-operator --bin kfp-operator".to_string(),
    ] {
        assert!(script.contains(&expected), "scripts/images.sh lacks `{expected}`");
    }
}

/// The `members` of the workspace's Cargo.toml (`crates/kfp-core`, `examples/embedded`, ...).
fn workspace_members() -> Vec<String> {
    let manifest = std::fs::read_to_string(support::repo_root().join("Cargo.toml")).unwrap();
    let list = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .expect("Cargo.toml has a `members = [...]` list")
        .0;
    let members: Vec<String> = list
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().trim_end_matches(','))
        .filter(|l| !l.is_empty())
        .map(|l| l.trim_matches('"').to_string())
        .collect();
    assert!(members.iter().any(|m| m.starts_with("examples/")), "{members:?}");
    members
}
