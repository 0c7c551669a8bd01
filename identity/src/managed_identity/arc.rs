//! Azure Arc: `GET {IDENTITY_ENDPOINT}` (api-version 2020-06-01) answers 401 with
//! `WWW-Authenticate: Basic realm=<file>`; the client reads the file (only from the agent's
//! token directory) and retries with `Authorization: Basic <contents>`.

use std::path::{Component, Path, PathBuf};

use azure_core::error::{Error, ErrorKind};
use azure_core::http::{RawResponse, Request, Url};

use super::request::{get, with_query};
use crate::errors::credential_error;
use crate::os::Os;

/// The largest Azure Arc challenge file clients accept.
const ARC_KEY_MAX_BYTES: usize = 4096;

/// The Azure Arc source.
#[derive(Debug)]
pub(super) struct Arc {
    pub(super) endpoint: Url,
    pub(super) key_directory: PathBuf,
}

/// The agent's token directory.
pub(super) fn default_key_directory(os: &Os) -> PathBuf {
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

impl Arc {
    /// The request; `authorization` answers the challenge.
    pub(super) fn request(&self, resource: &str, authorization: Option<&str>) -> Request {
        let url = with_query(&self.endpoint, "2020-06-01", resource, None);
        let mut headers = vec![("metadata", "true")];
        if let Some(auth) = authorization {
            headers.push(("authorization", auth));
        }
        get(url, &headers)
    }
}

/// Reads the file an Azure Arc 401 challenge names and returns the `Authorization` value.
/// The file must be in `key_directory`, have the `.key` extension and hold at most 4096 bytes:
/// anything else could make this process send an arbitrary local file to the endpoint.
pub(super) fn answer_challenge(
    response: &RawResponse,
    key_directory: &Path,
    os: &Os,
) -> azure_core::Result<String> {
    let path = challenge_file(response)?;
    check_challenge_file(&path, key_directory)?;
    let contents = os.fs.read(&path).map_err(|e| {
        let message = format!(
            "failed to read the Azure Arc challenge file {}",
            path.display()
        );
        Error::with_error(ErrorKind::Io, e, message)
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

/// The file a 401's `WWW-Authenticate: Basic realm=<path>` names.
fn challenge_file(response: &RawResponse) -> azure_core::Result<PathBuf> {
    let status = u16::from(response.status());
    if status != 401 {
        return Err(credential_error(format!(
            "expected a 401 response from the Azure Arc endpoint, received {status}"
        )));
    }
    let name = azure_core::http::headers::HeaderName::from_static("www-authenticate");
    let challenge = response.headers().get_optional_str(&name).ok_or_else(|| {
        credential_error("the Azure Arc endpoint's 401 response has no WWW-Authenticate challenge")
    })?;
    challenge
        .split_once('=')
        .map(|(_, p)| p.trim())
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            credential_error(format!(
                "the Azure Arc challenge '{challenge}' names no file"
            ))
        })
}

/// The file must sit directly in `key_directory` and end in `.key`.
fn check_challenge_file(path: &Path, key_directory: &Path) -> azure_core::Result<()> {
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
    Ok(())
}
