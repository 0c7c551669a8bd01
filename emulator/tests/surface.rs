//! Discovery, JWKS, TLS, persistence, key rotation, Pipelines OIDC, the control plane and the
//! request log.

mod common;

use std::sync::Arc;

use common::*;
use entra_emulator::{Emulator, ManualClock, REDACTED, well_known};
use serde_json::{Value, json};

async fn get_json(emu: &Emulator, path: &str) -> (u16, Value) {
    let response = emu
        .http_client()
        .get(format!("{}{path}", emu.https_url()))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn discovery_builds_every_url_from_the_request_host() {
    let emu = emulator().await;
    let base = emu.https_url();
    let t = well_known::TENANT_ID;
    let (status, doc) =
        get_json(&emu, &format!("/{t}/v2.0/.well-known/openid-configuration")).await;
    assert_eq!(status, 200);
    assert_eq!(doc["issuer"], format!("{base}/{t}/v2.0"));
    assert_eq!(
        doc["token_endpoint"],
        format!("{base}/{t}/oauth2/v2.0/token")
    );
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{base}/{t}/oauth2/v2.0/authorize")
    );
    assert_eq!(doc["jwks_uri"], format!("{base}/{t}/discovery/v2.0/keys"));
    assert!(doc["device_authorization_endpoint"].is_string());
    // The same document through the tenant's domain name names the tenant id.
    let (_, by_domain) = get_json(
        &emu,
        &format!(
            "/{}/v2.0/.well-known/openid-configuration",
            well_known::TENANT_DOMAIN
        ),
    )
    .await;
    assert_eq!(by_domain["issuer"], doc["issuer"]);
    // Through "localhost" instead of 127.0.0.1, the URLs follow the Host.
    let localhost = base.replace("127.0.0.1", "localhost");
    let doc: Value = emu
        .http_client()
        .get(format!(
            "{localhost}/{t}/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], format!("{localhost}/{t}/v2.0"));
    // Unknown tenant: AADSTS90002.
    let (status, body) = get_json(
        &emu,
        "/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration",
    )
    .await;
    assert_entra_error(status, &body, 90002, 400);
    // v1 document.
    let (_, v1) = get_json(&emu, &format!("/{t}/.well-known/openid-configuration")).await;
    assert_eq!(v1["issuer"], format!("https://sts.windows.net/{t}/"));
}

#[tokio::test]
async fn instance_discovery_points_back_at_the_emulator() {
    let emu = emulator().await;
    let base = emu.https_url();
    let host = base.trim_start_matches("https://");
    let (status, doc) = get_json(
        &emu,
        &format!("/common/discovery/instance?api-version=1.1&authorization_endpoint={base}/{}/oauth2/v2.0/authorize", well_known::TENANT_ID),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["tenant_discovery_endpoint"],
        format!(
            "{base}/{}/v2.0/.well-known/openid-configuration",
            well_known::TENANT_ID
        )
    );
    assert_eq!(doc["metadata"][0]["aliases"], json!([host]));
}

#[tokio::test]
async fn jwks_publishes_rsa_keys_whose_kid_is_the_certificate_thumbprint() {
    let emu = emulator().await;
    let (_, jwks) = get_json(
        &emu,
        &format!("/{}/discovery/v2.0/keys", well_known::TENANT_ID),
    )
    .await;
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    assert_eq!(key["kid"], key["x5t"]);
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(key["x5c"][0].as_str().unwrap())
        .unwrap();
    let thumb = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1(&der));
    assert_eq!(key["kid"], thumb);
}

#[tokio::test]
async fn tls_is_trusted_only_through_the_generated_ca() {
    let emu = emulator().await;
    // A client with only the platform roots refuses the emulator's certificate.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only(Vec::<reqwest::Certificate>::new())
        .no_proxy()
        .build()
        .unwrap();
    let err = untrusting
        .get(format!("{}/_emulator/health", emu.https_url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err}");
    // The CA from the ready file makes it work, for 127.0.0.1 and localhost alike.
    let ca = reqwest::Certificate::from_pem(emu.ca_cert_pem().as_bytes()).unwrap();
    let trusting = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .build()
        .unwrap();
    for base in [
        emu.https_url(),
        emu.https_url().replace("127.0.0.1", "localhost"),
    ] {
        let status = trusting
            .get(format!("{base}/_emulator/health"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn restart_keeps_the_ca_signing_keys_and_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let first = Emulator::builder()
        .state_dir(dir.path())
        .start()
        .await
        .unwrap();
    let ca = first.ca_cert_pem().to_string();
    let (_, token_body) = token(
        &first,
        well_known::TENANT_ID,
        &secret_form(well_known::CLIENT_SECRET, ARM),
    )
    .await;
    let (pkcs8, cert) = certificate_app_material(&first);
    let (_, jwks_before) = get_json(
        &first,
        &format!("/{}/discovery/v2.0/keys", well_known::TENANT_ID),
    )
    .await;
    first.shutdown().await;

    let second = Emulator::builder()
        .state_dir(dir.path())
        .start()
        .await
        .unwrap();
    assert_eq!(second.ca_cert_pem(), ca);
    assert_eq!(certificate_app_material(&second), (pkcs8, cert));
    let (_, jwks_after) = get_json(
        &second,
        &format!("/{}/discovery/v2.0/keys", well_known::TENANT_ID),
    )
    .await;
    assert_eq!(jwks_before["keys"][0]["kid"], jwks_after["keys"][0]["kid"]);
    let kid = jsonwebtoken::decode_header(token_body["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(jwks_after["keys"][0]["kid"], kid.as_str());
}

#[tokio::test]
async fn rotation_keeps_the_previous_key_published_for_the_grace_period() {
    let clock = Arc::new(ManualClock::new(
        time::OffsetDateTime::from_unix_timestamp(now()).unwrap(),
    ));
    let emu = Emulator::builder()
        .clock(clock.clone())
        .start()
        .await
        .unwrap();
    let path = format!("/{}/discovery/v2.0/keys", well_known::TENANT_ID);
    let (_, before) = get_json(&emu, &path).await;
    let old_kid = before["keys"][0]["kid"].clone();
    let new_kid = emu.rotate_signing_key().unwrap();
    let (_, during) = get_json(&emu, &path).await;
    let kids: Vec<Value> = during["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, vec![json!(new_kid), old_kid.clone()]);
    // New tokens are signed with the new key.
    let (_, body) = token(
        &emu,
        well_known::TENANT_ID,
        &secret_form(well_known::CLIENT_SECRET, ARM),
    )
    .await;
    let header = jsonwebtoken::decode_header(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.kid.unwrap(), new_kid);
    // After the grace period (24 h by default) the old key is gone.
    clock.advance(time::Duration::hours(25));
    let (_, after) = get_json(&emu, &path).await;
    assert_eq!(after["keys"].as_array().unwrap().len(), 1);
    // Rotation also works through the control plane.
    let response: Value = emu
        .http_client()
        .post(format!("{}/_emulator/keys/rotate", emu.https_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(response["kid"], json!(new_kid));
}

fn pipelines_uri(emu: &Emulator) -> String {
    emu.ready_info().profile("azure_pipelines").unwrap()["SYSTEM_OIDCREQUESTURI"].clone()
}

#[tokio::test]
async fn pipelines_oidc_issues_tokens_that_the_token_endpoint_accepts() {
    let emu = emulator().await;
    let url = format!(
        "{}?api-version=7.1&serviceConnectionId={}",
        pipelines_uri(&emu),
        well_known::SERVICE_CONNECTION_ID
    );
    let post = || {
        emu.http_client()
            .post(&url)
            .header(
                "authorization",
                format!("Bearer {}", well_known::SYSTEM_ACCESS_TOKEN),
            )
            .header("x-tfs-fedauthredirect", "Suppress")
            .header("content-length", "0")
            .send()
    };
    // Twice, as the JS SDK does.
    for _ in 0..2 {
        let body: Value = post().await.unwrap().json().await.unwrap();
        let oidc = body["oidcToken"].as_str().unwrap();
        let claims = claims_of(oidc);
        assert_eq!(
            claims["iss"],
            format!(
                "https://vstoken.dev.azure.com/{}",
                well_known::PIPELINES_ORGANIZATION_ID
            )
        );
        assert_eq!(
            claims["sub"],
            "sc://emulator-org/emulator-project/emulator-connection"
        );
        assert_eq!(claims["aud"], "api://AzureADTokenExchange");
        let form = assertion_form(well_known::PIPELINES_APP_CLIENT_ID, oidc, ARM);
        let (status, token_body) = token_owned(&emu, well_known::TENANT_ID, &form).await;
        assert_eq!(status, 200, "{token_body}");
    }
}

#[tokio::test]
async fn pipelines_oidc_rejects_a_wrong_token_with_diagnostic_headers_or_redirects() {
    let emu = emulator().await;
    let url = format!(
        "{}?api-version=7.1&serviceConnectionId={}",
        pipelines_uri(&emu),
        well_known::SERVICE_CONNECTION_ID
    );
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(emu.ca_cert_pem().as_bytes()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let wrong = client
        .post(&url)
        .header("authorization", "Bearer wrong")
        .header("x-tfs-fedauthredirect", "Suppress")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().contains_key("x-vss-e2eid"));
    assert!(wrong.headers().contains_key("x-msedge-ref"));
    let redirected = client
        .post(&url)
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(redirected.status(), 302);
    assert!(redirected.headers().contains_key("location"));
    let unknown = client
        .post(format!(
            "{}?api-version=7.1&serviceConnectionId=00000000-0000-0000-0000-000000000000",
            pipelines_uri(&emu)
        ))
        .header(
            "authorization",
            format!("Bearer {}", well_known::SYSTEM_ACCESS_TOKEN),
        )
        .header("x-tfs-fedauthredirect", "Suppress")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn request_log_records_requests_with_secrets_redacted() {
    let emu = emulator().await;
    token(
        &emu,
        well_known::TENANT_ID,
        &secret_form(well_known::CLIENT_SECRET, ARM),
    )
    .await;
    let log = emu.requests();
    let entry = log.last().unwrap();
    assert_eq!(entry.method, "POST");
    assert_eq!(
        entry.path,
        format!("/{}/oauth2/v2.0/token", well_known::TENANT_ID)
    );
    assert_eq!(entry.status, 200);
    assert_eq!(entry.form_field("client_secret"), Some(REDACTED));
    assert_eq!(entry.form_field("scope"), Some(ARM));
    let dump = serde_json::to_string(&log).unwrap();
    assert!(!dump.contains(well_known::CLIENT_SECRET));
    // The control plane serves the same log, and can clear it.
    let (_, over_http) = get_json(&emu, "/_emulator/requests").await;
    assert_eq!(over_http.as_array().unwrap().len(), log.len());
    emu.http_client()
        .delete(format!("{}/_emulator/requests", emu.https_url()))
        .send()
        .await
        .unwrap();
    assert!(emu.requests().is_empty());
}

#[tokio::test]
async fn request_log_is_bounded() {
    let mut seed = entra_emulator::Seed::default_seed();
    seed.settings.request_log_capacity = 5;
    let emu = Emulator::builder().seed(seed).start().await.unwrap();
    for _ in 0..12 {
        get_json(&emu, "/common/discovery/instance").await;
    }
    assert_eq!(emu.requests().len(), 5);
    assert_eq!(emu.requests()[0].id, 8);
}

#[tokio::test]
async fn control_plane_adds_apps_secrets_and_federated_credentials_at_run_time() {
    let emu = emulator().await;
    let client = emu.http_client();
    let base = format!("{}/_emulator", emu.https_url());
    let new_app = json!({
        "tenant": well_known::TENANT_ID,
        "client_id": "12121212-1212-1212-1212-121212121212",
        "secrets": [{"value": "runtime-secret"}],
    });
    let r = client
        .post(format!("{base}/applications"))
        .json(&new_app)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "12121212-1212-1212-1212-121212121212"),
        ("client_secret", "runtime-secret"),
        ("scope", ARM),
    ];
    assert_eq!(token(&emu, well_known::TENANT_ID, &form).await.0, 200);
    let r = client
        .post(format!(
            "{base}/applications/12121212-1212-1212-1212-121212121212/secrets"
        ))
        .json(&json!({"value": "second-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{base}/applications/12121212-1212-1212-1212-121212121212/federated-credentials"))
        .json(&json!({"issuer": well_known::KUBERNETES_ISSUER, "subject": "system:serviceaccount:ns:sa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let minted: Value = client
        .post(format!("{base}/tokens/kubernetes"))
        .json(&json!({"namespace": "ns", "service_account": "sa"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let form = assertion_form(
        "12121212-1212-1212-1212-121212121212",
        minted["token"].as_str().unwrap(),
        ARM,
    );
    assert_eq!(token_owned(&emu, well_known::TENANT_ID, &form).await.0, 200);
    // Unknown application: a 404 that says so.
    let r = client
        .post(format!("{base}/applications/nope/secrets"))
        .json(&json!({"value": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("nope"));
    // Reset forgets it.
    client
        .post(format!("{base}/reset"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        token(&emu, well_known::TENANT_ID, &form_secret_runtime())
            .await
            .0,
        400
    );
}

fn form_secret_runtime() -> Vec<(&'static str, &'static str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", "12121212-1212-1212-1212-121212121212"),
        ("client_secret", "runtime-secret"),
        ("scope", ARM),
    ]
}

#[tokio::test]
async fn control_plane_applies_a_toml_seed_and_prints_the_effective_one() {
    let emu = emulator().await;
    let client = emu.http_client();
    let base = format!("{}/_emulator", emu.https_url());
    let seed = r#"
[[tenants]]
id = "abababab-abab-abab-abab-abababababab"

[[applications]]
tenant = "abababab-abab-abab-abab-abababababab"
client_id = "cdcdcdcd-cdcd-cdcd-cdcd-cdcdcdcdcdcd"
secrets = [{ value = "seeded" }]
"#;
    let r = client
        .put(format!("{base}/seed"))
        .body(seed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "cdcdcdcd-cdcd-cdcd-cdcd-cdcdcdcdcdcd"),
        ("client_secret", "seeded"),
        ("scope", ARM),
    ];
    assert_eq!(
        token(&emu, "abababab-abab-abab-abab-abababababab", &form)
            .await
            .0,
        200
    );
    let printed = client
        .get(format!("{base}/config?format=toml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        printed.contains("cdcdcdcd-cdcd-cdcd-cdcd-cdcdcdcdcdcd"),
        "{printed}"
    );
    let bad = client
        .put(format!("{base}/seed"))
        .body("[[applications]]\nclient_id = 1")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn clock_offset_moves_issued_token_times() {
    let emu = emulator().await;
    emu.http_client()
        .put(format!("{}/_emulator/clock", emu.https_url()))
        .json(&json!({"offset_secs": 7200}))
        .send()
        .await
        .unwrap();
    let (_, body) = token(
        &emu,
        well_known::TENANT_ID,
        &secret_form(well_known::CLIENT_SECRET, ARM),
    )
    .await;
    let iat = claims_of(body["access_token"].as_str().unwrap())["iat"]
        .as_i64()
        .unwrap();
    assert!((iat - now() - 7200).abs() < 60, "iat {iat} not shifted");
}

#[tokio::test]
async fn client_options_point_azure_core_at_the_emulator() {
    let emu = emulator().await;
    let options = emu.client_options();
    let cloud = options.cloud.as_deref().expect("cloud set");
    match cloud {
        azure_core::cloud::CloudConfiguration::Custom(custom) => {
            assert_eq!(custom.authority_host, emu.https_url())
        }
        other => panic!("unexpected cloud {other:?}"),
    }
    assert!(options.transport.is_some());
}

#[tokio::test]
async fn imds_answers_in_strings_requires_metadata_and_serves_absolute_form_requests() {
    let emu = emulator().await;
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com",
        emu.http_url()
    );
    // No Metadata header: an immediate 400 (SDK probes rely on it).
    let probe = plain.get(&url).send().await.unwrap();
    assert_eq!(probe.status(), 400);
    for path in [
        "/metadata/identity/oauth2/token",
        "/metadata/identity/oauth2/token/",
    ] {
        let body: Value = plain
            .get(format!(
                "{}{path}?api-version=2018-02-01&resource=https://vault.azure.net",
                emu.http_url()
            ))
            .header("metadata", "true")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for field in [
            "access_token",
            "client_id",
            "expires_in",
            "expires_on",
            "ext_expires_in",
            "not_before",
            "resource",
            "token_type",
        ] {
            assert!(body[field].is_string(), "{field} must be a string: {body}");
        }
        let claims = claims_of(body["access_token"].as_str().unwrap());
        assert_eq!(claims["appid"], well_known::SYSTEM_ASSIGNED_CLIENT_ID);
        assert_eq!(claims["idtyp"], "app");
        assert!(
            claims["xms_mirid"]
                .as_str()
                .unwrap()
                .contains("virtualMachines")
        );
    }
    // Through the emulator as an HTTP proxy: the client names the real IMDS address in the
    // request line, but its TCP connection goes to the emulator on loopback.
    let proxied = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(emu.http_url()).unwrap())
        .build()
        .unwrap();
    let response = proxied
        .get("http://169.254.169.254/metadata/identity/oauth2/token?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com&client_id=b1b1b1b1-0000-4000-8000-000000000001")
        .header("metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["client_id"], well_known::USER_ASSIGNED_CLIENT_ID);
    // An identity the host does not have.
    let missing = plain
        .get(format!(
            "{url}&client_id=00000000-0000-0000-0000-000000000000"
        ))
        .header("metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
}

#[tokio::test]
async fn app_service_checks_the_identity_header_and_speaks_both_api_versions() {
    let emu = emulator().await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!(
        "{}/msi/token?resource=https://vault.azure.net",
        emu.http_url()
    );
    let wrong = client
        .get(format!("{base}&api-version=2019-08-01"))
        .header("x-identity-header", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let current: Value = client
        .get(format!(
            "{base}&api-version=2019-08-01&mi_res_id={}",
            well_known::USER_ASSIGNED_RESOURCE_ID
        ))
        .header("x-identity-header", well_known::APP_SERVICE_IDENTITY_HEADER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["client_id"], well_known::USER_ASSIGNED_CLIENT_ID);
    assert!(
        current["expires_on"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .is_ok()
    );
    let legacy: Value = client
        .get(format!(
            "{base}&api-version=2017-09-01&clientid={}",
            well_known::USER_ASSIGNED_CLIENT_ID
        ))
        .header("secret", well_known::APP_SERVICE_IDENTITY_HEADER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expires_on = legacy["expires_on"].as_str().unwrap();
    assert!(
        expires_on.ends_with(" +00:00") && expires_on.contains('/'),
        "{expires_on}"
    );
    // Azure CLI 2.45 appends a slash to MSI_ENDPOINT.
    let slashed = client
        .get(format!(
            "{}/msi/token/?resource=https://management.azure.com&api-version=2017-09-01",
            emu.http_url()
        ))
        .header("secret", well_known::APP_SERVICE_IDENTITY_HEADER)
        .send()
        .await
        .unwrap();
    assert_eq!(slashed.status(), 200);
}
