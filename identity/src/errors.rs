//! Error construction shared by every credential: upstream's validation messages, the
//! "{Credential} authentication failed" wrapper with its troubleshooting link, and the
//! distinction between a credential that is *unavailable* here and one that *failed*.

use azure_core::error::{Error, ErrorKind};

/// Upstream's troubleshooting guide.
const TROUBLESHOOT: &str = "https://aka.ms/azsdk/rust/identity/troubleshoot";

/// Marks an error as "this credential is not configured or not usable in this environment"
/// (as opposed to "configured, and it failed"). Chains move on only past unavailable sources.
///
/// It is the source of a [`ErrorKind::Credential`] error; find it with
/// [`is_unavailable`].
#[derive(Debug)]
pub struct CredentialUnavailable {
    message: String,
}

impl CredentialUnavailable {
    /// An unavailable marker with a message saying what is missing.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CredentialUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CredentialUnavailable {}

/// A `Credential` error meaning "not available here".
pub(crate) fn unavailable(message: impl Into<String>) -> Error {
    let message = message.into();
    Error::new(ErrorKind::Credential, CredentialUnavailable::new(message))
}

/// Whether `error` (or anything in its source chain) says the credential is unavailable.
pub fn is_unavailable(error: &Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if e.is::<CredentialUnavailable>() {
            return true;
        }
        if let Some(azure) = e.downcast_ref::<Error>()
            && let Some(inner) = azure.get_ref()
            && inner.is::<CredentialUnavailable>()
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// A `Credential` error with `message`.
pub(crate) fn credential_error(message: impl Into<String>) -> Error {
    Error::with_message(ErrorKind::Credential, message.into())
}

/// Wraps a failure inside `get_token` as upstream does:
/// `"{name} authentication failed. {inner}\nTo troubleshoot, visit {link}#{fragment}"`, kind
/// `Credential`, with the original error as the source (so its kind and raw response stay
/// reachable through `downcast_ref::<azure_core::Error>()`). An unavailable error keeps its
/// marker.
pub(crate) fn authentication_error(name: &str, fragment: Option<&str>, inner: Error) -> Error {
    if is_unavailable(&inner) && matches!(inner.kind(), ErrorKind::Credential) {
        return inner;
    }
    let text = chain_text(&inner);
    let trimmed = text.trim_matches(|c| c == ' ' || c == '\t' || c == '\x0c');
    let separator = if trimmed.starts_with('\n') { "" } else { " " };
    let mut message = format!("{name} authentication failed.{separator}{trimmed}");
    if let Some(fragment) = fragment {
        message.push_str(&format!(
            "\nTo troubleshoot, visit {TROUBLESHOOT}#{fragment}"
        ));
    }
    Error::with_error(ErrorKind::Credential, inner, message)
}

/// An error's message followed by its causes' (azure_core's retry policy wraps the real cause,
/// e.g. a timeout, in "retry policy expired ..."; the cause is what the user needs to read).
pub(crate) fn chain_text(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let message = cause.to_string();
        if !message.is_empty() && !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// Upstream's tenant-id rule: non-empty, alphanumeric, `.` or `-`.
pub(crate) fn validate_tenant_id(tenant_id: &str) -> azure_core::Result<()> {
    let valid = !tenant_id.is_empty()
        && tenant_id
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(credential_error(format!(
            "invalid tenant ID {tenant_id}. You can locate your tenantID by following the instructions listed here: https://learn.microsoft.com/partner-center/find-ids-and-domain-names"
        )))
    }
}

/// A non-empty required value, or upstream's "no … specified" error.
pub(crate) fn require_non_empty(value: &str, what: &str) -> azure_core::Result<()> {
    if value.is_empty() {
        Err(credential_error(format!("no {what} specified")))
    } else {
        Ok(())
    }
}

/// Scopes must be given (upstream: "no scopes specified").
pub(crate) fn validate_scopes(scopes: &[&str]) -> azure_core::Result<()> {
    if scopes.is_empty() || scopes.iter().any(|s| s.is_empty()) {
        Err(credential_error("no scopes specified"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_matches_upstream_text_and_keeps_the_source() {
        let inner = Error::with_message(
            ErrorKind::HttpResponse {
                status: azure_core::http::StatusCode::Unauthorized,
                error_code: Some("7000215".into()),
                raw_response: None,
            },
            "AADSTS7000215: Invalid client secret.",
        );
        let e = authentication_error("ClientSecretCredential", Some("client-secret"), inner);
        assert_eq!(
            e.to_string(),
            "ClientSecretCredential authentication failed. AADSTS7000215: Invalid client secret.\nTo troubleshoot, visit https://aka.ms/azsdk/rust/identity/troubleshoot#client-secret"
        );
        assert_eq!(e.kind(), &ErrorKind::Credential);
        let source = std::error::Error::source(&e).unwrap();
        let inner = source.downcast_ref::<Error>().unwrap();
        assert!(matches!(inner.kind(), ErrorKind::HttpResponse { .. }));
    }

    #[test]
    fn newline_leading_inner_text_gets_no_space_and_assertion_has_no_link() {
        let inner = Error::with_message(ErrorKind::Other, "\nboom");
        let e = authentication_error("ClientAssertionCredential", None, inner);
        assert_eq!(
            e.to_string(),
            "ClientAssertionCredential authentication failed.\nboom"
        );
    }

    #[test]
    fn unavailable_errors_are_recognised_through_wrapping() {
        let e = unavailable("AZURE_TENANT_ID is not set");
        assert!(is_unavailable(&e));
        let wrapped = Error::with_error(ErrorKind::Credential, e, "outer");
        assert!(is_unavailable(&wrapped));
        assert!(!is_unavailable(&credential_error("failed")));
    }

    #[test]
    fn tenant_validation_uses_upstream_words() {
        assert!(validate_tenant_id("11111111-1111-1111-1111-111111111111").is_ok());
        assert!(validate_tenant_id("contoso.onmicrosoft.com").is_ok());
        let e = validate_tenant_id("bad/tenant").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid tenant ID bad/tenant. You can locate")
        );
        assert!(validate_tenant_id("").is_err());
        assert_eq!(
            validate_scopes(&[]).unwrap_err().to_string(),
            "no scopes specified"
        );
    }
}
