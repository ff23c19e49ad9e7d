//! [`JobCompiler`]: compiles a pipeline in a Kubernetes Job, as the Argo executor's `compile` step does
//! (docs/executors.md, "The templates"):
//! an init container from the framework image copies the compiler into an `emptyDir` (`/entrypoint.sh /shared`),
//! then the pipeline image runs `/shared/compile.sh` on the definition (mounted from a ConfigMap) and prints the
//! compiled pipeline, which the operator reads from the pod log.
//!
//! Objects (namespace: the configured one): a ConfigMap `kfp-compile-<random>` holding `definition.json`, and a Job
//! of the same name that owns it (so Kubernetes garbage collection removes it with the Job). Both are deleted once
//! the operator has read the result; if the operator dies first, `ttlSecondsAfterFinished` removes the Job and
//! `activeDeadlineSeconds` stops a compilation that never ends.
//!
//! Reading the compiled pipeline needs the pod log, so a kubelet (the API server proxies `pods/log` to it). RBAC:
//! `configmaps` create/patch/delete, `jobs` create/get/list/watch/delete, `pods` list, `pods/log` get in that
//! namespace.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerStatus, EmptyDirVolumeSource,
    KeyToPath, Pod, PodSecurityContext, PodSpec, PodTemplateSpec, SeccompProfile, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kfp_core::compiler::{CompileError, CompileRequest, Compiler};
use kfp_core::executor::FailureClass;
use kfp_core::reconcile::failure;
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::runtime::wait::await_condition;
use kube::{Client, Resource, ResourceExt};

use super::{output_tail, parse_output, pipeline_name};
use crate::config::{DirectConfig, format_duration};

/// Prefix of the ConfigMap and Job names.
pub const NAME_PREFIX: &str = "kfp-compile-";
/// The init container (framework image).
pub const FRAMEWORK_CONTAINER: &str = "framework";
/// The main container (pipeline image).
pub const COMPILE_CONTAINER: &str = "compile";
/// The ConfigMap key, and file under `/config`, of the definition.
pub const DEFINITION_KEY: &str = "definition.json";
/// The line the compile container prints before the compiled pipeline: whatever `compile.sh` itself prints (pod
/// logs mix stdout and stderr) comes before it.
pub const COMPILED_MARKER: &str = "----- kfp-operator: compiled pipeline -----";
/// Labels of every object the compiler creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kfp-operator");
/// The component label of compile Jobs and their pods.
pub const COMPONENT: (&str, &str) = ("app.kubernetes.io/component", "pipeline-compiler");
/// Annotation naming the pipeline (`namespace/name`) a compile Job is for.
pub const PIPELINE_ANNOTATION: &str = "pipelines.kubeflow.org/pipeline";
/// The label the Job controller puts on the pods of a Job (its uid).
const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// How long after the Job's deadline the operator waits for the Job controller to mark it failed.
const DEADLINE_GRACE: Duration = Duration::from_secs(60);
/// UID and GID of the compile pod, as in the Argo templates (docs/executors.md, "The templates").
const RUN_AS: i64 = 1000;

/// Compiles pipelines in Kubernetes Jobs. See the module docs for the objects and the permissions it needs.
///
/// Failures: the compile container (or the framework's init container) exited non-zero is
/// [`CompileError::Invalid`], quoting its termination message (the tail of its log); the Job ran past its deadline,
/// the operator gave up waiting, the pod vanished or an API call failed is [`CompileError::Transient`].
#[derive(Clone)]
pub struct JobCompiler {
    client: Client,
    namespace: String,
    timeout: Duration,
    grace: Duration,
    service_account: String,
    ttl: Duration,
}

impl std::fmt::Debug for JobCompiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobCompiler")
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("service_account", &self.service_account)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JobCompiler {
    /// Jobs in `namespace`, with a 30 minute deadline and a one hour TTL, run by the namespace's default
    /// ServiceAccount.
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            timeout: super::local::DEFAULT_TIMEOUT,
            grace: DEADLINE_GRACE,
            service_account: String::new(),
            ttl: Duration::from_secs(3600),
        }
    }

    /// The compiler `spec.direct` describes, with Jobs in `namespace`.
    pub fn from_config(client: Client, namespace: impl Into<String>, config: &DirectConfig) -> Self {
        Self::new(client, namespace)
            .with_timeout(config.compile_timeout)
            .with_service_account(config.compile_service_account.clone())
            .with_ttl(config.compile_job_ttl)
    }

    /// The Job's `activeDeadlineSeconds` (rounded up to whole seconds); the operator waits a minute longer for the
    /// Job controller to report it.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long past the deadline the operator waits for the Job to be marked finished (default one minute).
    pub fn with_deadline_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The ServiceAccount of the compile pods; empty: the namespace's default.
    pub fn with_service_account(mut self, service_account: impl Into<String>) -> Self {
        self.service_account = service_account.into();
        self
    }

    /// The Job's `ttlSecondsAfterFinished`: the Job (and its ConfigMap) go away this long after finishing even if
    /// the operator could not delete them.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The namespace compile Jobs run in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn labels() -> BTreeMap<String, String> {
        [MANAGED_BY, COMPONENT]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn annotations(request: &CompileRequest) -> Option<BTreeMap<String, String>> {
        let name = request.pipeline_definition.get("name")?.as_str()?;
        Some(BTreeMap::from([(
            PIPELINE_ANNOTATION.to_string(),
            name.to_string(),
        )]))
    }

    /// The ConfigMap with the definition (`generateName` [`NAME_PREFIX`]; its name becomes the Job's).
    pub fn config_map(&self, request: &CompileRequest) -> Result<ConfigMap, CompileError> {
        let definition = serde_json::to_string_pretty(&request.pipeline_definition).map_err(|e| {
            CompileError::invalid(format!(
                "cannot serialize the definition of {}: {e}",
                pipeline_name(request)
            ))
        })?;
        Ok(ConfigMap {
            metadata: ObjectMeta {
                generate_name: Some(NAME_PREFIX.to_string()),
                namespace: Some(self.namespace.clone()),
                labels: Some(Self::labels()),
                annotations: Self::annotations(request),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(DEFINITION_KEY.to_string(), definition)])),
            ..ConfigMap::default()
        })
    }

    /// The compile Job `name`, reading the ConfigMap of the same name.
    pub fn job(&self, name: &str, request: &CompileRequest) -> Job {
        let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
            name: name.to_string(),
            mount_path: path.to_string(),
            read_only: read_only.then_some(true),
            ..VolumeMount::default()
        };
        let restricted = SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        };
        let empty_dir = |name: &str| Volume {
            name: name.to_string(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        };
        let script = format!(
            "set -e\n/shared/compile.sh --pipeline_config /config/{DEFINITION_KEY} --output_file /tmp/out.json\n\
             printf '\\n%s\\n' '{COMPILED_MARKER}'\ncat /tmp/out.json\n"
        );
        let deadline = i64::try_from(self.timeout.as_secs() + u64::from(self.timeout.subsec_nanos() > 0))
            .unwrap_or(i64::MAX)
            .max(1);
        Job {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(self.namespace.clone()),
                labels: Some(Self::labels()),
                annotations: Self::annotations(request),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec {
                backoff_limit: Some(0),
                active_deadline_seconds: Some(deadline),
                ttl_seconds_after_finished: Some(i32::try_from(self.ttl.as_secs()).unwrap_or(i32::MAX)),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(Self::labels()),
                        annotations: Self::annotations(request),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".to_string()),
                        service_account_name: Some(self.service_account.clone()).filter(|s| !s.is_empty()),
                        automount_service_account_token: Some(false),
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: Some(true),
                            run_as_user: Some(RUN_AS),
                            run_as_group: Some(RUN_AS),
                            fs_group: Some(RUN_AS),
                            seccomp_profile: Some(SeccompProfile {
                                type_: "RuntimeDefault".to_string(),
                                ..SeccompProfile::default()
                            }),
                            ..PodSecurityContext::default()
                        }),
                        init_containers: Some(vec![Container {
                            name: FRAMEWORK_CONTAINER.to_string(),
                            image: Some(request.framework_image.clone()),
                            args: Some(vec!["/shared".to_string()]),
                            volume_mounts: Some(vec![mount("shared", "/shared", false)]),
                            security_context: Some(restricted.clone()),
                            termination_message_policy: Some("FallbackToLogsOnError".to_string()),
                            ..Container::default()
                        }]),
                        containers: vec![Container {
                            name: COMPILE_CONTAINER.to_string(),
                            image: Some(request.pipeline_image.clone()),
                            command: Some(vec!["sh".to_string(), "-c".to_string(), script]),
                            volume_mounts: Some(vec![
                                mount("shared", "/shared", false),
                                mount("config", "/config", true),
                                mount("tmp", "/tmp", false),
                            ]),
                            security_context: Some(restricted),
                            termination_message_policy: Some("FallbackToLogsOnError".to_string()),
                            ..Container::default()
                        }],
                        volumes: Some(vec![
                            empty_dir("shared"),
                            empty_dir("tmp"),
                            Volume {
                                name: "config".to_string(),
                                config_map: Some(ConfigMapVolumeSource {
                                    name: name.to_string(),
                                    items: Some(vec![KeyToPath {
                                        key: DEFINITION_KEY.to_string(),
                                        path: DEFINITION_KEY.to_string(),
                                        ..KeyToPath::default()
                                    }]),
                                    ..ConfigMapVolumeSource::default()
                                }),
                                ..Volume::default()
                            },
                        ]),
                        ..PodSpec::default()
                    }),
                },
                ..JobSpec::default()
            }),
            ..Job::default()
        }
    }

    /// Creates the ConfigMap and the Job; returns the Job as created.
    async fn start(&self, request: &CompileRequest) -> Result<Job, CompileError> {
        let pipeline = pipeline_name(request);
        let api_error = |what: &str, e: kube::Error| {
            // A refusal of what the spec put in (a definition over the ConfigMap limit, an `env` too large) is
            // permanent (docs/reliability.md, "Which failures are retried"); the API server's message is cut.
            let refusal = match &e {
                kube::Error::Api(status) => failure::kubernetes_refusal(status.code),
                _ => FailureClass::Transient,
            };
            let cause = kfp_core::validation::bounded(&e.to_string());
            let message = format!(
                "cannot {what} to compile {pipeline} in namespace {}: {cause}",
                self.namespace
            );
            match refusal {
                FailureClass::Permanent => CompileError::invalid(message),
                FailureClass::Transient => CompileError::transient(message),
            }
        };
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let config_map = config_maps
            .create(&PostParams::default(), &self.config_map(request)?)
            .await
            .map_err(|e| api_error("create the definition ConfigMap", e))?;
        let name = config_map.name_any();
        let job = match jobs
            .create(&PostParams::default(), &self.job(&name, request))
            .await
        {
            Ok(job) => job,
            Err(e) => {
                let _ = config_maps.delete(&name, &DeleteParams::default()).await;
                return Err(api_error("create the compile Job", e));
            }
        };
        // Hand the ConfigMap to the Job, so that garbage collection removes it with the Job if the operator does
        // not get to (it dies, or loses the API server).
        if let Some(owner) = job.controller_owner_ref(&()) {
            let owner = OwnerReference {
                controller: None,
                ..owner
            };
            let patch = serde_json::json!({"metadata": {"ownerReferences": [owner]}});
            if let Err(e) = config_maps
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(namespace = %self.namespace, name, error = %e,
                    "cannot make the compile Job own its ConfigMap; it is deleted after the compilation only");
            }
        }
        Ok(job)
    }

    /// Waits for the Job to finish and reads its result.
    async fn finish(&self, job: &Job, request: &CompileRequest) -> Result<serde_json::Value, CompileError> {
        let name = job.name_any();
        let pipeline = pipeline_name(request);
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let wait = self.timeout.saturating_add(self.grace);
        let finished = match tokio::time::timeout(wait, await_condition(jobs, &name, job_finished)).await {
            Err(_) => {
                return Err(CompileError::transient(format!(
                    "the compile Job {}/{name} of {pipeline} did not finish within {}",
                    self.namespace,
                    format_duration(wait)
                )));
            }
            Ok(Err(e)) => {
                return Err(CompileError::transient(format!(
                    "cannot watch the compile Job {}/{name} of {pipeline}: {e}",
                    self.namespace
                )));
            }
            Ok(Ok(None)) => {
                return Err(CompileError::transient(format!(
                    "the compile Job {}/{name} of {pipeline} was deleted before it finished",
                    self.namespace
                )));
            }
            Ok(Ok(Some(job))) => job,
        };
        let status = finished.status.clone().unwrap_or_default();
        if condition(&status, "Complete").is_some() {
            return self.read_compiled(&finished, request).await;
        }
        let (reason, message) = condition(&status, "Failed").unwrap_or_default();
        if reason == "DeadlineExceeded" {
            return Err(CompileError::transient(format!(
                "the compile Job {}/{name} of {pipeline} did not finish within {}: {message}",
                self.namespace,
                format_duration(self.timeout)
            )));
        }
        // A container that ran and failed is the pipeline's (or framework's) fault; a pod that never ran one to
        // its end (evicted, node lost) is not.
        let pod = self.pod(&finished).await?;
        if let Some(failure) = pod.as_ref().and_then(container_failure) {
            return Err(CompileError::invalid(format!(
                "{pipeline} does not compile: {failure}"
            )));
        }
        Err(CompileError::transient(format!(
            "the compile Job {}/{name} of {pipeline} failed ({reason}: {message}) without a container failure",
            self.namespace
        )))
    }

    /// The pod of a Job (the Job controller labels it with the Job's uid).
    async fn pod(&self, job: &Job) -> Result<Option<Pod>, CompileError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let selector = format!("{CONTROLLER_UID_LABEL}={}", job.uid().unwrap_or_default());
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                CompileError::transient(format!(
                    "cannot list the pods of the compile Job {}/{}: {e}",
                    self.namespace,
                    job.name_any()
                ))
            })?;
        // With backoffLimit 0 there is one pod; prefer one that succeeded, should there be more.
        let mut pods = list.items;
        pods.sort_by_key(|pod| pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Succeeded"));
        Ok(pods.into_iter().next())
    }

    async fn read_compiled(
        &self,
        job: &Job,
        request: &CompileRequest,
    ) -> Result<serde_json::Value, CompileError> {
        let name = job.name_any();
        let pod = self.pod(job).await?.ok_or_else(|| {
            CompileError::transient(format!(
                "the compile Job {}/{name} succeeded but its pod is gone: the compiled pipeline is lost",
                self.namespace
            ))
        })?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = LogParams {
            container: Some(COMPILE_CONTAINER.to_string()),
            ..LogParams::default()
        };
        let log = pods.logs(&pod.name_any(), &params).await.map_err(|e| {
            CompileError::transient(format!(
                "cannot read the log of the compile pod {}/{}: {e}",
                self.namespace,
                pod.name_any()
            ))
        })?;
        let compiled = compiled_from_log(&log).ok_or_else(|| {
            CompileError::transient(format!(
                "the log of the compile pod {}/{} holds no compiled pipeline (no {COMPILED_MARKER:?} line): {}",
                self.namespace,
                pod.name_any(),
                output_tail(&log)
            ))
        })?;
        parse_output(request, compiled.as_bytes())
    }

    /// Deletes the Job (its pods in the background) and the ConfigMap; failures are logged: the TTL and garbage
    /// collection catch what is left.
    async fn clean_up(&self, name: &str) {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let background = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        for result in [
            jobs.delete(name, &background).await.map(drop),
            config_maps.delete(name, &DeleteParams::default()).await.map(drop),
        ] {
            match result {
                Ok(()) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => tracing::warn!(namespace = %self.namespace, name, error = %e,
                    "cannot delete a compile Job or its ConfigMap"),
            }
        }
    }
}

#[async_trait::async_trait]
impl Compiler for JobCompiler {
    async fn compile(&self, request: &CompileRequest) -> Result<serde_json::Value, CompileError> {
        let job = self.start(request).await?;
        let result = self.finish(&job, request).await;
        self.clean_up(&job.name_any()).await;
        result
    }
}

/// The `Complete` or `Failed` condition is `True` (or the Job is gone).
fn job_finished(job: Option<&Job>) -> bool {
    let Some(job) = job else { return true };
    let Some(status) = &job.status else {
        return false;
    };
    condition(status, "Complete").is_some() || condition(status, "Failed").is_some()
}

/// The reason and message of condition `type_` when it is `True`.
fn condition(status: &JobStatus, type_: &str) -> Option<(String, String)> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

/// The first container (init containers first) that terminated with a non-zero exit code, described with its
/// termination message.
fn container_failure(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let statuses: Vec<&ContainerStatus> = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .collect();
    statuses.into_iter().find_map(|container| {
        let terminated = [&container.state, &container.last_state]
            .into_iter()
            .find_map(|state| state.as_ref()?.terminated.as_ref())?;
        if terminated.exit_code == 0 {
            return None;
        }
        let what = if container.name == FRAMEWORK_CONTAINER {
            "the framework image's init container"
        } else {
            "the compile container"
        };
        let detail = terminated
            .message
            .as_deref()
            .map(output_tail)
            .filter(|m| !m.is_empty())
            .or_else(|| terminated.reason.clone())
            .unwrap_or_else(|| "no message".to_string());
        Some(format!(
            "{what} {:?} exited with code {}: {detail}",
            container.name, terminated.exit_code
        ))
    })
}

/// What follows the last [`COMPILED_MARKER`] line of a compile pod's log.
pub fn compiled_from_log(log: &str) -> Option<&str> {
    let start = log.rfind(COMPILED_MARKER)? + COMPILED_MARKER.len();
    Some(log[start..].trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, PodStatus};

    #[test]
    fn the_compiled_pipeline_follows_the_last_marker() {
        let log =
            format!("compiling\n{COMPILED_MARKER} echoed by the user\n\n{COMPILED_MARKER}\n{{\"a\": 1}}\n");
        assert_eq!(compiled_from_log(&log), Some("{\"a\": 1}"));
        assert_eq!(compiled_from_log("Traceback"), None);
    }

    #[test]
    fn container_failures_name_the_container_and_quote_the_message() {
        let terminated = |name: &str, code: i32, message: Option<&str>| ContainerStatus {
            name: name.to_string(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    message: message.map(str::to_string),
                    reason: Some("Error".to_string()),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        };
        let pod = |init: ContainerStatus, main: Option<ContainerStatus>| Pod {
            status: Some(PodStatus {
                init_container_statuses: Some(vec![init]),
                container_statuses: main.map(|m| vec![m]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        assert_eq!(
            container_failure(&pod(
                terminated(FRAMEWORK_CONTAINER, 0, None),
                Some(terminated(
                    COMPILE_CONTAINER,
                    1,
                    Some("line\nNo module named 'x'\n")
                ))
            )),
            Some(
                "the compile container \"compile\" exited with code 1: line\nNo module named 'x'".to_string()
            )
        );
        assert_eq!(
            container_failure(&pod(terminated(FRAMEWORK_CONTAINER, 127, None), None)),
            Some(
                "the framework image's init container \"framework\" exited with code 127: Error".to_string()
            )
        );
        assert_eq!(
            container_failure(&pod(terminated(FRAMEWORK_CONTAINER, 0, None), None)),
            None
        );
    }
}
