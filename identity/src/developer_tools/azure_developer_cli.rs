//! Authenticates the identity signed in to the Azure Developer CLI (`azd auth login`).
//!
//! Runs `azd auth token -o json --no-prompt --scope … [--tenant-id …] [--claims …]` found on
//! `PATH`, directly (no shell), stopped after `timeout` (default 10 s) or when the future is
//! dropped. "Not installed" and "not signed in" make it *unavailable*; other failures quote
//! azd's message.
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::AzureDeveloperCliCredential;
//!
//! let credential = AzureDeveloperCliCredential::new(None)?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use base64::Engine;
use serde::Deserialize;

use super::executor::{Executor, new_executor};
use super::process::{DEFAULT_TIMEOUT, Tool, redact, run_tool, validate_scope};
use crate::confidential::TokenRequestExtras;
use crate::errors::{
    authentication_error, credential_error, unavailable, validate_scopes, validate_tenant_id,
};
use crate::os::Os;

const NAME: &str = "AzureDeveloperCliCredential";
const AZD: Tool = Tool {
    program: "azd",
    not_found: "Azure Developer CLI not found on PATH. Install it from https://aka.ms/azd-install and run 'azd auth login'.",
};

/// Options for constructing an [`AzureDeveloperCliCredential`].
#[derive(Debug, Clone, Default)]
pub struct AzureDeveloperCliCredentialOptions {
    /// Runs `azd`; default [`new_executor`].
    pub executor: Option<Arc<dyn Executor>>,
    /// The tenant to get tokens from (`--tenant-id`).
    pub tenant_id: Option<String>,
    /// How long `azd` may take (default 10 s). (Addition beyond upstream.)
    pub timeout: Option<time::Duration>,
    /// Environment (`PATH`), files, clock and sleep. (Addition beyond upstream.)
    pub os: Os,
}

/// Authenticates the identity logged in to the Azure Developer CLI.
#[derive(Debug)]
pub struct AzureDeveloperCliCredential {
    options: AzureDeveloperCliCredentialOptions,
    executor: Arc<dyn Executor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzdToken {
    token: String,
    expires_on: String,
}

/// Parses `azd auth token -o json`: `{"token", "expiresOn"}` with an RFC 3339 time.
pub(crate) fn parse_output(stdout: &[u8]) -> azure_core::Result<AccessToken> {
    let parsed: AzdToken = serde_json::from_slice(stdout).map_err(|e| {
        Error::with_error(
            ErrorKind::DataConversion,
            e,
            "unexpected output from the Azure Developer CLI",
        )
    })?;
    let expires_on = time::OffsetDateTime::parse(
        &parsed.expires_on,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| {
        Error::with_error(
            ErrorKind::DataConversion,
            e,
            format!("cannot parse expiresOn '{}'", parsed.expires_on),
        )
    })?;
    Ok(AccessToken::new(parsed.token, expires_on))
}

/// azd's error message: `data.message` of its JSON console message, else stderr as is.
fn message(stderr: &str) -> String {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| v["data"]["message"].as_str().map(str::to_string))
        .find(|m| !m.trim().is_empty())
        .unwrap_or_else(|| stderr.to_string())
        .trim()
        .to_string()
}

fn classify(output: &std::process::Output) -> Error {
    let text = redact(&message(&String::from_utf8_lossy(&output.stderr)));
    if output.status.code() == Some(127) {
        return unavailable(AZD.not_found);
    }
    if text.contains("azd auth login") && !text.contains("AADSTS") {
        return unavailable(format!(
            "{text} (Azure Developer CLI is installed but not signed in: run 'azd auth login')"
        ));
    }
    credential_error(if text.is_empty() {
        format!("azd exited with {}", output.status)
    } else {
        text
    })
}

impl AzureDeveloperCliCredential {
    /// Creates the credential.
    ///
    /// # Errors
    /// An invalid tenant id.
    pub fn new(
        options: Option<AzureDeveloperCliCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        if let Some(tenant) = &options.tenant_id {
            validate_tenant_id(tenant)?;
        }
        let executor = options.executor.clone().unwrap_or_else(new_executor);
        Ok(Arc::new(Self { options, executor }))
    }

    /// The argv after `azd`.
    pub(crate) fn arguments(
        &self,
        scopes: &[&str],
        tenant: Option<&str>,
        claims: Option<&str>,
    ) -> azure_core::Result<Vec<String>> {
        let mut args: Vec<String> = ["auth", "token", "-o", "json", "--no-prompt"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        for scope in scopes {
            validate_scope(scope)?;
            args.extend(["--scope".to_string(), (*scope).to_string()]);
        }
        if let Some(tenant) = tenant.or(self.options.tenant_id.as_deref()) {
            validate_tenant_id(tenant)?;
            args.extend(["--tenant-id".to_string(), tenant.to_string()]);
        }
        if let Some(claims) = claims {
            args.extend([
                "--claims".to_string(),
                base64::engine::general_purpose::STANDARD.encode(claims),
            ]);
        }
        Ok(args)
    }

    async fn token(&self, args: Vec<String>) -> azure_core::Result<AccessToken> {
        let timeout = self.options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let stdout = run_tool(
            &AZD,
            &self.executor,
            &self.options.os,
            &args,
            timeout,
            classify,
        )
        .await?;
        parse_output(&stdout)
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl TokenCredential for AzureDeveloperCliCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        validate_scopes(scopes)?;
        let extras = options
            .as_ref()
            .and_then(|o| o.method_options.context.value::<TokenRequestExtras>())
            .cloned()
            .unwrap_or_default();
        let args = self.arguments(
            scopes,
            extras.tenant_id.as_deref(),
            extras.claims.as_deref(),
        )?;
        self.token(args)
            .await
            .map_err(|e| authentication_error(NAME, Some("azd"), e))
    }
}
