//! `POST /convert`: ConversionReview v1 (`apiextensions.k8s.io/v1`), answered with `kfp_core::conversion::convert`.
//!
//! The answer echoes the request's `uid`. An object that cannot be converted fails the whole review
//! (`result.status: Failure`, no objects) with a message naming the object, its version and the reason; the API
//! server passes it on to the client. A body that is no ConversionReview gets HTTP 400 with a Failure result, and
//! never a panic.

use axum::http::StatusCode;
use kfp_core::conversion::{ConversionConfig, convert};
use kube::core::Status;
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use serde_json::Value;

/// Answers one ConversionReview body: the HTTP status and the review to send back.
pub fn review(body: &[u8], config: &ConversionConfig) -> (StatusCode, ConversionReview) {
    let review: ConversionReview = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(error) => {
            return bad_request(format!(
                "The request body is not a ConversionReview (apiextensions.k8s.io/v1): {}.",
                kfp_providers::service::edge::quote(&error.to_string())
            ));
        }
    };
    let request = match ConversionRequest::from_review(review) {
        Ok(request) => request,
        Err(_) => {
            return bad_request(
                "The ConversionReview has no request: the API server sends `request` with a uid, \
                 desiredAPIVersion and objects."
                    .to_string(),
            );
        }
    };
    let desired = request.desired_api_version.clone();
    let mut converted = Vec::with_capacity(request.objects.len());
    for object in &request.objects {
        match convert(object.clone(), &desired, config) {
            Ok(object) => converted.push(object),
            Err(error) => {
                let message = format!("Cannot convert {} to {desired}: {error}", describe(object));
                tracing::warn!(uid = %request.uid, %message, "conversion failed");
                let response =
                    ConversionResponse::for_request(request).failure(Status::failure(&message, "Invalid"));
                return (StatusCode::OK, response.into_review());
            }
        }
    }
    tracing::debug!(uid = %request.uid, objects = converted.len(), %desired, "converted");
    (
        StatusCode::OK,
        ConversionResponse::for_request(request)
            .success(converted)
            .into_review(),
    )
}

fn bad_request(message: String) -> (StatusCode, ConversionReview) {
    tracing::warn!(%message, "refused a malformed conversion request");
    (
        StatusCode::BAD_REQUEST,
        ConversionResponse::invalid(Status::failure(&message, "BadRequest").with_code(400)).into_review(),
    )
}

/// `Pipeline "ns/name" (pipelines.kubeflow.org/v1alpha5)`, from whatever the object holds.
fn describe(object: &Value) -> String {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let name = match (text("/metadata/namespace"), text("/metadata/name")) {
        ("", name) => name.to_string(),
        (namespace, name) => format!("{namespace}/{name}"),
    };
    let kind = match text("/kind") {
        "" => "object",
        kind => kind,
    };
    let version = match text("/apiVersion") {
        "" => "no apiVersion",
        version => version,
    };
    format!("{kind} {name:?} ({version})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> ConversionConfig {
        ConversionConfig {
            workflow_namespace: "kfp-operator-system".into(),
            default_provider: kfp_core::values::NamespacedName::new("kfp-operator-system", "kfp"),
            ..ConversionConfig::default()
        }
    }

    fn body(desired: &str, objects: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "desiredAPIVersion": desired, "objects": objects}
        }))
        .unwrap()
    }

    fn answer(body: &[u8]) -> (StatusCode, Value) {
        let (status, review) = review(body, &config());
        (status, serde_json::to_value(review).unwrap())
    }

    #[test]
    fn objects_are_converted_in_order_and_the_uid_is_echoed() {
        let experiment = |v: &str, name: &str| {
            json!({"apiVersion": format!("pipelines.kubeflow.org/{v}"), "kind": "Experiment",
                   "metadata": {"name": name, "namespace": "ns", "annotations": {"pipelines.kubeflow.org/provider": "kfp"}},
                   "spec": {"description": "d"}})
        };
        let (status, review) = answer(&body(
            "pipelines.kubeflow.org/v1beta1",
            vec![experiment("v1alpha5", "a"), experiment("v1alpha5", "b")],
        ));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(review["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(review["kind"], "ConversionReview");
        let response = &review["response"];
        assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(response["result"]["status"], "Success");
        let objects = response["convertedObjects"].as_array().unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0]["apiVersion"], "pipelines.kubeflow.org/v1beta1");
        assert_eq!(objects[0]["spec"]["provider"], "kfp-operator-system/kfp");
        assert_eq!(objects[1]["metadata"]["name"], "b");
    }

    #[test]
    fn a_failed_conversion_names_the_object() {
        let run = json!({"apiVersion": "pipelines.kubeflow.org/v1alpha5", "kind": "Run",
            "metadata": {"name": "r", "namespace": "ml"}, "spec": {"runtimeParameters": {"lr": 0.01}}});
        let (status, review) = answer(&body("pipelines.kubeflow.org/v1beta1", vec![run]));
        assert_eq!(
            status,
            StatusCode::OK,
            "a conversion failure is an answer, not an HTTP error"
        );
        let result = &review["response"]["result"];
        assert_eq!(result["status"], "Failure");
        let message = result["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                r#"Cannot convert Run "ml/r" (pipelines.kubeflow.org/v1alpha5) to pipelines.kubeflow.org/v1beta1: "#
            ),
            "{message}"
        );
        assert!(
            message.contains("runtimeParameters.lr must be a string"),
            "{message}"
        );
        assert_eq!(review["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert!(
            review["response"]["convertedObjects"]
                .as_array()
                .is_none_or(|a| a.is_empty())
        );
    }

    #[test]
    fn an_unknown_version_or_kind_fails_cleanly() {
        let object = json!({"apiVersion": "pipelines.kubeflow.org/v1alpha5", "kind": "Pipeline", "metadata": {"name": "p"}});
        let (_, review) = answer(&body("pipelines.kubeflow.org/v2", vec![object]));
        let message = review["response"]["result"]["message"].as_str().unwrap();
        assert!(message.contains("v2"), "{message}");
        let widget = json!({"apiVersion": "pipelines.kubeflow.org/v1alpha5", "kind": "Widget", "metadata": {"name": "w"}});
        let (_, review) = answer(&body("pipelines.kubeflow.org/v1beta1", vec![widget]));
        let message = review["response"]["result"]["message"].as_str().unwrap();
        assert!(
            message.contains(r#"Widget "w""#) && message.contains("Widget"),
            "{message}"
        );
    }

    #[test]
    fn malformed_reviews_get_400_and_a_reason() {
        for (body, expected) in [
            (&b"not json"[..], "is not a ConversionReview"),
            (
                &br#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"}"#[..],
                "has no request",
            ),
            (&br#"{"request": {"uid": 7}}"#[..], "is not a ConversionReview"),
            (&b""[..], "is not a ConversionReview"),
        ] {
            let (status, review) = answer(body);
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(review["response"]["result"]["status"], "Failure");
            let message = review["response"]["result"]["message"].as_str().unwrap();
            assert!(message.contains(expected), "{message}");
        }
    }
}
