//! Retry or not: the one place that decides how a failed provider operation is treated, whoever carried it out
//! (issue 17's retry note; docs/reliability.md "Which failures are retried").
//!
//! Both executors and the provider clients map what they saw onto these functions: a [`ProviderError`] (the direct
//! executor, any `Provider`), an HTTP answer of a provider service (the Argo executor reads it from the workflow,
//! the `http` provider from its response), a failed workflow (Argo), a compiler error. The answer is a [`Verdict`]:
//! done (a delete of something already gone), or failed with a [`FailureClass`] — permanent waits for a spec change,
//! transient is retried with [`OPERATION_RETRY`].

use std::time::Duration;

use crate::backoff::Backoff;
use crate::compiler::CompileError;
use crate::executor::FailureClass;
use crate::provider::ProviderError;

/// The backoff of transient operation failures: 10 s doubling to 10 min (decision 0002, "Retries"). The jitter is the
/// planner's (deterministic per object: `generic::retry_delay`), so a resource's retry time survives restarts.
pub const OPERATION_RETRY: Backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(600));

/// What a failed operation means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing is left to do: a delete of an object the provider does not have.
    Done,
    /// The operation failed with this class.
    Failed(FailureClass),
}

/// A provider's error. `Invalid` (the request can never succeed as written) and `Unimplemented` are permanent;
/// `NotFound` is done for a delete and transient otherwise (a dependency may appear); `Transient` is transient.
pub fn provider_error(error: &ProviderError, delete: bool) -> Verdict {
    match error {
        ProviderError::NotFound(_) if delete => Verdict::Done,
        ProviderError::Invalid(_) | ProviderError::Unimplemented(_) => {
            Verdict::Failed(FailureClass::Permanent)
        }
        ProviderError::NotFound(_) | ProviderError::Transient(_) => Verdict::Failed(FailureClass::Transient),
    }
}

/// The class of a provider's error for an operation that is not a delete.
pub fn provider_error_class(error: &ProviderError) -> FailureClass {
    match provider_error(error, false) {
        Verdict::Failed(class) => class,
        Verdict::Done => FailureClass::Transient,
    }
}

/// A provider service's non-success HTTP answer: classified as the `http` provider classifies it
/// ([`ProviderError::from_http_status`]: 400/422 invalid, 404/410 not found, 501 unimplemented, anything else —
/// 401, 403, 408, 409, 429, 5xx — transient), then as [`provider_error`].
pub fn http_answer(status: u16, delete: bool) -> Verdict {
    provider_error(&ProviderError::from_http_status(status, "-"), delete)
}

/// A compiler's error: `Invalid` (the pipeline's own input: a compile error, an `env` the system cannot pass) is
/// permanent; anything about the operator's setup is transient.
pub fn compile_error_class(error: &CompileError) -> FailureClass {
    if error.is_permanent() {
        FailureClass::Permanent
    } else {
        FailureClass::Transient
    }
}

/// How a workflow (or a step of one) that did not succeed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowEnd {
    /// Argo's `Failed`: a step exited non-zero, or a deadline passed.
    Failed,
    /// Argo's `Error`: a step could not run (pod deleted, node lost, cannot start).
    Error,
}

/// A workflow that did not succeed. `Failed` is permanent (the step ran and refused), unless a deadline passed
/// (a timeout: transient); `Error` is transient (the infrastructure), unless a step could not start because of the
/// pipeline's own input ([`input_too_large`]): that fails the same way every time, so it is permanent.
pub fn workflow_failure(end: WorkflowEnd, deadline_exceeded: bool, input_too_large: bool) -> FailureClass {
    match end {
        _ if input_too_large => FailureClass::Permanent,
        WorkflowEnd::Failed if deadline_exceeded => FailureClass::Transient,
        WorkflowEnd::Failed => FailureClass::Permanent,
        WorkflowEnd::Error => FailureClass::Transient,
    }
}

/// Whether a message says a process could not start because its input is too large for the system (E2BIG,
/// "argument list too long"): a 1 MB `env` value of a Pipeline (issue 17).
pub fn input_too_large(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["argument list too long", "e2big"]
        .iter()
        .any(|word| message.contains(word))
}

/// The Kubernetes API server's refusal (HTTP status) of an object the operator built from a resource's spec (a
/// compile Job's ConfigMap holding the definition, its `env`): 400 (malformed), 413 (request too large) and 422
/// (invalid, e.g. a ConfigMap over 1 MiB) cannot succeed until the spec changes; anything else (403 while RBAC is
/// being set up, 409, 429, 5xx) may pass on retry.
pub fn kubernetes_refusal(status: u16) -> FailureClass {
    match status {
        400 | 413 | 422 => FailureClass::Permanent,
        _ => FailureClass::Transient,
    }
}

/// Whether a message says a deadline passed (a template's `activeDeadlineSeconds`).
pub fn deadline_exceeded(message: &str) -> bool {
    message.to_ascii_lowercase().contains("deadline")
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureClass::{Permanent, Transient};
    use Verdict::{Done, Failed};

    #[test]
    fn kubernetes_refusals_of_objects_built_from_a_spec_table() {
        for (status, class) in [
            (400, Permanent),
            (413, Permanent),
            (422, Permanent),
            (401, Transient),
            (403, Transient),
            (404, Transient),
            (409, Transient),
            (429, Transient),
            (500, Transient),
            (503, Transient),
        ] {
            assert_eq!(kubernetes_refusal(status), class, "{status}");
        }
    }

    #[test]
    fn provider_errors_and_http_answers_agree_table() {
        // (HTTP status, its ProviderError, verdict for a create/update, verdict for a delete)
        let table = [
            (
                400,
                ProviderError::invalid("x"),
                Failed(Permanent),
                Failed(Permanent),
            ),
            (
                422,
                ProviderError::invalid("x"),
                Failed(Permanent),
                Failed(Permanent),
            ),
            (404, ProviderError::not_found("x"), Failed(Transient), Done),
            (410, ProviderError::not_found("x"), Failed(Transient), Done),
            (
                501,
                ProviderError::unimplemented("x"),
                Failed(Permanent),
                Failed(Permanent),
            ),
            (
                500,
                ProviderError::transient("x"),
                Failed(Transient),
                Failed(Transient),
            ),
            (
                401,
                ProviderError::transient("x"),
                Failed(Transient),
                Failed(Transient),
            ),
            (
                403,
                ProviderError::transient("x"),
                Failed(Transient),
                Failed(Transient),
            ),
            (
                408,
                ProviderError::transient("x"),
                Failed(Transient),
                Failed(Transient),
            ),
            (
                409,
                ProviderError::transient("x"),
                Failed(Transient),
                Failed(Transient),
            ),
            (
                429,
                ProviderError::transient("x"),
                Failed(Transient),
                Failed(Transient),
            ),
            (
                503,
                ProviderError::transient("x"),
                Failed(Transient),
                Failed(Transient),
            ),
        ];
        for (status, error, apply, delete) in table {
            assert_eq!(provider_error(&error, false), apply, "{status} apply");
            assert_eq!(provider_error(&error, true), delete, "{status} delete");
            assert_eq!(http_answer(status, false), apply, "{status} apply over HTTP");
            assert_eq!(http_answer(status, true), delete, "{status} delete over HTTP");
        }
        assert_eq!(provider_error_class(&ProviderError::not_found("x")), Transient);
        assert_eq!(compile_error_class(&CompileError::invalid("x")), Permanent);
        assert_eq!(compile_error_class(&CompileError::transient("x")), Transient);
    }

    #[test]
    fn workflow_endings_table() {
        use WorkflowEnd::{Error, Failed as F};
        // (end, deadline exceeded, input too large, class)
        let table = [
            (F, false, false, Permanent),
            (F, true, false, Transient),
            (F, true, true, Permanent),
            (F, false, true, Permanent),
            (Error, false, false, Transient),
            (Error, true, false, Transient),
            (Error, false, true, Permanent),
        ];
        for (end, deadline, too_large, class) in table {
            assert_eq!(
                workflow_failure(end, deadline, too_large),
                class,
                "{end:?} {deadline} {too_large}"
            );
        }
        assert!(input_too_large("exec: Argument list too long"));
        assert!(input_too_large("E2BIG"));
        assert!(!input_too_large("exit code 1"));
        assert!(deadline_exceeded("Step exceeded its deadline"));
    }

    #[test]
    fn decision_1_operation_retry_is_10s_doubling_to_10min() {
        assert_eq!(OPERATION_RETRY.ceiling(1), Duration::from_secs(10));
        assert_eq!(OPERATION_RETRY.ceiling(2), Duration::from_secs(20));
        assert_eq!(OPERATION_RETRY.ceiling(7), Duration::from_secs(600));
        assert_eq!(OPERATION_RETRY.ceiling(30), Duration::from_secs(600));
    }
}
