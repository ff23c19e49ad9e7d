//! A thin REST client for the Kubeflow Pipelines v2beta1 API: bearer token read per request, status codes mapped to
//! [`ProviderError`] classes, list pagination.

use std::path::PathBuf;
use std::time::Duration;

use kfp_core::provider::ProviderError;
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::api::RpcStatus;

/// Where the bearer token comes from and whether one is required.
#[derive(Debug, Clone)]
pub(crate) struct TokenSource {
    pub path: PathBuf,
    pub required: bool,
}

impl TokenSource {
    /// Reads the token now, so a rotated file is picked up by the next request. The token is never logged nor put
    /// in an error message.
    pub(crate) async fn read(&self) -> Result<Option<String>, ProviderError> {
        match tokio::fs::read_to_string(&self.path).await {
            Ok(token) if !token.trim().is_empty() => Ok(Some(token.trim().to_string())),
            Ok(_) | Err(_) if !self.required => Ok(None),
            Ok(_) => Err(ProviderError::transient(format!(
                "the Kubeflow Pipelines token file {} is empty; multi-user mode needs a token",
                self.path.display()
            ))),
            Err(e) => Err(ProviderError::transient(format!(
                "cannot read the Kubeflow Pipelines token file {}: {e}; multi-user mode needs a token",
                self.path.display()
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct KfpClient {
    http: reqwest::Client,
    base: Url,
    token: TokenSource,
    page_size: u32,
}

impl KfpClient {
    pub fn new(
        base: &str,
        token: TokenSource,
        timeout: Duration,
        page_size: u32,
    ) -> Result<Self, ProviderError> {
        // reqwest is built without a crypto provider: the workspace uses ring. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut base = Url::parse(base)
            .map_err(|e| ProviderError::invalid(format!("restKfpApiUrl {base:?} is not a URL: {e}")))?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ProviderError::invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token,
            page_size: page_size.max(1),
        })
    }

    /// `apis/v2beta1/<segments...>`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().map_err(|()| {
                ProviderError::invalid(format!("restKfpApiUrl {} cannot be a base URL", self.base))
            })?;
            path.pop_if_empty().extend(["apis", "v2beta1"]).extend(segments);
        }
        Ok(url)
    }

    async fn send(&self, request: RequestBuilder, what: &str) -> Result<Response, ProviderError> {
        let request = match self.token.read().await? {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() { "timed out" } else { "failed" };
            ProviderError::transient(format!(
                "Kubeflow Pipelines request {what} {kind}: {}",
                error_chain(&e)
            ))
        })?;
        let response_status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let (detail, status) = match serde_json::from_str::<RpcStatus>(&body) {
            Ok(status) if !status.message.is_empty() => (status.message, response_status),
            Ok(RpcStatus {
                error: Some(error), ..
            }) if !error.is_empty() => (error, response_status),
            // The upload handlers' own error body, with the status KFP 2.0.5 gives every failed upload.
            Ok(RpcStatus {
                error_message: Some(error),
                ..
            }) if !error.is_empty() => {
                let status = upload_error_status(response_status, &error);
                (error, status)
            }
            _ => (body.trim().chars().take(500).collect(), response_status),
        };
        let message = format!("Kubeflow Pipelines answered HTTP {response_status} to {what}: {detail}");
        Err(match status {
            400 | 409 | 422 => ProviderError::invalid(message),
            404 => ProviderError::not_found(message),
            500..=599 => ProviderError::transient(message),
            _ => ProviderError::from_http_status(status, message),
        })
    }

    async fn parse<T: DeserializeOwned>(response: Response, what: &str) -> Result<T, ProviderError> {
        let bytes = response.bytes().await.map_err(|e| {
            ProviderError::transient(format!(
                "reading the answer to {what} failed: {}",
                error_chain(&e)
            ))
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::transient(format!("the answer to {what} is not the expected JSON: {e}"))
        })
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        url: Url,
        query: &[(&str, String)],
    ) -> Result<T, ProviderError> {
        let what = format!("GET {}", url.path());
        let response = self.send(self.http.get(url).query(query), &what).await?;
        Self::parse(response, &what).await
    }

    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        url: Url,
        body: &B,
    ) -> Result<T, ProviderError> {
        let what = format!("POST {}", url.path());
        let response = self.send(self.http.post(url).json(body), &what).await?;
        Self::parse(response, &what).await
    }

    /// A multipart upload of `file` as the form field `uploadfile` named `resource.yaml`.
    pub async fn upload<T: DeserializeOwned>(
        &self,
        url: Url,
        query: &[(&str, String)],
        file: Vec<u8>,
    ) -> Result<T, ProviderError> {
        let what = format!("POST {}", url.path());
        let part = reqwest::multipart::Part::bytes(file)
            .file_name("resource.yaml")
            .mime_str("application/x-yaml")
            .map_err(|e| ProviderError::invalid(format!("cannot build the upload: {e}")))?;
        let form = reqwest::multipart::Form::new().part("uploadfile", part);
        let response = self
            .send(self.http.post(url).query(query).multipart(form), &what)
            .await?;
        Self::parse(response, &what).await
    }

    pub async fn delete(&self, url: Url) -> Result<(), ProviderError> {
        let what = format!("DELETE {}", url.path());
        self.send(self.http.request(Method::DELETE, url), &what).await?;
        Ok(())
    }

    /// Every item of a paginated list: follows `next_page_token` until it is empty.
    pub async fn list_all<R, T>(
        &self,
        url: Url,
        query: &[(&str, String)],
        items: impl Fn(R) -> (Vec<T>, String),
    ) -> Result<Vec<T>, ProviderError>
    where
        R: DeserializeOwned,
    {
        let mut all = Vec::new();
        let mut token = String::new();
        // A server that keeps answering the same token would loop forever: stop after a generous bound.
        for _ in 0..10_000 {
            let mut page_query = query.to_vec();
            page_query.push(("page_size", self.page_size.to_string()));
            if !token.is_empty() {
                page_query.push(("page_token", token.clone()));
            }
            let (mut page, next) = items(self.get::<R>(url.clone(), &page_query).await?);
            all.append(&mut page);
            if next.is_empty() || next == token {
                return Ok(all);
            }
            token = next;
        }
        Err(ProviderError::transient(format!(
            "listing {} did not end after 10000 pages",
            url.path()
        )))
    }
}

/// The status an upload error stands for. KFP 2.0.5's upload handlers (`pipeline_upload_server.go`) answer HTTP 500
/// with `{"error_message", "error_details"}` for every error of the resource manager, a name that exists and a spec
/// that is not a pipeline included; the text carries the error's class (`backend/src/common/util/error.go`). A
/// name that exists is 409 and a bad spec 400 as newer servers answer them (or as the gateway does); what is not a
/// user error stays as answered.
fn upload_error_status(status: u16, message: &str) -> u16 {
    const NOT_FOUND: [&str; 2] = ["ResourceNotFoundError:", "NotFoundError:"];
    const CONFLICT: [&str; 1] = ["Already exist error:"];
    const INVALID: [&str; 4] = [
        "Invalid input error:",
        "InvalidInputError:",
        "BadRequestError:",
        "FailedPreconditionError:",
    ];
    let has = |markers: &[&str]| markers.iter().any(|m| message.contains(m));
    if status < 500 || has(&["InternalServerError:", "ServiceUnavailable:"]) {
        status
    } else if has(&NOT_FOUND) {
        404
    } else if has(&CONFLICT) {
        409
    } else if has(&INVALID) {
        400
    } else {
        status
    }
}

/// The error and its sources, e.g. "error sending request: connection refused".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::upload_error_status;

    #[test]
    fn failed_uploads_of_kfp_2_0_5_take_the_status_of_their_error_class() {
        // Answers measured from KFP 2.0.5 (tests/kfp/kfp_apiserver.rs).
        let exists = "Failed to create a pipeline and a pipeline version: Failed to create a pipeline and a pipeline \
                      version: Already exist error: Failed to create a new pipeline. The name ns-p already exists.";
        let invalid = "Failed to create a pipeline and a pipeline version due to template creation error: \
                       InvalidInputError: unknown template format: pipeline spec is invalid";
        let missing = "Failed to create a pipeline version: ResourceNotFoundError: Pipeline x not found";
        assert_eq!(upload_error_status(500, exists), 409);
        assert_eq!(upload_error_status(500, invalid), 400);
        assert_eq!(upload_error_status(500, missing), 404);
        // Server faults stay server faults, and a status below 500 is kept as answered.
        assert_eq!(
            upload_error_status(500, "InternalServerError: Failed to store x"),
            500
        );
        assert_eq!(
            upload_error_status(500, "ServiceUnavailable: InvalidInputError: x"),
            500
        );
        assert_eq!(upload_error_status(503, "connection refused"), 503);
        assert_eq!(upload_error_status(400, "Already exist error: x"), 400);
    }
}
