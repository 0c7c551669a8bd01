//! What every host's token request is built from: the endpoint with its query, and headers.

use azure_core::error::{Error, ErrorKind};
use azure_core::http::{Method, Request, Url};

use super::UserAssignedId;

/// An endpoint from an environment variable.
pub(super) fn parse_url(text: &str, variable: &str) -> azure_core::Result<Url> {
    Url::parse(text).map_err(|e| {
        Error::with_error(
            ErrorKind::Credential,
            e,
            format!("invalid URL in {variable}: {text}"),
        )
    })
}

/// The query parameter a user-assigned id becomes (`resource_id_name` differs by host).
pub(super) fn selector<'a>(
    id: Option<&'a UserAssignedId>,
    resource_id_name: &'static str,
) -> Option<(&'static str, &'a str)> {
    match id? {
        UserAssignedId::ClientId(c) => Some(("client_id", c)),
        UserAssignedId::ObjectId(o) => Some(("object_id", o)),
        UserAssignedId::ResourceId(r) => Some((resource_id_name, r)),
    }
}

/// `endpoint?api-version=…&resource=…[&name=value]`.
pub(super) fn with_query(
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

/// A GET with `headers`.
pub(super) fn get(url: Url, headers: &[(&'static str, &str)]) -> Request {
    let mut request = Request::new(url, Method::Get);
    for (name, value) in headers {
        request.insert_header(*name, value.to_string());
    }
    request
}
