//! Who may post to the run-completion feed (docs/run-completion-events.md, "Authentication"; decision 0005).
//!
//! A request carries `Authorization: Bearer <token>`. Two kinds of token are accepted:
//! - **a ServiceAccount token** (the default): the provider service's projected token, issued for the audience
//!   `spec.runCompletionFeed.authentication.audience` (`kfp-operator`). The feed asks the API server with a
//!   `TokenReview` who it belongs to; it must be `system:serviceaccount:<ns>:<sa>` where a Provider in `<ns>` has
//!   `spec.serviceAccount: <sa>`. The event's `provider` must then be one of those Providers: a provider service
//!   reports its own runs only.
//! - **the static token** of `spec.runCompletionFeed.authentication.staticTokenFile` (a Secret mounted into the
//!   operator), for platforms without TokenReview. It says "a provider service", not which one: the event's
//!   `provider` must name an existing Provider.
//!
//! No token, or one that is not accepted: 401. A valid token of anyone but a Provider's ServiceAccount: 403.
//!
//! **Migration mode** (`authentication.allowUnauthenticated`, off by default): the Go operator's provider services
//! post without any token. With the mode on, a request without an `Authorization` header is accepted as
//! [`Identity::Unauthenticated`] and held to what the static token is held to (the event names an existing
//! Provider); a request that does carry a token is still checked as above. The network, not a token, then keeps
//! others out: the chart's NetworkPolicy lets only provider pods reach the feed port (`docs/run-completion-events.md`).

use std::path::PathBuf;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kfp_core::resources::v1beta1::Provider;
use kfp_core::values::NamespacedName;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};

use crate::config::FeedAuthentication;

/// The ServiceAccount user name prefix of Kubernetes tokens.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A Provider's ServiceAccount, and the Providers (`ns/name`) that run as it.
    ServiceAccount {
        /// The ServiceAccount's namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The Providers whose `spec.serviceAccount` it is.
        providers: Vec<NamespacedName>,
    },
    /// The holder of the static token.
    StaticToken,
    /// A request without a token, accepted in migration mode only.
    Unauthenticated,
}

impl Identity {
    /// How the sender was identified, as the feed's metrics label it.
    pub fn authentication(&self) -> &'static str {
        match self {
            Self::ServiceAccount { .. } => "serviceaccount",
            Self::StaticToken => "static",
            Self::Unauthenticated => "none",
        }
    }
}

/// Why a request is refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No bearer token (401).
    #[error(
        "the request has no bearer token: send 'Authorization: Bearer <token>' (the provider service's ServiceAccount token)"
    )]
    Missing,
    /// The token is neither a valid ServiceAccount token for the audience nor the static token (401).
    #[error("the bearer token is not accepted: {0}")]
    Rejected(String),
    /// The token is valid but not a Provider's, or not the Provider the event names (403).
    #[error("{0}")]
    Forbidden(String),
    /// The TokenReview could not be made (500: the provider retries).
    #[error("cannot check the bearer token: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing | Self::Rejected(_) => 401,
            Self::Forbidden(_) => 403,
            Self::Unavailable(_) => 500,
        }
    }
}

/// Checks feed requests.
#[derive(Clone)]
pub struct Authenticator {
    client: Client,
    token_review: Option<String>,
    static_token_file: Option<PathBuf>,
    allow_unauthenticated: bool,
    watch_namespace: String,
}

impl Authenticator {
    /// From `spec.runCompletionFeed.authentication`; `watch_namespace` (`system.watchNamespace`) limits the known
    /// Providers to one namespace.
    pub fn new(client: Client, config: &FeedAuthentication, watch_namespace: &str) -> Self {
        Self {
            client,
            token_review: config.token_review.then(|| config.audience.clone()),
            static_token_file: Some(PathBuf::from(&config.static_token_file))
                .filter(|p| !p.as_os_str().is_empty()),
            allow_unauthenticated: config.allow_unauthenticated,
            watch_namespace: watch_namespace.to_string(),
        }
    }

    /// Who sent the request with this `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Identity, AuthError> {
        if authorization.is_none() && self.allow_unauthenticated {
            return Ok(Identity::Unauthenticated);
        }
        let token = authorization.and_then(bearer_token).ok_or(AuthError::Missing)?;
        if let Some(path) = &self.static_token_file {
            match tokio::fs::read_to_string(path).await {
                Ok(expected) if !expected.trim().is_empty() => {
                    if constant_time_eq(expected.trim().as_bytes(), token.as_bytes()) {
                        return Ok(Identity::StaticToken);
                    }
                }
                Ok(_) => tracing::warn!(path = %path.display(), "the static feed token file is empty"),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot read the static feed token file")
                }
            }
        }
        let Some(audience) = &self.token_review else {
            return Err(AuthError::Rejected(
                "it is not the configured static token".to_string(),
            ));
        };
        let (namespace, name) = self.review(token, audience).await?;
        let providers = self.providers_running_as(&namespace, &name).await?;
        if providers.is_empty() {
            return Err(AuthError::Forbidden(format!(
                "the ServiceAccount {namespace}/{name} is not the spec.serviceAccount of any Provider in namespace {namespace}"
            )));
        }
        Ok(Identity::ServiceAccount {
            namespace,
            name,
            providers,
        })
    }

    /// Whether `identity` may report runs of `provider` (the event's `provider` field).
    pub async fn authorize(&self, identity: &Identity, provider: &NamespacedName) -> Result<(), AuthError> {
        match identity {
            Identity::ServiceAccount {
                namespace,
                name,
                providers,
            } => {
                if providers.contains(provider) {
                    return Ok(());
                }
                let names: Vec<String> = providers.iter().map(ToString::to_string).collect();
                Err(AuthError::Forbidden(format!(
                    "the event names provider {}, but the token belongs to ServiceAccount {namespace}/{name} \
                     of Provider {}",
                    shown(provider),
                    names.join(", ")
                )))
            }
            Identity::StaticToken | Identity::Unauthenticated => {
                let api: Api<Provider> = Api::namespaced(self.client.clone(), &provider.namespace);
                let exists = self.in_scope(&provider.namespace)
                    && !provider.name.is_empty()
                    && api
                        .get_opt(&provider.name)
                        .await
                        .map_err(|e| AuthError::Unavailable(format!("reading Provider {provider}: {e}")))?
                        .is_some();
                if exists {
                    Ok(())
                } else {
                    Err(AuthError::Forbidden(format!(
                        "the event names provider {}, which is not a Provider this operator knows",
                        shown(provider)
                    )))
                }
            }
        }
    }

    fn in_scope(&self, namespace: &str) -> bool {
        self.watch_namespace.is_empty() || self.watch_namespace == namespace
    }

    /// The ServiceAccount (`namespace`, `name`) a token belongs to, by TokenReview.
    async fn review(&self, token: &str, audience: &str) -> Result<(String, String), AuthError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: Some(vec![audience.to_string()]),
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let reviewed = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::Unavailable(format!("the TokenReview failed: {e}")))?;
        let status = reviewed.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            let reason = status
                .error
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "the API server did not authenticate it".to_string());
            tracing::info!(%reason, "feed request with a token the TokenReview refused");
            return Err(AuthError::Rejected(format!(
                "it is not a valid ServiceAccount token for the audience {audience:?}"
            )));
        }
        let user = status.user.and_then(|u| u.username).unwrap_or_default();
        service_account(&user).ok_or_else(|| {
            AuthError::Forbidden(format!(
                "the token belongs to {user:?}, not to the ServiceAccount of a Provider"
            ))
        })
    }

    /// The Providers in `namespace` whose `spec.serviceAccount` is `name`.
    async fn providers_running_as(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<NamespacedName>, AuthError> {
        if !self.in_scope(namespace) {
            return Ok(Vec::new());
        }
        let api: Api<Provider> = Api::namespaced(self.client.clone(), namespace);
        let list = api.list(&ListParams::default()).await.map_err(|e| {
            AuthError::Unavailable(format!("listing the Providers of namespace {namespace}: {e}"))
        })?;
        Ok(list
            .items
            .iter()
            .filter(|p| p.spec.service_account == name)
            .map(|p| NamespacedName::new(namespace, p.name_any()))
            .collect())
    }
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `system:serviceaccount:<namespace>:<name>` as (`namespace`, `name`).
pub fn service_account(user: &str) -> Option<(String, String)> {
    let (namespace, name) = user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':'))
        .then(|| (namespace.to_string(), name.to_string()))
}

/// Compares without an early exit, so the time taken does not tell how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The event's provider as the user wrote it (`ns/name`), quoted and cut to a few hundred bytes: it comes from the
/// request body, and a 403 answer and its log line should not echo whatever a caller sent (docs/platform-guide.md).
fn shown(provider: &NamespacedName) -> String {
    const MAX: usize = 200;
    let text = provider.to_string();
    if text.len() <= MAX {
        return format!("\"{text}\"");
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("\"{}…\" ({} bytes)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn service_account_users_are_parsed() {
        assert_eq!(
            service_account("system:serviceaccount:ops:provider"),
            Some(("ops".to_string(), "provider".to_string()))
        );
        assert_eq!(service_account("system:serviceaccount:ops"), None);
        assert_eq!(service_account("alice"), None);
        assert_eq!(service_account("system:serviceaccount::x"), None);
    }

    #[test]
    fn providers_are_shown_as_written_and_bounded() {
        assert_eq!(shown(&NamespacedName::new("ml", "kfp")), r#""ml/kfp""#);
        let long = NamespacedName::new("ml", "é".repeat(300));
        let text = shown(&long);
        assert!(text.starts_with(r#""ml/éé"#), "{text}");
        assert!(text.ends_with("…\" (603 bytes)"), "{text}");
        assert!(text.len() < 230, "{text}");
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
