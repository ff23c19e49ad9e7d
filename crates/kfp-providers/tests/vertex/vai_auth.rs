//! Where the Vertex AI provider's bearer tokens come from: `accessToken`, `accessTokenFile`, and Google's flows
//! through `google-cloud-auth` (a service-account key, an external account file with and without impersonation,
//! the metadata server), each against the loopback fake's token endpoints, the token then sent as the Bearer of the
//! Cloud Storage upload. Application Default Credentials read the process environment: those tests run a child
//! process each, with an environment of their own (`child_uploads_with_application_default_credentials`).
//!
//! Network: every endpoint is the fake on 127.0.0.1. The in-process tests always name their source
//! (`accessToken`, `accessTokenFile`, `credentialsFile` or `metadataEndpoint`), so ADC is never consulted in this
//! process; the children get `HOME`, `GOOGLE_APPLICATION_CREDENTIALS` and `GCE_METADATA_HOST` (the fake, also where
//! a child expects a file) from their parent and nothing else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kfp_core::definitions::PipelineDefinitionWrapper;
use kfp_core::provider::{Provider, ProviderError};
use kfp_core::values::NamespacedName;
use kfp_providers::vai::fake::FakeVai;
use kfp_providers::vai::{VaiConfig, VaiProvider};
use serde_json::{Value, json};

const AUDIENCE: &str =
    "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov";
const SUBJECT_TOKEN: &str = "subject-token-of-the-pod";
const SERVICE_ACCOUNT: &str = "op@proj.iam.gserviceaccount.com";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Settings for `gcs`, with no source of tokens yet.
fn config(gcs: &str) -> VaiConfig {
    let mut config = VaiConfig::new(
        NamespacedName::new("kfp-operator-system", "vai"),
        "proj",
        "europe-west2",
        "pipelines",
    );
    config.gcs_endpoint = gcs.to_string();
    config.aiplatform_endpoint = gcs.to_string();
    config.request_timeout = Duration::from_secs(10);
    config
}

fn provider(fake: &FakeVai, configure: impl FnOnce(&mut VaiConfig)) -> VaiProvider {
    let mut config = config(fake.url());
    configure(&mut config);
    VaiProvider::new(config).unwrap()
}

/// One authenticated call: a pipeline version uploaded to Cloud Storage.
async fn upload(provider: &VaiProvider) -> Result<String, ProviderError> {
    let wrapper = PipelineDefinitionWrapper {
        pipeline_definition: json!({
            "name": "ns/p", "version": "v1", "image": "img:1",
            "framework": {"name": "tfx", "parameters": {}}
        }),
        compiled_pipeline: json!({"pipelineInfo": {"name": "ns-p"}, "root": {}, "schemaVersion": "2.1.0"}),
    };
    provider.create_pipeline(&wrapper).await
}

/// The Authorization headers the fake's APIs received (the token endpoints' are apart).
fn bearers(fake: &FakeVai) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter_map(|r| r.authorization)
        .collect()
}

/// The message of a `Transient` error (`transient`) or an `Invalid` one.
fn message(result: Result<String, ProviderError>, transient: bool) -> String {
    match result {
        Err(ProviderError::Transient(m)) if transient => m,
        Err(ProviderError::Invalid(m)) if !transient => m,
        other => panic!(
            "expected a {} error, got {other:?}",
            if transient { "transient" } else { "invalid" }
        ),
    }
}

fn transient(result: Result<String, ProviderError>) -> String {
    message(result, true)
}

fn invalid(result: Result<String, ProviderError>) -> String {
    message(result, false)
}

fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn write_json(path: &Path, value: &Value) -> PathBuf {
    std::fs::write(path, value.to_string()).unwrap();
    path.to_path_buf()
}

/// A throwaway RSA key made by `openssl` for this test run (no key is committed), as PKCS#8 PEM, and its public
/// key (PKCS#1 DER) for the fake to trust.
fn throwaway_rsa_key(dir: &Path) -> (String, Vec<u8>) {
    use base64::Engine;
    let path = dir.join("key.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        made,
        "this test needs the `openssl` command to make a throwaway RSA key: apt-get install openssl"
    );
    let pem = std::fs::read_to_string(&path).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(der).unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let public = ring::signature::KeyPair::public_key(&pair).as_ref().to_vec();
    (pem, public)
}

/// A service-account key file, as the IAM console downloads it; its `token_uri` is the fake's, though the crate
/// signs its own JWTs and never calls it.
fn service_account_key(fake: &FakeVai, pem: &str) -> Value {
    json!({
        "type": "service_account", "project_id": "proj", "private_key_id": "key-1", "private_key": pem,
        "client_email": SERVICE_ACCOUNT, "client_id": "1",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": format!("{}/token", fake.url()),
    })
}

/// An external account (workload identity federation) file whose subject token is the file `subject`, as
/// `gcloud iam workload-identity-pools create-cred-config` writes it, with the fake as STS (and IAM Credentials).
fn external_account(fake: &FakeVai, subject: &Path, impersonate: Option<&str>) -> Value {
    std::fs::write(subject, SUBJECT_TOKEN).unwrap();
    let mut file = json!({
        "type": "external_account", "audience": AUDIENCE,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": format!("{}/v1/token", fake.url()),
        "credential_source": {"file": subject.display().to_string()},
    });
    if let Some(email) = impersonate {
        file["service_account_impersonation_url"] = json!(format!(
            "{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
            fake.url()
        ));
    }
    file
}

/// An `authorized_user` file, as `gcloud auth application-default login` writes it, with the fake as token URI.
fn authorized_user(fake: &FakeVai) -> Value {
    fake.trust_refresh_token("client-1", "secret-1", "refresh-1");
    json!({
        "type": "authorized_user", "client_id": "client-1", "client_secret": "secret-1",
        "refresh_token": "refresh-1", "token_uri": format!("{}/token", fake.url()),
    })
}

fn jwt_claims(bearer: &str) -> Value {
    use base64::Engine;
    let token = bearer.strip_prefix("Bearer ").unwrap();
    let claims = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_static_token_skips_every_google_flow() {
    let fake = FakeVai::start().await.unwrap();
    let provider = provider(&fake, |c| {
        c.access_token = Some("static".into());
        c.metadata_endpoint = Some(closed_port());
    });
    fake.accept_token("static");
    upload(&provider).await.unwrap();
    assert!(fake.token_requests().is_empty());
    let shown = format!("{:?}", provider.config());
    assert!(
        shown.contains("AccessToken(<hidden>)") && !shown.contains("static"),
        "{shown}"
    );
    // A rejected token may be rotated: transient, and never shown.
    fake.revoke_tokens();
    let message = transient(upload(&provider).await);
    assert!(!message.contains("static"), "tokens are never shown: {message}");
}

#[tokio::test]
async fn a_token_file_is_read_on_every_request() {
    let fake = FakeVai::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let provider = provider(&fake, |c| c.access_token_file = Some(path.clone()));
    let message = transient(upload(&provider).await);
    assert!(
        message.contains("cannot read the token file") && message.contains("token"),
        "{message}"
    );
    for token in ["first", "second"] {
        std::fs::write(&path, format!("{token}\n")).unwrap();
        fake.accept_token(token);
        upload(&provider).await.unwrap();
    }
    assert_eq!(bearers(&fake), ["Bearer first", "Bearer second"]);
    assert!(fake.token_requests().is_empty());
}

#[tokio::test]
async fn the_metadata_server_token_is_cached_and_fetched_again_after_a_401() {
    let fake = FakeVai::start().await.unwrap();
    let provider = provider(&fake, |c| c.metadata_endpoint = Some(fake.url().to_string()));
    for _ in 0..3 {
        upload(&provider).await.unwrap();
    }
    assert_eq!(fake.tokens_issued(), 1, "the token is cached");
    assert_eq!(bearers(&fake), ["Bearer fake-token-1"; 3]);
    let asked = fake.token_requests();
    assert!(
        asked
            .iter()
            .all(|r| r.method == "GET"
                && r.path == "/computeMetadata/v1/instance/service-accounts/default/token"),
        "{asked:?}"
    );
    // A revoked token answers 401: the call fails (transient, the token not shown) and the next one gets a new token.
    fake.revoke_tokens();
    let message = transient(upload(&provider).await);
    assert!(
        !message.contains("fake-token"),
        "tokens are never shown: {message}"
    );
    upload(&provider).await.unwrap();
    assert_eq!(fake.tokens_issued(), 2);
    assert_eq!(bearers(&fake).last().unwrap(), "Bearer fake-token-2");
}

#[tokio::test]
async fn the_fake_metadata_server_wants_the_metadata_flavor_header() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeVai::start().await.unwrap();
    let url = format!(
        "{}/computeMetadata/v1/instance/service-accounts/default/token",
        fake.url()
    );
    let client = reqwest::Client::new();
    let bare = client.get(&url).send().await.unwrap();
    assert_eq!(bare.status().as_u16(), 403);
    let flavoured = client
        .get(&url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap();
    assert_eq!(flavoured.status().as_u16(), 200);
    let body: Value = flavoured.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
}

#[tokio::test]
async fn an_unreachable_metadata_server_is_transient_and_named() {
    let fake = FakeVai::start().await.unwrap();
    let closed = closed_port();
    let provider = provider(&fake, |c| c.metadata_endpoint = Some(closed.clone()));
    let message = transient(upload(&provider).await);
    assert!(
        message.contains(&format!("the metadata server at {closed}")),
        "{message}"
    );
    assert!(fake.requests().is_empty(), "nothing is sent without a token");
}

#[tokio::test]
async fn a_service_account_key_file_gives_self_signed_jwts() {
    let fake = FakeVai::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (pem, public) = throwaway_rsa_key(dir.path());
    let key = write_json(&dir.path().join("sa.json"), &service_account_key(&fake, &pem));
    let provider = provider(&fake, |c| {
        c.credentials_file = Some(key.clone());
        c.metadata_endpoint = Some(closed_port());
    });
    // A key the service does not know: 401, transient (keys may be rotated in).
    let message = transient(upload(&provider).await);
    assert!(!message.contains("PRIVATE KEY"), "{message}");
    fake.trust_service_account_key(public);
    upload(&provider).await.unwrap();
    upload(&provider).await.unwrap();
    let sent = bearers(&fake);
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[1], sent[2], "the JWT is cached");
    let claims = jwt_claims(&sent[2]);
    assert_eq!(claims["iss"], SERVICE_ACCOUNT);
    assert_eq!(claims["sub"], SERVICE_ACCOUNT);
    assert_eq!(claims["scope"], CLOUD_PLATFORM);
    assert!(
        fake.token_requests().is_empty(),
        "signed locally: no token endpoint"
    );
}

#[tokio::test]
async fn an_external_account_file_exchanges_its_subject_token_at_sts() {
    let fake = FakeVai::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = external_account(&fake, &dir.path().join("subject"), None);
    let path = write_json(&dir.path().join("wif.json"), &file);
    let provider = provider(&fake, |c| c.credentials_file = Some(path.clone()));
    // The pool does not trust the subject token yet: transient, naming the file, not showing the token.
    let message = transient(upload(&provider).await);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!message.contains(SUBJECT_TOKEN), "{message}");

    fake.trust_subject_token(AUDIENCE, SUBJECT_TOKEN);
    upload(&provider).await.unwrap();
    upload(&provider).await.unwrap();
    assert_eq!(bearers(&fake), ["Bearer sts-token-1"; 2]);
    let exchanges = fake.token_requests();
    let form = &exchanges.last().unwrap().body.clone().unwrap();
    assert_eq!(exchanges.last().unwrap().path, "/v1/token");
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:token-exchange"
    );
    assert_eq!(
        form["requested_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(form["subject_token_type"], "urn:ietf:params:oauth:token-type:jwt");
    assert_eq!(form["subject_token"], SUBJECT_TOKEN);
    assert_eq!(form["audience"], AUDIENCE);
    assert_eq!(form["scope"], CLOUD_PLATFORM);
}

#[tokio::test]
async fn an_external_account_can_impersonate_a_service_account() {
    let fake = FakeVai::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = external_account(&fake, &dir.path().join("subject"), Some(SERVICE_ACCOUNT));
    let path = write_json(&dir.path().join("wif.json"), &file);
    fake.trust_subject_token(AUDIENCE, SUBJECT_TOKEN);
    let provider = provider(&fake, |c| c.credentials_file = Some(path.clone()));
    // The federated identity may not impersonate the account: 403 from IAM Credentials, transient.
    let message = transient(upload(&provider).await);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!message.contains("sts-token"), "{message}");

    fake.allow_impersonation(SERVICE_ACCOUNT);
    upload(&provider).await.unwrap();
    let sent = bearers(&fake);
    assert!(
        sent.last().unwrap().starts_with("Bearer impersonated-token-"),
        "{sent:?}"
    );
    let asked = fake.token_requests();
    let exchange = asked.iter().rev().find(|r| r.path == "/v1/token").unwrap();
    // The STS token is only good for calling IAM Credentials.
    assert_eq!(
        exchange.body.as_ref().unwrap()["scope"],
        "https://www.googleapis.com/auth/iam"
    );
    let generate = asked.last().unwrap();
    assert!(
        generate
            .path
            .ends_with(&format!("{SERVICE_ACCOUNT}:generateAccessToken"))
    );
    assert!(
        generate
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Bearer sts-token-")
    );
    assert_eq!(generate.body.as_ref().unwrap()["scope"], json!([CLOUD_PLATFORM]));
}

#[tokio::test]
async fn an_authorized_user_file_refreshes_at_its_token_uri() {
    let fake = FakeVai::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_json(&dir.path().join("user.json"), &authorized_user(&fake));
    let provider = provider(&fake, |c| c.credentials_file = Some(path.clone()));
    upload(&provider).await.unwrap();
    assert_eq!(bearers(&fake), ["Bearer user-token-1"]);
    let refresh = fake.token_requests();
    assert_eq!(refresh.len(), 1);
    assert_eq!(refresh[0].body.as_ref().unwrap()["grant_type"], "refresh_token");
}

#[tokio::test]
async fn broken_credentials_files_are_invalid_and_missing_ones_transient() {
    let fake = FakeVai::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials.json");
    let provider = provider(&fake, |c| c.credentials_file = Some(path.clone()));
    let named = |message: &str| assert!(message.contains(&path.display().to_string()), "{message}");

    // Not there (yet): a Secret may be mounted later.
    named(&transient(upload(&provider).await));
    std::fs::write(
        &path,
        "{\"type\": \"service_account\", \"private_key\": \"-----BEGIN",
    )
    .unwrap();
    let message = invalid(upload(&provider).await);
    named(&message);
    assert!(
        message.contains("not JSON") && !message.contains("BEGIN"),
        "{message}"
    );
    write_json(&path, &json!({"type": "gdch_service_account"}));
    let message = invalid(upload(&provider).await);
    assert!(message.contains("gdch_service_account"), "{message}");
    write_json(
        &path,
        &json!({"type": "service_account", "client_email": SERVICE_ACCOUNT}),
    );
    named(&invalid(upload(&provider).await));
    // Fixed in place: picked up without a restart.
    std::fs::write(&path, authorized_user(&fake).to_string()).unwrap();
    upload(&provider).await.unwrap();
    assert!(fake.requests().iter().all(|r| r.authorization.is_some()));
}

// ---------------------------------------------------------------------------------------------------------------
// Application Default Credentials: each case in a child process with its own environment.
// ---------------------------------------------------------------------------------------------------------------

/// The child's settings: the fake's URL, and what the upload must give (`ok`, or a text the transient error holds).
const CHILD_GCS: &str = "KFP_VAI_ADC_CHILD_GCS";
const CHILD_EXPECT: &str = "KFP_VAI_ADC_CHILD_EXPECT";

/// Run only as a child of the tests below (a no-op otherwise): uploads with no source set, so Application Default
/// Credentials decide, and checks the outcome its parent expects.
#[tokio::test]
async fn child_uploads_with_application_default_credentials() {
    let (Ok(gcs), Ok(expect)) = (std::env::var(CHILD_GCS), std::env::var(CHILD_EXPECT)) else {
        return;
    };
    let provider = VaiProvider::new(config(&gcs)).unwrap();
    let result = upload(&provider).await;
    if expect == "ok" {
        result.unwrap();
    } else {
        let message = transient(result);
        assert!(message.contains(&expect), "{message}");
    }
}

/// `name` as this test binary lists it: behind its module path, less the crate (`vai_auth::name`), since the
/// tests are modules of a few binaries (docs/development.md).
fn test_name(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    }
}

/// Runs the child with only `env` (plus `HOME` = `home`, `GCE_METADATA_HOST` = the fake, the child's settings);
/// the fake keeps serving in this process meanwhile.
async fn adc_child(fake: &FakeVai, home: &Path, env: &[(&str, String)], expect: &str) {
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            test_name("child_uploads_with_application_default_credentials").as_str(),
            "--exact",
            "--nocapture",
        ])
        .env_clear()
        .env("HOME", home)
        .env("GCE_METADATA_HOST", fake.url().trim_start_matches("http://"))
        .env(CHILD_GCS, fake.url())
        .env(CHILD_EXPECT, expect)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), child.output())
        .await
        .expect("the child finishes")
        .unwrap();
    assert!(
        output.status.success(),
        "the child failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let ran = String::from_utf8_lossy(&output.stdout).contains("1 passed");
    assert!(
        ran,
        "the child ran no test: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

fn gac(path: &Path) -> [(&'static str, String); 1] {
    [("GOOGLE_APPLICATION_CREDENTIALS", path.display().to_string())]
}

#[tokio::test]
async fn adc_reads_a_service_account_key_from_google_application_credentials() {
    let fake = FakeVai::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (pem, public) = throwaway_rsa_key(dir.path());
    fake.trust_service_account_key(public);
    let key = write_json(&dir.path().join("sa.json"), &service_account_key(&fake, &pem));
    adc_child(&fake, dir.path(), &gac(&key), "ok").await;
    assert_eq!(jwt_claims(&bearers(&fake)[0])["iss"], SERVICE_ACCOUNT);
    assert_eq!(
        fake.tokens_issued(),
        0,
        "neither the metadata server nor a token endpoint"
    );
}

#[tokio::test]
async fn adc_reads_an_external_account_from_google_application_credentials() {
    let fake = FakeVai::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    fake.trust_subject_token(AUDIENCE, SUBJECT_TOKEN);
    let file = external_account(&fake, &dir.path().join("subject"), None);
    let path = write_json(&dir.path().join("wif.json"), &file);
    adc_child(&fake, dir.path(), &gac(&path), "ok").await;
    assert_eq!(bearers(&fake), ["Bearer sts-token-1"]);
}

#[tokio::test]
async fn adc_reads_gcloud_application_default_credentials_next() {
    let fake = FakeVai::start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let gcloud = home.path().join(".config/gcloud");
    std::fs::create_dir_all(&gcloud).unwrap();
    write_json(
        &gcloud.join("application_default_credentials.json"),
        &authorized_user(&fake),
    );
    adc_child(&fake, home.path(), &[], "ok").await;
    assert_eq!(bearers(&fake), ["Bearer user-token-1"]);
}

#[tokio::test]
async fn adc_falls_back_to_the_metadata_server() {
    let fake = FakeVai::start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    adc_child(&fake, home.path(), &[], "ok").await;
    assert_eq!(bearers(&fake), ["Bearer fake-token-1"]);
    let asked = fake.token_requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].path,
        "/computeMetadata/v1/instance/service-accounts/default/token"
    );
}

#[tokio::test]
async fn adc_with_a_missing_file_is_transient_and_names_it() {
    let fake = FakeVai::start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("not-mounted.json");
    let expect = format!(
        "the file GOOGLE_APPLICATION_CREDENTIALS names, {}",
        missing.display()
    );
    adc_child(&fake, home.path(), &gac(&missing), &expect).await;
    assert!(fake.requests().is_empty());
    assert!(
        fake.token_requests().is_empty(),
        "no fallback to the metadata server"
    );
}
