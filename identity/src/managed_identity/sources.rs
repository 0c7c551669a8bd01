//! The six managed-identity sources: how each is detected, which user-assigned ids it takes,
//! and what its token request looks like.

use std::path::{Component, Path, PathBuf};

use azure_core::credentials::Secret;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::{Method, RawResponse, Request, Url};

use super::{ManagedIdentityCredentialOptions, UserAssignedId};
use crate::errors::credential_error;
use crate::os::Os;

const DEFAULT_IMDS: &str = "http://169.254.169.254";
const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
/// The largest Azure Arc challenge file clients accept.
const ARC_KEY_MAX_BYTES: usize = 4096;

/// Where a token comes from.
#[derive(Debug)]
pub(super) enum Source {
    Imds {
        endpoint: Url,
    },
    AppService {
        endpoint: Url,
        header: Secret,
    },
    Arc {
        endpoint: Url,
        key_directory: PathBuf,
    },
    ServiceFabric {
        endpoint: Url,
        secret: Secret,
        thumbprint: String,
    },
    CloudShell {
        endpoint: Url,
    },
    AzureMl {
        endpoint: Url,
        secret: Secret,
        default_client_id: Option<String>,
    },
}

fn parse_url(text: &str, variable: &str) -> azure_core::Result<Url> {
    Url::parse(text).map_err(|e| {
        Error::with_error(
            ErrorKind::Credential,
            e,
            format!("invalid URL in {variable}: {text}"),
        )
    })
}

fn default_arc_directory(os: &Os) -> PathBuf {
    if cfg!(windows) {
        let data = os
            .var("ProgramData")
            .unwrap_or_else(|| r"C:\ProgramData".to_string());
        PathBuf::from(data)
            .join("AzureConnectedMachineAgent")
            .join("Tokens")
    } else {
        PathBuf::from("/var/opt/azcmagent/tokens")
    }
}

impl Source {
    /// Selects the source from the environment, in the documented order. A variable counts as
    /// set when it is non-empty.
    pub(super) fn detect(options: &ManagedIdentityCredentialOptions) -> azure_core::Result<Self> {
        let os = &options.os;
        let identity_endpoint = os.var("IDENTITY_ENDPOINT");
        let identity_header = os.var("IDENTITY_HEADER");
        if let (Some(endpoint), Some(header)) = (&identity_endpoint, &identity_header) {
            let endpoint = parse_url(endpoint, "IDENTITY_ENDPOINT")?;
            return Ok(match os.var("IDENTITY_SERVER_THUMBPRINT") {
                Some(thumbprint) => Self::ServiceFabric {
                    endpoint,
                    secret: Secret::new(header.clone()),
                    thumbprint,
                },
                None => Self::AppService {
                    endpoint,
                    header: Secret::new(header.clone()),
                },
            });
        }
        if let (Some(endpoint), Some(_)) = (&identity_endpoint, os.var("IMDS_ENDPOINT")) {
            return Ok(Self::Arc {
                endpoint: parse_url(endpoint, "IDENTITY_ENDPOINT")?,
                key_directory: options
                    .arc_key_directory
                    .clone()
                    .unwrap_or_else(|| default_arc_directory(os)),
            });
        }
        if let Some(endpoint) = os.var("MSI_ENDPOINT") {
            let endpoint = parse_url(&endpoint, "MSI_ENDPOINT")?;
            return Ok(match os.var("MSI_SECRET") {
                Some(secret) => Self::AzureMl {
                    endpoint,
                    secret: Secret::new(secret),
                    default_client_id: os.var("DEFAULT_IDENTITY_CLIENT_ID"),
                },
                None => Self::CloudShell { endpoint },
            });
        }
        let base = options
            .imds_endpoint
            .clone()
            .or_else(|| os.var("AZURE_POD_IDENTITY_AUTHORITY_HOST"))
            .unwrap_or_else(|| DEFAULT_IMDS.to_string());
        let endpoint = format!("{}{IMDS_PATH}", base.trim_end_matches('/'));
        Ok(Self::Imds {
            endpoint: parse_url(&endpoint, "AZURE_POD_IDENTITY_AUTHORITY_HOST")?,
        })
    }

    /// The source's name in messages.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Imds { .. } => "IMDS",
            Self::AppService { .. } => "App Service",
            Self::Arc { .. } => "Azure Arc",
            Self::ServiceFabric { .. } => "Service Fabric",
            Self::CloudShell { .. } => "Cloud Shell",
            Self::AzureMl { .. } => "Azure ML",
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
                | (Self::Imds { .. } | Self::AppService { .. }, Some(_))
                | (Self::AzureMl { .. }, Some(UserAssignedId::ClientId(_)))
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
            Self::AzureMl { .. } => " (Azure ML selects identities by client id only)",
            Self::ServiceFabric { .. } => " (configure the application's identity in the cluster)",
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
            Self::Imds { endpoint } => {
                let url = with_query(endpoint, "2019-08-01", resource, selector(id, "msi_res_id"));
                get(url, &[("metadata", "true")])
            }
            Self::AppService { endpoint, header } => {
                let url = with_query(endpoint, "2019-08-01", resource, selector(id, "mi_res_id"));
                get(
                    url,
                    &[("metadata", "true"), ("x-identity-header", header.secret())],
                )
            }
            Self::Arc { endpoint, .. } => {
                let url = with_query(endpoint, "2020-06-01", resource, None);
                let mut headers = vec![("metadata", "true")];
                if let Some(auth) = authorization {
                    headers.push(("authorization", auth));
                }
                get(url, &headers)
            }
            Self::ServiceFabric {
                endpoint, secret, ..
            } => {
                let url = with_query(endpoint, "2019-07-01-preview", resource, None);
                get(
                    url,
                    &[("secret", secret.secret()), ("accept", "application/json")],
                )
            }
            Self::AzureMl {
                endpoint,
                secret,
                default_client_id,
            } => {
                let client_id = match id {
                    Some(UserAssignedId::ClientId(c)) => Some(c.as_str()),
                    _ => default_client_id.as_deref(),
                };
                let url = with_query(
                    endpoint,
                    "2017-09-01",
                    resource,
                    client_id.map(|c| ("clientid", c)),
                );
                get(url, &[("secret", secret.secret())])
            }
            Self::CloudShell { endpoint } => {
                let mut request = Request::new(endpoint.clone(), Method::Post);
                request.insert_header("metadata", "true");
                request.insert_header("content-type", "application/x-www-form-urlencoded");
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("resource", resource)
                    .finish();
                request.set_body(body);
                request
            }
        }
    }
}

/// The query parameter a user-assigned id becomes (`resource_id_name` differs by host).
fn selector<'a>(
    id: Option<&'a UserAssignedId>,
    resource_id_name: &'static str,
) -> Option<(&'static str, &'a str)> {
    match id? {
        UserAssignedId::ClientId(c) => Some(("client_id", c)),
        UserAssignedId::ObjectId(o) => Some(("object_id", o)),
        UserAssignedId::ResourceId(r) => Some((resource_id_name, r)),
    }
}

fn with_query(
    endpoint: &Url,
    api_version: &str,
    resource: &str,
    extra: Option<(&str, &str)>,
) -> Url {
    let mut url = endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("api-version", api_version)
            .append_pair("resource", resource);
        if let Some((name, value)) = extra {
            query.append_pair(name, value);
        }
    }
    url
}

fn get(url: Url, headers: &[(&'static str, &str)]) -> Request {
    let mut request = Request::new(url, Method::Get);
    for (name, value) in headers {
        request.insert_header(*name, value.to_string());
    }
    request
}

/// Reads the file an Azure Arc 401 challenge names and returns the `Authorization` value.
/// The file must be in `key_directory`, have the `.key` extension and hold at most 4096 bytes:
/// anything else could make this process send an arbitrary local file to the endpoint.
pub(super) fn answer_arc_challenge(
    response: &RawResponse,
    key_directory: &Path,
    os: &Os,
) -> azure_core::Result<String> {
    let status = u16::from(response.status());
    if status != 401 {
        return Err(credential_error(format!(
            "expected a 401 response from the Azure Arc endpoint, received {status}"
        )));
    }
    let challenge = response
        .headers()
        .get_optional_str(&azure_core::http::headers::HeaderName::from_static(
            "www-authenticate",
        ))
        .ok_or_else(|| {
            credential_error(
                "the Azure Arc endpoint's 401 response has no WWW-Authenticate challenge",
            )
        })?;
    let path = challenge
        .split_once('=')
        .map(|(_, p)| p.trim())
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            credential_error(format!(
                "the Azure Arc challenge '{challenge}' names no file"
            ))
        })?;
    let in_directory = path.parent() == Some(key_directory)
        && !path.components().any(|c| matches!(c, Component::ParentDir));
    if !in_directory {
        return Err(credential_error(format!(
            "the Azure Arc challenge file {} is not in {}",
            path.display(),
            key_directory.display()
        )));
    }
    if path.extension().and_then(|e| e.to_str()) != Some("key") {
        return Err(credential_error(format!(
            "the Azure Arc challenge file {} does not have the .key extension",
            path.display()
        )));
    }
    let contents = os.fs.read(&path).map_err(|e| {
        Error::with_error(
            ErrorKind::Io,
            e,
            format!(
                "failed to read the Azure Arc challenge file {}",
                path.display()
            ),
        )
    })?;
    if contents.len() > ARC_KEY_MAX_BYTES {
        return Err(credential_error(format!(
            "the Azure Arc challenge file {} is larger than {ARC_KEY_MAX_BYTES} bytes",
            path.display()
        )));
    }
    let secret = String::from_utf8_lossy(&contents).trim().to_string();
    Ok(format!("Basic {secret}"))
}
