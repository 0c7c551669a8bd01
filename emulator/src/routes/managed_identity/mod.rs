//! Managed-identity hosts, one module each: IMDS, App Service, Azure Arc, Service Fabric,
//! Cloud Shell and Azure ML. Served on both listeners (Service Fabric on its own); the plain
//! HTTP one is what `IDENTITY_ENDPOINT` / `AZURE_POD_IDENTITY_AUTHORITY_HOST` / `HTTP_PROXY`
//! point at. This module holds what they share: identity selection and minting.

use axum::http::HeaderMap;

use crate::config::ManagedIdentity;
use crate::directory::{Directory, ResolvedResource};
use crate::state::{Ring, Shared};
use crate::tokens::{self, AppTokenRequest, ClientAuthMethod};

pub(crate) mod app_service;
pub(crate) mod arc;
pub(crate) mod azure_ml;
pub(crate) mod cloud_shell;
pub(crate) mod imds;
pub(crate) mod service_fabric;

/// A query parameter by any of its names; empty values count as absent.
fn param<'a>(query: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn header_is(headers: &HeaderMap, name: &str, expected: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(expected))
}

/// Which identity a request selects.
#[derive(Debug)]
enum Selector<'a> {
    System,
    ClientId(&'a str),
    ObjectId(&'a str),
    ResourceId(&'a str),
}

fn select<'d>(directory: &'d Directory, selector: &Selector<'_>) -> Option<&'d ManagedIdentity> {
    let ids = &directory.seed.managed_identities;
    match selector {
        Selector::System => ids.iter().find(|m| m.system_assigned),
        Selector::ClientId(id) => ids.iter().find(|m| m.client_id.eq_ignore_ascii_case(id)),
        Selector::ObjectId(id) => ids.iter().find(|m| m.object_id.eq_ignore_ascii_case(id)),
        Selector::ResourceId(id) => ids.iter().find(|m| m.resource_id.eq_ignore_ascii_case(id)),
    }
}

/// The identity an IMDS-style query selects (`client_id`, `object_id`, `msi_res_id` /
/// `mi_res_id`), or an error message.
fn select_from_query<'d>(
    directory: &'d Directory,
    query: &[(String, String)],
) -> Result<&'d ManagedIdentity, &'static str> {
    let selectors: Vec<Selector<'_>> = [
        param(query, &["client_id", "clientid"]).map(Selector::ClientId),
        param(query, &["object_id", "principal_id"]).map(Selector::ObjectId),
        param(query, &["msi_res_id", "mi_res_id"]).map(Selector::ResourceId),
    ]
    .into_iter()
    .flatten()
    .collect();
    let selector = match selectors.len() {
        0 => Selector::System,
        1 => selectors.into_iter().next().unwrap_or(Selector::System),
        _ => return Err("Multiple identity selectors were specified; use only one"),
    };
    select(directory, &selector).ok_or("Identity not found")
}

/// A token minted for a managed identity.
#[derive(Debug)]
struct Minted {
    token: String,
    now: i64,
    lifetime: i64,
}

impl Minted {
    fn expires_on(&self) -> i64 {
        self.now + self.lifetime
    }
}

/// The resource as Entra names it, or the error text when strict mode does not know it.
fn resolve(
    directory: &Directory,
    tenant: &str,
    resource: &str,
) -> Result<ResolvedResource, String> {
    let trimmed = resource.trim_end_matches("/.default");
    match directory.resource(tenant, trimmed) {
        Some(r) => Ok(r),
        None if directory.settings().strict => Err(format!(
            "AADSTS500011: The resource principal named {trimmed} was not found in the tenant named {tenant}."
        )),
        None => Ok(ResolvedResource {
            audience: trimmed.to_string(),
            version: 2,
        }),
    }
}

/// Mints a token for `identity` and `resource`; `Err` when the resource is unknown in strict
/// mode.
///
/// A request with `xms_cc` (client capabilities, as MSAL sends them for CAE) gets a CAE token:
/// long-lived, and refused by resources once the identity is revoked.
fn mint(
    shared: &Shared,
    identity: &ManagedIdentity,
    resource: &str,
    query: &[(String, String)],
) -> Result<Minted, String> {
    let directory = shared.directory();
    let resolved = resolve(&directory, &identity.tenant, resource)?;
    let capabilities: Vec<String> = param(query, &["xms_cc"])
        .map(|caps| {
            caps.split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let ids = [identity.client_id.as_str(), identity.object_id.as_str()];
    let now = shared
        .revocations
        .issue_time(ids, shared.now().unix_timestamp());
    let lifetime = if capabilities.is_empty() {
        directory.settings().token_lifetime_secs as i64
    } else {
        crate::grants::CAE_LIFETIME_SECS
    };
    let origin = shared.https_origin.get().cloned().unwrap_or_default();
    let token = tokens::app_token(
        &shared.signing_key(Ring::Tokens),
        &AppTokenRequest {
            tenant_id: &identity.tenant,
            client_id: &identity.client_id,
            object_id: &identity.object_id,
            roles: &identity.roles,
            audience: &resolved.audience,
            version: resolved.version,
            auth: ClientAuthMethod::Assertion,
            now,
            lifetime_secs: lifetime,
            origin: &origin,
            capabilities: &capabilities,
            mi_resource_id: Some(&identity.resource_id),
        },
    );
    Ok(Minted {
        token,
        now,
        lifetime,
    })
}
