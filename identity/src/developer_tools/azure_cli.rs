//! Authenticates the identity signed in to the Azure CLI (`az login`).
//!
//! Runs `az account get-access-token -o json --scope … [--tenant …] [--subscription …]` found on
//! `PATH`, directly: no shell, each argument its own argv item, so nothing in a scope, tenant
//! or subscription can be interpreted by a shell (upstream runs `/bin/sh -c "cd /bin && az …"`).
//! The run is stopped after `timeout` (default 10 s) and when the future is dropped. "Not
//! installed" and "not signed in" make the credential *unavailable*; anything else is a failure
//! that quotes az's stderr (with tokens redacted).
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::AzureCliCredential;
//!
//! let credential = AzureCliCredential::new(None)?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use serde::Deserialize;

use super::executor::{Executor, new_executor};
use super::process::{
    DEFAULT_TIMEOUT, Tool, redact, run_tool, validate_scope, validate_subscription,
};
use crate::confidential::TokenRequestExtras;
use crate::errors::{
    authentication_error, credential_error, unavailable, validate_scopes, validate_tenant_id,
};
use crate::os::Os;

const NAME: &str = "AzureCliCredential";
const AZ: Tool = Tool {
    program: "az",
    not_found: "Azure CLI not found on PATH. Install it from https://aka.ms/azure-cli and run 'az login'.",
};

/// Options for constructing an [`AzureCliCredential`].
#[derive(Debug, Clone, Default)]
pub struct AzureCliCredentialOptions {
    /// The subscription to get tokens for (`--subscription`).
    pub subscription: Option<String>,
    /// The tenant to get tokens from (`--tenant`).
    pub tenant_id: Option<String>,
    /// Runs `az`; default [`new_executor`].
    pub executor: Option<Arc<dyn Executor>>,
    /// How long `az` may take (default 10 s). (Addition beyond upstream.)
    pub timeout: Option<time::Duration>,
    /// Environment (`PATH`), files, clock and sleep. (Addition beyond upstream.)
    pub os: Os,
}

/// Authenticates the identity logged in to the Azure CLI.
#[derive(Debug)]
pub struct AzureCliCredential {
    options: AzureCliCredentialOptions,
    executor: Arc<dyn Executor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CliToken {
    access_token: String,
    #[serde(rename = "expires_on")]
    expires_on_epoch: Option<i64>,
    expires_on: Option<String>,
}

/// Parses `az account get-access-token -o json` output: `expires_on` (epoch, CLI ≥ 2.54), else
/// `expiresOn` (naive local time, older CLIs).
pub(crate) fn parse_output(stdout: &[u8]) -> azure_core::Result<AccessToken> {
    let token: CliToken = serde_json::from_slice(stdout).map_err(|e| {
        Error::with_error(
            ErrorKind::DataConversion,
            e,
            "unexpected output from the Azure CLI",
        )
    })?;
    let expires_on = match (token.expires_on_epoch, &token.expires_on) {
        (Some(epoch), _) => time::OffsetDateTime::from_unix_timestamp(epoch).map_err(|e| {
            Error::with_error(ErrorKind::DataConversion, e, "expires_on is out of range")
        })?,
        (None, Some(local)) => parse_local(local)?,
        (None, None) => {
            return Err(Error::with_message(
                ErrorKind::DataConversion,
                "the Azure CLI's output has no expiry (expires_on or expiresOn)",
            ));
        }
    };
    Ok(AccessToken::new(token.access_token, expires_on))
}

/// `expiresOn`: `%Y-%m-%d %H:%M:%S[.%f]` in the machine's local time zone.
fn parse_local(text: &str) -> azure_core::Result<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let naive = time::PrimitiveDateTime::parse(text, format).map_err(|e| {
        Error::with_error(
            ErrorKind::DataConversion,
            e,
            format!("cannot parse expiresOn '{text}'"),
        )
    })?;
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    Ok(naive.assume_offset(offset))
}

/// Classifies a failed `az` run: "not signed in" is unavailable, the rest failed.
fn classify(output: &std::process::Output) -> Error {
    let stderr = redact(String::from_utf8_lossy(&output.stderr).trim());
    let not_logged_in = (stderr.contains("az login") || stderr.contains("az account set"))
        && !stderr.contains("AADSTS");
    if output.status.code() == Some(127) || stderr.contains("' is not recognized") {
        return unavailable(AZ.not_found);
    }
    if not_logged_in {
        return unavailable(format!(
            "{stderr} (Azure CLI is installed but not signed in: run 'az login')"
        ));
    }
    credential_error(if stderr.is_empty() {
        format!("az exited with {}", output.status)
    } else {
        stderr
    })
}

impl AzureCliCredential {
    /// Creates the credential.
    ///
    /// # Errors
    /// An invalid tenant id or subscription.
    pub fn new(options: Option<AzureCliCredentialOptions>) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        if let Some(tenant) = &options.tenant_id {
            validate_tenant_id(tenant)?;
        }
        if let Some(subscription) = &options.subscription {
            validate_subscription(subscription)?;
        }
        let executor = options.executor.clone().unwrap_or_else(new_executor);
        Ok(Arc::new(Self { options, executor }))
    }

    /// The argv after `az`.
    pub(crate) fn arguments(
        &self,
        scopes: &[&str],
        tenant: Option<&str>,
    ) -> azure_core::Result<Vec<String>> {
        for scope in scopes {
            validate_scope(scope)?;
        }
        let mut args: Vec<String> = ["account", "get-access-token", "-o", "json", "--scope"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        args.extend(scopes.iter().map(|s| (*s).to_string()));
        if let Some(tenant) = tenant.or(self.options.tenant_id.as_deref()) {
            validate_tenant_id(tenant)?;
            args.extend(["--tenant".to_string(), tenant.to_string()]);
        }
        if let Some(subscription) = &self.options.subscription {
            args.extend(["--subscription".to_string(), subscription.clone()]);
        }
        Ok(args)
    }

    async fn token(
        &self,
        scopes: &[&str],
        tenant: Option<&str>,
    ) -> azure_core::Result<AccessToken> {
        let args = self.arguments(scopes, tenant)?;
        let timeout = self.options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let stdout = run_tool(
            &AZ,
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
impl TokenCredential for AzureCliCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        validate_scopes(scopes)?;
        let tenant = options
            .as_ref()
            .and_then(|o| o.method_options.context.value::<TokenRequestExtras>())
            .and_then(|e| e.tenant_id.clone());
        self.token(scopes, tenant.as_deref())
            .await
            .map_err(|e| authentication_error(NAME, Some("azure-cli"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn credential(subscription: Option<String>) -> azure_core::Result<Arc<AzureCliCredential>> {
        AzureCliCredential::new(Some(AzureCliCredentialOptions {
            subscription,
            ..Default::default()
        }))
    }

    proptest! {
        /// Whatever the caller passes, it either is rejected or reaches az as exactly one argv
        /// item, unchanged: there is no shell to interpret it.
        #[test]
        fn scopes_tenants_and_subscriptions_are_single_validated_arguments(
            scope in ".{0,40}",
            tenant in ".{0,40}",
            subscription in ".{0,40}",
        ) {
            let Ok(cred) = credential(Some(subscription.clone())) else {
                prop_assert!(validate_subscription(&subscription).is_err());
                return Ok(());
            };
            match cred.arguments(&[scope.as_str()], Some(tenant.as_str())) {
                Ok(args) => {
                    prop_assert_eq!(args.iter().filter(|a| **a == scope).count() >= 1, true);
                    let i = args.iter().position(|a| a == "--scope").unwrap();
                    prop_assert_eq!(&args[i + 1], &scope);
                    let t = args.iter().position(|a| a == "--tenant").unwrap();
                    prop_assert_eq!(&args[t + 1], &tenant);
                    let s = args.iter().position(|a| a == "--subscription").unwrap();
                    prop_assert_eq!(&args[s + 1], &subscription);
                    for value in [&scope, &tenant, &subscription] {
                        prop_assert!(!value.contains([';', '&', '|', '$', '`', '"', '\'', '\n', '<', '>']));
                    }
                }
                Err(_) => prop_assert!(validate_scope(&scope).is_err() || validate_tenant_id(&tenant).is_err()),
            }
        }
    }

    #[test]
    fn output_parses_epoch_or_falls_back_to_local_time() {
        let t = parse_output(
            br#"{"accessToken":"a","expires_on":1700000000,"expiresOn":"x","tokenType":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_on.unix_timestamp(), 1_700_000_000);
        let t = parse_output(br#"{"accessToken":"a","expiresOn":"2030-01-02 03:04:05.123456"}"#)
            .unwrap();
        assert_eq!(t.expires_on.year(), 2030);
        assert!(parse_output(b"not json").is_err());
        assert!(parse_output(br#"{"accessToken":"a"}"#).is_err());
    }

    #[test]
    fn stderr_tokens_are_redacted_and_failures_classified() {
        let out = |code: i32, stderr: &str| std::process::Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(code << 8),
            stdout: vec![],
            stderr: stderr.as_bytes().to_vec(),
        };
        let e = classify(&out(1, "ERROR: Please run 'az login' to setup account."));
        assert!(crate::is_unavailable(&e));
        let e = classify(&out(1, "ERROR: AADSTS700082: expired. Please run az login"));
        assert!(!crate::is_unavailable(&e));
        let e = classify(&out(2, "leaked eyJhbGciOi.eyJzdWIi.c2ln here"));
        assert!(
            e.to_string().contains("<redacted token>") && !e.to_string().contains("eyJ"),
            "{e}"
        );
    }
}
