//! Snapshots of every host's error bodies as the emulator sends them, so a change to a wire
//! shape shows up as a diff. Random ids and times are replaced by placeholders.

mod common;

use std::time::Duration;

use common::*;
use entra_emulator::{Emulator, Endpoint, Fault, FaultAction, well_known};
use serde_json::{Value, json};

/// Replaces UUIDs, timestamps and ports so a snapshot is stable.
fn stable(value: &Value) -> Value {
    let text = value.to_string();
    let uuid = regex::Regex::new(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    )
    .unwrap();
    let simple = regex::Regex::new(r"\b[0-9a-f]{32}\b").unwrap();
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ").unwrap();
    let port = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    let keep = [
        well_known::TENANT_ID,
        well_known::SECRET_APP_CLIENT_ID,
        well_known::SYSTEM_ASSIGNED_CLIENT_ID,
        well_known::USER_ASSIGNED_CLIENT_ID,
        well_known::SERVICE_CONNECTION_ID,
    ];
    let text = uuid.replace_all(&text, |c: &regex::Captures<'_>| {
        let found = &c[0];
        if keep.contains(&found) {
            found.to_string()
        } else {
            "<uuid>".to_string()
        }
    });
    let text = simple.replace_all(&text, "<id>");
    let text = time.replace_all(&text, "<time>");
    let text = port.replace_all(&text, "127.0.0.1:<port>");
    serde_json::from_str(&text).unwrap()
}

/// Status, the headers that matter to clients, and the body.
async fn exchange(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("the emulator answers");
    let status = response.status().as_u16();
    let mut headers = serde_json::Map::new();
    for name in ["content-type", "www-authenticate", "retry-after"] {
        if let Some(v) = response.headers().get(name) {
            let v = v.to_str().unwrap();
            let v = if name == "www-authenticate" && v.starts_with("Basic realm=") {
                "Basic realm=<challenge file>"
            } else {
                v
            };
            headers.insert(name.to_string(), json!(v));
        }
    }
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    stable(&json!({ "status": status, "headers": headers, "body": body }))
}

fn sf_client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

const RESOURCE: &str = "resource=https://management.azure.com";

/// One request per host error the emulator knows, by name.
async fn host_errors(emu: &Emulator) -> Vec<(&'static str, Value)> {
    let http = emu.http_client();
    let base = emu.http_url();
    let imds = format!("{base}/metadata/identity/oauth2/token?api-version=2018-02-01");
    let app = format!("{base}/msi/token?api-version=2019-08-01");
    let arc = format!("{base}/arc/metadata/identity/oauth2/token?api-version=2020-06-01");
    let ml = format!("{base}/azureml/msi/token?api-version=2017-09-01");
    let sf = format!(
        "{}/metadata/identity/oauth2/token?api-version=2019-07-01-preview",
        emu.service_fabric_url()
    );
    let pipelines = format!(
        "{base}/org/project/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken?api-version=7.1"
    );
    let sfc = sf_client();
    let mut errors = vec![
        (
            "imds_no_metadata_header",
            exchange(http.get(format!("{imds}&{RESOURCE}"))).await,
        ),
        (
            "imds_no_resource",
            exchange(http.get(&imds).header("metadata", "true")).await,
        ),
        (
            "imds_unknown_identity",
            exchange(
                http.get(format!(
                    "{imds}&{RESOURCE}&client_id=00000000-0000-0000-0000-000000000009"
                ))
                .header("metadata", "true"),
            )
            .await,
        ),
        (
            "imds_two_selectors",
            exchange(
                http.get(format!("{imds}&{RESOURCE}&client_id=a&object_id=b"))
                    .header("metadata", "true"),
            )
            .await,
        ),
        (
            "app_service_wrong_header",
            exchange(
                http.get(format!("{app}&{RESOURCE}"))
                    .header("x-identity-header", "wrong"),
            )
            .await,
        ),
        (
            "app_service_no_resource",
            exchange(
                http.get(&app)
                    .header("x-identity-header", well_known::APP_SERVICE_IDENTITY_HEADER),
            )
            .await,
        ),
        (
            "app_service_unknown_identity",
            exchange(
                http.get(format!("{app}&{RESOURCE}&client_id=nobody"))
                    .header("x-identity-header", well_known::APP_SERVICE_IDENTITY_HEADER),
            )
            .await,
        ),
        (
            "arc_no_metadata_header",
            exchange(http.get(format!("{arc}&{RESOURCE}"))).await,
        ),
        (
            "arc_challenge",
            exchange(
                http.get(format!("{arc}&{RESOURCE}"))
                    .header("metadata", "true"),
            )
            .await,
        ),
        (
            "arc_wrong_secret",
            exchange(
                http.get(format!("{arc}&{RESOURCE}"))
                    .header("metadata", "true")
                    .header("authorization", "Basic wrong"),
            )
            .await,
        ),
        (
            "azure_ml_wrong_secret",
            exchange(
                http.get(format!("{ml}&{RESOURCE}"))
                    .header("secret", "wrong"),
            )
            .await,
        ),
        (
            "azure_ml_no_resource",
            exchange(
                http.get(&ml)
                    .header("secret", well_known::MANAGED_IDENTITY_SECRET),
            )
            .await,
        ),
        (
            "cloud_shell_no_metadata_header",
            exchange(
                http.post(format!("{base}/oauth2/token"))
                    .form(&[("resource", "https://management.azure.com")]),
            )
            .await,
        ),
        (
            "cloud_shell_no_resource",
            exchange(
                http.post(format!("{base}/oauth2/token"))
                    .header("metadata", "true")
                    .form(&[("x", "y")]),
            )
            .await,
        ),
        (
            "service_fabric_no_secret",
            exchange(sfc.get(format!("{sf}&{RESOURCE}"))).await,
        ),
        (
            "service_fabric_wrong_secret",
            exchange(
                sfc.get(format!("{sf}&{RESOURCE}"))
                    .header("secret", "wrong"),
            )
            .await,
        ),
        (
            "service_fabric_no_resource",
            exchange(
                sfc.get(&sf)
                    .header("secret", well_known::MANAGED_IDENTITY_SECRET),
            )
            .await,
        ),
        (
            "service_fabric_unknown_identity",
            exchange(
                sfc.get(format!("{sf}&{RESOURCE}&client_id=nobody"))
                    .header("secret", well_known::MANAGED_IDENTITY_SECRET),
            )
            .await,
        ),
        (
            "pipelines_no_service_connection",
            exchange(http.post(&pipelines).header("authorization", "Bearer x")).await,
        ),
        (
            "pipelines_wrong_token",
            exchange(
                http.post(format!(
                    "{pipelines}&serviceConnectionId={}",
                    well_known::SERVICE_CONNECTION_ID
                ))
                .header("authorization", "Bearer wrong")
                .header("X-TFS-FedAuthRedirect", "Suppress"),
            )
            .await,
        ),
        (
            "token_wrong_method",
            exchange(http.get(emu.token_url(well_known::TENANT_ID))).await,
        ),
        (
            "unknown_path",
            exchange(http.get(format!("{base}/nothing/here"))).await,
        ),
        (
            "token_not_a_form",
            exchange(
                http.post(emu.token_url(well_known::TENANT_ID))
                    .header("content-type", "application/json")
                    .body("{}"),
            )
            .await,
        ),
        (
            "token_unknown_tenant",
            exchange(
                http.post(emu.token_url("00000000-0000-0000-0000-00000000dead"))
                    .form(&secret_form("x", ARM)),
            )
            .await,
        ),
        (
            "token_wrong_secret",
            exchange(
                http.post(emu.token_url(well_known::TENANT_ID))
                    .form(&secret_form("wrong", ARM)),
            )
            .await,
        ),
    ];
    errors.extend(key_vault_errors(emu).await);
    let arm = emu.arm_url();
    errors.push((
        "arm_no_token",
        exchange(http.get(format!("{arm}/subscriptions?api-version=2022-12-01"))).await,
    ));
    errors.push((
        "arm_metadata_endpoints",
        exchange(http.get(format!("{arm}/metadata/endpoints?api-version=2022-09-01"))).await,
    ));
    errors
}

/// The Key Vault's answers: the challenge, token and role refusals, missing secrets, bad input.
async fn key_vault_errors(emu: &Emulator) -> Vec<(&'static str, Value)> {
    let http = emu.http_client();
    let vault = emu.key_vault_url(well_known::KEY_VAULT_NAME).unwrap();
    let token = |client: &'static str, secret: &'static str, scope: &'static str| async move {
        let mut form = secret_form(secret, scope);
        form[1] = ("client_id", client);
        let body: Value = emu
            .http_client()
            .post(emu.token_url(well_known::TENANT_ID))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_string()
    };
    let vault_scope = well_known::KEY_VAULT_SCOPE;
    let good = token(
        well_known::SECRET_APP_CLIENT_ID,
        well_known::CLIENT_SECRET,
        vault_scope,
    )
    .await;
    let arm = token(
        well_known::SECRET_APP_CLIENT_ID,
        well_known::CLIENT_SECRET,
        ARM,
    )
    .await;
    let web = token(
        well_known::WEB_APP_CLIENT_ID,
        well_known::WEB_APP_SECRET,
        vault_scope,
    )
    .await;
    let get = |path: &str| http.get(format!("{vault}{path}"));
    vec![
        (
            "key_vault_no_token",
            exchange(
                http.put(format!("{vault}/secrets/x?api-version=7.5"))
                    .header("content-length", "0"),
            )
            .await,
        ),
        (
            "key_vault_wrong_audience",
            exchange(get("/secrets/x?api-version=7.5").bearer_auth(&arm)).await,
        ),
        (
            "key_vault_no_role",
            exchange(get("/secrets/x?api-version=7.5").bearer_auth(&web)).await,
        ),
        (
            "key_vault_secret_not_found",
            exchange(get("/secrets/missing?api-version=7.5").bearer_auth(&good)).await,
        ),
        (
            "key_vault_bad_api_version",
            exchange(get("/secrets?api-version=6.0").bearer_auth(&good)).await,
        ),
        (
            "key_vault_set_without_value",
            exchange(
                http.put(format!("{vault}/secrets/x?api-version=7.5"))
                    .bearer_auth(&good)
                    .json(&json!({"contentType": "text/plain"})),
            )
            .await,
        ),
    ]
}

#[tokio::test]
async fn every_host_error_body() {
    let emu = emulator().await;
    for (name, exchange) in host_errors(&emu).await {
        insta::assert_json_snapshot!(name, exchange);
    }
}

/// The request each host's injected status fault is checked with.
async fn faulted(emu: &Emulator, endpoint: Endpoint, status: u16) -> Value {
    emu.clear_faults();
    let mut action = FaultAction::status(status);
    if status == 429
        && let FaultAction::Status { retry_after, .. } = &mut action
    {
        *retry_after = Some(3);
    }
    emu.add_fault(Fault::new(action).on(endpoint)).unwrap();
    let http = emu.http_client();
    let base = emu.http_url();
    let request = match endpoint {
        Endpoint::Token => http.post(emu.token_url(well_known::TENANT_ID)).form(&secret_form(well_known::CLIENT_SECRET, ARM)),
        Endpoint::Discovery => http.get(format!("{}/{}/v2.0/.well-known/openid-configuration", emu.https_url(), well_known::TENANT_ID)),
        Endpoint::Jwks => http.get(format!("{}/{}/discovery/v2.0/keys", emu.https_url(), well_known::TENANT_ID)),
        Endpoint::Imds => http.get(format!("{base}/metadata/identity/oauth2/token?api-version=2018-02-01&{RESOURCE}")).header("metadata", "true"),
        Endpoint::AppService => http.get(format!("{base}/msi/token?api-version=2019-08-01&{RESOURCE}")).header("x-identity-header", well_known::APP_SERVICE_IDENTITY_HEADER),
        Endpoint::Arc => http.get(format!("{base}/arc/metadata/identity/oauth2/token?api-version=2020-06-01&{RESOURCE}")).header("metadata", "true"),
        Endpoint::ServiceFabric => sf_client()
            .get(format!("{}/metadata/identity/oauth2/token?api-version=2019-07-01-preview&{RESOURCE}", emu.service_fabric_url()))
            .header("secret", well_known::MANAGED_IDENTITY_SECRET),
        Endpoint::CloudShell => http.post(format!("{base}/oauth2/token")).header("metadata", "true").form(&[("resource", "https://management.azure.com")]),
        Endpoint::AzureMl => http.get(format!("{base}/azureml/msi/token?api-version=2017-09-01&{RESOURCE}")).header("secret", well_known::MANAGED_IDENTITY_SECRET),
        Endpoint::Pipelines => http
            .post(format!(
                "{base}/org/project/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken?api-version=7.1&serviceConnectionId={}",
                well_known::SERVICE_CONNECTION_ID
            ))
            .header("authorization", format!("Bearer {}", well_known::SYSTEM_ACCESS_TOKEN)),
        Endpoint::Authorize => http.get(format!("{}/organizations/oauth2/v2.0/authorize?client_id={}&response_type=code&redirect_uri=http://localhost&scope=openid", emu.https_url(), well_known::DEVELOPER_CLIENT_ID)),
        Endpoint::DeviceCode => http.post(format!("{}/organizations/oauth2/v2.0/devicecode", emu.https_url())).form(&[("client_id", well_known::DEVELOPER_CLIENT_ID), ("scope", ARM)]),
        Endpoint::KeyVault => http.get(format!("{}/secrets/x?api-version=7.5", emu.key_vault_url(well_known::KEY_VAULT_NAME).unwrap())),
        Endpoint::Arm => http.get(format!("{}/subscriptions?api-version=2022-12-01", emu.arm_url())),
    };
    exchange(request).await
}

#[tokio::test]
async fn an_injected_status_answers_in_each_hosts_own_shape() {
    let emu = emulator().await;
    for endpoint in Endpoint::ALL {
        for status in [429, 500, 404] {
            let name = format!("fault_{}_{status}", endpoint.name());
            insta::assert_json_snapshot!(name, faulted(&emu, endpoint, status).await);
        }
    }
}

/// The ready file as clients read it: listeners, CA, and one environment per flow.
#[tokio::test]
async fn ready_file_shape() {
    let emu = emulator().await;
    let mut ready = serde_json::to_value(emu.ready_info()).unwrap();
    ready["pid"] = json!("<pid>");
    // The CLI profiles put the fake `az`/`azd` first on PATH only when they are built next to
    // this executable, which depends on what else was built: leave PATH out of the snapshot.
    for profile in ["azure_cli", "azure_developer_cli"] {
        if let Some(vars) = ready["profiles"][profile].as_object_mut() {
            vars.remove("PATH");
        }
    }
    let state_dir = emu.state_dir().display().to_string();
    let text = ready.to_string().replace(&state_dir, "<state_dir>");
    let thumbprint = regex::Regex::new(r"\b[0-9A-F]{40}\b").unwrap();
    let text = thumbprint.replace_all(&text, "<thumbprint>");
    let tokens = regex::Regex::new(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+").unwrap();
    let text = tokens.replace_all(&text, "<jwt>");
    insta::assert_json_snapshot!("ready_file", stable(&serde_json::from_str(&text).unwrap()));
}

/// Faults that imitate something other than the host keep their own body: Docker Desktop's
/// plain-text 403 is not reshaped as an IMDS error.
#[tokio::test]
async fn presets_keep_their_own_bodies() {
    let emu = emulator().await;
    emu.add_fault(Fault::new(FaultAction::Unreachable).on(Endpoint::Imds))
        .unwrap();
    let http = emu.http_client();
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&{RESOURCE}",
        emu.http_url()
    );
    let unreachable = exchange(http.get(&url).header("metadata", "true")).await;
    insta::assert_json_snapshot!("fault_imds_unreachable", unreachable);
    emu.clear_faults();
    emu.add_fault(Fault::new(FaultAction::Gone).on(Endpoint::Imds))
        .unwrap();
    let gone = exchange(http.get(&url).header("metadata", "true")).await;
    insta::assert_json_snapshot!("fault_imds_gone", gone);
}
