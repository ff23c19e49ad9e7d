//! `POST /validate-pipelines-kubeflow-org-v1beta1-<kind>`: AdmissionReview v1 for CREATE and UPDATE.
//!
//! The rules are `kfp_core::validation`'s; this module decodes the review, looks up the Provider an object names
//! (a fresh GET, as the controllers read), and answers. A refusal is HTTP 200 with `allowed: false` and a Status
//! shaped like the API server's own validation errors: code 422, reason `Invalid`, the message
//! `Pipeline.pipelines.kubeflow.org "p" is invalid: spec.provider: Not found: "ns/stub"`, and one cause per field.
//!
//! - An UPDATE that leaves `spec` unchanged, or of an object being deleted, is allowed without checks: the
//!   operator's finalizer and annotation writes must go through even when, say, the Provider is gone.
//! - A Provider lookup that fails for another reason than NotFound refuses with code 500 (the webhook's failure
//!   policy is `Fail`: nothing unchecked gets in; the client may retry).
//! - A body that is no AdmissionReview gets HTTP 400 with `allowed: false` and the parse error.

use axum::http::StatusCode;
use kfp_core::conversion::field_paths::field_path;
use kfp_core::resources::GROUP;
use kfp_core::resources::v1beta1::{Experiment, Pipeline, Provider, Run, RunConfiguration, RunSchedule};
use kfp_core::validation::{self, FieldError};
use kfp_core::values::NamespacedName;
use kfp_providers::service::edge::quote;
use kube::api::{Api, DynamicObject};
use kube::core::Status;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Kind;

/// Answers one AdmissionReview body for `kind`: the HTTP status and the review to send back.
pub async fn review(
    client: &Client,
    kind: Kind,
    body: &[u8],
) -> (StatusCode, AdmissionReview<DynamicObject>) {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(error) => {
            return bad_request(format!(
                "The request body is not an AdmissionReview (admission.k8s.io/v1): {}.",
                quote(&error.to_string())
            ));
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(_) => {
            return bad_request(
                "The AdmissionReview has no request: the API server sends `request` with a uid, the operation \
                 and the object."
                    .to_string(),
            );
        }
    };
    let response = match decide(client, kind, &request).await {
        Decision::Allow => AdmissionResponse::from(&request),
        Decision::Deny(status) => {
            let status = *status;
            tracing::info!(
                uid = %request.uid,
                kind = kind.as_str(),
                namespace = request.namespace.as_deref().unwrap_or_default(),
                name = %request.name,
                message = %status.message,
                "admission refused"
            );
            let mut response = AdmissionResponse::from(&request);
            response.allowed = false;
            response.result = status;
            response
        }
    };
    (StatusCode::OK, response.into_review())
}

fn bad_request(message: String) -> (StatusCode, AdmissionReview<DynamicObject>) {
    tracing::warn!(%message, "refused a malformed admission request");
    let mut response = AdmissionResponse::invalid(&message);
    response.result.code = 400;
    response.result.reason = "BadRequest".to_string();
    (StatusCode::BAD_REQUEST, response.into_review())
}

enum Decision {
    Allow,
    Deny(Box<Status>),
}

async fn decide(client: &Client, kind: Kind, request: &AdmissionRequest<DynamicObject>) -> Decision {
    if request.kind.group != GROUP || request.kind.kind != kind.as_str() {
        return Decision::Deny(failure(
            400,
            "BadRequest",
            format!(
                "This webhook validates {}.{GROUP}, but was sent a {}.{} (check the webhook configuration's rules).",
                kind.as_str(),
                request.kind.kind,
                request.kind.group
            ),
        ));
    }
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return Decision::Allow;
    }
    let Some(object) = &request.object else {
        return Decision::Deny(failure(
            400,
            "BadRequest",
            format!(
                "The {:?} request for a {} has no object.",
                request.operation,
                kind.as_str()
            ),
        ));
    };
    let mut object = match serde_json::to_value(object) {
        Ok(value) => value,
        Err(error) => return Decision::Deny(failure(400, "BadRequest", error.to_string())),
    };
    // The namespace rules read the object's namespace; the request carries it even where the object does not.
    if object.pointer("/metadata/namespace").is_none()
        && let (Some(namespace), Some(Value::Object(meta))) =
            (request.namespace.as_ref(), object.get_mut("metadata"))
    {
        meta.insert("namespace".to_string(), Value::String(namespace.clone()));
    }
    if request.operation == Operation::Update {
        let old = request
            .old_object
            .as_ref()
            .and_then(|o| serde_json::to_value(o).ok());
        let deleting = object.pointer("/metadata/deletionTimestamp").is_some();
        if deleting || old.as_ref().and_then(|o| o.get("spec")) == object.get("spec") {
            return Decision::Allow;
        }
        if kind == Kind::Run {
            let old = old.unwrap_or(Value::Null);
            return match (decode::<Run>(kind, &old), decode::<Run>(kind, &object)) {
                (Ok(old), Ok(new)) => verdict(
                    kind,
                    user_version(request),
                    &new.metadata,
                    validation::run_update(&old, &new),
                ),
                (Err(status), _) | (_, Err(status)) => Decision::Deny(status),
            };
        }
    }
    let version = user_version(request);
    match kind {
        Kind::Pipeline => {
            check::<Pipeline>(
                client,
                kind,
                version,
                &object,
                |p| Some(&p.spec.provider),
                validation::pipeline,
            )
            .await
        }
        Kind::Run => {
            check::<Run>(
                client,
                kind,
                version,
                &object,
                |r| Some(&r.spec.provider),
                validation::run,
            )
            .await
        }
        Kind::RunConfiguration => {
            check::<RunConfiguration>(
                client,
                kind,
                version,
                &object,
                |rc| Some(&rc.spec.run.provider),
                validation::run_configuration,
            )
            .await
        }
        Kind::RunSchedule => {
            check::<RunSchedule>(
                client,
                kind,
                version,
                &object,
                |rs| Some(&rs.spec.provider),
                validation::run_schedule,
            )
            .await
        }
        Kind::Experiment => {
            check::<Experiment>(
                client,
                kind,
                version,
                &object,
                |e| Some(&e.spec.provider),
                validation::experiment,
            )
            .await
        }
        Kind::Provider => {
            check::<Provider>(
                client,
                kind,
                version,
                &object,
                |_| None,
                |p, _| validation::provider(p),
            )
            .await
        }
    }
}

/// Decodes `object` as `K`, looks up the Provider that `reference` names (if any), and applies `rules`.
async fn check<K>(
    client: &Client,
    kind: Kind,
    version: &str,
    object: &Value,
    reference: impl Fn(&K) -> Option<&NamespacedName>,
    rules: impl Fn(&K, Option<&Provider>) -> Vec<FieldError>,
) -> Decision
where
    K: DeserializeOwned + Resource,
{
    let object: K = match decode(kind, object) {
        Ok(object) => object,
        Err(status) => return Decision::Deny(status),
    };
    let provider = match reference(&object) {
        Some(reference) if !reference.name.is_empty() => match lookup(client, reference).await {
            Ok(provider) => provider,
            Err(error) => {
                return Decision::Deny(failure(
                    500,
                    "InternalError",
                    format!(
                        "Cannot check the Provider {reference} of {} {:?}: reading it failed ({error}); try again.",
                        kind.as_str(),
                        name_of(object.meta())
                    ),
                ));
            }
        },
        _ => None,
    };
    verdict(kind, version, object.meta(), rules(&object, provider.as_ref()))
}

async fn lookup(client: &Client, reference: &NamespacedName) -> Result<Option<Provider>, kube::Error> {
    let api: Api<Provider> = Api::namespaced(client.clone(), &reference.namespace);
    api.get_opt(&reference.name).await
}

fn decode<K: DeserializeOwned>(kind: Kind, object: &Value) -> Result<K, Box<Status>> {
    serde_json::from_value(object.clone()).map_err(|error| {
        failure(
            400,
            "BadRequest",
            format!(
                "The {} {:?} cannot be read as {GROUP}/v1beta1: {}.",
                kind.as_str(),
                quote(
                    object
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                ),
                quote(&error.to_string())
            ),
        )
    })
}

/// The version the user wrote the object in (`requestKind`; the API server sends the converted `v1beta1` object).
fn user_version(request: &AdmissionRequest<DynamicObject>) -> &str {
    request
        .request_kind
        .as_ref()
        .map_or(request.kind.version.as_str(), |k| k.version.as_str())
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name
        .clone()
        .or_else(|| meta.generate_name.clone())
        .unwrap_or_default()
}

/// Allows, or refuses with `errors`, their fields named as `version` (the version the user wrote) spells them.
fn verdict(
    kind: Kind,
    version: &str,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    mut errors: Vec<FieldError>,
) -> Decision {
    if errors.is_empty() {
        return Decision::Allow;
    }
    for error in &mut errors {
        error.field = field_path(version, kind.as_str(), &error.field);
    }
    let name = name_of(meta);
    let mut status = failure(
        422,
        "Invalid",
        validation::invalid_message(kind.as_str(), &name, &errors),
    );
    status.details = Some(StatusDetails {
        name,
        group: GROUP.to_string(),
        kind: kind.as_str().to_string(),
        uid: String::new(),
        causes: errors
            .iter()
            .map(|e| StatusCause {
                reason: e.type_.cause_reason().to_string(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect(),
        retry_after_seconds: 0,
    });
    Decision::Deny(status)
}

fn failure(code: u16, reason: &str, message: String) -> Box<Status> {
    Box::new(Status {
        status: Some(StatusSummary::Failure),
        code,
        message,
        metadata: None,
        reason: reason.to_string(),
        details: None,
    })
}
