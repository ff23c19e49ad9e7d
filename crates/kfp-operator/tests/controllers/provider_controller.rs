//! The Provider controller on a real API server (docs/controllers.md, "Providers"): the provider service's Deployment
//! and Service are applied with server-side apply, carry the operator's environment and the Provider's pod settings,
//! follow spec changes without delete/recreate, and a reserved environment name is refused by the CRD.

use crate::support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kfp_core::resources::v1beta1::{Conditions, Provider};
use kfp_core::values::SynchronizationState::Succeeded;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::{Harness, Mode, wait_for_state, wait_until};

fn env_of(deployment: &Deployment) -> Vec<(String, String)> {
    let spec = deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let container = spec
        .containers
        .iter()
        .find(|c| c.name == "provider-service")
        .unwrap();
    container
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn provider_deployment_and_service_follow_the_provider() {
    let mut harness = Harness::start(Mode::Direct).await;
    let providers = harness.api::<Provider>();
    let provider = wait_for_state(&providers, "stub", Succeeded, |p: &Provider| p.status.as_ref()).await;
    assert_eq!(
        provider.status.as_ref().unwrap().observed_generation,
        provider.metadata.generation.unwrap()
    );

    let deployments = harness.api::<Deployment>();
    let deployment = deployments.get("provider-stub").await.unwrap();
    assert!(
        deployment
            .owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && Some(&o.uid) == provider.uid().as_ref()),
        "the Provider controls its Deployment"
    );
    assert!(
        deployment
            .managed_fields()
            .iter()
            .any(|f| f.manager.as_deref() == Some("kfp-operator") && f.operation.as_deref() == Some("Apply")),
        "applied with server-side apply by kfp-operator"
    );
    let pod = deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("default"));
    let container = pod
        .containers
        .iter()
        .find(|c| c.name == "provider-service")
        .unwrap();
    assert_eq!(
        container.image.as_deref(),
        Some("kfp-operator/provider-service:latest")
    );
    let env = env_of(&deployment);
    assert!(
        env.contains(&("PROVIDERNAME".to_string(), format!("{}/stub", harness.namespace))),
        "{env:?}"
    );
    assert!(
        env.contains(&(
            "PIPELINEROOTSTORAGE".to_string(),
            "/tmp/pipeline-root".to_string()
        )),
        "{env:?}"
    );

    let service = harness.api::<Service>().get("provider-stub").await.unwrap();
    let ports: Vec<(String, i32)> = service
        .spec
        .as_ref()
        .unwrap()
        .ports
        .clone()
        .unwrap()
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.port))
        .collect();
    assert!(
        ports.contains(&("http".to_string(), 8080)) && ports.contains(&("metrics".to_string(), 8081)),
        "{ports:?}"
    );
    let service_uid = service.uid();

    // A spec change updates the Deployment in place; the Service is untouched (no delete/recreate).
    providers
        .patch(
            "stub",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "serviceImage": "kfp-operator/provider-service:v2",
                "parameters": {"project": "my-project"},
                "podTemplateEnv": [{"name": "EXTRA", "value": "1"}]
            }})),
        )
        .await
        .unwrap();
    let updated = wait_until(
        &deployments,
        "provider-stub",
        "the Deployment to follow the Provider",
        |d: &Deployment| {
            let env = env_of(d);
            env.contains(&("PARAMETERS_PROJECT".to_string(), "my-project".to_string()))
                && env.contains(&("EXTRA".to_string(), "1".to_string()))
        },
    )
    .await;
    let container = &updated
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("kfp-operator/provider-service:v2")
    );
    assert_eq!(updated.uid(), deployment.uid(), "updated in place");
    let provider = wait_until(
        &providers,
        "stub",
        "the Provider to be in sync again",
        |p: &Provider| {
            p.status.as_ref().is_some_and(|s| {
                s.synchronization_state() == Succeeded && Some(s.observed_generation) == p.metadata.generation
            })
        },
    )
    .await;
    assert_eq!(provider.status.unwrap().synchronization_state(), Succeeded);
    assert_eq!(
        harness.api::<Service>().get("provider-stub").await.unwrap().uid(),
        service_uid
    );
    harness.stop().await;
}

/// A reserved environment name never reaches the controller now: the CRD's CEL rule refuses it, naming
/// the variable, and the Provider and its Deployment stay as they were. (The planner's `Failed` state for a
/// Provider stored before the rule existed is covered by `kfp-core`'s `spec_3_8_reserved_env_fails`.)
#[tokio::test]
async fn a_reserved_environment_name_is_refused_and_the_provider_stays() {
    let mut harness = Harness::start(Mode::Direct).await;
    let providers = harness.api::<Provider>();
    wait_for_state(&providers, "stub", Succeeded, |p: &Provider| p.status.as_ref()).await;
    let error = providers
        .patch(
            "stub",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"podTemplateEnv": [{"name": "ProviderName", "value": "x"}]}})),
        )
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("spec.podTemplateEnv[0]") && message.contains("the name ProviderName is reserved"),
        "{message}"
    );
    let provider = providers.get("stub").await.unwrap();
    assert!(provider.spec.pod_template_env.is_empty());
    assert_eq!(provider.status.unwrap().synchronization_state(), Succeeded);
    let deployment = harness.api::<Deployment>().get("provider-stub").await.unwrap();
    assert!(
        !env_of(&deployment)
            .iter()
            .any(|(name, value)| name == "ProviderName" || value == "x"),
        "{:?}",
        env_of(&deployment)
    );
    harness.stop().await;
}

/// The feed's authentication on a real API server (docs/run-completion-events.md, "Authentication"): with the Argo
/// executor, provider Deployments get `OPERATORWEBHOOK` (the feed Service in the operator's namespace) and a projected
/// ServiceAccount token for the audience `kfp-operator`, mounted where the provider service reads it by default; the
/// Provider settles `Succeeded`.
#[tokio::test]
async fn argo_provider_deployments_can_reach_the_feed() {
    let harness = Harness::start(Mode::Argo).await;
    let providers = harness.api::<Provider>();
    wait_for_state(&providers, "stub", Succeeded, |p: &Provider| p.status.as_ref()).await;
    let deployment = harness.api::<Deployment>().get("provider-stub").await.unwrap();
    let env = env_of(&deployment);
    let namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "kfp-operator-system".into());
    assert!(
        env.contains(&(
            "OPERATORWEBHOOK".to_string(),
            format!("http://kfp-operator-runcompletion-webhook-service.{namespace}:80/events")
        )),
        "{env:?}"
    );
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "kfp-operator-token")
        .unwrap();
    let token = volume.projected.unwrap().sources.unwrap()[0]
        .service_account_token
        .clone()
        .unwrap();
    assert_eq!(token.audience.as_deref(), Some("kfp-operator"));
    assert_eq!(token.path, "token");
    let container = pod
        .containers
        .iter()
        .find(|c| c.name == "provider-service")
        .unwrap();
    let mount = container
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .find(|m| m.name == "kfp-operator-token")
        .unwrap();
    assert_eq!(
        mount.mount_path,
        kfp_providers::config::DEFAULT_TOKEN_FILE.trim_end_matches("/token")
    );
    assert_eq!(mount.read_only, Some(true));
}
