//! Where the Vertex AI provider's bearer tokens come from (`docs/providers/vertex-ai.md`, "Authentication").
//!
//! `accessToken` and `accessTokenFile` are the provider's own (a token someone else obtained). Every Google flow goes
//! through Google's `google-cloud-auth` crate: an explicit `credentialsFile` (any file type the crate reads:
//! service-account key, external account / workload identity federation, authorized user, impersonated service
//! account), an explicit `metadataEndpoint`, else Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`,
//! gcloud's `application_default_credentials.json`, the metadata server). The crate caches and refreshes the
//! token; the credentials object is built on first use (so a Secret mounted late is read once it is there) and
//! built again after a permanent failure or a 401, so a fixed file is picked up without a restart.
//!
//! Errors name the source that failed, never a token or a key. Unreadable files and failed token requests are
//! `Transient`; a credentials file that is not a credentials file (not JSON, unknown `type`, a missing field) is
//! `Invalid`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use google_cloud_auth::credentials::{
    self, AccessTokenCredentials, external_account, impersonated, mds, service_account, user_account,
};
use kfp_core::provider::ProviderError;
use serde_json::Value;

use super::error_chain;

/// Where tokens come from; see the module docs.
pub(crate) struct Auth {
    source: Source,
    timeout: Duration,
}

enum Source {
    /// `accessToken`.
    Static(String),
    /// `accessTokenFile`, read on every request.
    TokenFile(PathBuf),
    /// A Google flow through `google-cloud-auth`; the credentials are built on first use.
    Google {
        flow: Flow,
        credentials: Mutex<Option<AccessTokenCredentials>>,
    },
}

enum Flow {
    /// `credentialsFile`.
    File(PathBuf),
    /// `metadataEndpoint`.
    Metadata(String),
    /// Application Default Credentials.
    Adc,
}

impl Auth {
    /// The source the settings choose: `access_token`, else `access_token_file`, else `credentials_file`, else
    /// `metadata_endpoint`, else ADC. A token request is given up after `timeout`.
    pub(crate) fn new(config: &super::VaiConfig) -> Self {
        let source = if let Some(token) = &config.access_token {
            Source::Static(token.secret().to_string())
        } else if let Some(path) = &config.access_token_file {
            Source::TokenFile(path.clone())
        } else {
            let flow = match (&config.credentials_file, &config.metadata_endpoint) {
                (Some(path), _) => Flow::File(path.clone()),
                (None, Some(endpoint)) => Flow::Metadata(endpoint.clone()),
                (None, None) => Flow::Adc,
            };
            Source::Google {
                flow,
                credentials: Mutex::new(None),
            }
        };
        Self {
            source,
            timeout: config.request_timeout,
        }
    }

    /// A bearer token for the next request.
    pub(crate) async fn token(&self) -> Result<String, ProviderError> {
        match &self.source {
            Source::Static(token) => Ok(token.clone()),
            Source::TokenFile(path) => read_token_file(path).await,
            Source::Google { flow, credentials } => {
                let cached = credentials.lock().ok().and_then(|c| c.clone());
                let current = match cached {
                    Some(c) => c,
                    None => {
                        let built = flow.build().await?;
                        if let Ok(mut slot) = credentials.lock() {
                            *slot = Some(built.clone());
                        }
                        built
                    }
                };
                let answer = tokio::time::timeout(self.timeout, current.access_token()).await;
                match answer {
                    Ok(Ok(token)) if !token.token.is_empty() => Ok(token.token),
                    Ok(Ok(_)) => Err(ProviderError::transient(format!(
                        "{} gave an empty access token",
                        flow.describe()
                    ))),
                    Ok(Err(e)) => {
                        if !e.is_transient() {
                            // The crate's credentials stay failed after a permanent error: start over next time.
                            self.forget();
                        }
                        Err(ProviderError::transient(format!(
                            "no access token from {}: {}",
                            flow.describe(),
                            causes(&e)
                        )))
                    }
                    Err(_) => Err(ProviderError::transient(format!(
                        "no access token from {} within {} s",
                        flow.describe(),
                        self.timeout.as_secs_f64()
                    ))),
                }
            }
        }
    }

    /// Drops the cached credentials (a request answered 401): the next request builds them again and so gets a
    /// fresh token. Static tokens and token files have nothing to drop.
    pub(crate) fn forget(&self) {
        if let Source::Google { credentials, .. } = &self.source
            && let Ok(mut slot) = credentials.lock()
        {
            *slot = None;
        }
    }
}

/// The causes of a `google-cloud-auth` error, shortest first-to-last: each layer of the crate repeats the one
/// below and adds whether a retry may help (the provider decides that itself), so those remarks and the repeats are
/// left out.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    const REMARKS: [&str; 4] = [
        " and future attempts will not succeed",
        " but future attempts may succeed",
        "Request to fetch the token failed. Subsequent calls with this credential will also fail.",
        "Fetching the token resulted in transient errors. Subsequent calls with this credential might succeed.",
    ];
    let mut links = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let mut text = e.to_string();
        for remark in REMARKS {
            text = text.replace(remark, "");
        }
        links.push(text.trim().to_string());
        next = e.source();
    }
    let kept: Vec<&String> = links
        .iter()
        .enumerate()
        .filter(|(i, text)| {
            !text.is_empty()
                && !links
                    .iter()
                    .enumerate()
                    .any(|(j, other)| j != *i && other.contains(text.as_str()) && (other != *text || j < *i))
        })
        .map(|(_, text)| text)
        .collect();
    kept.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(": ")
}

async fn read_token_file(path: &Path) -> Result<String, ProviderError> {
    match tokio::fs::read_to_string(path).await {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => Err(ProviderError::transient(format!(
            "the token file {} is empty",
            path.display()
        ))),
        Err(e) => Err(ProviderError::transient(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))),
    }
}

impl Flow {
    /// The source in error messages.
    fn describe(&self) -> String {
        match self {
            Self::File(path) => format!("the credentials file {}", path.display()),
            // The crate lets GCE_METADATA_HOST win over the endpoint it is given.
            Self::Metadata(endpoint) => match std::env::var("GCE_METADATA_HOST") {
                Ok(host) => format!("the metadata server at http://{host} (GCE_METADATA_HOST)"),
                Err(_) => format!("the metadata server at {endpoint}"),
            },
            Self::Adc => format!("Application Default Credentials ({})", adc_source()),
        }
    }

    async fn build(&self) -> Result<AccessTokenCredentials, ProviderError> {
        let built = match self {
            Self::File(path) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                    ProviderError::transient(format!(
                        "cannot read the credentials file {}: {e}",
                        path.display()
                    ))
                })?;
                let json: Value = serde_json::from_str(&text).map_err(|e| {
                    ProviderError::invalid(format!(
                        "the credentials file {} is not JSON (line {}, column {})",
                        path.display(),
                        e.line(),
                        e.column()
                    ))
                })?;
                from_json(json).map_err(|e| self.build_error(e))?
            }
            Self::Metadata(endpoint) => mds::Builder::default()
                .with_endpoint(endpoint.trim_end_matches('/'))
                .build_access_token_credentials()
                .map_err(|e| self.build_error(e.into()))?,
            Self::Adc => credentials::Builder::default()
                .build_access_token_credentials()
                .map_err(|e| self.build_error(e.into()))?,
        };
        Ok(built)
    }

    /// A failure to build the credentials: a file that cannot be read is `Transient` (a Secret not mounted yet),
    /// any other (not JSON, an unknown `type`, a missing field) `Invalid`.
    fn build_error(&self, e: BuildError) -> ProviderError {
        let message = format!("cannot use {}: {}", self.describe(), error_chain(&e));
        match e {
            BuildError::Crate(e) if e.is_loading() => ProviderError::transient(message),
            _ => ProviderError::invalid(message),
        }
    }
}

/// A failure to build credentials from a file: the crate's, or a `type` it has no builder for.
#[derive(Debug)]
enum BuildError {
    Crate(google_cloud_auth::build_errors::Error),
    UnknownType(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Crate(e) => e.fmt(f),
            Self::UnknownType(t) => write!(
                f,
                "its type is {t}; expected service_account, external_account, authorized_user or \
                 impersonated_service_account"
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Crate(e) => e.source(),
            Self::UnknownType(_) => None,
        }
    }
}

impl From<google_cloud_auth::build_errors::Error> for BuildError {
    fn from(e: google_cloud_auth::build_errors::Error) -> Self {
        Self::Crate(e)
    }
}

/// Credentials for the JSON of a credentials file, by its `type` (the types ADC reads).
fn from_json(json: Value) -> Result<AccessTokenCredentials, BuildError> {
    let kind = json["type"].as_str().unwrap_or("missing").to_string();
    Ok(match kind.as_str() {
        "service_account" => service_account::Builder::new(json).build_access_token_credentials()?,
        "external_account" => external_account::Builder::new(json).build_access_token_credentials()?,
        "authorized_user" => user_account::Builder::new(json).build_access_token_credentials()?,
        "impersonated_service_account" => {
            impersonated::Builder::new(json).build_access_token_credentials()?
        }
        _ => return Err(BuildError::UnknownType(kind)),
    })
}

/// Which source Application Default Credentials take, for messages (the crate's order, AIP-4110).
fn adc_source() -> String {
    if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
        return format!(
            "the file GOOGLE_APPLICATION_CREDENTIALS names, {}",
            Path::new(&path).display()
        );
    }
    if let Some(home) = std::env::var_os("HOME") {
        let well_known = Path::new(&home).join(".config/gcloud/application_default_credentials.json");
        if well_known.exists() {
            return format!("gcloud's file {}", well_known.display());
        }
    }
    match std::env::var("GCE_METADATA_HOST") {
        Ok(host) => format!("the metadata server at http://{host} (GCE_METADATA_HOST)"),
        Err(_) => format!("the metadata server at {}", super::DEFAULT_METADATA_ENDPOINT),
    }
}
