//! Which managed-identity host this is: detection from the environment in the documented
//! order, the user-assigned ids each host can select, and its token request.

use azure_core::credentials::Secret;
use azure_core::http::Request;

use super::app_service::AppService;
use super::arc::{self, Arc};
use super::azure_ml::AzureMl;
use super::cloud_shell::CloudShell;
use super::imds::Imds;
use super::request::parse_url;
use super::service_fabric::ServiceFabric;
use super::{ManagedIdentityCredentialOptions, UserAssignedId};
use crate::errors::credential_error;

/// Where a token comes from.
#[derive(Debug)]
pub(super) enum Source {
    Imds(Imds),
    AppService(AppService),
    Arc(Arc),
    ServiceFabric(ServiceFabric),
    CloudShell(CloudShell),
    AzureMl(AzureMl),
}

impl Source {
    /// Selects the source from the environment, in the documented order. A variable counts as
    /// set when it is non-empty.
    pub(super) fn detect(options: &ManagedIdentityCredentialOptions) -> azure_core::Result<Self> {
        let os = &options.os;
        let identity_endpoint = os.var("IDENTITY_ENDPOINT");
        if let (Some(endpoint), Some(header)) = (&identity_endpoint, os.var("IDENTITY_HEADER")) {
            let endpoint = parse_url(endpoint, "IDENTITY_ENDPOINT")?;
            let secret = Secret::new(header);
            return Ok(match os.var("IDENTITY_SERVER_THUMBPRINT") {
                Some(thumbprint) => Self::ServiceFabric(ServiceFabric {
                    endpoint,
                    secret,
                    thumbprint,
                }),
                None => Self::AppService(AppService {
                    endpoint,
                    header: secret,
                }),
            });
        }
        if let (Some(endpoint), Some(_)) = (&identity_endpoint, os.var("IMDS_ENDPOINT")) {
            let key_directory = options.arc_key_directory.clone();
            return Ok(Self::Arc(Arc {
                endpoint: parse_url(endpoint, "IDENTITY_ENDPOINT")?,
                key_directory: key_directory.unwrap_or_else(|| arc::default_key_directory(os)),
            }));
        }
        if let Some(endpoint) = os.var("MSI_ENDPOINT") {
            let endpoint = parse_url(&endpoint, "MSI_ENDPOINT")?;
            return Ok(match os.var("MSI_SECRET") {
                Some(secret) => Self::AzureMl(AzureMl {
                    endpoint,
                    secret: Secret::new(secret),
                    default_client_id: os.var("DEFAULT_IDENTITY_CLIENT_ID"),
                }),
                None => Self::CloudShell(CloudShell { endpoint }),
            });
        }
        Imds::detect(options).map(Self::Imds)
    }

    /// The source's name in messages.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Imds(_) => "IMDS",
            Self::AppService(_) => "App Service",
            Self::Arc(_) => "Azure Arc",
            Self::ServiceFabric(_) => "Service Fabric",
            Self::CloudShell(_) => "Cloud Shell",
            Self::AzureMl(_) => "Azure ML",
        }
    }

    /// Rejects a user-assigned id the source cannot select.
    pub(super) fn check_user_assigned(
        &self,
        id: Option<&UserAssignedId>,
    ) -> azure_core::Result<()> {
        let supported = matches!(
            (self, id),
            (_, None)
                | (Self::Imds(_) | Self::AppService(_), Some(_))
                | (Self::AzureMl(_), Some(UserAssignedId::ClientId(_)))
        );
        if supported {
            return Ok(());
        }
        let kind = match id {
            Some(UserAssignedId::ClientId(_)) => "client ids",
            Some(UserAssignedId::ObjectId(_)) => "object ids",
            _ => "resource ids",
        };
        let hint = match self {
            Self::AzureMl(_) => " (Azure ML selects identities by client id only)",
            Self::ServiceFabric(_) => " (configure the application's identity in the cluster)",
            _ => " (only the system-assigned identity is available there)",
        };
        Err(credential_error(format!(
            "{} managed identity doesn't support user-assigned {kind}{hint}",
            self.name()
        )))
    }

    /// The token request for `resource`. `authorization` answers an Azure Arc challenge.
    pub(super) fn request(
        &self,
        resource: &str,
        id: Option<&UserAssignedId>,
        authorization: Option<&str>,
    ) -> Request {
        match self {
            Self::Imds(host) => host.request(resource, id),
            Self::AppService(host) => host.request(resource, id),
            Self::Arc(host) => host.request(resource, authorization),
            Self::ServiceFabric(host) => host.request(resource),
            Self::AzureMl(host) => host.request(resource, id),
            Self::CloudShell(host) => host.request(resource),
        }
    }
}
