//! [`AuthenticationRecord`]: who signed in, where and to which client, serializable in the
//! same JSON the Python and JavaScript Azure Identity libraries write.

use serde::{Deserialize, Serialize};

/// The account a user credential signed in: not a secret, only enough to find that account's
/// tokens again. [`DeviceCodeCredential::authenticate`](crate::DeviceCodeCredential::authenticate)
/// and the other user credentials return one; give it to a later credential
/// (`authentication_record` in its options) and it signs in silently while the account's
/// refresh token is valid.
///
/// ```
/// use azure_identity::AuthenticationRecord;
///
/// let json = r#"{"authority":"login.microsoftonline.com","clientId":"04b07795-8ddb-461a-bbee-02f9e1bf7b46",
///   "homeAccountId":"uid.utid","tenantId":"utid","username":"user@contoso.com","version":"1.0"}"#;
/// let record = AuthenticationRecord::deserialize(json)?;
/// assert_eq!(record.username, "user@contoso.com");
/// assert_eq!(AuthenticationRecord::deserialize(&record.serialize())?, record);
/// # Ok::<(), azure_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRecord {
    /// The authority host (`login.microsoftonline.com`, or `host:port`).
    pub authority: String,
    /// The client the user signed in to.
    pub client_id: String,
    /// MSAL's account key: `{object id}.{home tenant id}`.
    pub home_account_id: String,
    /// The tenant the user signed in to.
    pub tenant_id: String,
    /// The user's sign-in name.
    pub username: String,
    /// The record format's version, `"1.0"`.
    #[serde(default = "version")]
    pub version: String,
}

fn version() -> String {
    "1.0".to_string()
}

impl AuthenticationRecord {
    /// The record as JSON (the Python and JavaScript libraries' format).
    pub fn serialize(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A record from JSON written by [`serialize`](Self::serialize) or by another Azure
    /// Identity library.
    ///
    /// # Errors
    /// The text is not a record.
    pub fn deserialize(text: &str) -> azure_core::Result<Self> {
        serde_json::from_str(text).map_err(|e| {
            azure_core::Error::with_error(
                azure_core::error::ErrorKind::DataConversion,
                e,
                "the text is not an AuthenticationRecord (JSON with authority, clientId, homeAccountId, tenantId, username)",
            )
        })
    }
}
