//! The Rust adapter's user credentials: device code, browser, authorization code and
//! on-behalf-of. A stand-in person ([`entra_emulator::stand_in::StandIn`]) plays the user at
//! the sign-in page: as `InteractiveBrowserCredential`'s browser, and to obtain the code an
//! `authorization_code` case redeems.
//!
//! Options: `tenant_id`, `client_id`, `username`, `password`, `verification_code`,
//! `browser_action` (`cancel`), `timeout_secs`, `redirect_uri`, `secret`, `certificate`,
//! `code_challenge` (an S256 PKCE challenge for the authorization request), `code_verifier`
//! (sent at redemption), `prompt`,
//! `redeem_twice`, `user_assertion` / `user_assertion_file`, and for any of them
//! `revoke_sessions_of` with `then_scopes` (revoke the user's sessions after the first token,
//! then ask for these scopes).

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{Secret, TokenCredential};
use azure_identity::os::{Browser, Os};
use azure_identity::*;
use entra_emulator::stand_in::{Outcome, StandIn};
use serde_json::Value;

use super::{Built, Context, config_error};

/// The emulator's authority (the case's `AZURE_AUTHORITY_HOST`).
fn authority(c: &Context<'_>) -> String {
    c.request
        .env
        .get("AZURE_AUTHORITY_HOST")
        .cloned()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string()
}

/// An HTTP client that trusts the emulator's CA.
pub(super) fn http(c: &Context<'_>) -> Result<reqwest::Client, String> {
    let ca = std::fs::read(&c.request.ca_cert_path).map_err(|e| e.to_string())?;
    let cert = reqwest::Certificate::from_pem(&ca).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

fn person(c: &Context<'_>) -> StandIn {
    let mut person = StandIn::new(
        c.option("username").unwrap_or_default(),
        c.option("password").unwrap_or_default(),
    );
    if let Some(code) = c.option("verification_code") {
        person = person.with_verification_code(code);
    }
    if c.option("browser_action").as_deref() == Some("cancel") {
        person = person.cancelling();
    }
    person
}

/// For `authorization_code`: the code a person's browser brings back to the web app.
pub(super) async fn obtain_code(c: &Context<'_>) -> Result<String, String> {
    let tenant = c
        .option("tenant_id")
        .unwrap_or_else(|| "organizations".into());
    let redirect = c.option("redirect_uri").unwrap_or_default();
    let mut scopes = c.request.scopes.join(" ");
    scopes.push_str(" openid offline_access");
    let mut url = url::Url::parse(&format!("{}/{tenant}/oauth2/v2.0/authorize", authority(c)))
        .map_err(|e| e.to_string())?;
    url.query_pairs_mut().extend_pairs([
        (
            "client_id",
            c.option("client_id").unwrap_or_default().as_str(),
        ),
        ("response_type", "code"),
        ("redirect_uri", redirect.as_str()),
        ("scope", scopes.as_str()),
        ("state", "conformance"),
    ]);
    if let Some(challenge) = c.option("code_challenge") {
        url.query_pairs_mut()
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
    }
    if let Some(prompt) = c.option("prompt") {
        url.query_pairs_mut().append_pair("prompt", &prompt);
    }
    let outcome = person(c)
        .sign_in(&http(c)?, url.as_str())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(code) = outcome.param("code") {
        return Ok(code);
    }
    Err(match (&outcome, outcome.param("error")) {
        (_, Some(error)) => format!(
            "the authorization endpoint answered {error}: {}",
            outcome.param("error_description").unwrap_or_default()
        ),
        (Outcome::Page { status, html }, None) => {
            format!("the sign-in stopped on a page ({status}): {html}")
        }
        _ => "the authorization endpoint sent no code".to_string(),
    })
}

pub(super) fn device_code(c: &Context<'_>) -> Built {
    Ok(DeviceCodeCredential::new(Some(
        DeviceCodeCredentialOptions {
            tenant_id: c.option("tenant_id"),
            client_id: c.option("client_id"),
            user_prompt: Some(Arc::new(|info: &DeviceCodeInfo| {
                tracing::info!(message = %info.message, "device code prompt");
            })),
            client_options: c.client_options.clone(),
            os: c.os.clone(),
            ..Default::default()
        },
    ))?)
}

/// The case's person as the credential's browser: walks the pages, delivers the answer.
#[derive(Debug)]
struct PersonAtBrowser {
    person: Arc<StandIn>,
    http: reqwest::Client,
}

impl Browser for PersonAtBrowser {
    fn open(&self, url: &str) -> std::io::Result<()> {
        let (person, http, url) = (self.person.clone(), self.http.clone(), url.to_string());
        tokio::spawn(async move {
            let Ok(outcome) = person.sign_in(&http, &url).await else {
                return;
            };
            if !matches!(outcome, Outcome::Page { .. }) {
                let plain = reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .unwrap_or_default();
                let _ = person.deliver(&plain, &outcome).await;
            }
        });
        Ok(())
    }
}

pub(super) fn interactive_browser(c: &Context<'_>) -> Built {
    let browser = PersonAtBrowser {
        person: Arc::new(person(c)),
        http: http(c).map_err(config_error)?,
    };
    let timeout = super::number(&c.request.options, "timeout_secs").unwrap_or(30);
    Ok(InteractiveBrowserCredential::new(Some(
        InteractiveBrowserCredentialOptions {
            tenant_id: c.option("tenant_id"),
            client_id: c.option("client_id"),
            timeout: Some(Duration::from_secs(timeout.max(1) as u64)),
            client_options: c.client_options.clone(),
            os: Os {
                browser: Arc::new(browser),
                ..c.os.clone()
            },
            ..Default::default()
        },
    ))?)
}

pub(super) fn authorization_code(c: &Context<'_>) -> Built {
    let code = c.code.clone().unwrap_or_default();
    let verifier = c.option("code_verifier");
    Ok(AuthorizationCodeCredential::new(
        &c.option("tenant_id")
            .unwrap_or_else(|| "organizations".into()),
        c.option("client_id").unwrap_or_default(),
        code.into(),
        c.option("redirect_uri").unwrap_or_default(),
        Some(AuthorizationCodeCredentialOptions {
            client_secret: c.option("secret").map(Secret::from),
            code_verifier: verifier.map(Secret::from),
            client_options: c.client_options.clone(),
            os: c.os.clone(),
            ..Default::default()
        }),
    )?)
}

pub(super) fn on_behalf_of(c: &Context<'_>) -> Built {
    let assertion = match (c.option("user_assertion"), c.option("user_assertion_file")) {
        (Some(a), _) => a,
        (None, Some(file)) => std::fs::read_to_string(&file)
            .map_err(|e| config_error(format!("cannot read the user assertion {file}: {e}")))?,
        (None, None) => String::new(),
    };
    let tenant = c.required("tenant_id", "AZURE_TENANT_ID");
    let client_id = c.option("client_id").unwrap_or_default();
    let options = Some(OnBehalfOfCredentialOptions {
        client_options: c.client_options.clone(),
        password: c.option("password").map(Secret::from),
        os: c.os.clone(),
        ..Default::default()
    });
    let assertion = Secret::from(assertion.trim().to_string());
    if let Some(path) = c.option("certificate") {
        let bytes = std::fs::read(&path)
            .map_err(|e| config_error(format!("cannot read certificate {path}: {e}")))?;
        let credential: Arc<dyn TokenCredential> = OnBehalfOfCredential::with_certificate(
            &tenant,
            client_id,
            assertion,
            bytes.into(),
            options,
        )?;
        return Ok(credential);
    }
    let secret = c.option("secret").unwrap_or_default();
    Ok(OnBehalfOfCredential::new(
        &tenant,
        client_id,
        assertion,
        secret.into(),
        options,
    )?)
}

/// After a first token: revoke the user's sessions through the control plane, as an
/// administrator would, then ask for `then_scopes`.
pub(super) async fn after_revocation(
    c: &Context<'_>,
    credential: &dyn TokenCredential,
) -> Option<azure_core::Result<azure_core::credentials::AccessToken>> {
    let user = c.option("revoke_sessions_of")?;
    let url = format!("{}/_emulator/users/{user}/revoke-sessions", authority(c));
    let revoked = match http(c) {
        Ok(http) => http
            .post(&url)
            .json(&serde_json::json!({}))
            .send()
            .await
            .ok(),
        Err(_) => None,
    };
    if !revoked.is_some_and(|r| r.status().is_success()) {
        return Some(Err(config_error(format!(
            "could not revoke the sessions at {url}"
        ))));
    }
    let scopes: Vec<String> = match c.request.options.get("then_scopes") {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => c.request.scopes.clone(),
    };
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    Some(credential.get_token(&scopes, None).await)
}
