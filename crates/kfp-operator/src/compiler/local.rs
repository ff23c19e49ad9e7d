//! [`LocalCompiler`]: compiles pipelines with a local subprocess per framework, following the compile shim contract
//! of compilers/README.md (`compile.sh --pipeline_config <file> --output_file <path>`).
//!
//! Meant for development and the local demo, where the operator runs on a machine that has the compilers'
//! Python environments (or only compiles `stub` pipelines). In a cluster use [`super::JobCompiler`], which runs the
//! framework and pipeline images as the Argo executor does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kfp_core::compiler::{CompileError, CompileRequest, Compiler};
use tokio::process::Command;

use super::{framework_name, output_tail, parse_output, pipeline_name};
use crate::config::{DirectConfig, format_duration};

/// The framework whose compiler is built in.
pub const STUB_FRAMEWORK: &str = "stub";

/// The stub compiler (`compilers/stub/compile.sh`), embedded so that the operator binary can compile `stub`
/// pipelines wherever it runs, with nothing but `sh`.
pub const STUB_SCRIPT: &str = include_str!("../../../../compilers/stub/compile.sh");

/// How long a compilation may take unless configured (the Argo compile step's deadline).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What runs for one framework.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileCommand {
    /// An executable, usually a `compile.sh`, run with the two flags.
    Program(PathBuf),
    /// The text of a POSIX shell script, run as `sh -c <script> compile.sh <flags>`.
    Script(String),
}

impl fmt::Display for CompileCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Program(path) => write!(f, "{}", path.display()),
            Self::Script(_) => f.write_str("the built-in stub compiler"),
        }
    }
}

/// Compiles pipelines by running a command per framework on this machine.
///
/// The command gets `--pipeline_config <file with the definition JSON> --output_file <path>`, the definition's
/// `env` entries in its environment (on top of the operator's), no stdin, and [`LocalCompiler::with_timeout`] to
/// finish (it is killed after that). Failures:
/// - no command for the framework, the command cannot start, or it times out: [`CompileError::Transient`] (an
///   operator configuration or machine problem: retried);
/// - it exits non-zero, writes no output file, or the output is not JSON: [`CompileError::Invalid`], with the tail
///   of its stderr (else stdout);
/// - it cannot start because of the pipeline's own input (`env` values too large for the system, E2BIG, or holding
///   a NUL byte): [`CompileError::Invalid`], retrying cannot help.
#[derive(Debug, Clone)]
pub struct LocalCompiler {
    commands: BTreeMap<String, CompileCommand>,
    /// Extra environment of a framework's command (e.g. `PYTHON` naming a virtualenv's interpreter).
    envs: BTreeMap<String, Vec<(String, String)>>,
    timeout: Duration,
}

impl Default for LocalCompiler {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalCompiler {
    /// A compiler that knows the built-in `stub` framework only, with [`DEFAULT_TIMEOUT`].
    pub fn new() -> Self {
        let mut commands = BTreeMap::new();
        commands.insert(
            STUB_FRAMEWORK.to_string(),
            CompileCommand::Script(STUB_SCRIPT.to_string()),
        );
        Self {
            commands,
            envs: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A compiler whose `stub` framework runs the script at `path` (e.g. `compilers/stub/compile.sh`).
    pub fn with_stub(path: impl Into<PathBuf>) -> Self {
        Self::new().with_command(STUB_FRAMEWORK, path)
    }

    /// The compiler `spec.direct` describes: the built-in `stub`, then `compilers` (which may replace it), and
    /// `compileTimeout`.
    pub fn from_config(config: &DirectConfig) -> Self {
        config
            .compilers
            .iter()
            .fold(Self::new(), |compiler, (framework, command)| {
                compiler.with_command(framework, command)
            })
            .with_timeout(config.compile_timeout)
    }

    /// Runs `program` for `framework` (compared ignoring case), replacing what was there.
    pub fn with_command(mut self, framework: &str, program: impl Into<PathBuf>) -> Self {
        self.commands.insert(
            framework.trim().to_ascii_lowercase(),
            CompileCommand::Program(program.into()),
        );
        self
    }

    /// Sets `name=value` in the environment of `framework`'s command (on top of the operator's environment and the
    /// definition's `env`, which it overrides).
    pub fn with_env(mut self, framework: &str, name: &str, value: impl Into<String>) -> Self {
        self.envs
            .entry(framework.trim().to_ascii_lowercase())
            .or_default()
            .push((name.to_string(), value.into()));
        self
    }

    /// Runs `compile_sh` (a Python compiler's shim, such as `compilers/kfpsdk/compile.sh`) for `framework` with the
    /// interpreter of the virtualenv `venv` (`PYTHON=<venv>/bin/python3`, which the shims honour), so the
    /// operator need not run inside that virtualenv.
    pub fn with_python_compiler(self, framework: &str, compile_sh: impl Into<PathBuf>, venv: &Path) -> Self {
        let python = venv.join("bin").join("python3");
        self.with_command(framework, compile_sh)
            .with_env(framework, "PYTHON", python.display().to_string())
    }

    /// Compiles `framework` with the built-in stub compiler (`{"foo": "bar"}`), as the Go operator's local stack
    /// does for its `tfx` framework: for demos without the framework's real compiler.
    pub fn with_stub_for(mut self, framework: &str) -> Self {
        self.commands.insert(
            framework.trim().to_ascii_lowercase(),
            CompileCommand::Script(STUB_SCRIPT.to_string()),
        );
        self
    }

    /// Kills a compilation that takes longer than `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command of `framework`, if any (ignoring case).
    pub fn command(&self, framework: &str) -> Option<&CompileCommand> {
        self.commands.get(&framework.trim().to_ascii_lowercase())
    }

    /// The frameworks this compiler knows, lower-cased and sorted.
    pub fn frameworks(&self) -> impl Iterator<Item = &str> {
        self.commands.keys().map(String::as_str)
    }

    fn command_for(&self, request: &CompileRequest) -> Result<(String, &CompileCommand), CompileError> {
        let framework = framework_name(request)?;
        match self.commands.get(&framework) {
            Some(command) => Ok((framework, command)),
            None => Err(CompileError::transient(format!(
                "the operator has no local compiler for framework {framework:?} of {}: add one to \
                 spec.direct.compilers (configured: {})",
                pipeline_name(request),
                self.frameworks().collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

#[async_trait::async_trait]
impl Compiler for LocalCompiler {
    async fn compile(&self, request: &CompileRequest) -> Result<serde_json::Value, CompileError> {
        let (framework, command) = self.command_for(request)?;
        let pipeline = pipeline_name(request);
        let scratch = Scratch::create()?;
        let config_path = scratch.path().join("definition.json");
        let output_path = scratch.path().join("compiled.json");
        let definition = serde_json::to_vec(&request.pipeline_definition).map_err(|e| {
            CompileError::invalid(format!("cannot serialize the definition of {pipeline}: {e}"))
        })?;
        tokio::fs::write(&config_path, definition)
            .await
            .map_err(|e| CompileError::transient(format!("cannot write {}: {e}", config_path.display())))?;

        let mut process = match command {
            CompileCommand::Program(program) => Command::new(program),
            CompileCommand::Script(script) => {
                let mut process = Command::new("sh");
                process.arg("-c").arg(script).arg("compile.sh");
                process
            }
        };
        process
            .arg("--pipeline_config")
            .arg(&config_path)
            .arg("--output_file")
            .arg(&output_path)
            .envs(definition_env(&request.pipeline_definition))
            .envs(self.envs.get(&framework).into_iter().flatten().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A timed-out compilation is dropped, and with it the child: do not leave it running.
            .kill_on_drop(true);
        let child = process
            .spawn()
            .map_err(|e| spawn_error(&framework, &command.to_string(), &pipeline, &e))?;
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Err(_) => {
                return Err(CompileError::transient(format!(
                    "the {framework} compiler did not finish compiling {pipeline} within {}",
                    format_duration(self.timeout)
                )));
            }
            Ok(Err(e)) => {
                return Err(CompileError::transient(format!(
                    "lost the {framework} compiler of {pipeline}: {e}"
                )));
            }
            Ok(Ok(output)) => output,
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let text = if stderr.trim().is_empty() {
                String::from_utf8_lossy(&output.stdout)
            } else {
                stderr
            };
            return Err(CompileError::invalid(format!(
                "the {framework} compiler failed to compile {pipeline} ({}): {}",
                output.status,
                output_tail(&text)
            )));
        }
        let compiled = tokio::fs::read(&output_path).await.map_err(|e| {
            CompileError::invalid(format!(
                "the {framework} compiler exited successfully but wrote no output for {pipeline} ({e}): {}",
                output_tail(&String::from_utf8_lossy(&output.stderr))
            ))
        })?;
        parse_output(request, &compiled)
    }
}

/// Why a compiler could not start. The pipeline's own input (its `env` values, passed to the compiler's
/// environment) too large for the system (E2BIG, "argument list too long") or holding a NUL byte is permanent:
/// retrying cannot help until the Pipeline changes. Anything else (the command is missing, not executable, out of
/// processes) is the operator's setup, transient.
fn spawn_error(framework: &str, command: &str, pipeline: &str, error: &std::io::Error) -> CompileError {
    let message = format!("cannot start the {framework} compiler {command} for {pipeline}: {error}");
    match error.kind() {
        std::io::ErrorKind::ArgumentListTooLong => CompileError::invalid(format!(
            "{message}; the pipeline's env values are too large for the compiler's environment"
        )),
        std::io::ErrorKind::InvalidInput => CompileError::invalid(message),
        _ => CompileError::transient(message),
    }
}

/// The virtualenv of the Python compilers that `scripts/python-env.sh` creates: `KFP_OPERATOR_VENV` when set,
/// else `$HOME/.cache/kfp-operator/venv`; `None` without either variable.
pub fn default_python_env() -> Option<PathBuf> {
    match std::env::var_os("KFP_OPERATOR_VENV") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/kfp-operator/venv")),
    }
}

/// The definition's `env` entries (`[{name, value}]`), which the compiler exports (compilers/README.md).
fn definition_env(definition: &serde_json::Value) -> Vec<(String, String)> {
    let Some(entries) = definition.get("env").and_then(serde_json::Value::as_array) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let name = entry.get("name")?.as_str()?;
            let value = match entry.get("value") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (!name.is_empty() && !name.contains('=')).then(|| (name.to_string(), value))
        })
        .collect()
}

/// A private folder for one compilation's files, removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn create() -> Result<Self, CompileError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("kfp-compile-{}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path }),
                // Left over by an earlier process with the same id: take the next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(CompileError::transient(format!(
                        "cannot create a folder for the compiler in {}: {e}",
                        base.display()
                    )));
                }
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the compiler's scratch folder");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(framework: &str) -> CompileRequest {
        CompileRequest {
            framework_image: "compiler:1".into(),
            pipeline_image: "pipeline:1".into(),
            pipeline_definition: json!({
                "name": "ns/p", "version": "v1", "image": "pipeline:1",
                "env": [{"name": "GREETING", "value": "hello"}, {"name": "", "value": "skipped"}],
                "framework": {"name": framework, "parameters": {}}
            }),
        }
    }

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kfp-local-compiler-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn the_built_in_stub_compiles_any_stub_pipeline() {
        let compiler = LocalCompiler::new();
        assert_eq!(
            compiler.compile(&request("Stub")).await.unwrap(),
            json!({"foo": "bar"})
        );
        assert_eq!(compiler.frameworks().collect::<Vec<_>>(), ["stub"]);
    }

    #[tokio::test]
    async fn the_stub_script_in_the_repository_is_the_built_in_one() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../compilers/stub/compile.sh");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), STUB_SCRIPT);
        let compiler = LocalCompiler::with_stub(&path);
        assert_eq!(compiler.command("STUB"), Some(&CompileCommand::Program(path)));
        assert_eq!(
            compiler.compile(&request("stub")).await.unwrap(),
            json!({"foo": "bar"})
        );
    }

    #[tokio::test]
    async fn the_command_gets_the_definition_the_flags_and_the_env() {
        let dir = temp_dir();
        let echo = script(
            &dir,
            "echo.sh",
            r#"[ "$1" = --pipeline_config ] && [ "$3" = --output_file ] || exit 3
printf '{"definition": %s, "greeting": "%s"}' "$(cat "$2")" "$GREETING" > "$4""#,
        );
        let compiler = LocalCompiler::new().with_command("TFX", &echo);
        let compiled = compiler.compile(&request("tfx")).await.unwrap();
        assert_eq!(compiled["greeting"], "hello");
        assert_eq!(compiled["definition"], request("tfx").pipeline_definition);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_framework_env_overrides_the_definition_env_for_that_framework_only() {
        let dir = temp_dir();
        let echo = script(
            &dir,
            "echo.sh",
            r#"printf '{"greeting": "%s", "python": "%s"}' "$GREETING" "${PYTHON:-}" > "$4""#,
        );
        let compiler = LocalCompiler::new()
            .with_python_compiler("tfx", &echo, Path::new("/opt/venv"))
            .with_env("TFX", "GREETING", "from the operator")
            .with_command("kfpsdk", &echo);
        let compiled = compiler.compile(&request("tfx")).await.unwrap();
        assert_eq!(
            compiled,
            json!({"greeting": "from the operator", "python": "/opt/venv/bin/python3"})
        );
        let compiled = compiler.compile(&request("kfpsdk")).await.unwrap();
        assert_eq!(compiled["greeting"], "hello");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A 1 MB `env` value failed the spawn with E2BIG, classified transient and retried forever (issue 17): it is
    /// the pipeline's input, permanent until the Pipeline changes. So is a NUL byte, which no environment holds.
    #[tokio::test]
    async fn input_the_system_cannot_pass_to_the_compiler_is_permanent() {
        let dir = temp_dir();
        let ok = script(&dir, "ok.sh", r#"echo '{}' > "$4""#);
        let compiler = LocalCompiler::new().with_command("tfx", &ok);
        for value in [json!("v".repeat(1024 * 1024)), json!("a\u{0}b")] {
            let mut request = request("tfx");
            request.pipeline_definition["env"] = json!([{"name": "BIG", "value": value}]);
            let err = compiler.compile(&request).await.unwrap_err();
            let CompileError::Invalid(message) = &err else {
                panic!("{err:?}")
            };
            assert!(message.starts_with("cannot start the tfx compiler"), "{message}");
            assert!(message.len() < 1024, "{message}");
        }
        let err = compiler
            .compile(&{
                let mut request = request("tfx");
                request.pipeline_definition["env"] =
                    json!([{"name": "BIG", "value": "v".repeat(1024 * 1024)}]);
                request
            })
            .await
            .unwrap_err();
        assert!(format!("{err:?}").contains("too large"), "{err:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn failures_are_classified() {
        let dir = temp_dir();
        let failing = script(
            &dir,
            "fail.sh",
            "echo 'compiling' ; echo 'Traceback: ModuleNotFoundError: no module named pipeline' >&2; exit 1",
        );
        let garbage = script(&dir, "garbage.sh", r#"echo 'not json' > "$4""#);
        let silent = script(&dir, "silent.sh", "exit 0");
        let slow = script(&dir, "slow.sh", "exec sleep 30");
        let compiler = |path: &Path| LocalCompiler::new().with_command("tfx", path);

        let err = compiler(&failing).compile(&request("tfx")).await.unwrap_err();
        let CompileError::Invalid(message) = err else {
            panic!("{err:?}")
        };
        assert!(
            message
                .starts_with("the tfx compiler failed to compile pipeline ns/p (exit status: 1): Traceback"),
            "{message}"
        );

        let err = compiler(&garbage).compile(&request("tfx")).await.unwrap_err();
        assert!(
            matches!(&err, CompileError::Invalid(m) if m.contains("not JSON") && m.ends_with("not json")),
            "{err:?}"
        );
        let err = compiler(&silent).compile(&request("tfx")).await.unwrap_err();
        assert!(
            matches!(&err, CompileError::Invalid(m) if m.contains("wrote no output")),
            "{err:?}"
        );

        let err = compiler(&dir.join("missing.sh"))
            .compile(&request("tfx"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CompileError::Transient(m) if m.starts_with("cannot start the tfx compiler")),
            "{err:?}"
        );

        let started = std::time::Instant::now();
        let err = compiler(&slow)
            .with_timeout(Duration::from_millis(200))
            .compile(&request("tfx"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            CompileError::transient("the tfx compiler did not finish compiling pipeline ns/p within 200ms")
        );
        assert!(started.elapsed() < Duration::from_secs(10));

        let err = LocalCompiler::new().compile(&request("kfp")).await.unwrap_err();
        assert_eq!(
            err,
            CompileError::transient(
                "the operator has no local compiler for framework \"kfp\" of pipeline ns/p: add one to \
                 spec.direct.compilers (configured: stub)"
            )
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn configuration_adds_and_replaces_commands() {
        let mut config = DirectConfig::default();
        config
            .compilers
            .insert("TFX".into(), "/opt/tfx/compile.sh".into());
        config
            .compilers
            .insert("stub".into(), "/opt/stub/compile.sh".into());
        config.compile_timeout = Duration::from_secs(7);
        let compiler = LocalCompiler::from_config(&config);
        assert_eq!(compiler.frameworks().collect::<Vec<_>>(), ["stub", "tfx"]);
        assert_eq!(
            compiler.command("stub"),
            Some(&CompileCommand::Program("/opt/stub/compile.sh".into()))
        );
        assert_eq!(compiler.timeout, Duration::from_secs(7));
        assert_eq!(
            definition_env(&json!({"env": [{"name": "A", "value": 1}, {"name": "B=C", "value": "x"}]})),
            [("A".to_string(), "1".to_string())]
        );
    }
}
