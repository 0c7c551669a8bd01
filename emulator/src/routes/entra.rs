//! The Entra surface: token endpoints (v1 and v2), OpenID discovery, JWKS and instance
//! discovery.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{Origin, client_request_id};
use crate::assertion::{self, AssertionContext, JWT_BEARER};
use crate::directory::{Directory, TenantEntry, TenantLookupError, secret_expired};
use crate::errors::EntraError;
use crate::form;
use crate::state::{Ring, Shared};
use crate::tokens::{self, AppTokenRequest, ClientAuthMethod};

/// Which token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// `/oauth2/token` with `resource`.
    V1,
    /// `/oauth2/v2.0/token` with `scope`.
    V2,
}

/// Form fields the token endpoint understands; others are ignored unless strict.
const KNOWN_FIELDS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "resource",
    "claims",
    "client_info",
    "client-request-id",
    "x-client-SKU",
    "x-client-VER",
    "x-client-OS",
    "x-client-CPU",
    "x-ms-lib-capability",
    "x-client-current-telemetry",
    "x-client-last-telemetry",
    "x-app-name",
    "x-app-ver",
    "username",
    "password",
    "refresh_token",
];

/// Scopes MSAL clients may add that do not name a resource.
const OIDC_SCOPES: &[&str] = &["openid", "profile", "offline_access"];

fn tenant_error(segment: &str, e: TenantLookupError) -> EntraError {
    match e {
        TenantLookupError::NotFound => EntraError::new(90002, &[segment]),
        TenantLookupError::Invalid => EntraError::new(900023, &[segment]),
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token_v2(
    State(shared): State<Arc<Shared>>,
    Extension(origin): Extension<Origin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    token(
        &shared,
        &origin,
        &tenant,
        Version::V2,
        &headers,
        &uri,
        &body,
    )
}

/// `POST /{tenant}/oauth2/token`.
pub(crate) async fn token_v1(
    State(shared): State<Arc<Shared>>,
    Extension(origin): Extension<Origin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    token(
        &shared,
        &origin,
        &tenant,
        Version::V1,
        &headers,
        &uri,
        &body,
    )
}

fn token(
    shared: &Shared,
    origin: &Origin,
    tenant: &str,
    version: Version,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Response {
    let now = shared.now();
    let correlation = client_request_id(headers, uri);
    let origin = origin.of(headers, uri);
    let request = TokenRequest {
        shared,
        origin: &origin,
        tenant_segment: tenant,
        version,
        headers,
        body,
        now: now.unix_timestamp(),
    };
    match request.issue() {
        Ok(body) => {
            let mut response = Json(body).into_response();
            let h = response.headers_mut();
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache"),
            );
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            if let Some(id) = correlation.and_then(|c| HeaderValue::from_str(&c).ok()) {
                h.insert("client-request-id", id);
            }
            response
        }
        Err(e) => e.with_correlation_id(correlation).at(now).into_response(),
    }
}

struct TokenRequest<'a> {
    shared: &'a Shared,
    origin: &'a str,
    tenant_segment: &'a str,
    version: Version,
    headers: &'a HeaderMap,
    body: &'a [u8],
    now: i64,
}

/// The credential a token request presented.
enum Presented {
    Secret(String),
    Assertion { kind: String, value: String },
}

impl TokenRequest<'_> {
    fn issue(&self) -> Result<Value, EntraError> {
        let directory = self.shared.directory();
        let tenant = directory
            .tenant(self.tenant_segment)
            .map_err(|e| tenant_error(self.tenant_segment, e))?;
        let fields = self.form()?;
        if directory.settings().strict
            && let Some((name, _)) = fields
                .iter()
                .find(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        {
            return Err(EntraError::new(
                90004,
                &[&format!("unknown parameter '{name}'")],
            ));
        }
        let basic = basic_credentials(self.headers);
        let grant_type = form::get(&fields, "grant_type")
            .ok_or_else(|| EntraError::new(900144, &["grant_type"]))?;
        let client_id = form::get(&fields, "client_id")
            .map(str::to_string)
            .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
            .ok_or_else(|| EntraError::new(900144, &["client_id"]))?;
        match grant_type {
            "client_credentials" => {}
            "password" => {
                return super::user_grants::password(
                    self.shared,
                    tenant,
                    &fields,
                    &client_id,
                    self.origin,
                    self.now,
                );
            }
            "refresh_token" => {
                return super::user_grants::refresh(
                    self.shared,
                    tenant,
                    &fields,
                    &client_id,
                    self.origin,
                    self.now,
                );
            }
            other => return Err(EntraError::new(70003, &[other])),
        }
        let app = directory
            .app(&tenant.id, &client_id)
            .ok_or_else(|| EntraError::new(700016, &[&client_id, self.tenant_segment]))?;
        let resource = self.resource(&fields)?;
        let presented = presented_credential(&fields, basic)?;
        let auth = self.authenticate(&directory, tenant, app, presented)?;
        let resolved = match directory.resource(&tenant.id, &resource) {
            Some(r) => r,
            None if directory.settings().strict => {
                return Err(EntraError::new(500011, &[&resource, &tenant.id]));
            }
            None => crate::directory::ResolvedResource {
                audience: resource.clone(),
                version: 2,
            },
        };
        let capabilities = client_capabilities(form::get(&fields, "claims"));
        let lifetime = if capabilities.is_empty() {
            directory.settings().token_lifetime_secs as i64
        } else {
            86399
        };
        let key = self.shared.signing_key(Ring::Tokens);
        let access_token = tokens::app_token(
            &key,
            &AppTokenRequest {
                tenant_id: &tenant.id,
                client_id: &app.client_id,
                object_id: &app.object_id,
                roles: &app.roles,
                audience: &resolved.audience,
                version: resolved.version,
                auth,
                now: self.now,
                lifetime_secs: lifetime,
                origin: self.origin,
                capabilities: &capabilities,
                mi_resource_id: None,
            },
        );
        Ok(self.response_body(access_token, lifetime, &resource))
    }

    fn form(&self) -> Result<Vec<(String, String)>, EntraError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(EntraError::new(
                90004,
                &["the body must be application/x-www-form-urlencoded"],
            ));
        }
        form::parse(self.body).map_err(|e| EntraError::new(90004, &[&e.to_string()]))
    }

    /// The resource the request is for: `scope` minus `/.default` (v2) or `resource` (v1).
    fn resource(&self, fields: &[(String, String)]) -> Result<String, EntraError> {
        if self.version == Version::V1 {
            return form::get(fields, "resource")
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .ok_or_else(|| EntraError::new(900144, &["resource"]));
        }
        let scope =
            form::get(fields, "scope").ok_or_else(|| EntraError::new(900144, &["scope"]))?;
        let scopes: Vec<&str> = scope
            .split_whitespace()
            .filter(|s| !OIDC_SCOPES.contains(s))
            .collect();
        let [only] = scopes.as_slice() else {
            return Err(EntraError::new(70011, &[scope]));
        };
        only.strip_suffix("/.default")
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .ok_or_else(|| EntraError::new(1002012, &[only]))
    }

    fn authenticate(
        &self,
        directory: &Directory,
        tenant: &TenantEntry,
        app: &crate::directory::AppEntry,
        presented: Presented,
    ) -> Result<ClientAuthMethod, EntraError> {
        match presented {
            Presented::Secret(secret) => {
                let matching = app.secrets.iter().find(|s| s.value == secret);
                match matching {
                    Some(s) if secret_expired(s, self.shared.now()) => {
                        Err(EntraError::new(7000222, &[&app.client_id]))
                    }
                    Some(_) => Ok(ClientAuthMethod::Secret),
                    None => Err(EntraError::new(7000215, &[&app.client_id])),
                }
            }
            Presented::Assertion { kind, value } => {
                if kind != JWT_BEARER {
                    return Err(EntraError::new(
                        50027,
                        &[&format!("client_assertion_type must be '{JWT_BEARER}'.")],
                    ));
                }
                let ctx = AssertionContext {
                    shared: self.shared,
                    directory,
                    tenant_id: &tenant.id,
                    app,
                    origin: self.origin,
                    now: self.now,
                };
                assertion::validate(&ctx, &value).map(|()| ClientAuthMethod::Assertion)
            }
        }
    }

    fn response_body(&self, access_token: String, lifetime: i64, resource: &str) -> Value {
        if self.version == Version::V1 {
            return json!({
                "token_type": "Bearer",
                "expires_in": lifetime.to_string(),
                "ext_expires_in": lifetime.to_string(),
                "expires_on": (self.now + lifetime).to_string(),
                "not_before": self.now.to_string(),
                "resource": resource,
                "access_token": access_token,
            });
        }
        let mut body = json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        });
        // Entra tells clients to refresh long-lived tokens at half their lifetime.
        if lifetime >= 7200 {
            body["refresh_in"] = json!(lifetime / 2);
        }
        body
    }
}

fn presented_credential(
    fields: &[(String, String)],
    basic: Option<(String, String)>,
) -> Result<Presented, EntraError> {
    if let Some(value) = form::get(fields, "client_assertion") {
        let kind = form::get(fields, "client_assertion_type").unwrap_or_default();
        return Ok(Presented::Assertion {
            kind: kind.to_string(),
            value: value.to_string(),
        });
    }
    form::get(fields, "client_secret")
        .map(str::to_string)
        .or_else(|| basic.map(|(_, secret)| secret))
        .map(Presented::Secret)
        .ok_or_else(|| EntraError::new(7000218, &[]))
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let pairs = form::parse(format!("i={id}&s={secret}").as_bytes()).ok()?;
    Some((
        form::get(&pairs, "i")?.to_string(),
        form::get(&pairs, "s")?.to_string(),
    ))
}

/// Client capabilities declared in a `claims` request parameter
/// (`{"access_token":{"xms_cc":{"values":["CP1"]}}}`), lower-cased as Entra emits them.
fn client_capabilities(claims: Option<&str>) -> Vec<String> {
    let Some(value) = claims.and_then(|c| serde_json::from_str::<Value>(c).ok()) else {
        return Vec::new();
    };
    value
        .pointer("/access_token/xms_cc/values")
        .and_then(|v| v.as_array())
        .map(|values| {
            values
                .iter()
                .filter_map(|v| v.as_str())
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves a discovery tenant segment to the id used in URLs.
fn discovery_tenant(directory: &Directory, segment: &str) -> Result<String, EntraError> {
    if ["common", "organizations", "consumers"].contains(&segment.to_ascii_lowercase().as_str()) {
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
    origin: &Origin,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(String, String, String), EntraError> {
    let directory = shared.directory();
    let tid = discovery_tenant(&directory, segment).map_err(|e| e.at(shared.now()))?;
    let path_tenant = if tid == "{tenantid}" {
        segment.to_string()
    } else {
        tid.clone()
    };
    Ok((tid, path_tenant, origin.of(headers, uri)))
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
    Extension(origin): Extension<Origin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (tid, path_tenant, o) = match discovery_target(&shared, &tenant, &origin, &headers, &uri) {
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
    Extension(origin): Extension<Origin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (tid, path_tenant, o) = match discovery_target(&shared, &tenant, &origin, &headers, &uri) {
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
    Extension(origin): Extension<Origin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (tid, _, o) = match discovery_target(&shared, &tenant, &origin, &headers, &uri) {
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
    Extension(origin): Extension<Origin>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let o = origin.of(&headers, &uri);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_come_from_the_claims_parameter() {
        let claims = r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#;
        assert_eq!(client_capabilities(Some(claims)), ["cp1"]);
        assert!(client_capabilities(Some("not json")).is_empty());
        assert!(client_capabilities(None).is_empty());
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("app%3A1:s%2Fecret");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        assert_eq!(
            basic_credentials(&headers),
            Some(("app:1".to_string(), "s/ecret".to_string()))
        );
    }
}
