//! The Key Vault data plane as a resource provider: the challenge before any body check, each
//! token check with its 401 (or 403), api-version handling, continuous access evaluation,
//! persistence across restarts, faults and the request log.

mod common;

use base64::Engine;
use common::{ARM, secret_form, token};
use entra_emulator::Fault;
use entra_emulator::{Emulator, well_known};
use serde_json::{Value, json};

const VAULT: &str = "https://vault.azure.net/.default";
const CAE: &str = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;

async fn app_token(emu: &Emulator, client: &str, secret: &str, scope: &str, cae: bool) -> String {
    let mut form = secret_form(secret, scope);
    form[1] = ("client_id", client);
    if cae {
        form.push(("claims", CAE));
    }
    let (status, body) = token(emu, well_known::TENANT_ID, &form).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn secret_app_token(emu: &Emulator, cae: bool) -> String {
    app_token(
        emu,
        well_known::SECRET_APP_CLIENT_ID,
        well_known::CLIENT_SECRET,
        VAULT,
        cae,
    )
    .await
}

struct Answer {
    status: u16,
    challenge: Option<String>,
    body: Value,
}

async fn call(
    emu: &Emulator,
    vault: &str,
    method: reqwest::Method,
    path_and_query: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let url = format!("{}{path_and_query}", emu.key_vault_url(vault).unwrap());
    let mut request = emu.http_client().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request = match body {
        Some(body) => request.json(&body),
        None => request.header("content-length", "0"),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    Answer {
        status,
        challenge,
        body,
    }
}

async fn get_secret(emu: &Emulator, token: Option<&str>, name: &str) -> Answer {
    call(
        emu,
        well_known::KEY_VAULT_NAME,
        reqwest::Method::GET,
        &format!("/secrets/{name}?api-version=7.5"),
        token,
        None,
    )
    .await
}

async fn set_secret(emu: &Emulator, token: Option<&str>, name: &str, value: &str) -> Answer {
    call(
        emu,
        well_known::KEY_VAULT_NAME,
        reqwest::Method::PUT,
        &format!("/secrets/{name}?api-version=2025-07-01"),
        token,
        Some(json!({ "value": value })),
    )
    .await
}

fn assert_unauthorized(answer: &Answer, fragment: &str) {
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(
        answer.body["error"]["code"], "Unauthorized",
        "{}",
        answer.body
    );
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(fragment), "{message}");
    assert!(answer.challenge.is_some(), "a 401 carries a challenge");
}

#[tokio::test]
async fn a_bodiless_request_without_a_token_gets_the_challenge() {
    let emu = common::emulator().await;
    let answer = call(
        &emu,
        well_known::KEY_VAULT_NAME,
        reqwest::Method::PUT,
        "/secrets/anything?api-version=2026-04-01",
        None,
        None,
    )
    .await;
    assert_unauthorized(
        &answer,
        "AKV10000: Request is missing a Bearer or PoP token.",
    );
    assert_eq!(
        answer.challenge.unwrap(),
        format!(
            r#"Bearer authorization="{}/{}", resource="https://vault.azure.net""#,
            emu.https_url(),
            well_known::TENANT_ID
        )
    );
    let partner = call(
        &emu,
        well_known::PARTNER_KEY_VAULT_NAME,
        reqwest::Method::GET,
        "/secrets?api-version=7.4",
        None,
        None,
    )
    .await;
    assert!(
        partner
            .challenge
            .unwrap()
            .contains(&format!("/{}\"", well_known::PARTNER_TENANT_ID))
    );
}

#[tokio::test]
async fn each_token_check_answers_with_its_own_error() {
    let emu = common::emulator().await;
    let good = secret_app_token(&emu, false).await;
    assert_eq!(
        set_secret(&emu, Some(&good), "db", "s3cret").await.status,
        200
    );
    let got = get_secret(&emu, Some(&good), "db").await;
    assert_eq!(got.body["value"], "s3cret");

    assert_unauthorized(
        &get_secret(&emu, Some("not-a-jwt"), "db").await,
        "not a well-formed JWT",
    );
    let arm = secret_app_token_for(&emu, ARM).await;
    assert_unauthorized(
        &get_secret(&emu, Some(&arm), "db").await,
        "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com.",
    );
    // Another signature of the right length: a character in its middle changed.
    let mut forged: Vec<char> = good.chars().collect();
    let at = forged.len() - 20;
    forged[at] = if forged[at] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    assert_unauthorized(&get_secret(&emu, Some(&forged), "db").await, "signature");
    let partner = call(
        &emu,
        well_known::PARTNER_KEY_VAULT_NAME,
        reqwest::Method::GET,
        "/secrets/db?api-version=7.5",
        Some(&good),
        None,
    )
    .await;
    assert_unauthorized(&partner, "AKV10032: Invalid issuer.");

    // A key rotated out stays valid through its grace period.
    emu.rotate_signing_key().unwrap();
    assert_eq!(get_secret(&emu, Some(&good), "db").await.status, 200);

    // Expired beyond the clock skew.
    emu.set_clock_offset(2 * 3600);
    assert_unauthorized(
        &get_secret(&emu, Some(&good), "db").await,
        "the token expired at",
    );
    emu.set_clock_offset(0);

    // A valid token with no role on the vault.
    let web = app_token(
        &emu,
        well_known::WEB_APP_CLIENT_ID,
        well_known::WEB_APP_SECRET,
        VAULT,
        false,
    )
    .await;
    let forbidden = get_secret(&emu, Some(&web), "db").await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert_eq!(forbidden.body["error"]["code"], "Forbidden");
    assert_eq!(
        forbidden.body["error"]["innererror"]["code"],
        "ForbiddenByRbac"
    );
    let message = forbidden.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("appid={}", well_known::WEB_APP_CLIENT_ID)),
        "{message}"
    );
    assert!(message.contains("secrets/getSecret/action"), "{message}");

    let checks: Vec<String> = emu
        .requests()
        .iter()
        .filter_map(|r| r.failed_check.clone())
        .collect();
    for check in [
        "token_malformed",
        "audience",
        "signature",
        "issuer",
        "expired",
        "role_assignment",
    ] {
        assert!(
            checks.iter().any(|c| c == check),
            "{check} not logged: {checks:?}"
        );
    }
}

async fn secret_app_token_for(emu: &Emulator, scope: &str) -> String {
    app_token(
        emu,
        well_known::SECRET_APP_CLIENT_ID,
        well_known::CLIENT_SECRET,
        scope,
        false,
    )
    .await
}

#[tokio::test]
async fn api_versions_the_sdks_send_are_accepted_and_others_refused() {
    let emu = common::emulator().await;
    let token = secret_app_token(&emu, false).await;
    for version in [
        "7.0",
        "7.6",
        "2025-07-01",
        "2026-04-01",
        "2026-03-01-preview",
    ] {
        let answer = call(
            &emu,
            well_known::KEY_VAULT_NAME,
            reqwest::Method::GET,
            &format!("/secrets?api-version={version}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(answer.status, 200, "{version}: {}", answer.body);
    }
    for query in ["", "?api-version=6.0", "?api-version=latest"] {
        let answer = call(
            &emu,
            well_known::KEY_VAULT_NAME,
            reqwest::Method::GET,
            &format!("/secrets{query}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(answer.status, 400, "{query}");
        assert_eq!(answer.body["error"]["code"], "BadParameter");
    }
}

#[tokio::test]
async fn a_revoked_principals_cae_token_gets_a_claims_challenge() {
    let emu = common::emulator().await;
    let cae = secret_app_token(&emu, true).await;
    let plain = secret_app_token(&emu, false).await;
    assert_eq!(set_secret(&emu, Some(&cae), "x", "v").await.status, 200);
    let revoked_at = emu.revoke(well_known::SECRET_APP_CLIENT_ID).unwrap();

    let refused = get_secret(&emu, Some(&cae), "x").await;
    assert_unauthorized(&refused, "revoked");
    let challenge = refused.challenge.unwrap();
    let prefix = format!(
        r#"Bearer realm="", authorization_uri="{}/{}/oauth2/authorize", error="insufficient_claims", claims=""#,
        emu.https_url(),
        well_known::TENANT_ID
    );
    assert!(challenge.starts_with(&prefix), "{challenge}");
    let encoded = challenge[prefix.len()..].trim_end_matches('"');
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("standard base64 with padding"),
    )
    .unwrap();
    assert_eq!(
        claims,
        json!({"access_token": {"nbf": {"essential": true, "value": revoked_at.to_string()}}})
    );

    // Non-CAE tokens keep working until they expire.
    assert_eq!(get_secret(&emu, Some(&plain), "x").await.status, 200);
    // A new CAE token (asked for in the revocation's own second) is newer than the revocation.
    let mut form = secret_form(well_known::CLIENT_SECRET, VAULT);
    let with_claims =
        r#"{"access_token":{"nbf":{"essential":true,"value":"1"},"xms_cc":{"values":["cp1"]}}}"#;
    form.push(("claims", with_claims));
    let (_, body) = token(&emu, well_known::TENANT_ID, &form).await;
    let fresh = body["access_token"].as_str().unwrap();
    assert!(common::claims_of(fresh)["iat"].as_i64().unwrap() > revoked_at);
    assert_eq!(get_secret(&emu, Some(fresh), "x").await.status, 200);
    assert!(emu.revoke("no-such-principal").is_err());
}

#[tokio::test]
async fn secrets_survive_a_restart_with_a_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::builder()
        .state_dir(dir.path())
        .start()
        .await
        .unwrap();
    let token = secret_app_token(&emu, false).await;
    assert_eq!(
        set_secret(&emu, Some(&token), "kept", "across restarts")
            .await
            .status,
        200
    );
    emu.shutdown().await;
    let file = dir.path().join("key-vaults").join("emulator-vault.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the vault file is the owner's only");
    }
    let emu = Emulator::builder()
        .state_dir(dir.path())
        .start()
        .await
        .unwrap();
    let token = secret_app_token(&emu, false).await;
    let got = get_secret(&emu, Some(&token), "kept").await;
    assert_eq!(got.body["value"], "across restarts", "{}", got.body);
}

#[tokio::test]
async fn faults_target_the_vault_and_the_log_names_the_caller_without_secrets() {
    let emu = common::emulator().await;
    let token = secret_app_token(&emu, false).await;
    assert_eq!(
        set_secret(&emu, Some(&token), "logged", "hidden-value")
            .await
            .status,
        200
    );
    emu.add_fault(Fault::parse_flag("status@key_vault,status=503,times=1").unwrap())
        .unwrap();
    let faulted = get_secret(&emu, Some(&token), "logged").await;
    assert_eq!(faulted.status, 503);
    assert!(
        faulted.body["error"]["code"].is_string(),
        "{}",
        faulted.body
    );
    assert_eq!(get_secret(&emu, Some(&token), "logged").await.status, 200);

    let log = serde_json::to_string(&emu.requests()).unwrap();
    assert!(
        !log.contains("hidden-value"),
        "a secret value reached the log"
    );
    assert!(!log.contains(&token), "a token reached the log");
    let entry = emu
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path == "/secrets/logged")
        .unwrap();
    assert_eq!(entry.resource.as_deref(), Some("key_vault:emulator-vault"));
    assert!(
        entry
            .caller
            .unwrap()
            .starts_with(&format!("appid={}", well_known::SECRET_APP_CLIENT_ID))
    );
}
