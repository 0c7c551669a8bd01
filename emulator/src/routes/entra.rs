//! The Entra surface: token endpoints (v1 and v2), OpenID discovery, JWKS and instance
//! discovery. The handlers extract and render; the grants live in [`crate::grants`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::directory::Directory;
use crate::grants::{self, Version, tenant_error};
use crate::state::{Ring, Shared};
use crate::tokens;
use crate::wire::EntraError;

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    ctx: RequestContext,
) -> Response {
    token(&shared, &ctx, &tenant, Version::V2)
}

/// `POST /{tenant}/oauth2/token`.
pub(crate) async fn token_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    ctx: RequestContext,
) -> Response {
    token(&shared, &ctx, &tenant, Version::V1)
}

fn token(shared: &Shared, ctx: &RequestContext, tenant: &str, version: Version) -> Response {
    match grants::issue(shared, ctx, tenant, version) {
        Ok(body) => {
            let mut response = body.into_response();
            let id = ctx.correlation_id.as_deref().map(HeaderValue::from_str);
            if let Some(Ok(id)) = id {
                response.headers_mut().insert("client-request-id", id);
            }
            response
        }
        Err(e) => ctx.entra_error(e).into_response(),
    }
}

/// Resolves a discovery tenant segment to the id used in URLs.
fn discovery_tenant(directory: &Directory, segment: &str) -> Result<String, EntraError> {
    if Directory::is_alias(segment) {
        return Ok("{tenantid}".to_string());
    }
    directory
        .tenant(segment)
        .map(|t| t.id.clone())
        .map_err(|e| tenant_error(segment, e))
}

/// For a discovery request: the tenant id for URLs (`{tenantid}` for `common` and friends), the
/// tenant segment for endpoint paths, and the request's origin; or the Entra error.
fn discovery_target(
    shared: &Shared,
    segment: &str,
    ctx: &RequestContext,
) -> Result<(String, String, String), EntraError> {
    let directory = shared.directory();
    let tid = discovery_tenant(&directory, segment).map_err(|e| ctx.entra_error(e))?;
    let path_tenant = if tid == "{tenantid}" {
        segment.to_string()
    } else {
        tid.clone()
    };
    Ok((tid, path_tenant, ctx.origin.clone()))
}

fn cached(body: Value) -> Response {
    let mut response = Json(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400, private"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) async fn openid_configuration_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    ctx: RequestContext,
) -> Response {
    let (tid, path_tenant, o) = match discovery_target(&shared, &tenant, &ctx) {
        Ok(target) => target,
        Err(e) => return e.into_response(),
    };
    cached(json!({
        "token_endpoint": format!("{o}/{path_tenant}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{o}/{path_tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{o}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{o}/{path_tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{o}/{path_tenant}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{o}/{path_tenant}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{o}/{path_tenant}/kerberos"),
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
}

/// `GET /{tenant}/.well-known/openid-configuration` (v1).
pub(crate) async fn openid_configuration_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    ctx: RequestContext,
) -> Response {
    let (tid, path_tenant, o) = match discovery_target(&shared, &tenant, &ctx) {
        Ok(target) => target,
        Err(e) => return e.into_response(),
    };
    cached(json!({
        "token_endpoint": format!("{o}/{path_tenant}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{o}/common/discovery/keys"),
        "issuer": tokens::v1_issuer(&tid),
        "authorization_endpoint": format!("{o}/{path_tenant}/oauth2/authorize"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "cloud_instance_name": "microsoftonline.com",
        "tenant_region_scope": "WW",
    }))
}

/// `GET /{tenant}/discovery/v2.0/keys`, `/{tenant}/discovery/keys`.
pub(crate) async fn jwks(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    ctx: RequestContext,
) -> Response {
    let (tid, _, o) = match discovery_target(&shared, &tenant, &ctx) {
        Ok(target) => target,
        Err(e) => return e.into_response(),
    };
    let issuer = format!("{o}/{tid}/v2.0");
    cached(tokens::jwks(
        &shared.published_keys(Ring::Tokens),
        Some(&issuer),
    ))
}

/// `GET /common/discovery/instance`.
pub(crate) async fn instance_discovery(
    Query(query): Query<Vec<(String, String)>>,
    ctx: RequestContext,
) -> Response {
    let o = ctx.origin;
    let host = o
        .split_once("://")
        .map_or(o.as_str(), |(_, h)| h)
        .to_string();
    let tenant = query
        .iter()
        .find(|(k, _)| k == "authorization_endpoint")
        .and_then(|(_, v)| url::Url::parse(v).ok())
        .and_then(|u| u.path_segments()?.next().map(str::to_string))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "common".to_string());
    let api_version = query
        .iter()
        .find(|(k, _)| k == "api-version")
        .map_or("1.1", |(_, v)| v.as_str());
    cached(json!({
        "tenant_discovery_endpoint": format!("{o}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": api_version,
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host],
        }],
    }))
}

/// `GET /common/userrealm/{user}`: whether a sign-in name belongs to a tenant the emulator
/// knows (`Managed`), as MSAL asks before a password grant.
pub(crate) async fn user_realm(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
) -> Response {
    let domain = user
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .to_ascii_lowercase();
    let directory = shared.directory();
    let known = !domain.is_empty() && directory.tenant(&domain).is_ok();
    let body = if known {
        json!({
            "ver": "1.0",
            "account_type": "Managed",
            "domain_name": domain,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        })
    } else {
        json!({ "ver": "1.0", "account_type": "Unknown", "cloud_instance_name": "microsoftonline.com" })
    };
    Json(body).into_response()
}
