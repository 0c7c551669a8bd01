//! Azure Machine Learning compute: `GET {MSI_ENDPOINT}` with `secret: {MSI_SECRET}`,
//! api-version 2017-09-01, `clientid` from the option or `DEFAULT_IDENTITY_CLIENT_ID`.

use azure_core::credentials::Secret;
use azure_core::http::{Request, Url};

use super::UserAssignedId;
use super::request::{get, with_query};

/// The Azure ML source.
#[derive(Debug)]
pub(super) struct AzureMl {
    pub(super) endpoint: Url,
    pub(super) secret: Secret,
    pub(super) default_client_id: Option<String>,
}

impl AzureMl {
    pub(super) fn request(&self, resource: &str, id: Option<&UserAssignedId>) -> Request {
        let client_id = match id {
            Some(UserAssignedId::ClientId(c)) => Some(c.as_str()),
            _ => self.default_client_id.as_deref(),
        };
        let url = with_query(
            &self.endpoint,
            "2017-09-01",
            resource,
            client_id.map(|c| ("clientid", c)),
        );
        get(url, &[("secret", self.secret.secret())])
    }
}
