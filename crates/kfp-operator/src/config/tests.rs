use std::path::Path;

use serde_json::Value;

use super::*;

/// Every dotted key path of a serialized configuration, objects descended except below `opaque` paths (maps and
/// Kubernetes types, documented as a whole).
fn key_paths(value: &Value, opaque: &[&str]) -> Vec<String> {
    fn walk(value: &serde_json::Map<String, Value>, prefix: &str, opaque: &[&str], out: &mut Vec<String>) {
        for (key, child) in value {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            out.push(path.clone());
            if let Value::Object(child) = child
                && !opaque.contains(&path.as_str())
            {
                walk(child, &path, opaque, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Value::Object(object) = value {
        walk(object, "", opaque, &mut out);
    }
    out
}

#[test]
fn go_durations_parse() {
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("1500ms").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
    assert!(parse_duration("3 days").unwrap_err().contains("unknown unit"));
    assert!(parse_duration("").is_err());
}

#[test]
fn an_empty_file_gives_the_documented_defaults() {
    let config: OperatorConfig = serde_saphyr::from_str("{}").unwrap();
    assert_eq!(config, OperatorConfig::default());
    assert_eq!(config.spec.default_provider_values.service_port, 8080);
    assert_eq!(config.spec.run_completion_feed.port, 8082);
    assert_eq!(config.spec.executor, ExecutorKind::Argo);
    assert_eq!(config.spec.direct.provider_timeout, Duration::from_secs(300));
    assert_eq!(config.spec.direct.compiler, CompilerKind::Local);
}

#[test]
fn direct_executor_keys_load() {
    let yaml = "
spec:
  executor: direct
  direct:
    defaultProviderType: stub
    providerTimeout: 90s
    compiler: job
    compilers: {tfx: /opt/tfx/compile.sh}
    compileTimeout: 10m
    compileNamespace: builds
    compileServiceAccount: compiler
    compileJobTtl: 5m
";
    let config: OperatorConfig = serde_saphyr::from_str(yaml).unwrap();
    let direct = config.spec.direct;
    assert_eq!(direct.default_provider_type, "stub");
    assert_eq!(direct.provider_timeout, Duration::from_secs(90));
    assert_eq!(direct.compiler, CompilerKind::Job);
    assert_eq!(direct.compilers["tfx"], "/opt/tfx/compile.sh");
    assert_eq!(direct.compile_timeout, Duration::from_secs(600));
    assert_eq!(direct.compile_namespace, "builds");
    assert_eq!(direct.compile_service_account, "compiler");
    assert_eq!(direct.compile_job_ttl, Duration::from_secs(300));
}

#[test]
fn the_go_operator_file_layout_loads() {
    let yaml = "
system:
  leaderElection: {enabled: true, id: my-lock}
spec:
  runCompletionTTL: 30s
  workflowNamespace: kfp
  defaultProviderValues:
    replicas: 2
    serviceContainerName: provider-service
    servicePort: 8080
    metricsPort: 8081
  runCompletionFeed: {port: 8082, endpoints: [{host: trigger, port: 50051, path: /}]}
";
    let config: OperatorConfig = serde_saphyr::from_str(yaml).unwrap();
    assert!(config.system.leader_election.enabled);
    assert_eq!(config.system.leader_election.id, "my-lock");
    assert_eq!(config.spec.run_completion_ttl, Some(Duration::from_secs(30)));
    assert_eq!(config.spec.default_provider_values.replicas, 2);
    assert_eq!(config.spec.run_completion_feed.endpoints[0].host, "trigger");
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_yaml(yaml: &str, vars: &[(&str, &str)]) -> Result<OperatorConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    OperatorConfig::load(Some(&path), env(vars))
}

#[test]
fn loading_nothing_gives_the_defaults() {
    assert_eq!(
        OperatorConfig::load(None, env(&[])).unwrap(),
        OperatorConfig::default()
    );
    assert_eq!(load_yaml("", &[]).unwrap(), OperatorConfig::default());
    assert_eq!(
        load_yaml("# only a comment\n", &[]).unwrap(),
        OperatorConfig::default()
    );
}

#[test]
fn a_file_names_only_what_it_changes() {
    let config = load_yaml("spec:\n  defaultProviderValues:\n    replicas: 2\n", &[]).unwrap();
    assert_eq!(config.spec.default_provider_values.replicas, 2);
    assert_eq!(config.spec.default_provider_values.service_port, 8080);
    assert_eq!(
        config.spec.default_provider_values.service_container_name,
        "provider-service"
    );
    let config = load_yaml("system:\n  leaderElection: null\n", &[]).unwrap();
    assert_eq!(config, OperatorConfig::default(), "null keeps the default");
}

#[test]
fn a_type_error_after_a_partial_section_is_still_named() {
    let yaml = "spec:\n  defaultProviderValues: {replicas: 2}\n  runCompletionFeed: {port: lots}\n";
    let message = load_yaml(yaml, &[]).unwrap_err().to_string();
    assert!(message.contains("lots") || message.contains("u16"), "{message}");
    assert!(!message.contains("missing field"), "{message}");
}

#[test]
fn a_missing_file_is_named() {
    let error = OperatorConfig::load(Some(Path::new("/nonexistent/kfp.yaml")), env(&[])).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("/nonexistent/kfp.yaml"), "{error}");
}

#[test]
fn a_type_error_names_the_file_and_the_line() {
    let error = load_yaml(
        "spec:\n  multiversion: true\n  runCompletionFeed:\n    port: lots\n",
        &[],
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ConfigError::Parse { .. }), "{message}");
    assert!(message.contains("config.yaml"), "{message}");
    assert!(message.contains('4'), "the line: {message}");
}

#[test]
fn an_unknown_key_in_the_file_is_named() {
    let error = load_yaml("spec:\n  runCompletionTtl: 30s\n", &[]).unwrap_err();
    assert!(
        matches!(&error, ConfigError::UnknownKey { key, .. } if key == "spec.runCompletionTtl"),
        "{error}"
    );
    assert!(error.to_string().contains("config.yaml"), "{error}");
    let error = load_yaml(
        "spec:\n  defaultProviderValues:\n    podTemplateSpec:\n      spec:\n        containerz: []\n",
        &[],
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("spec.defaultProviderValues.podTemplateSpec.spec.containerz"),
        "{error}"
    );
    // Null values and map entries are fine.
    let config = load_yaml(
        "spec:\n  runCompletionTTL: null\n  defaultProviderValues:\n    labels: {team: ml}\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.spec.default_provider_values.labels["team"], "ml");
}

#[test]
fn environment_overrides_set_keys_case_insensitively() {
    let config = load_yaml(
        "spec:\n  runCompletionTTL: 1h\n",
        &[
            ("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL", "30s"),
            ("KFP_OPERATOR_SYSTEM_LEADERELECTION_ENABLED", "true"),
            ("KFP_OPERATOR_SPEC_EXECUTOR", "direct"),
            ("KFP_OPERATOR_system_concurrency_RUN", "3"),
            ("KFP_OPERATOR_SPEC_DEFAULTTFXIMAGE", "123"),
            ("KFP_OPERATOR_SPEC_DEFAULTPROVIDERVALUES_LABELS", "{team: ml}"),
            (
                "KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_ENDPOINTS",
                r#"[{"host": "trigger", "port": 50051}]"#,
            ),
            ("KFP_OPERATOR_SPEC_DIRECT_DEFAULTPROVIDERTYPE", "stub"),
            ("HOME", "/root"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.spec.run_completion_ttl,
        Some(Duration::from_secs(30)),
        "env wins over the file"
    );
    assert!(config.system.leader_election.enabled);
    assert_eq!(config.spec.executor, ExecutorKind::Direct);
    assert_eq!(config.system.concurrency.run, 3);
    assert_eq!(
        config.spec.default_tfx_image, "123",
        "text keys take the value verbatim"
    );
    assert_eq!(config.spec.default_provider_values.labels["team"], "ml");
    assert_eq!(config.spec.run_completion_feed.endpoints[0].port, 50051);
    assert_eq!(config.spec.direct.default_provider_type, "stub");
}

#[test]
fn overrides_index_lists_and_set_unset_optional_keys() {
    let config = load_yaml(
        "spec:\n  runCompletionFeed: {endpoints: [{host: a, port: 1}, {host: b, port: 2}]}\n",
        &[
            ("KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_ENDPOINTS_1_PORT", "50052"),
            ("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL", "45"),
        ],
    )
    .unwrap();
    assert_eq!(config.spec.run_completion_feed.endpoints[1].port, 50052);
    assert_eq!(config.spec.run_completion_ttl, Some(Duration::from_secs(45)));
    let config = load_yaml(
        "spec: {runCompletionTTL: 1h}\n",
        &[("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL", "")],
    )
    .unwrap();
    assert_eq!(config.spec.run_completion_ttl, None, "an empty value unsets it");
}

#[test]
fn an_unknown_override_names_the_variable() {
    let error =
        OperatorConfig::load(None, env(&[("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTLL", "30s")])).unwrap_err();
    assert!(
        matches!(&error, ConfigError::UnknownOverride { variable } if variable == "KFP_OPERATOR_SPEC_RUNCOMPLETIONTTLL"),
        "{error}"
    );
    assert!(
        error.to_string().contains("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTLL"),
        "{error}"
    );
    for variable in [
        "KFP_OPERATOR_SPEC_",
        "KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_ENDPOINTS_0_HOST",
    ] {
        let error = OperatorConfig::load(None, env(&[(variable, "x")])).unwrap_err();
        assert!(
            matches!(error, ConfigError::UnknownOverride { .. }),
            "{variable}: {error}"
        );
    }
}

#[test]
fn kubernetes_service_links_are_not_overrides() {
    let config = OperatorConfig::load(
        None,
        env(&[
            ("KFP_OPERATOR_SERVICE_HOST", "10.0.0.1"),
            ("KFP_OPERATOR_PORT", "tcp://10.0.0.1:8080"),
            ("KFP_OPERATOR_WEBHOOK_SERVICE_PORT_443_TCP", "tcp://10.0.0.2:443"),
        ]),
    )
    .unwrap();
    assert_eq!(config, OperatorConfig::default());
}

#[test]
fn an_invalid_override_names_the_variable_key_and_value() {
    let error = OperatorConfig::load(
        None,
        env(&[
            ("KFP_OPERATOR_SYSTEM_CONCURRENCY_RUN", "many"),
            ("KFP_OPERATOR_SPEC_MULTIVERSION", "false"),
        ]),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(&error, ConfigError::InvalidOverride { key, .. } if key == "system.concurrency.run"),
        "{message}"
    );
    assert!(
        message.contains("KFP_OPERATOR_SYSTEM_CONCURRENCY_RUN=\"many\""),
        "{message}"
    );
    let error = OperatorConfig::load(None, env(&[("KFP_OPERATOR_SPEC_EXECUTOR", "kubernetes")])).unwrap_err();
    assert!(error.to_string().contains("spec.executor"), "{error}");
    let error =
        OperatorConfig::load(None, env(&[("KFP_OPERATOR_SPEC_RUNCOMPLETIONTTL", "3 days")])).unwrap_err();
    assert!(error.to_string().contains("unknown unit"), "{error}");
}

fn invalid_key(yaml: &str) -> (String, String) {
    match load_yaml(yaml, &[]) {
        Err(ConfigError::Invalid { key, .. }) => (key, load_yaml(yaml, &[]).unwrap_err().to_string()),
        other => panic!("expected a validation error for {yaml:?}, got {other:?}"),
    }
}

#[test]
fn ports_must_be_in_range() {
    for yaml in [
        "spec: {defaultProviderValues: {serviceContainerName: provider-service, servicePort: 0, metricsPort: 8081}}",
        "spec: {defaultProviderValues: {serviceContainerName: provider-service, servicePort: 70000, metricsPort: 8081}}",
    ] {
        let (key, message) = invalid_key(yaml);
        assert_eq!(key, "spec.defaultProviderValues.servicePort", "{message}");
        assert!(message.contains("between 1 and 65535"), "{message}");
    }
    let (key, _) = invalid_key(
        "spec: {defaultProviderValues: {serviceContainerName: provider-service, servicePort: 8080, metricsPort: 8080}}",
    );
    assert_eq!(key, "spec.defaultProviderValues.metricsPort");
    assert_eq!(
        invalid_key("spec: {runCompletionFeed: {port: 0}}").0,
        "spec.runCompletionFeed.port"
    );
    assert_eq!(
        invalid_key("spec: {runCompletionFeed: {endpoints: [{host: a, port: 0}]}}").0,
        "spec.runCompletionFeed.endpoints[0].port"
    );
    assert_eq!(
        invalid_key("system: {metricsAddress: ':8080'}").0,
        "system.metricsAddress"
    );
}

#[test]
fn the_leader_renews_within_the_lease_duration() {
    let (key, message) = invalid_key("system: {leaderElection: {leaseDuration: 10s, renewPeriod: 10s}}");
    assert_eq!(key, "system.leaderElection.renewPeriod");
    assert!(
        message.contains("below system.leaderElection.leaseDuration (10s)"),
        "{message}"
    );
    assert_eq!(
        invalid_key("system: {leaderElection: {leaseDuration: 500ms, renewPeriod: 100ms}}").0,
        "system.leaderElection.leaseDuration"
    );
    assert_eq!(
        invalid_key("system: {leaderElection: {id: ''}}").0,
        "system.leaderElection.id"
    );
    assert!(
        load_yaml(
            "system: {leaderElection: {leaseDuration: 2s, renewPeriod: 500ms}}",
            &[]
        )
        .is_ok()
    );
}

#[test]
fn the_default_provider_is_namespace_slash_name() {
    let config = load_yaml("spec: {defaultProvider: kfp/vai}", &[]).unwrap();
    assert_eq!(
        config.spec.conversion().default_provider,
        NamespacedName::new("kfp", "vai")
    );
    for value in ["vai", "a/b/c", "/vai"] {
        let (key, message) = invalid_key(&format!("spec: {{defaultProvider: '{value}'}}"));
        assert_eq!(key, "spec.defaultProvider", "{message}");
        assert!(message.contains(value), "{message}");
    }
}

#[test]
fn other_rules_name_their_keys() {
    assert_eq!(
        invalid_key("system: {concurrency: {run: 0}}").0,
        "system.concurrency.run"
    );
    assert_eq!(
        invalid_key("system: {logging: {level: loud}}").0,
        "system.logging.level"
    );
    assert_eq!(
        invalid_key(
            "spec: {defaultProviderValues: {serviceContainerName: svc, servicePort: 8080, metricsPort: 8081}}"
        )
        .0,
        "spec.defaultProviderValues.podTemplateSpec.spec.containers"
    );
    assert_eq!(
            invalid_key("spec: {defaultProviderValues: {serviceContainerName: provider-service, servicePort: 8080, metricsPort: 8081, replicas: -1}}").0,
            "spec.defaultProviderValues.replicas"
        );
}

#[test]
fn run_completion_feed_keys_load_and_are_checked() {
    let config = load_yaml(
            "spec:\n  runCompletionFeed:\n    address: 127.0.0.1\n    maxBodyBytes: 4096\n    serviceUrl: http://feed.ops:80/events\n    authentication: {tokenReview: false, staticTokenFile: /etc/feed/token}\n    nats: {url: 'nats://nats.nats:4222', subject: ml.events, eventFormat: legacy, publishTimeout: 2s}\n",
            &[],
        )
        .unwrap();
    let feed = &config.spec.run_completion_feed;
    assert_eq!(feed.socket_address().unwrap().to_string(), "127.0.0.1:8082");
    assert_eq!(feed.max_body_bytes, 4096);
    assert_eq!(feed.webhook_url("ops"), "http://feed.ops:80/events");
    assert!(!feed.authentication.token_review);
    assert_eq!(feed.nats.event_format, EventFormat::Legacy);
    assert_eq!(feed.nats.publish_timeout, Duration::from_secs(2));
    assert!(feed.nats.enabled());
    let defaults = RunCompletionFeedConfig::default();
    assert!(!defaults.nats.enabled(), "publishing is off by default");
    assert_eq!(
        defaults.webhook_url("kfp"),
        "http://kfp-operator-runcompletion-webhook-service.kfp:80/events"
    );
    for (yaml, key) in [
        (
            "spec: {runCompletionFeed: {address: 'localhost'}}",
            "spec.runCompletionFeed.address",
        ),
        (
            "spec: {runCompletionFeed: {maxBodyBytes: 10}}",
            "spec.runCompletionFeed.maxBodyBytes",
        ),
        (
            "spec: {runCompletionFeed: {authentication: {tokenReview: false}}}",
            "spec.runCompletionFeed.authentication.tokenReview",
        ),
        (
            "spec: {runCompletionFeed: {authentication: {audience: ''}}}",
            "spec.runCompletionFeed.authentication.audience",
        ),
        (
            "spec: {runCompletionFeed: {serviceUrl: 'feed:80'}}",
            "spec.runCompletionFeed.serviceUrl",
        ),
        (
            "spec: {runCompletionFeed: {nats: {url: 'nats://a b'}}}",
            "spec.runCompletionFeed.nats.url",
        ),
        (
            "spec: {runCompletionFeed: {nats: {url: 'nats://n:4222', subject: 'ev.*'}}}",
            "spec.runCompletionFeed.nats.subject",
        ),
        (
            "spec: {runCompletionFeed: {nats: {url: 'nats://n:4222', publishTimeout: 0s}}}",
            "spec.runCompletionFeed.nats.publishTimeout",
        ),
    ] {
        assert_eq!(invalid_key(yaml).0, key, "{yaml}");
    }
}

#[test]
fn provider_deployments_reach_the_feed_with_the_argo_executor_only() {
    let mut spec = SpecConfig::default();
    let feed = spec.provider_values("ops").feed.unwrap();
    assert_eq!(
        feed.webhook_url,
        "http://kfp-operator-runcompletion-webhook-service.ops:80/events"
    );
    assert_eq!(feed.token_audience.as_deref(), Some("kfp-operator"));
    spec.run_completion_feed.authentication.token_review = false;
    assert_eq!(spec.provider_values("ops").feed.unwrap().token_audience, None);
    spec.executor = ExecutorKind::Direct;
    assert_eq!(spec.provider_values("ops").feed, None);
}

#[test]
fn webhook_settings_are_checked_and_overridable() {
    assert_eq!(
        invalid_key("system: {webhook: {address: ':9443'}}").0,
        "system.webhook.address"
    );
    assert_eq!(
        invalid_key("system: {webhook: {serviceName: Webhook_Service}}").0,
        "system.webhook.serviceName"
    );
    let (key, message) = invalid_key("system: {webhook: {certificates: {validity: 1h, rotateBefore: 2h}}}");
    assert_eq!(key, "system.webhook.certificates.rotateBefore", "{message}");
    assert!(
        message.contains("below system.webhook.certificates.validity (3600s)"),
        "{message}"
    );
    assert_eq!(
        invalid_key("system: {webhook: {certificates: {secretName: ''}}}").0,
        "system.webhook.certificates.secretName"
    );
    let config = OperatorConfig::load(
        None,
        env(&[
            ("KFP_OPERATOR_SYSTEM_WEBHOOK_ENABLED", "true"),
            ("KFP_OPERATOR_SYSTEM_WEBHOOK_CERTIFICATES_MODE", "files"),
            ("KFP_OPERATOR_SYSTEM_WEBHOOK_CERTDIR", "/certs"),
        ]),
    )
    .unwrap();
    let webhook = &config.system.webhook;
    assert!(webhook.enabled);
    assert_eq!(webhook.certificates.mode, CertificateMode::Files);
    assert_eq!(webhook.cert_dir, "/certs");
    let defaults = WebhookConfig::default();
    assert!(!defaults.enabled, "local and test runs need no certificate");
    assert_eq!(defaults.address, "0.0.0.0:9443");
    assert_eq!(defaults.certificates.mode, CertificateMode::SelfManaged);
    assert_eq!(
        defaults.certificates.secret_name,
        "kfp-operator-webhook-server-cert"
    );
    let config = load_yaml(
        "system: {webhook: {certificates: {mode: self, validity: 8760h}}}",
        &[],
    )
    .unwrap();
    assert_eq!(
        config.system.webhook.certificates.validity,
        Duration::from_secs(365 * 24 * 3600)
    );
    assert!(load_yaml("system: {webhook: {certificates: {mode: vault}}}", &[]).is_err());
}

#[test]
fn the_lease_namespace_falls_back_to_the_pod_namespace() {
    let mut election = LeaderElectionConfig::default();
    assert_eq!(election.lease_namespace(None), "kfp-operator-system");
    assert_eq!(election.lease_namespace(Some("ops")), "ops");
    election.namespace = "locks".into();
    assert_eq!(election.lease_namespace(Some("ops")), "locks");
}

/// Keys documented as a whole (maps and Kubernetes types), not key by key.
const OPAQUE_KEYS: &[&str] = &[
    "spec.defaultProviderValues.labels",
    "spec.defaultProviderValues.podTemplateSpec",
];

#[test]
fn every_key_is_documented_in_docs_configuration_md() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .unwrap();
    let defaults = serde_json::to_value(OperatorConfig::default()).unwrap();
    let paths = key_paths(&defaults, OPAQUE_KEYS);
    assert!(paths.contains(&"spec.runCompletionTTL".to_string()), "{paths:?}");
    let mut missing: Vec<String> = paths
        .into_iter()
        .filter(|path| {
            // Leaves, and opaque keys; objects of our own structs are documented through their keys.
            OPAQUE_KEYS.contains(&path.as_str())
                || defaults
                    .pointer(&format!("/{}", path.replace('.', "/")))
                    .is_some_and(|v| !v.is_object())
        })
        .filter(|path| !doc.contains(&format!("`{path}`")))
        .collect();
    // The fields of list items are documented as `list[].field`.
    for field in ["host", "port", "path"] {
        let path = format!("spec.runCompletionFeed.endpoints[].{field}");
        if !doc.contains(&format!("`{path}`")) {
            missing.push(path);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document these keys (add a row with type, default and meaning): {missing:?}"
    );
}

#[test]
fn the_documented_example_loads() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .unwrap();
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let config = load_yaml(example, &[]).unwrap();
    assert_eq!(config.spec.run_completion_ttl, Some(Duration::from_secs(86400)));
    assert_eq!(config.system.concurrency.run, 32);
    assert_eq!(
        config.system.concurrency.pipeline, 8,
        "unset keys keep their defaults"
    );
}
