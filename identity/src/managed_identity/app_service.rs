//! App Service, Functions and Container Apps: `GET {IDENTITY_ENDPOINT}` with
//! `X-IDENTITY-HEADER: {IDENTITY_HEADER}`, api-version 2019-08-01.

use azure_core::credentials::Secret;
use azure_core::http::{Request, Url};

use super::UserAssignedId;
use super::request::{get, selector, with_query};

/// The App Service source.
#[derive(Debug)]
pub(super) struct AppService {
    pub(super) endpoint: Url,
    pub(super) header: Secret,
}

impl AppService {
    pub(super) fn request(&self, resource: &str, id: Option<&UserAssignedId>) -> Request {
        let url = with_query(
            &self.endpoint,
            "2019-08-01",
            resource,
            selector(id, "mi_res_id"),
        );
        get(
            url,
            &[
                ("metadata", "true"),
                ("x-identity-header", self.header.secret()),
            ],
        )
    }
}
