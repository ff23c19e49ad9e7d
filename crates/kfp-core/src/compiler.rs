//! Pipeline compilation for the direct executor (docs/direct-executor.md, "Compilers"; the contract:
//! compilers/README.md).
//!
//! A pipeline is compiled by running the framework image (which provides the compiler, `/entrypoint.sh <dir>`) and
//! then the pipeline image (`<dir>/compile.sh --pipeline_config <file> --output_file <path>`) on the patched
//! pipeline definition. The Argo executor does this in a workflow; the direct executor asks a [`Compiler`]: a
//! Kubernetes Job in production-like setups, a local subprocess for development, a fake in tests.

/// What to compile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompileRequest {
    /// The framework's compiler image (the Provider's `spec.frameworks[].image`).
    pub framework_image: String,
    /// The user's pipeline image (the Pipeline's `spec.image`).
    pub pipeline_image: String,
    /// The pipeline definition with the framework's patches applied (docs/provider-service.md, "Request bodies"): the
    /// compiler's `--pipeline_config`.
    pub pipeline_definition: serde_json::Value,
}

/// Why a compilation failed. Classified like [`crate::provider::ProviderError`]: a permanent failure waits for a
/// spec change, a transient one is retried with backoff (docs/reliability.md, "Which failures are retried").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The pipeline does not compile (the compiler ran and failed, or produced something that is not JSON).
    /// Permanent until the Pipeline (or its image) changes.
    #[error("{0}")]
    Invalid(String),
    /// The compiler could not run or finish: image pull, scheduling, timeout, lost job. Retried.
    #[error("{0}")]
    Transient(String),
}

impl CompileError {
    /// A [`CompileError::Invalid`] with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// A [`CompileError::Transient`] with `message`.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient(message.into())
    }

    /// True when compiling again cannot help until the Pipeline changes.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Invalid(_))
    }
}

/// Compiles pipelines. Used as `Arc<dyn Compiler>`; with the `mock` feature mockall generates `MockCompiler`.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait Compiler: Send + Sync {
    /// Runs the compiler and returns the compiled pipeline (the framework's JSON, e.g. a PipelineJob wrapper for
    /// TFX or KFP IR for the KFP SDK).
    async fn compile(&self, request: &CompileRequest) -> Result<serde_json::Value, CompileError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn classes() {
        assert!(CompileError::invalid("no module named pipeline").is_permanent());
        assert!(!CompileError::transient("image pull backoff").is_permanent());
        assert_eq!(CompileError::invalid("x").to_string(), "x");
    }

    #[tokio::test]
    async fn mock_compiler_as_trait_object() {
        let mut mock = MockCompiler::new();
        mock.expect_compile()
            .withf(|r| r.pipeline_image == "img:1" && r.pipeline_definition["name"] == "ns/p")
            .returning(|_| Ok(json!({"foo": "bar"})));
        let compiler: Arc<dyn Compiler> = Arc::new(mock);
        let request = CompileRequest {
            framework_image: "stub-compiler:1".into(),
            pipeline_image: "img:1".into(),
            pipeline_definition: json!({"name": "ns/p"}),
        };
        assert_eq!(compiler.compile(&request).await, Ok(json!({"foo": "bar"})));
    }
}
