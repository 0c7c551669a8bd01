//! Scenarios that go on from the token to a protected resource: the emulator's Key Vault.
//!
//! After the adapter returns a token, the driver may spoil it (`token`), revoke its principal
//! (`revoke`), and then calls `GET /secrets` on a vault with it, checking the status, the
//! `WWW-Authenticate` challenge and the check the vault's request log names. With `recover`, a
//! claims challenge is answered as an SDK would: the adapter runs again with the challenge's
//! claims (and `enable_cae`), and the call is retried with the new token.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::adapter::RunResult;
use crate::target::Target;

/// What the driver does with the token before the call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenMode {
    /// Sends it as issued.
    #[default]
    AsIssued,
    /// Changes one character of its signature.
    Forged,
    /// Moves the emulator's clock two hours ahead (past expiry and clock skew).
    Expired,
    /// Rotates the token-signing key first (the old key stays valid in its grace period).
    RotatedKey,
}

/// The resource step of a scenario (`[resource]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceStep {
    /// The vault (default `emulator-vault`).
    #[serde(default = "default_vault")]
    pub vault: String,
    /// What happens to the token first.
    #[serde(default)]
    pub token: TokenMode,
    /// Revoke this principal (UPN, object id or client id) before the call.
    #[serde(default)]
    pub revoke: Option<String>,
    /// Answer a claims challenge with a new token and call again.
    #[serde(default)]
    pub recover: bool,
    /// What the vault must answer.
    pub expect: ResourceExpect,
}

fn default_vault() -> String {
    "emulator-vault".to_string()
}

/// The vault's answer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceExpect {
    /// The first call's status.
    pub status: u16,
    /// The check the vault's log names for the first call (`signature`, `expired`, …).
    #[serde(default)]
    pub check: Option<String>,
    /// Fragments of the first call's `WWW-Authenticate` header.
    #[serde(default)]
    pub challenge_contains: Vec<String>,
    /// Fragments of the first call's body.
    #[serde(default)]
    pub message_contains: Vec<String>,
    /// With `recover`: the status of the call with the new token.
    #[serde(default)]
    pub recovered_status: Option<u16>,
}

/// Runs the step; the differences from what it expects.
pub async fn exercise<F, Fut>(
    target: &Target,
    step: &ResourceStep,
    token: &str,
    rerun: F,
) -> Vec<String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = RunResult>,
{
    match run(target, step, token, rerun).await {
        Ok(differences) => differences,
        Err(e) => vec![format!("the resource step failed: {e}")],
    }
}

async fn run<F, Fut>(
    target: &Target,
    step: &ResourceStep,
    token: &str,
    rerun: F,
) -> Result<Vec<String>, String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = RunResult>,
{
    let vault = target
        .ready
        .key_vaults
        .get(&step.vault)
        .ok_or_else(|| format!("the emulator has no vault '{}'", step.vault))?;
    let url = format!("{vault}/secrets?api-version=7.5");
    let token = prepare(target, step, token).await?;
    let before = target.requests().await?.len();
    let (status, challenge, body) = target.call_resource(&url, &token).await?;
    let mut differences =
        compare_first(target, &step.expect, before, status, &challenge, &body).await?;
    if step.recover {
        differences.extend(recover(target, &url, challenge.as_deref(), &step.expect, rerun).await?);
    }
    Ok(differences)
}

/// Spoils the token, or the emulator's view of it, as the step says; revokes its principal.
async fn prepare(target: &Target, step: &ResourceStep, token: &str) -> Result<String, String> {
    let mut token = token.to_string();
    match step.token {
        TokenMode::AsIssued => {}
        TokenMode::Forged => token = forge(&token),
        TokenMode::Expired => {
            let body = serde_json::json!({ "offset_secs": 2 * 3600 });
            target.control("PUT", "/clock", Some(&body)).await?;
        }
        TokenMode::RotatedKey => {
            let body = serde_json::json!({ "ring": "tokens" });
            target.control("POST", "/keys/rotate", Some(&body)).await?;
        }
    }
    if let Some(subject) = &step.revoke {
        let body = serde_json::json!({ "subject": subject });
        target.control("POST", "/revoke", Some(&body)).await?;
    }
    Ok(token)
}

/// The first call's answer against the expectations; `before` is the log's length before it.
async fn compare_first(
    target: &Target,
    want: &ResourceExpect,
    before: usize,
    status: u16,
    challenge: &Option<String>,
    body: &str,
) -> Result<Vec<String>, String> {
    let mut differences = Vec::new();
    if status != want.status {
        differences.push(format!(
            "the vault answered {status}, expected {}: {body}",
            want.status
        ));
    }
    let challenge_text = challenge.clone().unwrap_or_default();
    for fragment in &want.challenge_contains {
        if !challenge_text.contains(fragment.as_str()) {
            differences.push(format!(
                "the challenge lacks '{fragment}': {challenge_text:?}"
            ));
        }
    }
    for fragment in &want.message_contains {
        if !body.contains(fragment.as_str()) {
            differences.push(format!("the vault's answer lacks '{fragment}': {body}"));
        }
    }
    if let Some(check) = &want.check {
        let log = target.requests().await?;
        let logged = log.iter().skip(before).find_map(|r| r.failed_check.clone());
        if logged.as_deref() != Some(check.as_str()) {
            differences.push(format!(
                "the vault's log names check {logged:?}, expected '{check}'"
            ));
        }
    }
    Ok(differences)
}

/// Answers the claims challenge with a new token from the adapter and calls again.
async fn recover<F, Fut>(
    target: &Target,
    url: &str,
    challenge: Option<&str>,
    want: &ResourceExpect,
    rerun: F,
) -> Result<Vec<String>, String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = RunResult>,
{
    let Some(claims) = challenge.and_then(azure_identity::claims_from_challenge) else {
        return Ok(vec![format!(
            "recover: the first answer carries no claims challenge ({challenge:?})"
        )]);
    };
    let again = rerun(claims).await;
    let Some(token) = again.token else {
        return Ok(vec![format!(
            "recover: the adapter got no token for the challenge's claims: {}",
            again.message.unwrap_or_default()
        )]);
    };
    let (status, _, body) = target.call_resource(url, &token).await?;
    let wanted = want.recovered_status.unwrap_or(200);
    Ok(if status == wanted {
        Vec::new()
    } else {
        vec![format!(
            "recover: the vault answered {status} to the new token, expected {wanted}: {body}"
        )]
    })
}

/// The token with one character in the middle of its signature changed.
fn forge(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    if let Some(at) = chars.len().checked_sub(20) {
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}
