//! [`HttpProvider`]: a [`Provider`] that calls a remote provider service over the provider-service contract
//! (docs/provider-service.md), such as a Go provider service or this crate's [`crate::service`].
//!
//! Errors: a non-2xx answer becomes [`ProviderError::from_http_status`] with the body's `providerError` as the
//! message (400/422 `Invalid`, 404/410 `NotFound`, 501 `Unimplemented`, other `Transient`); a transport error or
//! timeout is `Transient`; a 2xx answer whose body is not `{"id": ...}` (or carries a `providerError`) is
//! `Transient`. Ids are percent-encoded in paths (everything but `A-Z a-z 0-9 - _ ~`), so `a/b` travels as
//! `a%2Fb`.

use std::sync::Once;
use std::time::Duration;

use kfp_core::definitions::{
    ExperimentDefinition, PipelineDefinitionWrapper, ProviderOutput, RunDefinition, RunScheduleDefinition,
};
use kfp_core::provider::{ObjectIdentity, Provider, ProviderConfig, ProviderError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use crate::ResourceKind;

/// The registry type name.
pub const TYPE_NAME: &str = "http";
/// Default timeout of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Characters that travel percent-encoded in an id: all but the unreserved ones (as `jq @uri` in the Go
/// workflows). `.` is encoded too, so ids like `..` are not taken for path segments.
const ID: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// Installs ring as the process's rustls provider unless one is installed already (reqwest is built without one).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An error and its sources, `: `-separated (reqwest hides the cause in the source chain).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Percent-encodes an id for a path segment.
pub fn encode_id(id: &str) -> String {
    utf8_percent_encode(id, ID).to_string()
}

/// A remote provider service.
#[derive(Debug, Clone)]
pub struct HttpProvider {
    client: reqwest::Client,
    base_url: String,
}

impl HttpProvider {
    /// A client of the service at `base_url` (e.g. `http://provider:8080`), with [`DEFAULT_TIMEOUT`].
    pub fn new(base_url: impl Into<String>) -> Result<Self, ProviderError> {
        Self::with_timeout(base_url, DEFAULT_TIMEOUT)
    }

    /// A client of the service at `base_url` whose requests give up after `timeout` (a `Transient` error). Fails
    /// with `Invalid` unless the URL is `http://` or `https://`.
    pub fn with_timeout(base_url: impl Into<String>, timeout: Duration) -> Result<Self, ProviderError> {
        let base_url = base_url.into().trim().trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ProviderError::invalid(format!(
                "the provider service URL {base_url:?} is not an http:// or https:// URL"
            )));
        }
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| {
                ProviderError::transient(format!("cannot build an HTTP client: {}", error_chain(&e)))
            })?;
        Ok(Self { client, base_url })
    }

    /// From provider parameters: `url` (required, the service's base URL) and `timeoutSeconds` (optional).
    pub fn from_config(config: &ProviderConfig) -> Result<Self, ProviderError> {
        let url = config.parameter_string("url").ok_or_else(|| {
            ProviderError::invalid(format!(
                "provider {} of type http needs the parameter url (the provider service's base URL)",
                config.name
            ))
        })?;
        let timeout = match config.parameter_string("timeoutSeconds") {
            None => DEFAULT_TIMEOUT,
            Some(value) => value
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    ProviderError::invalid(format!(
                        "parameter timeoutSeconds {value:?} is not a positive number"
                    ))
                })?,
        };
        Self::with_timeout(url, timeout)
    }

    /// The service's URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url(&self, kind: ResourceKind, id: Option<&str>) -> Result<String, ProviderError> {
        match id {
            None => Ok(format!("{}/resource/{kind}", self.base_url)),
            Some(id) if id.is_empty() || id == "." || id == ".." => Err(ProviderError::invalid(format!(
                "the {kind} id {id:?} cannot be sent to a provider service"
            ))),
            Some(id) => Ok(format!("{}/resource/{kind}/{}", self.base_url, encode_id(id))),
        }
    }

    async fn call<B: Serialize + Sync>(
        &self,
        method: reqwest::Method,
        kind: ResourceKind,
        id: Option<&str>,
        body: Option<&B>,
    ) -> Result<ProviderOutput, ProviderError> {
        let url = self.url(kind, id)?;
        let mut request = self.client.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ProviderError::transient(format!("{method} {url} failed: {}", error_chain(&e))))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| {
            ProviderError::transient(format!(
                "{method} {url}: cannot read the answer: {}",
                error_chain(&e)
            ))
        })?;
        let output = serde_json::from_str::<ProviderOutput>(&text);
        if !(200..300).contains(&status) {
            let message = match output {
                Ok(output) if !output.provider_error.is_empty() => output.provider_error,
                _ => format!("{method} {url} answered HTTP {status}: {}", truncate(&text, 500)),
            };
            return Err(ProviderError::from_http_status(status, message));
        }
        match output {
            Ok(output) if output.provider_error.is_empty() => Ok(output),
            Ok(output) => Err(ProviderError::transient(output.provider_error)),
            Err(e) => Err(ProviderError::transient(format!(
                "{method} {url} answered HTTP {status} with a body that is not a provider output ({e}): {}",
                truncate(&text, 500)
            ))),
        }
    }

    async fn create<B: Serialize + Sync>(
        &self,
        kind: ResourceKind,
        body: &B,
    ) -> Result<String, ProviderError> {
        let output = self.call(reqwest::Method::POST, kind, None, Some(body)).await?;
        non_empty_id(kind, output)
    }

    async fn update<B: Serialize + Sync>(
        &self,
        kind: ResourceKind,
        body: &B,
        id: &str,
    ) -> Result<String, ProviderError> {
        let output = self
            .call(reqwest::Method::PUT, kind, Some(id), Some(body))
            .await?;
        non_empty_id(kind, output)
    }

    /// `GET /resource/{kind}?namespace=&name=&version=&created=`: this project's lookup. A service without it
    /// (the Go services: 404 or 405) cannot look up: `Unimplemented`.
    async fn lookup(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        let kind = identity.kind;
        let url = self.url(kind, None)?;
        let mut query = vec![
            ("namespace", identity.name.namespace.clone()),
            ("name", identity.name.name.clone()),
            ("version", identity.version.clone()),
        ];
        if let Some(created) = &identity.created {
            query.push(("created", created.0.to_string()));
        }
        let response = self
            .client
            .get(&url)
            .query(&query)
            .send()
            .await
            .map_err(|e| ProviderError::transient(format!("GET {url} failed: {}", error_chain(&e))))?;
        let status = response.status().as_u16();
        if matches!(status, 404 | 405 | 501) {
            return Err(ProviderError::unimplemented(format!(
                "the provider service at {} cannot look up a {kind} by its resource (HTTP {status})",
                self.base_url
            )));
        }
        let text = response.text().await.map_err(|e| {
            ProviderError::transient(format!("GET {url}: cannot read the answer: {}", error_chain(&e)))
        })?;
        let output = serde_json::from_str::<ProviderOutput>(&text);
        match output {
            Ok(output) if !(200..300).contains(&status) => {
                Err(ProviderError::from_http_status(status, output.provider_error))
            }
            Ok(output) if output.provider_error.is_empty() => Ok(Some(output.id).filter(|id| !id.is_empty())),
            Ok(output) => Err(ProviderError::transient(output.provider_error)),
            Err(_) => Err(ProviderError::from_http_status(
                if (200..300).contains(&status) { 500 } else { status },
                format!("GET {url} answered HTTP {status}: {}", truncate(&text, 500)),
            )),
        }
    }

    async fn delete(&self, kind: ResourceKind, id: &str) -> Result<(), ProviderError> {
        self.call::<()>(reqwest::Method::DELETE, kind, Some(id), None)
            .await
            .map(drop)
    }
}

fn non_empty_id(kind: ResourceKind, output: ProviderOutput) -> Result<String, ProviderError> {
    if output.id.is_empty() {
        Err(ProviderError::transient(format!(
            "the provider service returned no id for the {kind}"
        )))
    } else {
        Ok(output.id)
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[async_trait::async_trait]
impl Provider for HttpProvider {
    async fn create_pipeline(&self, pipeline: &PipelineDefinitionWrapper) -> Result<String, ProviderError> {
        self.create(ResourceKind::Pipeline, pipeline).await
    }

    async fn update_pipeline(
        &self,
        pipeline: &PipelineDefinitionWrapper,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.update(ResourceKind::Pipeline, pipeline, id).await
    }

    async fn delete_pipeline(&self, id: &str) -> Result<(), ProviderError> {
        self.delete(ResourceKind::Pipeline, id).await
    }

    async fn create_run(&self, run: &RunDefinition) -> Result<String, ProviderError> {
        self.create(ResourceKind::Run, run).await
    }

    async fn delete_run(&self, id: &str) -> Result<(), ProviderError> {
        self.delete(ResourceKind::Run, id).await
    }

    async fn create_run_schedule(&self, schedule: &RunScheduleDefinition) -> Result<String, ProviderError> {
        self.create(ResourceKind::RunSchedule, schedule).await
    }

    async fn update_run_schedule(
        &self,
        schedule: &RunScheduleDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.update(ResourceKind::RunSchedule, schedule, id).await
    }

    async fn delete_run_schedule(&self, id: &str) -> Result<(), ProviderError> {
        self.delete(ResourceKind::RunSchedule, id).await
    }

    async fn create_experiment(&self, experiment: &ExperimentDefinition) -> Result<String, ProviderError> {
        self.create(ResourceKind::Experiment, experiment).await
    }

    async fn update_experiment(
        &self,
        experiment: &ExperimentDefinition,
        id: &str,
    ) -> Result<String, ProviderError> {
        self.update(ResourceKind::Experiment, experiment, id).await
    }

    async fn delete_experiment(&self, id: &str) -> Result<(), ProviderError> {
        self.delete(ResourceKind::Experiment, id).await
    }

    async fn find(&self, identity: &ObjectIdentity) -> Result<Option<String>, ProviderError> {
        self.lookup(identity).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kfp_core::values::NamespacedName;
    use serde_json::json;

    #[test]
    fn ids_are_percent_encoded() {
        assert_eq!(encode_id("a/b c.d-e_f~g"), "a%2Fb%20c%2Ed-e_f~g");
        assert_eq!(
            encode_id("projects/p/locations/l"),
            "projects%2Fp%2Flocations%2Fl"
        );
        let provider = HttpProvider::new("http://svc:8080/").unwrap();
        assert_eq!(
            provider.url(ResourceKind::RunSchedule, Some("a/b")).unwrap(),
            "http://svc:8080/resource/runschedule/a%2Fb"
        );
        assert!(
            provider
                .url(ResourceKind::Run, Some(".."))
                .unwrap_err()
                .is_permanent()
        );
    }

    #[test]
    fn configuration() {
        let mut config = ProviderConfig::new(NamespacedName::new("ops", "remote"));
        assert!(
            HttpProvider::from_config(&config)
                .unwrap_err()
                .to_string()
                .contains("parameter url")
        );
        config.parameters.insert("url".into(), json!("ftp://x"));
        assert!(HttpProvider::from_config(&config).is_err());
        config.parameters.insert("url".into(), json!("http://x:1"));
        config.parameters.insert("timeoutseconds".into(), json!("0"));
        assert!(
            HttpProvider::from_config(&config)
                .unwrap_err()
                .to_string()
                .contains("timeoutSeconds")
        );
        config.parameters.insert("timeoutseconds".into(), json!(2.5));
        assert_eq!(
            HttpProvider::from_config(&config).unwrap().base_url(),
            "http://x:1"
        );
    }

    #[tokio::test]
    async fn unreachable_services_are_transient() {
        // Port 9 on loopback: nothing listens (connection refused).
        let provider = HttpProvider::with_timeout("http://127.0.0.1:9", Duration::from_secs(2)).unwrap();
        let err = provider.delete_run("r").await.unwrap_err();
        assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
        assert!(
            err.message()
                .contains("DELETE http://127.0.0.1:9/resource/run/r failed"),
            "{err}"
        );
    }
}
