//! [`Compiler`]s for the direct executor (docs/direct-executor.md, "Compilers"): the Argo executor compiles pipelines
//! in its workflow's `compile` step; the direct executor asks one of these instead.
//!
//! - [`LocalCompiler`]: runs a `compile.sh` per framework as a local subprocess. For development and the local
//!   demo: the compiler's Python environment must exist on the operator's machine. The `stub` framework is built
//!   in.
//! - [`JobCompiler`]: runs the framework and pipeline images in a Kubernetes Job, as the Argo `compile` step does,
//!   and reads the compiled pipeline from the pod log. For clusters.
//!
//! Both classify failures the same way: the compiler ran and failed (or wrote something that is not JSON) is
//! [`CompileError::Invalid`], permanent until the Pipeline changes; the compiler could not run or finish in time is
//! [`CompileError::Transient`], retried with backoff (docs/reliability.md, "Which failures are retried").

use std::sync::Arc;

use kfp_core::compiler::{CompileError, CompileRequest, Compiler};

use crate::config::{CompilerKind, DirectConfig};

pub mod job;
pub mod local;

pub use job::JobCompiler;
pub use local::LocalCompiler;

/// The most of a compiler's output a failure message quotes: enough for a Python traceback's last frames, small
/// enough for a status condition.
pub(crate) const MESSAGE_TAIL_LINES: usize = 20;
pub(crate) const MESSAGE_TAIL_BYTES: usize = 2048;

/// The compiler `config.compiler` selects. `client` and `namespace` are used by the `job` compiler only
/// (`namespace` is where the Jobs run when `compileNamespace` is empty).
pub fn from_config(config: &DirectConfig, client: kube::Client, namespace: &str) -> Arc<dyn Compiler> {
    match config.compiler {
        CompilerKind::Local => Arc::new(LocalCompiler::from_config(config)),
        CompilerKind::Job => {
            let namespace = if config.compile_namespace.is_empty() {
                namespace
            } else {
                &config.compile_namespace
            };
            Arc::new(JobCompiler::from_config(client, namespace, config))
        }
    }
}

/// The framework of a (patched) pipeline definition, `framework.name`, lower-cased: framework names compare
/// ignoring case (decision 0007).
pub fn framework_name(request: &CompileRequest) -> Result<String, CompileError> {
    request
        .pipeline_definition
        .get("framework")
        .and_then(|f| f.get("name"))
        .and_then(serde_json::Value::as_str)
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            CompileError::invalid(format!(
                "the pipeline definition of {} names no framework (framework.name is missing or empty)",
                pipeline_name(request)
            ))
        })
}

/// The pipeline's `namespace/name` for messages, or `the pipeline` when the definition lacks it.
pub(crate) fn pipeline_name(request: &CompileRequest) -> String {
    request
        .pipeline_definition
        .get("name")
        .and_then(serde_json::Value::as_str)
        .map(|name| format!("pipeline {name}"))
        .unwrap_or_else(|| "the pipeline".to_string())
}

/// The last lines of a compiler's output, for a failure message: at most `MESSAGE_TAIL_LINES` (20) lines and
/// about `MESSAGE_TAIL_BYTES` (2048) bytes (cut at a character boundary), trimmed.
pub fn output_tail(text: &str) -> String {
    let text = text.trim_end();
    let start = text
        .rmatch_indices('\n')
        .nth(MESSAGE_TAIL_LINES - 1)
        .map_or(0, |(i, _)| i + 1);
    let mut tail = &text[start..];
    if tail.len() > MESSAGE_TAIL_BYTES {
        let mut cut = tail.len() - MESSAGE_TAIL_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = &tail[cut..];
    }
    tail.trim().to_string()
}

/// Parses a compiler's output file: anything but JSON is the compiler's failure, permanent.
pub(crate) fn parse_output(
    request: &CompileRequest,
    output: &[u8],
) -> Result<serde_json::Value, CompileError> {
    serde_json::from_slice(output).map_err(|e| {
        CompileError::invalid(format!(
            "the compiler of {} wrote output that is not JSON ({e}): {}",
            pipeline_name(request),
            output_tail(&String::from_utf8_lossy(output))
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn framework_names_ignore_case() {
        let request = |definition| CompileRequest {
            pipeline_definition: definition,
            ..CompileRequest::default()
        };
        assert_eq!(
            framework_name(&request(json!({"framework": {"name": " TFX "}}))).unwrap(),
            "tfx"
        );
        let err = framework_name(&request(json!({"name": "ns/p", "framework": {}}))).unwrap_err();
        assert_eq!(
            err,
            CompileError::invalid(
                "the pipeline definition of pipeline ns/p names no framework (framework.name is missing or empty)"
            )
        );
    }

    #[test]
    fn tails_keep_the_last_lines_and_bytes() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let tail = output_tail(&text);
        assert!(
            tail.starts_with("line 11\n") && tail.ends_with("line 30"),
            "{tail}"
        );
        let long = "é".repeat(3000);
        let tail = output_tail(&long);
        assert!(tail.len() <= MESSAGE_TAIL_BYTES && tail.chars().all(|c| c == 'é'));
        assert_eq!(output_tail("  one line \n\n"), "one line");
        assert_eq!(output_tail(""), "");
    }
}
