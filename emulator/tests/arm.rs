//! The Resource Manager subset sign-in tools call: tenants and subscriptions by the token's
//! principal, ARM's 401s and challenge, api-version, and the cloud metadata `az cloud register`
//! reads.

mod common;

use common::{ARM, secret_form, token};
use entra_emulator::{Emulator, well_known};
use serde_json::Value;

async fn get(emu: &Emulator, path: &str, bearer: Option<&str>) -> (u16, Option<String>, Value) {
    let mut request = emu.http_client().get(format!("{}{path}", emu.arm_url()));
    if let Some(t) = bearer {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, challenge, response.json().await.unwrap())
}

async fn app_token(emu: &Emulator, scope: &str) -> String {
    let (status, body) = token(
        emu,
        well_known::TENANT_ID,
        &secret_form(well_known::CLIENT_SECRET, scope),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_service_principal_sees_its_tenant_and_its_subscriptions() {
    let emu = common::emulator().await;
    let t = app_token(&emu, ARM).await;
    let (status, _, subs) = get(&emu, "/subscriptions?api-version=2022-12-01", Some(&t)).await;
    assert_eq!(status, 200, "{subs}");
    assert_eq!(
        subs["value"][0]["subscriptionId"],
        well_known::SUBSCRIPTION_ID
    );
    assert_eq!(subs["value"][0]["state"], "Enabled");
    assert_eq!(subs["value"][0]["tenantId"], well_known::TENANT_ID);
    assert_eq!(
        subs["value"].as_array().unwrap().len(),
        1,
        "not the partner's"
    );
    let (_, _, one) = get(
        &emu,
        &format!(
            "/subscriptions/{}?api-version=2022-12-01",
            well_known::SUBSCRIPTION_ID
        ),
        Some(&t),
    )
    .await;
    assert_eq!(one["displayName"], "Emulator Subscription");
    let (status, _, missing) = get(
        &emu,
        &format!(
            "/subscriptions/{}?api-version=2022-12-01",
            well_known::PARTNER_SUBSCRIPTION_ID
        ),
        Some(&t),
    )
    .await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("SubscriptionNotFound"))
    );
    let (_, _, tenants) = get(&emu, "/tenants?api-version=2022-12-01", Some(&t)).await;
    assert_eq!(tenants["value"].as_array().unwrap().len(), 1);
    assert_eq!(tenants["value"][0]["tenantId"], well_known::TENANT_ID);
    // The other audience ARM accepts.
    let core = app_token(&emu, "https://management.core.windows.net//.default").await;
    assert_eq!(
        get(&emu, "/subscriptions?api-version=2019-11-01", Some(&core))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_guest_user_sees_home_and_guest_tenants() {
    let emu = common::emulator().await;
    let form = [
        ("grant_type", "password"),
        ("client_id", well_known::DEVELOPER_CLIENT_ID),
        ("username", well_known::GUEST_USER_PRINCIPAL_NAME),
        ("password", well_known::GUEST_USER_PASSWORD),
        ("scope", ARM),
    ];
    let (status, body) = token(&emu, well_known::PARTNER_TENANT_ID, &form).await;
    assert_eq!(status, 200, "{body}");
    let t = body["access_token"].as_str().unwrap();
    let (_, _, tenants) = get(&emu, "/tenants?api-version=2022-12-01", Some(t)).await;
    let ids: Vec<&str> = tenants["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenantId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{tenants}");
    assert!(ids.contains(&well_known::TENANT_ID) && ids.contains(&well_known::PARTNER_TENANT_ID));
    let (_, _, subs) = get(&emu, "/subscriptions?api-version=2022-12-01", Some(t)).await;
    assert_eq!(
        subs["value"][0]["subscriptionId"],
        well_known::PARTNER_SUBSCRIPTION_ID
    );
}

#[tokio::test]
async fn tokens_are_checked_as_arm_checks_them() {
    let emu = common::emulator().await;
    let (status, challenge, body) = get(&emu, "/subscriptions?api-version=2022-12-01", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "AuthenticationFailed");
    assert!(challenge.unwrap().starts_with(
        r#"Bearer authorization_uri="https://login.windows.net/", error="invalid_token""#
    ));
    let vault = app_token(&emu, well_known::KEY_VAULT_SCOPE).await;
    let (status, _, body) = get(&emu, "/subscriptions?api-version=2022-12-01", Some(&vault)).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"]["code"], "InvalidAuthenticationTokenAudience",
        "{body}"
    );
    let t = app_token(&emu, ARM).await;
    emu.set_clock_offset(3 * 3600);
    let (status, _, body) = get(&emu, "/subscriptions?api-version=2022-12-01", Some(&t)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("ExpiredAuthenticationToken"))
    );
    emu.set_clock_offset(0);
    let (status, _, body) = get(&emu, "/subscriptions", Some(&t)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("MissingApiVersionParameter"))
    );
}

#[tokio::test]
async fn cloud_metadata_names_the_emulators_endpoints() {
    let emu = common::emulator().await;
    let (status, _, cloud) = get(&emu, "/metadata/endpoints?api-version=2022-09-01", None).await;
    assert_eq!(status, 200);
    assert_eq!(cloud["resourceManager"], format!("{}/", emu.arm_url()));
    assert_eq!(
        cloud["authentication"]["loginEndpoint"],
        format!("{}/", emu.https_url())
    );
    assert_eq!(
        cloud["authentication"]["audiences"][0],
        "https://management.core.windows.net/"
    );
    assert!(cloud["suffixes"].is_object() && cloud["name"].is_string());
    let (_, _, old) = get(&emu, "/metadata/endpoints?api-version=2015-01-01", None).await;
    assert_eq!(
        old["authentication"]["loginEndpoint"],
        format!("{}/", emu.https_url())
    );
    assert!(old["graphEndpoint"].is_string());
    assert_eq!(
        emu.ready_info().arm_url.as_deref(),
        Some(emu.arm_url().as_str())
    );
}
