//! The in-memory directory built from a [`Seed`]: tenants, applications with their
//! credentials, resources, service connections and trusted external issuers, indexed for the
//! token endpoint.

use std::collections::HashMap;
use std::path::Path;

use time::OffsetDateTime;

use crate::config::{
    Application, ClientSecret, FederatedCredential, Seed, ServiceConnection, Settings, User,
};
use crate::crypto::{self, RsaPublicKey};
use crate::pki::{self, GeneratedCertificate};

/// A registered certificate of an application.
#[derive(Debug, Clone)]
pub(crate) struct AppCertificate {
    pub(crate) sha1: Vec<u8>,
    pub(crate) sha256: Vec<u8>,
    pub(crate) public: RsaPublicKey,
    pub(crate) not_after: i64,
}

/// An application as the token endpoint sees it.
#[derive(Debug, Clone)]
pub(crate) struct AppEntry {
    pub(crate) client_id: String,
    pub(crate) object_id: String,
    pub(crate) roles: Vec<String>,
    pub(crate) secrets: Vec<ClientSecret>,
    pub(crate) certificates: Vec<AppCertificate>,
    pub(crate) federated: Vec<FederatedCredential>,
    pub(crate) display_name: String,
    pub(crate) public_client: bool,
    pub(crate) multi_tenant: bool,
    pub(crate) redirect_uris: Vec<String>,
}

impl AppEntry {
    /// Whether `uri` is one of the app's redirect URIs. A registered loopback URI
    /// (`http://localhost`, `http://127.0.0.1`, `http://[::1]`) matches the same URI on any
    /// port, as Entra's rule for native clients says.
    pub(crate) fn accepts_redirect(&self, uri: &str) -> bool {
        let Ok(wanted) = url::Url::parse(uri) else {
            return false;
        };
        self.redirect_uris.iter().any(|registered| {
            let Ok(registered) = url::Url::parse(registered) else {
                return false;
            };
            if registered == wanted {
                return true;
            }
            let loopback = matches!(
                registered.host_str(),
                Some("localhost" | "127.0.0.1" | "[::1]")
            );
            loopback
                && registered.scheme() == "http"
                && wanted.scheme() == "http"
                && registered.host_str() == wanted.host_str()
                && registered.path().trim_end_matches('/') == wanted.path().trim_end_matches('/')
                && wanted.query().is_none()
        })
    }
}

/// A tenant.
#[derive(Debug, Clone)]
pub(crate) struct TenantEntry {
    pub(crate) id: String,
    pub(crate) domains: Vec<String>,
}

/// What the token endpoint resolved a resource to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedResource {
    /// The `aud` to put in the token.
    pub(crate) audience: String,
    /// 1 or 2.
    pub(crate) version: u8,
}

/// Why a tenant segment did not resolve.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TenantLookupError {
    /// Well-formed but unknown (AADSTS90002).
    NotFound,
    /// Neither a GUID nor a domain name (AADSTS900023).
    Invalid,
}

/// The directory.
#[derive(Debug)]
pub(crate) struct Directory {
    pub(crate) seed: Seed,
    tenants: Vec<TenantEntry>,
    apps: HashMap<(String, String), AppEntry>,
    service_connections: HashMap<String, ServiceConnection>,
    external_issuers: HashMap<String, Vec<RsaPublicKey>>,
    generated: HashMap<String, GeneratedCertificate>,
}

fn key(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// A deterministic object id for an application that has none in the seed.
fn derived_object_id(client_id: &str) -> String {
    crypto::derived_uuid(&format!("oid:{client_id}"))
}

fn is_domain_name(s: &str) -> bool {
    s.contains('.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

impl Directory {
    /// Builds the directory, generating or loading certificate files under `state_dir`.
    pub(crate) fn build(seed: Seed, state_dir: &Path) -> Result<Self, String> {
        seed.validate().map_err(|e| e.to_string())?;
        let tenants = seed
            .tenants
            .iter()
            .map(|t| TenantEntry {
                id: key(&t.id),
                domains: t.domains.iter().map(|d| key(d)).collect(),
            })
            .collect();
        let mut generated = HashMap::new();
        let mut apps = HashMap::new();
        for app in &seed.applications {
            let entry = Self::app_entry(app, state_dir, &mut generated)?;
            apps.insert((key(&app.tenant), key(&app.client_id)), entry);
        }
        let service_connections = seed
            .pipelines
            .iter()
            .map(|p| (key(&p.service_connection_id), p.clone()))
            .collect();
        let mut external_issuers = HashMap::new();
        for issuer in &seed.issuers {
            let jwks = match (&issuer.jwks, &issuer.jwks_file) {
                (Some(text), _) => text.clone(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| format!("reading JWKS file '{path}': {e}"))?,
                (None, None) => {
                    return Err(format!(
                        "issuer '{}' needs `jwks` or `jwks_file`",
                        issuer.issuer
                    ));
                }
            };
            external_issuers.insert(issuer.issuer.clone(), parse_jwks(&jwks)?);
        }
        Ok(Self {
            seed,
            tenants,
            apps,
            service_connections,
            external_issuers,
            generated,
        })
    }

    fn app_entry(
        app: &Application,
        state_dir: &Path,
        generated: &mut HashMap<String, GeneratedCertificate>,
    ) -> Result<AppEntry, String> {
        let mut certificates = Vec::new();
        for spec in &app.certificates {
            let ders = if let Some(name) = &spec.generate {
                let password = spec.pfx_password.as_deref().unwrap_or("");
                let cert = pki::load_or_generate_app_certificate(state_dir, name, password)
                    .map_err(|e| format!("certificate '{name}': {e}"))?;
                let der = cert.certificate_der.clone();
                generated.insert(name.clone(), cert);
                vec![der]
            } else if let Some(path) = &spec.pem_file {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reading certificate file '{path}': {e}"))?;
                pki::certificates_from_pem(&text)
            } else {
                pki::certificates_from_pem(spec.pem.as_deref().unwrap_or(""))
            };
            let der = ders.into_iter().next().ok_or_else(|| {
                format!(
                    "a certificate of application '{}' holds no PEM certificate",
                    app.client_id
                )
            })?;
            certificates.push(app_certificate(&der)?);
        }
        Ok(AppEntry {
            client_id: key(&app.client_id),
            object_id: app
                .object_id
                .clone()
                .unwrap_or_else(|| derived_object_id(&app.client_id)),
            roles: app.roles.clone(),
            secrets: app.secrets.clone(),
            certificates,
            federated: app.federated_credentials.clone(),
            display_name: app.display_name.clone(),
            public_client: app.public_client,
            multi_tenant: app.multi_tenant,
            redirect_uris: app.redirect_uris.clone(),
        })
    }

    /// Settings in force.
    pub(crate) fn settings(&self) -> &Settings {
        &self.seed.settings
    }

    /// Resolves a tenant path segment (GUID or domain name).
    pub(crate) fn tenant(&self, segment: &str) -> Result<&TenantEntry, TenantLookupError> {
        let wanted = key(segment);
        if uuid::Uuid::parse_str(&wanted).is_ok() {
            return self
                .tenants
                .iter()
                .find(|t| t.id == wanted)
                .ok_or(TenantLookupError::NotFound);
        }
        if is_domain_name(&wanted) {
            return self
                .tenants
                .iter()
                .find(|t| t.domains.contains(&wanted))
                .ok_or(TenantLookupError::NotFound);
        }
        Err(TenantLookupError::Invalid)
    }

    /// An application of a tenant.
    pub(crate) fn app(&self, tenant_id: &str, client_id: &str) -> Option<&AppEntry> {
        self.apps.get(&(key(tenant_id), key(client_id)))
    }

    /// The first seeded tenant: the home tenant.
    pub(crate) fn home_tenant(&self) -> Option<&TenantEntry> {
        self.tenants.first()
    }

    /// An application users of `tenant_id` can sign in to: one of the tenant's, or a
    /// multi-tenant app of any tenant.
    pub(crate) fn sign_in_app(&self, tenant_id: &str, client_id: &str) -> Option<&AppEntry> {
        self.app(tenant_id, client_id).or_else(|| {
            let client_id = key(client_id);
            self.apps
                .values()
                .find(|a| a.multi_tenant && a.client_id == client_id)
        })
    }

    /// The display name of an application of any tenant (its client id when it has none).
    pub(crate) fn app_display_name(&self, client_id: &str) -> String {
        let wanted = key(client_id);
        self.apps
            .values()
            .find(|a| a.client_id == wanted && !a.display_name.is_empty())
            .map_or_else(|| client_id.to_string(), |a| a.display_name.clone())
    }

    /// Whether `uri` is a redirect URI of any seeded application.
    pub(crate) fn is_redirect_uri(&self, uri: &str) -> bool {
        self.apps.values().any(|a| a.accepts_redirect(uri))
    }

    /// A user by UPN or object id.
    pub(crate) fn user(&self, who: &str) -> Option<&User> {
        self.seed.users.iter().find(|u| u.matches(who))
    }

    /// Whether `tenant` names one of the aliases Entra resolves to the signed-in user's tenant.
    pub(crate) fn is_alias(segment: &str) -> bool {
        ["common", "organizations", "consumers"]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(segment))
    }

    /// The identifiers a token for application `client_id` may carry as `aud`: its client id,
    /// `api://{client id}` and the identifier URIs of a resource it owns.
    pub(crate) fn audiences_of(&self, client_id: &str) -> Vec<String> {
        let mut out = vec![key(client_id), format!("api://{}", key(client_id))];
        for r in &self.seed.resources {
            if r.app_id.eq_ignore_ascii_case(client_id) {
                out.extend(
                    r.identifier_uris
                        .iter()
                        .map(|u| key(u.trim_end_matches('/'))),
                );
            }
        }
        out
    }

    /// A Pipelines service connection.
    pub(crate) fn service_connection(&self, id: &str) -> Option<&ServiceConnection> {
        self.service_connections.get(&key(id))
    }

    /// Keys of an external issuer configured in the seed.
    pub(crate) fn external_issuer_keys(&self, issuer: &str) -> Option<&[RsaPublicKey]> {
        self.external_issuers.get(issuer).map(Vec::as_slice)
    }

    /// A generated certificate by name.
    pub(crate) fn generated_certificate(&self, name: &str) -> Option<&GeneratedCertificate> {
        self.generated.get(name)
    }

    /// Resolves a resource identifier (scope without `/.default`, or a v1 `resource`).
    pub(crate) fn resource(&self, tenant_id: &str, resource: &str) -> Option<ResolvedResource> {
        let wanted = resource.trim_end_matches('/').to_ascii_lowercase();
        for r in &self.seed.resources {
            let app_id = r.app_id.to_ascii_lowercase();
            let known = r
                .identifier_uris
                .iter()
                .any(|u| u.trim_end_matches('/').eq_ignore_ascii_case(&wanted))
                || wanted == app_id
                || wanted == format!("api://{app_id}");
            if known {
                let audience = if r.token_version == 1 {
                    resource.to_string()
                } else {
                    r.app_id.clone()
                };
                return Some(ResolvedResource {
                    audience,
                    version: r.token_version,
                });
            }
        }
        let app_id = wanted.strip_prefix("api://").unwrap_or(&wanted);
        self.app(tenant_id, app_id).map(|app| ResolvedResource {
            audience: app.client_id.clone(),
            version: 2,
        })
    }
}

fn app_certificate(der: &[u8]) -> Result<AppCertificate, String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let public = RsaPublicKey::from_certificate_der(der)?;
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    Ok(AppCertificate {
        sha1: crypto::sha1(der),
        sha256: crypto::sha256(der),
        public,
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Parses the RSA keys of a JWKS document.
pub(crate) fn parse_jwks(text: &str) -> Result<Vec<RsaPublicKey>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("JWKS is not JSON: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("JWKS has no `keys` array")?;
    let mut out = Vec::new();
    for k in keys {
        if k.get("kty").and_then(|v| v.as_str()) != Some("RSA") {
            continue;
        }
        let component = |name: &str| {
            k.get(name)
                .and_then(|v| v.as_str())
                .and_then(crypto::b64_any)
                .ok_or_else(|| format!("JWKS key lacks a valid `{name}`"))
        };
        out.push(RsaPublicKey::from_components(
            &component("n")?,
            &component("e")?,
        ));
    }
    Ok(out)
}

/// Whether a secret is expired at `now`.
pub(crate) fn secret_expired(secret: &ClientSecret, now: OffsetDateTime) -> bool {
    secret.expires.is_some_and(|at| at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::well_known;

    fn directory() -> (tempfile::TempDir, Directory) {
        let dir = tempfile::tempdir().unwrap();
        let d = Directory::build(Seed::default_seed(), dir.path()).unwrap();
        (dir, d)
    }

    #[test]
    fn tenants_resolve_by_id_and_domain() {
        let (_t, d) = directory();
        assert!(d.tenant(well_known::TENANT_ID).is_ok());
        assert!(d.tenant(&well_known::TENANT_ID.to_uppercase()).is_ok());
        assert!(d.tenant(well_known::TENANT_DOMAIN).is_ok());
        assert_eq!(
            d.tenant("00000000-0000-0000-0000-000000000000")
                .unwrap_err(),
            TenantLookupError::NotFound
        );
        assert_eq!(
            d.tenant("other.onmicrosoft.com").unwrap_err(),
            TenantLookupError::NotFound
        );
        assert_eq!(
            d.tenant("not a tenant").unwrap_err(),
            TenantLookupError::Invalid
        );
    }

    #[test]
    fn resources_pick_token_versions() {
        let (_t, d) = directory();
        let t = well_known::TENANT_ID;
        let arm = d.resource(t, "https://management.azure.com/").unwrap();
        assert_eq!(arm.version, 1);
        assert_eq!(arm.audience, "https://management.azure.com/");
        let api = d.resource(t, "api://entra-emulator-api").unwrap();
        assert_eq!(
            (api.version, api.audience.as_str()),
            (2, "99999999-9999-9999-9999-999999999999")
        );
        let app = d
            .resource(t, &format!("api://{}", well_known::SECRET_APP_CLIENT_ID))
            .unwrap();
        assert_eq!(app.audience, well_known::SECRET_APP_CLIENT_ID);
        assert!(d.resource(t, "https://unknown.example").is_none());
    }
}
