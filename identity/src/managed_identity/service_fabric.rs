//! Service Fabric: `GET {IDENTITY_ENDPOINT}` over HTTPS with `secret: {IDENTITY_HEADER}`,
//! api-version 2019-07-01-preview; the server certificate is pinned to
//! `IDENTITY_SERVER_THUMBPRINT` (see `tls.rs`).

use azure_core::credentials::Secret;
use azure_core::http::{Request, Url};

use super::request::{get, with_query};

/// The Service Fabric source.
#[derive(Debug)]
pub(super) struct ServiceFabric {
    pub(super) endpoint: Url,
    pub(super) secret: Secret,
    pub(super) thumbprint: String,
}

impl ServiceFabric {
    pub(super) fn request(&self, resource: &str) -> Request {
        let url = with_query(&self.endpoint, "2019-07-01-preview", resource, None);
        get(
            url,
            &[
                ("secret", self.secret.secret()),
                ("accept", "application/json"),
            ],
        )
    }
}
