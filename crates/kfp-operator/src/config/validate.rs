//! The rules the configuration's types alone cannot hold: ports in range, leader-election timing, addresses,
//! names, the feed's settings; every refusal names the key and the value.

use std::net::SocketAddr;

use crate::telemetry::log_filter;

use super::*;

impl OperatorConfig {
    /// Checks what the types alone do not: ports in range, leader-election timing, addresses, names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let system = &self.system;
        for (key, address) in [
            ("system.healthAddress", &system.health_address),
            ("system.metricsAddress", &system.metrics_address),
        ] {
            if address.parse::<SocketAddr>().is_err() {
                return invalid(
                    key,
                    format!("{address:?}"),
                    "it must be IP:PORT, e.g. 0.0.0.0:8080",
                );
            }
        }
        if let Err(e) = log_filter(&system.logging.level, None) {
            return invalid(
                "system.logging.level",
                format!("{:?}", system.logging.level),
                &e.to_string(),
            );
        }
        system.webhook.validate()?;
        let election = &system.leader_election;
        if election.id.is_empty() {
            return invalid("system.leaderElection.id", "empty", "the Lease needs a name");
        }
        if election.lease_duration < Duration::from_secs(1) {
            return invalid(
                "system.leaderElection.leaseDuration",
                format_duration(election.lease_duration),
                "a Lease lasts at least 1s (it is stored in whole seconds)",
            );
        }
        if election.renew_period.is_zero() || election.renew_period >= election.lease_duration {
            return invalid(
                "system.leaderElection.renewPeriod",
                format_duration(election.renew_period),
                &format!(
                    "it must be above zero and below system.leaderElection.leaseDuration ({}), so that the leader \
                     renews before its Lease can expire",
                    format_duration(election.lease_duration)
                ),
            );
        }
        let concurrency = &system.concurrency;
        for (controller, value) in [
            ("pipeline", concurrency.pipeline),
            ("run", concurrency.run),
            ("runSchedule", concurrency.run_schedule),
            ("experiment", concurrency.experiment),
            ("runConfiguration", concurrency.run_configuration),
            ("provider", concurrency.provider),
        ] {
            if value == 0 {
                return invalid(
                    &format!("system.concurrency.{controller}"),
                    "0",
                    "at least one reconcile must be allowed",
                );
            }
        }

        let spec = &self.spec;
        let values = &spec.default_provider_values;
        for (key, port) in [
            ("spec.defaultProviderValues.servicePort", values.service_port),
            ("spec.defaultProviderValues.metricsPort", values.metrics_port),
        ] {
            if !(1..=65535).contains(&port) {
                return invalid(key, port.to_string(), "a port is between 1 and 65535");
            }
        }
        if values.service_port == values.metrics_port {
            return invalid(
                "spec.defaultProviderValues.metricsPort",
                values.metrics_port.to_string(),
                "it must differ from spec.defaultProviderValues.servicePort",
            );
        }
        if values.replicas < 0 {
            return invalid(
                "spec.defaultProviderValues.replicas",
                values.replicas.to_string(),
                "replicas cannot be negative",
            );
        }
        if values.service_container_name.is_empty() {
            return invalid(
                "spec.defaultProviderValues.serviceContainerName",
                "empty",
                "it names the container that runs the provider service",
            );
        }
        let has_service_container = values.pod_template_spec.spec.as_ref().is_some_and(|pod| {
            pod.containers
                .iter()
                .any(|c| c.name == values.service_container_name)
        });
        if !has_service_container {
            return invalid(
                "spec.defaultProviderValues.podTemplateSpec.spec.containers",
                "without that container",
                &format!(
                    "it must contain the container {:?} (spec.defaultProviderValues.serviceContainerName)",
                    values.service_container_name
                ),
            );
        }
        if !spec.default_provider.is_empty() {
            match spec.default_provider.parse::<NamespacedName>() {
                Ok(name) if !name.namespace.is_empty() => {}
                Ok(_) => {
                    return invalid(
                        "spec.defaultProvider",
                        format!("{:?}", spec.default_provider),
                        "it must be NAMESPACE/NAME",
                    );
                }
                Err(e) => {
                    return invalid(
                        "spec.defaultProvider",
                        format!("{:?}", spec.default_provider),
                        &e.to_string(),
                    );
                }
            }
        }
        let feed = &spec.run_completion_feed;
        if feed.port == 0 {
            return invalid(
                "spec.runCompletionFeed.port",
                "0",
                "a port is between 1 and 65535",
            );
        }
        validate_feed(feed)?;
        for (index, endpoint) in feed.endpoints.iter().enumerate() {
            if endpoint.host.is_empty() {
                return invalid(
                    &format!("spec.runCompletionFeed.endpoints[{index}].host"),
                    "empty",
                    "an endpoint needs a host",
                );
            }
            if endpoint.port == 0 {
                return invalid(
                    &format!("spec.runCompletionFeed.endpoints[{index}].port"),
                    "0",
                    "a port is between 1 and 65535",
                );
            }
        }
        Ok(())
    }
}

impl WebhookConfig {
    /// `system.webhook.*` rules: an `IP:PORT` address, a Service name that is a DNS label, a Secret name, and a
    /// validity longer than `rotateBefore` (else every certificate would be replaced as soon as it is made).
    fn validate(&self) -> Result<(), ConfigError> {
        if self.address.parse::<SocketAddr>().is_err() {
            return invalid(
                "system.webhook.address",
                format!("{:?}", self.address),
                "it must be IP:PORT, e.g. 0.0.0.0:9443",
            );
        }
        let dns_label = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !s.starts_with('-')
                && !s.ends_with('-')
        };
        if !dns_label(&self.service_name) {
            return invalid(
                "system.webhook.serviceName",
                format!("{:?}", self.service_name),
                "it must be a Service name (a DNS label: lower-case letters, digits and '-')",
            );
        }
        let certificates = &self.certificates;
        if certificates.secret_name.is_empty() {
            return invalid(
                "system.webhook.certificates.secretName",
                "empty",
                "it names the Secret that holds the serving certificate",
            );
        }
        if certificates.rotate_before.is_zero() || certificates.rotate_before >= certificates.validity {
            return invalid(
                "system.webhook.certificates.rotateBefore",
                format_duration(certificates.rotate_before),
                &format!(
                    "it must be above zero and below system.webhook.certificates.validity ({})",
                    format_duration(certificates.validity)
                ),
            );
        }
        if self.enabled && certificates.mode == CertificateMode::Files && self.cert_dir.is_empty() {
            return invalid(
                "system.webhook.certDir",
                "empty",
                "files mode reads tls.crt and tls.key from this folder",
            );
        }
        Ok(())
    }
}

/// The feed's own rules: address, body limit, an authentication method, NATS settings.
fn validate_feed(feed: &RunCompletionFeedConfig) -> Result<(), ConfigError> {
    feed.socket_address()?;
    if feed.max_body_bytes < 1024 {
        return invalid(
            "spec.runCompletionFeed.maxBodyBytes",
            feed.max_body_bytes.to_string(),
            "it must be at least 1024: events carry every output artifact of a run",
        );
    }
    let auth = &feed.authentication;
    if !auth.token_review && auth.static_token_file.is_empty() && !auth.allow_unauthenticated {
        return invalid(
            "spec.runCompletionFeed.authentication.tokenReview",
            "false",
            "the feed then accepts no one: set spec.runCompletionFeed.authentication.staticTokenFile too \
             (or allowUnauthenticated while migrating from the Go operator)",
        );
    }
    if auth.token_review && auth.audience.trim().is_empty() {
        return invalid(
            "spec.runCompletionFeed.authentication.audience",
            "empty",
            "TokenReview needs the audience provider tokens are issued for",
        );
    }
    let url = feed.service_url.as_str();
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        return invalid(
            "spec.runCompletionFeed.serviceUrl",
            format!("{:?}", feed.service_url),
            "it must be an http:// or https:// URL",
        );
    }
    let nats = &feed.nats;
    if nats.enabled() {
        for server in nats.url.split(',') {
            if let Err(e) = server.trim().parse::<async_nats::ServerAddr>() {
                return invalid(
                    "spec.runCompletionFeed.nats.url",
                    format!("{:?}", redact_credentials(server)),
                    &format!("it is not a NATS server address ({e}); use nats://host:4222"),
                );
            }
        }
        let subject = nats.subject.as_str();
        let valid_subject = !subject.is_empty()
            && !subject.contains([' ', '\t', '*', '>'])
            && subject.split('.').all(|token| !token.is_empty());
        if !valid_subject {
            return invalid(
                "spec.runCompletionFeed.nats.subject",
                format!("{subject:?}"),
                "it must be a NATS subject without spaces or wildcards, e.g. events",
            );
        }
        if nats.publish_timeout.is_zero() {
            return invalid(
                "spec.runCompletionFeed.nats.publishTimeout",
                "0s",
                "a publish needs time to reach the server",
            );
        }
    }
    Ok(())
}

fn invalid(key: &str, value: impl Into<String>, reason: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        key: key.to_string(),
        value: value.into(),
        reason: reason.to_string(),
    })
}
