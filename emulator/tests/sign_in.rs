//! User sign-in on the wire: the authorization endpoint's validation and answers (page errors,
//! redirected errors, response modes, prompt and sessions), code redemption's bindings (PKCE,
//! redirect URI, client, once, expiry), the device-code endpoint and grant, the password grant
//! with MFA and aliases, refresh after revocation, and logout.

mod common;

use common::{ARM, assert_entra_error, emulator, token};
use entra_emulator::stand_in::{Outcome, StandIn};
use entra_emulator::{Emulator, well_known};
use serde_json::Value;

const REDIRECT: &str = "http://localhost:7777/callback";

fn authorize_url(emu: &Emulator, tenant: &str, extra: &str) -> String {
    format!(
        "{}/{tenant}/oauth2/v2.0/authorize?client_id={}&response_type=code&redirect_uri={REDIRECT}&scope=openid%20offline_access%20https://graph.microsoft.com/User.Read&state=st{extra}",
        emu.https_url(),
        well_known::WEB_APP_CLIENT_ID,
    )
}

fn person() -> StandIn {
    StandIn::new(well_known::USER_PRINCIPAL_NAME, well_known::USER_PASSWORD)
}

async fn redeem(emu: &Emulator, code: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", well_known::WEB_APP_CLIENT_ID),
        ("client_secret", well_known::WEB_APP_SECRET),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_info", "1"),
    ];
    form.extend_from_slice(extra);
    token(emu, well_known::TENANT_ID, &form).await
}

fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn errors_entra_cannot_send_back_stay_on_its_page() {
    let emu = emulator().await;
    let http = emu.http_client();
    let cases = [
        (
            format!(
                "{}/{}/oauth2/v2.0/authorize?response_type=code",
                emu.https_url(),
                well_known::TENANT_ID
            ),
            "AADSTS900144",
        ),
        (
            authorize_url(&emu, well_known::TENANT_ID, "").replace(
                well_known::WEB_APP_CLIENT_ID,
                "00000000-0000-4000-8000-000000000000",
            ),
            "AADSTS700016",
        ),
        (
            authorize_url(&emu, well_known::TENANT_ID, "")
                .replace("localhost:7777/callback", "evil.example/steal"),
            "AADSTS50011",
        ),
        (authorize_url(&emu, "not a tenant", ""), "AADSTS900023"),
        // The web app is single-tenant: not through an alias.
        (authorize_url(&emu, "organizations", ""), "AADSTS50194"),
    ];
    for (url, code) in cases {
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{url}");
        let html = response.text().await.unwrap();
        assert!(html.contains(code), "{code} in {html}");
    }
}

#[tokio::test]
async fn other_errors_go_back_to_the_redirect_uri_with_the_state() {
    let emu = emulator().await;
    let http = emu.http_client();
    for (extra, error) in [
        ("&prompt=none", "login_required"),
        (
            "&code_challenge=x&code_challenge_method=S512",
            "invalid_request",
        ),
        ("&prompt=sometimes", "invalid_request"),
    ] {
        let response = http
            .get(authorize_url(&emu, well_known::TENANT_ID, extra))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{extra}");
        let outcome =
            Outcome::Redirect(response.headers()["location"].to_str().unwrap().to_string());
        assert_eq!(outcome.param("error").as_deref(), Some(error), "{extra}");
        assert_eq!(outcome.param("state").as_deref(), Some("st"));
        assert!(
            outcome
                .param("error_description")
                .unwrap()
                .starts_with("AADSTS")
        );
    }
    let url = authorize_url(&emu, well_known::TENANT_ID, "")
        .replace("response_type=code", "response_type=token");
    let response = http.get(url).send().await.unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.contains("error=unsupported_response_type"),
        "{location}"
    );
}

#[tokio::test]
async fn the_answer_comes_in_each_response_mode() {
    let emu = emulator().await;
    let http = emu.http_client();
    let query = person()
        .sign_in(&http, &authorize_url(&emu, well_known::TENANT_ID, ""))
        .await
        .unwrap();
    assert!(
        matches!(&query, Outcome::Redirect(l) if l.starts_with(&format!("{REDIRECT}?code="))),
        "{query:?}"
    );
    let fragment = person()
        .sign_in(
            &http,
            &authorize_url(&emu, well_known::TENANT_ID, "&response_mode=fragment"),
        )
        .await
        .unwrap();
    assert!(
        matches!(&fragment, Outcome::Redirect(l) if l.starts_with(&format!("{REDIRECT}#code="))),
        "{fragment:?}"
    );
    let form = person()
        .sign_in(
            &http,
            &authorize_url(&emu, well_known::TENANT_ID, "&response_mode=form_post"),
        )
        .await
        .unwrap();
    assert!(
        matches!(&form, Outcome::FormPost { action, .. } if action == REDIRECT),
        "{form:?}"
    );
    for outcome in [query, fragment, form] {
        assert_eq!(outcome.param("state").as_deref(), Some("st"));
        let (status, body) = redeem(&emu, &outcome.param("code").unwrap(), &[]).await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn a_redeemed_code_carries_the_user_the_nonce_and_client_info() {
    let emu = emulator().await;
    let outcome = person()
        .sign_in(
            &emu.http_client(),
            &authorize_url(&emu, well_known::TENANT_ID, "&nonce=n-1"),
        )
        .await
        .unwrap();
    let (status, body) = redeem(&emu, &outcome.param("code").unwrap(), &[]).await;
    assert_eq!(status, 200, "{body}");
    let id = jwt_claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], well_known::WEB_APP_CLIENT_ID);
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["preferred_username"], well_known::USER_PRINCIPAL_NAME);
    assert_eq!(id["oid"], well_known::USER_OBJECT_ID);
    assert_eq!(
        id["iss"],
        format!("{}/{}/v2.0", emu.https_url(), well_known::TENANT_ID)
    );
    use base64::Engine;
    let info: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body["client_info"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(info["uid"], well_known::USER_OBJECT_ID);
    assert_eq!(info["utid"], well_known::TENANT_ID);
    let access = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        (access["scp"].as_str(), access["appid"].as_str()),
        (Some("User.Read"), Some(well_known::WEB_APP_CLIENT_ID))
    );
    assert!(body["refresh_token"].is_string());
}

#[tokio::test]
async fn code_redemption_checks_every_binding() {
    let emu = emulator().await;
    let http = emu.http_client();
    // RFC 7636 appendix B.
    let pkce =
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let code = || async {
        person()
            .sign_in(&http, &authorize_url(&emu, well_known::TENANT_ID, pkce))
            .await
            .unwrap()
            .param("code")
            .unwrap()
    };
    let c = code().await;
    let (status, body) = redeem(&emu, &c, &[("code_verifier", "wrong-verifier")]).await;
    assert_entra_error(status, &body, 501481, 400);
    let c = code().await;
    let (status, body) = redeem(&emu, &c, &[]).await;
    assert_entra_error(status, &body, 501481, 400);
    let c = code().await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", well_known::WEB_APP_CLIENT_ID),
        ("client_secret", well_known::WEB_APP_SECRET),
        ("code", c.as_str()),
        ("redirect_uri", "http://localhost:7777/elsewhere"),
        ("code_verifier", verifier),
    ];
    let (status, body) = token(&emu, well_known::TENANT_ID, &form).await;
    assert_entra_error(status, &body, 50011, 400);
    // Another client may not redeem it.
    let c = code().await;
    form[1] = ("client_id", well_known::SECRET_APP_CLIENT_ID);
    form[2] = ("client_secret", well_known::CLIENT_SECRET);
    form[3] = ("code", c.as_str());
    form[4] = ("redirect_uri", REDIRECT);
    let (status, body) = token(&emu, well_known::TENANT_ID, &form).await;
    assert_entra_error(status, &body, 9002313, 400);
    // The right verifier works once; then AADSTS54005.
    let c = code().await;
    let (status, _) = redeem(&emu, &c, &[("code_verifier", verifier)]).await;
    assert_eq!(status, 200);
    let (status, body) = redeem(&emu, &c, &[("code_verifier", verifier)]).await;
    assert_entra_error(status, &body, 54005, 400);
    // A wrong client secret.
    let c = code().await;
    let (status, body) = token(
        &emu,
        well_known::TENANT_ID,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", well_known::WEB_APP_CLIENT_ID),
            ("client_secret", "wrong"),
            ("code", &c),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_entra_error(status, &body, 7000215, 401);
    // Ten minutes later: expired.
    let c = code().await;
    emu.set_clock_offset(601);
    let (status, body) = redeem(&emu, &c, &[("code_verifier", verifier)]).await;
    assert_entra_error(status, &body, 70008, 400);
}

#[tokio::test]
async fn sessions_give_single_sign_on_and_prompt_none_until_revoked_or_signed_out() {
    let emu = emulator().await;
    let http = emu.http_client();
    let someone = person();
    someone
        .sign_in(&http, &authorize_url(&emu, well_known::TENANT_ID, ""))
        .await
        .unwrap();
    assert!(someone.has_session());
    // prompt=none and no prompt: straight back with a code, no page.
    for extra in ["&prompt=none", ""] {
        let outcome = StandIn::new("nobody", "nothing");
        let response = http
            .get(authorize_url(&emu, well_known::TENANT_ID, extra))
            .header("cookie", session_cookie(&someone, &http, &emu).await)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{extra}");
        let location = response.headers()["location"].to_str().unwrap();
        assert!(location.contains("code="), "{location}");
        drop(outcome);
    }
    // prompt=login shows the page even so; a login_hint for someone else too.
    for extra in [
        "&prompt=login",
        "&login_hint=emulator.mfa@emulator.onmicrosoft.com",
    ] {
        let response = http
            .get(authorize_url(&emu, well_known::TENANT_ID, extra))
            .header("cookie", session_cookie(&someone, &http, &emu).await)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{extra}");
        assert!(response.text().await.unwrap().contains("loginfmt"));
    }
    // Revoked: the session is gone.
    let cookie = session_cookie(&someone, &http, &emu).await;
    emu.revoke_sessions(well_known::USER_PRINCIPAL_NAME)
        .unwrap();
    let response = http
        .get(authorize_url(&emu, well_known::TENANT_ID, "&prompt=none"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=login_required")
    );
    // Sign-out ends a session too.
    someone
        .sign_in(
            &http,
            &authorize_url(&emu, well_known::TENANT_ID, "&prompt=login"),
        )
        .await
        .unwrap();
    let cookie = session_cookie(&someone, &http, &emu).await;
    let out = http
        .get(format!(
            "{}/{}/oauth2/v2.0/logout?post_logout_redirect_uri={REDIRECT}",
            emu.https_url(),
            well_known::TENANT_ID
        ))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.headers()["location"], REDIRECT);
    let response = http
        .get(authorize_url(&emu, well_known::TENANT_ID, "&prompt=none"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=login_required")
    );
}

/// The `ESTSAUTH` cookie the person's browser holds (read back by signing in silently once
/// more would be circular; the stand-in shows it through a request it makes).
async fn session_cookie(person: &StandIn, http: &reqwest::Client, emu: &Emulator) -> String {
    let _ = (http, emu);
    person.cookie().expect("a session cookie")
}

#[tokio::test]
async fn the_page_says_what_went_wrong_and_asks_for_the_second_factor() {
    let emu = emulator().await;
    let http = emu.http_client();
    let url = authorize_url(&emu, well_known::TENANT_ID, "");
    let wrong = StandIn::new(well_known::USER_PRINCIPAL_NAME, "wrong")
        .sign_in(&http, &url)
        .await
        .unwrap();
    assert!(wrong.page().unwrap().contains("AADSTS50126"));
    let unknown = StandIn::new("nobody@emulator.onmicrosoft.com", "x")
        .sign_in(&http, &url)
        .await
        .unwrap();
    assert!(unknown.page().unwrap().contains("AADSTS50034"));
    // The MFA user: without the code the walk stops on the code page; a wrong code is named.
    let mfa = StandIn::new(
        well_known::MFA_USER_PRINCIPAL_NAME,
        well_known::MFA_USER_PASSWORD,
    );
    let stopped = mfa.sign_in(&http, &url).await.unwrap();
    assert!(stopped.page().unwrap().contains("name=\"otc\""));
    let wrong_code = StandIn::new(
        well_known::MFA_USER_PRINCIPAL_NAME,
        well_known::MFA_USER_PASSWORD,
    )
    .with_verification_code("000000")
    .sign_in(&http, &url)
    .await
    .unwrap();
    assert!(wrong_code.page().unwrap().contains("AADSTS500121"));
    let right = StandIn::new(
        well_known::MFA_USER_PRINCIPAL_NAME,
        well_known::MFA_USER_PASSWORD,
    )
    .with_verification_code(well_known::MFA_CODE)
    .sign_in(&http, &url)
    .await
    .unwrap();
    assert!(right.param("code").is_some());
    // Cancel: access_denied with the state.
    let cancelled = person().cancelling().sign_in(&http, &url).await.unwrap();
    assert_eq!(cancelled.param("error").as_deref(), Some("access_denied"));
    assert_eq!(cancelled.param("state").as_deref(), Some("st"));
}

async fn start_device_code(emu: &Emulator) -> Value {
    let response = emu
        .http_client()
        .post(format!(
            "{}/organizations/oauth2/v2.0/devicecode",
            emu.https_url()
        ))
        .form(&[
            ("client_id", well_known::DEVELOPER_CLIENT_ID),
            ("scope", ARM),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()
}

async fn poll(emu: &Emulator, device_code: &str) -> (u16, Value) {
    token(
        emu,
        "organizations",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", well_known::DEVELOPER_CLIENT_ID),
            ("device_code", device_code),
        ],
    )
    .await
}

#[tokio::test]
async fn device_codes_pending_declined_expired_and_approved() {
    let emu = emulator().await;
    let code = start_device_code(&emu).await;
    assert_eq!(code["interval"], 5);
    assert_eq!(code["expires_in"], 900);
    assert!(
        code["verification_uri"]
            .as_str()
            .unwrap()
            .ends_with("/devicelogin")
    );
    assert!(
        code["message"]
            .as_str()
            .unwrap()
            .contains(code["user_code"].as_str().unwrap())
    );
    let device = code["device_code"].as_str().unwrap().to_string();
    let (status, body) = poll(&emu, &device).await;
    assert_entra_error(status, &body, 70016, 400);
    assert_eq!(body["error"], "authorization_pending");
    assert_eq!(
        emu.pending_device_codes(),
        vec![code["user_code"].as_str().unwrap().to_string()]
    );
    emu.approve_device_code(
        code["user_code"].as_str().unwrap(),
        well_known::USER_PRINCIPAL_NAME,
    )
    .unwrap();
    let (status, body) = poll(&emu, &device).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["tid"],
        well_known::TENANT_ID
    );
    // Good for one token response.
    let (status, body) = poll(&emu, &device).await;
    assert_entra_error(status, &body, 70018, 400);

    let declined = start_device_code(&emu).await;
    emu.decline_device_code(declined["user_code"].as_str().unwrap())
        .unwrap();
    let (status, body) = poll(&emu, declined["device_code"].as_str().unwrap()).await;
    assert_entra_error(status, &body, 70000, 400);
    assert_eq!(body["error"], "authorization_declined");

    let late = start_device_code(&emu).await;
    emu.set_clock_offset(901);
    let (status, body) = poll(&emu, late["device_code"].as_str().unwrap()).await;
    assert_entra_error(status, &body, 70019, 400);
    assert_eq!(body["error"], "expired_token");
    assert!(
        emu.approve_device_code(
            late["user_code"].as_str().unwrap(),
            well_known::USER_PRINCIPAL_NAME
        )
        .is_err()
    );
    let (status, body) = poll(&emu, "made-up").await;
    assert_entra_error(status, &body, 70018, 400);
}

#[tokio::test]
async fn v1_device_codes_and_the_control_plane() {
    let emu = emulator().await;
    let http = emu.http_client();
    let v1: Value = http
        .post(format!(
            "{}/{}/oauth2/devicecode",
            emu.https_url(),
            well_known::TENANT_ID
        ))
        .form(&[
            ("client_id", well_known::DEVELOPER_CLIENT_ID),
            ("resource", "https://management.core.windows.net/"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v1["interval"], "5");
    assert!(v1["verification_url"].is_string());
    let control = |path: &str| format!("{}/_emulator{path}", emu.https_url());
    let listed: Value = http
        .get(control("/device-codes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["device_codes"][0]["user_code"], v1["user_code"]);
    let approve = http
        .post(control("/device-codes/approve"))
        .json(&serde_json::json!({"user_code": v1["user_code"], "user": "nobody"}))
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status(), 404);
    let approve = http
        .post(control("/device-codes/approve"))
        .json(&serde_json::json!({"user_code": v1["user_code"], "user": well_known::GUEST_USER_PRINCIPAL_NAME}))
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status(), 200);
    let again = http
        .post(control("/device-codes/decline"))
        .json(&serde_json::json!({"user_code": v1["user_code"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    // ADAL polls v1 with `code`; the guest's token is issued in the home tenant.
    let (status, body) = token(
        &emu,
        well_known::TENANT_ID,
        &[
            ("grant_type", "device_code"),
            ("client_id", well_known::DEVELOPER_CLIENT_ID),
            ("code", v1["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["tid"], well_known::TENANT_ID);
    assert_ne!(claims["oid"], well_known::GUEST_USER_OBJECT_ID);
    assert_eq!(
        claims["idp"],
        format!("https://sts.windows.net/{}/", well_known::PARTNER_TENANT_ID)
    );
    // A web page cannot approve: the control plane wants JSON.
    let form = http
        .post(control("/device-codes/decline"))
        .form(&[("user_code", "X")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
}

#[tokio::test]
async fn password_grant_aliases_mfa_and_revocation() {
    let emu = emulator().await;
    let password = |user: &'static str, pass: &'static str, tenant: &'static str| {
        let emu = &emu;
        async move {
            token(
                emu,
                tenant,
                &[
                    ("grant_type", "password"),
                    ("client_id", well_known::DEVELOPER_CLIENT_ID),
                    ("username", user),
                    ("password", pass),
                    (
                        "scope",
                        "https://management.azure.com/.default openid profile offline_access",
                    ),
                    ("client_info", "1"),
                ],
            )
            .await
        }
    };
    let (status, body) = password(
        well_known::USER_PRINCIPAL_NAME,
        well_known::USER_PASSWORD,
        "organizations",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string() && body["client_info"].is_string());
    let (status, body) = password(
        well_known::MFA_USER_PRINCIPAL_NAME,
        well_known::MFA_USER_PASSWORD,
        "common",
    )
    .await;
    assert_entra_error(status, &body, 50076, 400);
    assert_eq!(body["error"], "interaction_required");
    // The guest signs in to its host tenant by id, and to its home through an alias.
    let (status, body) = password(
        well_known::GUEST_USER_PRINCIPAL_NAME,
        well_known::GUEST_USER_PASSWORD,
        well_known::TENANT_ID,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["tid"],
        well_known::TENANT_ID
    );
    let (status, body) = password(
        well_known::GUEST_USER_PRINCIPAL_NAME,
        well_known::GUEST_USER_PASSWORD,
        "organizations",
    )
    .await;
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["tid"],
        well_known::PARTNER_TENANT_ID,
        "{status}"
    );
    // Client credentials through an alias: Entra's AADSTS50194.
    let (status, body) = token(
        &emu,
        "common",
        &common::secret_form(well_known::CLIENT_SECRET, ARM),
    )
    .await;
    assert_entra_error(status, &body, 50194, 400);

    // Refresh works until the user's sessions are revoked.
    let (_, body) = password(
        well_known::USER_PRINCIPAL_NAME,
        well_known::USER_PASSWORD,
        well_known::TENANT_ID,
    )
    .await;
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("client_id", well_known::DEVELOPER_CLIENT_ID),
        ("refresh_token", rt.as_str()),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let (status, body) = token(&emu, "organizations", &refresh).await;
    assert_eq!(status, 200, "{body}");
    emu.revoke_sessions(well_known::USER_OBJECT_ID).unwrap();
    let (status, body) = token(&emu, "organizations", &refresh).await;
    assert_entra_error(status, &body, 50173, 400);
}

#[tokio::test]
async fn discovery_advertises_only_what_is_served() {
    let emu = emulator().await;
    let http = emu.http_client();
    let doc: Value = http
        .get(format!(
            "{}/organizations/v2.0/.well-known/openid-configuration",
            emu.https_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for key in [
        "authorization_endpoint",
        "device_authorization_endpoint",
        "end_session_endpoint",
        "token_endpoint",
    ] {
        let url = doc[key].as_str().unwrap();
        let response = http.post(url).form(&[("x", "y")]).send().await.unwrap();
        assert_ne!(response.status(), 404, "{key}: {url}");
        assert_ne!(response.status(), 405, "{key}: {url}");
    }
}

#[tokio::test]
async fn user_realm_says_which_names_are_managed_here() {
    let emu = emulator().await;
    let http = emu.http_client();
    let realm = |user: &'static str| {
        let (http, url) = (
            http.clone(),
            format!(
                "{}/common/userrealm/{user}?api-version=1.0",
                emu.https_url()
            ),
        );
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let managed = realm("emulator.user@emulator.onmicrosoft.com").await;
    assert_eq!(managed["account_type"], "Managed");
    assert_eq!(managed["domain_name"], "emulator.onmicrosoft.com");
    assert_eq!(
        realm("someone@example.com").await["account_type"],
        "Unknown"
    );
}
