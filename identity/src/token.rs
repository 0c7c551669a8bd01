//! The values that pass between a credential, the Entra client and the token cache: what a
//! fetch is asked for and what it produced. They sit below every other module so that the
//! cache depends on the token type only.

use azure_core::credentials::AccessToken;
use azure_core::http::Context;
use time::OffsetDateTime;

/// What a fetch receives.
#[derive(Debug)]
pub(crate) struct FetchRequest<'a> {
    pub(crate) tenant: &'a str,
    /// The `claims` to send: a challenge's claims and/or the CAE capability (`cp1`).
    pub(crate) claims: Option<std::borrow::Cow<'a, str>>,
    /// Whether the caller asked for a CAE token (`enable_cae`).
    pub(crate) cae: bool,
    pub(crate) scopes: &'a [&'a str],
    pub(crate) context: &'a Context<'a>,
}

/// What a token request produced: the token and when to refresh it.
#[derive(Debug, Clone)]
pub(crate) struct FetchedToken {
    pub(crate) token: AccessToken,
    /// Entra's `refresh_in` hint turned into a time, when it sent one.
    pub(crate) refresh_at: Option<OffsetDateTime>,
}
