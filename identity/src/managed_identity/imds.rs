//! Azure Instance Metadata Service (VMs, scale sets, AKS nodes): `GET
//! {host}/metadata/identity/oauth2/token` with `Metadata: true`. The host is
//! `AZURE_POD_IDENTITY_AUTHORITY_HOST` or the option, else `http://169.254.169.254`.

use azure_core::http::{Request, Url};

use super::request::{get, parse_url, selector, with_query};
use super::{ManagedIdentityCredentialOptions, UserAssignedId};

const DEFAULT_IMDS: &str = "http://169.254.169.254";
const IMDS_PATH: &str = "/metadata/identity/oauth2/token";

/// The IMDS source.
#[derive(Debug)]
pub(super) struct Imds {
    pub(super) endpoint: Url,
}

impl Imds {
    /// IMDS is the fallback when no other host's variables are set.
    pub(super) fn detect(options: &ManagedIdentityCredentialOptions) -> azure_core::Result<Self> {
        let base = options
            .imds_endpoint
            .clone()
            .or_else(|| options.os.var("AZURE_POD_IDENTITY_AUTHORITY_HOST"))
            .unwrap_or_else(|| DEFAULT_IMDS.to_string());
        let endpoint = format!("{}{IMDS_PATH}", base.trim_end_matches('/'));
        Ok(Self {
            endpoint: parse_url(&endpoint, "AZURE_POD_IDENTITY_AUTHORITY_HOST")?,
        })
    }

    pub(super) fn request(&self, resource: &str, id: Option<&UserAssignedId>) -> Request {
        let url = with_query(
            &self.endpoint,
            "2019-08-01",
            resource,
            selector(id, "msi_res_id"),
        );
        get(url, &[("metadata", "true")])
    }
}
