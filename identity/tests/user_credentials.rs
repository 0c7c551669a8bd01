//! The user credentials against the in-process emulator: device code (approved through the
//! emulator, declined, expired), the browser flow through a stand-in person (signed in,
//! wrong password, MFA, cancelled, timed out), authorization code and on-behalf-of, silent
//! sign-in from an AuthenticationRecord, and revoked sessions.
#![allow(clippy::disallowed_methods)] // the emulator runs on real time

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use azure_core::credentials::TokenCredential;
use azure_identity::os::{Browser, Os, Sleep};
use azure_identity::{
    AuthenticationRecord, AuthorizationCodeCredential, AuthorizationCodeCredentialOptions,
    DeviceCodeCredential, DeviceCodeCredentialOptions, DeviceCodeInfo,
    InteractiveBrowserCredential, InteractiveBrowserCredentialOptions, OnBehalfOfCredential,
    OnBehalfOfCredentialOptions,
};
use entra_emulator::stand_in::{Outcome, StandIn};
use entra_emulator::{Emulator, Seed, well_known};

const ARM: &str = "https://management.azure.com/.default";
const API: &str = well_known::MIDDLE_TIER_SCOPE;
const GRAPH: &str = "https://graph.microsoft.com/User.Read";

/// Waits a moment of real time whatever it is asked: polling yields to the test's approval
/// without waiting the server's interval.
#[derive(Debug)]
struct Yield;

impl Sleep for Yield {
    fn sleep(&self, _: time::Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(std::time::Duration::from_millis(5)))
    }
}

async fn emulator() -> Emulator {
    Emulator::builder()
        .https_port(0)
        .http_port(0)
        .service_fabric_port(0)
        .start()
        .await
        .expect("emulator starts")
}

fn claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn user_of(token: &str) -> (String, String) {
    let c = claims(token);
    let name = c["upn"].as_str().or(c["preferred_username"].as_str());
    let client = c["appid"].as_str().or(c["azp"].as_str());
    (name.unwrap().to_string(), client.unwrap().to_string())
}

fn os(sleep: Arc<dyn Sleep>) -> Os {
    Os {
        sleep,
        ..Os::default()
    }
}

/// A device-code prompt that hands each code to the test.
fn prompt_channel() -> (
    azure_identity::DeviceCodePrompt,
    tokio::sync::mpsc::UnboundedReceiver<DeviceCodeInfo>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (
        Arc::new(move |info: &DeviceCodeInfo| {
            let _ = tx.send(info.clone());
        }),
        rx,
    )
}

fn device_code(
    emu: &Emulator,
    prompt: azure_identity::DeviceCodePrompt,
    tenant: Option<&str>,
) -> Arc<DeviceCodeCredential> {
    DeviceCodeCredential::new(Some(DeviceCodeCredentialOptions {
        tenant_id: tenant.map(str::to_string),
        user_prompt: Some(prompt),
        client_options: emu.client_options(),
        os: os(Arc::new(Yield)),
        ..Default::default()
    }))
    .unwrap()
}

#[tokio::test]
async fn device_code_approved_then_refreshed_silently() {
    let emu = emulator().await;
    let (prompt, mut codes) = prompt_channel();
    let credential = device_code(&emu, prompt, None);
    let approver = async {
        let info = codes.recv().await.unwrap();
        assert!(info.message.contains(&info.user_code), "{}", info.message);
        assert!(info.verification_uri.ends_with("/devicelogin"));
        emu.approve_device_code(&info.user_code, well_known::USER_PRINCIPAL_NAME)
            .unwrap();
    };
    let (token, ()) = tokio::join!(credential.get_token(&[ARM], None), approver);
    let token = token.unwrap();
    assert_eq!(
        user_of(token.token.secret()),
        (
            well_known::USER_PRINCIPAL_NAME.to_string(),
            well_known::DEVELOPER_CLIENT_ID.to_string()
        )
    );
    // Another scope: the refresh token, no second device code.
    emu.clear_requests();
    let api = credential.get_token(&[API], None).await.unwrap();
    assert_eq!(
        claims(api.token.secret())["aud"],
        well_known::MIDDLE_TIER_CLIENT_ID
    );
    let grants: Vec<_> = emu
        .requests()
        .iter()
        .filter_map(|r| r.form_field("grant_type").map(str::to_string))
        .collect();
    assert_eq!(grants, ["refresh_token"]);
    assert!(codes.try_recv().is_err(), "no second prompt");
}

#[tokio::test]
async fn device_code_on_the_page_and_declined_and_expired() {
    let emu = emulator().await;
    // A person types the code on /devicelogin and signs in.
    let (prompt, mut codes) = prompt_channel();
    let credential = device_code(&emu, prompt, Some(well_known::TENANT_ID));
    let person = async {
        let info = codes.recv().await.unwrap();
        let outcome = StandIn::new(well_known::USER_PRINCIPAL_NAME, well_known::USER_PASSWORD)
            .approve_device_code(&emu.http_client(), &info.verification_uri, &info.user_code)
            .await
            .unwrap();
        assert!(outcome.page().unwrap().contains("You have signed in"));
    };
    let (token, ()) = tokio::join!(credential.get_token(&[ARM], None), person);
    assert_eq!(
        claims(token.unwrap().token.secret())["tid"],
        well_known::TENANT_ID
    );

    // Declined.
    let (prompt, mut codes) = prompt_channel();
    let credential = device_code(&emu, prompt, None);
    let decline = async {
        let info = codes.recv().await.unwrap();
        emu.decline_device_code(&info.user_code).unwrap();
    };
    let (result, ()) = tokio::join!(credential.get_token(&[ARM], None), decline);
    let text = result.unwrap_err().to_string();
    assert!(text.contains("AADSTS70000"), "{text}");

    // Nobody comes: the code expires on the credential's clock.
    let clock = Arc::new(azure_identity::os::ManualClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let credential = DeviceCodeCredential::new(Some(DeviceCodeCredentialOptions {
        user_prompt: Some(Arc::new(|_: &DeviceCodeInfo| {})),
        client_options: emu.client_options(),
        os: Os::with_manual_clock(clock),
        ..Default::default()
    }))
    .unwrap();
    let text = credential
        .get_token(&[ARM], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("device code expired"), "{text}");
}

#[tokio::test]
async fn an_authentication_record_signs_a_new_credential_in_silently() {
    let emu = emulator().await;
    let mut seed = Seed::default_seed();
    seed.sign_in.auto_approve_device_codes = Some(well_known::USER_PRINCIPAL_NAME.into());
    emu.apply_seed(seed).unwrap();
    let first = device_code(&emu, Arc::new(|_: &DeviceCodeInfo| {}), None);
    let record = first.authenticate(&[ARM], None).await.unwrap();
    assert_eq!(record.username, well_known::USER_PRINCIPAL_NAME);
    assert_eq!(
        record.home_account_id,
        format!("{}.{}", well_known::USER_OBJECT_ID, well_known::TENANT_ID)
    );
    let json = record.serialize();
    assert!(json.contains("\"homeAccountId\""), "{json}");

    let later = DeviceCodeCredential::new(Some(DeviceCodeCredentialOptions {
        authentication_record: Some(AuthenticationRecord::deserialize(&json).unwrap()),
        disable_automatic_authentication: true,
        client_options: emu.client_options(),
        ..Default::default()
    }))
    .unwrap();
    emu.clear_requests();
    later.get_token(&[GRAPH], None).await.unwrap();
    assert!(
        emu.requests()
            .iter()
            .all(|r| r.form_field("grant_type") == Some("refresh_token"))
    );

    // Revoked: the refresh token stops working, and this credential may not prompt.
    emu.revoke_sessions(well_known::USER_PRINCIPAL_NAME)
        .unwrap();
    let text = later.get_token(&[API], None).await.unwrap_err().to_string();
    assert!(text.contains("disable_automatic_authentication"), "{text}");
    assert!(
        emu.requests()
            .iter()
            .any(|r| r.status == 400 && r.form_field("grant_type") == Some("refresh_token")),
        "the refused refresh is in the log"
    );
}

/// A browser that a stand-in person uses: it walks the sign-in pages and delivers the answer
/// to the credential's loopback listener.
#[derive(Debug)]
struct PersonAtBrowser {
    person: Arc<StandIn>,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Outcome>>>,
    gave_up: Arc<tokio::sync::Notify>,
}

/// The credential's wait for the user ends when the person gives up (stops on a page), not
/// after real time.
#[derive(Debug)]
struct UntilGivenUp(Arc<tokio::sync::Notify>);

impl Sleep for UntilGivenUp {
    fn sleep(&self, _: time::Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let notify = self.0.clone();
        Box::pin(async move { notify.notified().await })
    }
}

impl Browser for PersonAtBrowser {
    fn open(&self, url: &str) -> std::io::Result<()> {
        let (person, http, seen, url) = (
            self.person.clone(),
            self.http.clone(),
            self.seen.clone(),
            url.to_string(),
        );
        let gave_up = self.gave_up.clone();
        tokio::spawn(async move {
            let outcome = person.sign_in(&http, &url).await.unwrap();
            seen.lock().unwrap().push(outcome.clone());
            if matches!(outcome, Outcome::Page { .. }) {
                gave_up.notify_one();
            } else {
                // The loopback listener is plain HTTP on 127.0.0.1.
                let plain = reqwest::Client::builder().no_proxy().build().unwrap();
                person.deliver(&plain, &outcome).await.unwrap();
            }
        });
        Ok(())
    }
}

fn browser_credential(
    emu: &Emulator,
    person: StandIn,
    timeout_secs: u64,
) -> (Arc<InteractiveBrowserCredential>, Arc<Mutex<Vec<Outcome>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let gave_up = Arc::new(tokio::sync::Notify::new());
    let browser = PersonAtBrowser {
        person: Arc::new(person),
        http: emu.http_client(),
        seen: seen.clone(),
        gave_up: gave_up.clone(),
    };
    let credential = InteractiveBrowserCredential::new(Some(InteractiveBrowserCredentialOptions {
        client_options: emu.client_options(),
        timeout: Some(std::time::Duration::from_secs(timeout_secs)),
        os: Os {
            browser: Arc::new(browser),
            sleep: Arc::new(UntilGivenUp(gave_up)),
            ..Os::default()
        },
        ..Default::default()
    }))
    .unwrap();
    (credential, seen)
}

#[tokio::test]
async fn interactive_browser_signs_in_through_the_page() {
    let emu = emulator().await;
    let person = StandIn::new(well_known::USER_PRINCIPAL_NAME, well_known::USER_PASSWORD);
    let (credential, seen) = browser_credential(&emu, person, 30);
    let token = credential.get_token(&[ARM], None).await.unwrap();
    assert_eq!(
        user_of(token.token.secret()).0,
        well_known::USER_PRINCIPAL_NAME
    );
    // The answer came as a form post with the state the credential chose.
    let outcome = seen.lock().unwrap()[0].clone();
    assert!(matches!(outcome, Outcome::FormPost { .. }), "{outcome:?}");
    assert!(outcome.param("state").is_some() && outcome.param("code").is_some());
    let record = credential.authenticate(&[ARM], None).await.unwrap();
    assert_eq!(record.username, well_known::USER_PRINCIPAL_NAME);
}

#[tokio::test]
async fn interactive_browser_with_a_verification_code() {
    let emu = emulator().await;
    let person = StandIn::new(
        well_known::MFA_USER_PRINCIPAL_NAME,
        well_known::MFA_USER_PASSWORD,
    )
    .with_verification_code(well_known::MFA_CODE);
    let (credential, _) = browser_credential(&emu, person, 30);
    let token = credential.get_token(&[API], None).await.unwrap();
    assert_eq!(
        user_of(token.token.secret()).0,
        well_known::MFA_USER_PRINCIPAL_NAME
    );
}

#[tokio::test]
async fn interactive_browser_cancelled_or_abandoned() {
    let emu = emulator().await;
    let person =
        StandIn::new(well_known::USER_PRINCIPAL_NAME, well_known::USER_PASSWORD).cancelling();
    let (credential, _) = browser_credential(&emu, person, 30);
    let text = credential
        .get_token(&[ARM], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("access_denied") && text.contains("AADSTS65004"),
        "{text}"
    );

    // A wrong password: the page says so and the person gives up; the credential times out.
    let person = StandIn::new(well_known::USER_PRINCIPAL_NAME, "wrong");
    let (credential, seen) = browser_credential(&emu, person, 120);
    let text = credential
        .get_token(&[ARM], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("timed out after 120 seconds"), "{text}");
    let page = seen.lock().unwrap()[0]
        .page()
        .unwrap_or_default()
        .to_string();
    assert!(page.contains("AADSTS50126"), "{page}");
}

/// The code a person's browser brings back to the web app (query mode), with PKCE.
async fn web_app_code(emu: &Emulator, challenge: &str) -> String {
    let url = format!(
        "{}/{}/oauth2/v2.0/authorize?client_id={}&response_type=code&redirect_uri=http://localhost:9000/callback&scope={}&state=s&code_challenge={challenge}&code_challenge_method=S256",
        emu.https_url(),
        well_known::TENANT_ID,
        well_known::WEB_APP_CLIENT_ID,
        "openid%20offline_access%20https://graph.microsoft.com/User.Read",
    );
    let outcome = StandIn::new(well_known::USER_PRINCIPAL_NAME, well_known::USER_PASSWORD)
        .sign_in(&emu.http_client(), &url)
        .await
        .unwrap();
    assert_eq!(outcome.param("state").as_deref(), Some("s"));
    outcome.param("code").unwrap()
}

fn code_credential(
    emu: &Emulator,
    code: String,
    verifier: &str,
) -> Arc<AuthorizationCodeCredential> {
    AuthorizationCodeCredential::new(
        well_known::TENANT_ID,
        well_known::WEB_APP_CLIENT_ID.to_string(),
        code.into(),
        "http://localhost:9000/callback".to_string(),
        Some(AuthorizationCodeCredentialOptions {
            client_secret: Some(well_known::WEB_APP_SECRET.into()),
            code_verifier: Some(verifier.to_string().into()),
            client_options: emu.client_options(),
            ..Default::default()
        }),
    )
    .unwrap()
}

#[tokio::test]
async fn authorization_code_with_pkce_once() {
    let emu = emulator().await;
    // RFC 7636 appendix B.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let code = web_app_code(&emu, challenge).await;
    let credential = code_credential(&emu, code.clone(), verifier);
    let token = credential.get_token(&[GRAPH], None).await.unwrap();
    let c = claims(token.token.secret());
    assert_eq!(
        (c["scp"].as_str(), c["appidacr"].as_str()),
        (Some("User.Read"), Some("1"))
    );
    assert!(
        format!("{credential:?}").find(&code).is_none(),
        "the code stays out of Debug"
    );
    // Another scope: the refresh token the code brought.
    credential.get_token(&[ARM], None).await.unwrap();
    assert_eq!(
        credential.authentication_record().unwrap().username,
        well_known::USER_PRINCIPAL_NAME
    );
    // The same code again is refused.
    let again = code_credential(&emu, code, verifier);
    let text = again
        .get_token(&[GRAPH], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("AADSTS54005"), "{text}");
    // A wrong verifier.
    let code = web_app_code(&emu, challenge).await;
    let wrong = code_credential(&emu, code, "not-the-verifier-not-the-verifier-not-the");
    let text = wrong
        .get_token(&[GRAPH], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("AADSTS501481"), "{text}");
}

async fn user_token_for_middle_tier(emu: &Emulator) -> String {
    let mut seed = Seed::default_seed();
    seed.sign_in.auto_approve_device_codes = Some(well_known::USER_PRINCIPAL_NAME.into());
    emu.apply_seed(seed).unwrap();
    let credential = device_code(
        emu,
        Arc::new(|_: &DeviceCodeInfo| {}),
        Some(well_known::TENANT_ID),
    );
    credential
        .get_token(&[API], None)
        .await
        .unwrap()
        .token
        .secret()
        .to_string()
}

#[tokio::test]
async fn on_behalf_of_with_a_secret_and_a_certificate() {
    let emu = emulator().await;
    let assertion = user_token_for_middle_tier(&emu).await;
    let options = || {
        Some(OnBehalfOfCredentialOptions {
            client_options: emu.client_options(),
            ..Default::default()
        })
    };
    let with_secret = OnBehalfOfCredential::new(
        well_known::TENANT_ID,
        well_known::MIDDLE_TIER_CLIENT_ID.to_string(),
        assertion.clone().into(),
        well_known::MIDDLE_TIER_SECRET.into(),
        options(),
    )
    .unwrap();
    assert!(!format!("{with_secret:?}").contains(&assertion));
    let token = with_secret.get_token(&[GRAPH], None).await.unwrap();
    let c = claims(token.token.secret());
    assert_eq!(c["oid"], well_known::USER_OBJECT_ID);
    assert_eq!(c["appid"], well_known::MIDDLE_TIER_CLIENT_ID);

    let (pem, _) = emu
        .generated_certificate_paths(well_known::MIDDLE_TIER_CERTIFICATE_NAME)
        .unwrap();
    let with_certificate = OnBehalfOfCredential::with_certificate(
        well_known::TENANT_ID,
        well_known::MIDDLE_TIER_CLIENT_ID.to_string(),
        assertion.clone().into(),
        std::fs::read(pem).unwrap().into(),
        options(),
    )
    .unwrap();
    let token = with_certificate.get_token(&[ARM], None).await.unwrap();
    assert_eq!(claims(token.token.secret())["appidacr"], "2");

    // An assertion for another audience, and one that expired.
    let arm_token = device_code(&emu, Arc::new(|_: &DeviceCodeInfo| {}), None)
        .get_token(&[ARM], None)
        .await
        .unwrap();
    let wrong = OnBehalfOfCredential::new(
        well_known::TENANT_ID,
        well_known::MIDDLE_TIER_CLIENT_ID.to_string(),
        arm_token.token.secret().to_string().into(),
        well_known::MIDDLE_TIER_SECRET.into(),
        options(),
    )
    .unwrap();
    let text = wrong
        .get_token(&[GRAPH], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("AADSTS500131"), "{text}");
    emu.set_clock_offset(2 * 3600);
    let expired = OnBehalfOfCredential::new(
        well_known::TENANT_ID,
        well_known::MIDDLE_TIER_CLIENT_ID.to_string(),
        assertion.into(),
        well_known::MIDDLE_TIER_SECRET.into(),
        options(),
    )
    .unwrap();
    let text = expired
        .get_token(&[GRAPH], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("AADSTS500133"), "{text}");
}
