//! Minting: Entra access tokens (v1 and v2 claim sets), Kubernetes service-account tokens and
//! Azure Pipelines OIDC tokens.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::ServiceConnection;
use crate::crypto::{self, SigningKey};

/// How the client authenticated (`appidacr` / `azpacr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuthMethod {
    /// A client secret: "1".
    Secret,
    /// A certificate or federated assertion: "2".
    Assertion,
}

impl ClientAuthMethod {
    fn acr(self) -> &'static str {
        match self {
            Self::Secret => "1",
            Self::Assertion => "2",
        }
    }
}

/// Everything an app-only access token needs.
#[derive(Debug)]
pub(crate) struct AppTokenRequest<'a> {
    pub(crate) tenant_id: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) object_id: &'a str,
    pub(crate) roles: &'a [String],
    pub(crate) audience: &'a str,
    pub(crate) version: u8,
    pub(crate) auth: ClientAuthMethod,
    pub(crate) now: i64,
    pub(crate) lifetime_secs: i64,
    /// `https://{host}` the request came in on; the v2 issuer is built from it.
    pub(crate) origin: &'a str,
    /// Client capabilities (`cp1`) declared through `claims`.
    pub(crate) capabilities: &'a [String],
    /// For managed identities: the identity's ARM resource id (`xms_mirid`).
    pub(crate) mi_resource_id: Option<&'a str>,
}

/// A random base64url string of `len` random bytes (for `uti`, `aio`, `rh`).
fn random_b64(len: usize) -> String {
    let bytes: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
    crypto::b64url(bytes)
}

/// The v1 issuer of a tenant.
pub(crate) fn v1_issuer(tenant_id: &str) -> String {
    format!("https://sts.windows.net/{tenant_id}/")
}

/// The v2 issuer of a tenant at `origin`.
pub(crate) fn v2_issuer(origin: &str, tenant_id: &str) -> String {
    format!("{origin}/{tenant_id}/v2.0")
}

/// Signs an app-only access token.
pub(crate) fn app_token(key: &SigningKey, req: &AppTokenRequest<'_>) -> String {
    let v1 = req.version == 1;
    let issuer = if v1 {
        v1_issuer(req.tenant_id)
    } else {
        v2_issuer(req.origin, req.tenant_id)
    };
    let mut claims = Map::with_capacity(20);
    claims.insert("aud".into(), json!(req.audience));
    claims.insert("iss".into(), json!(issuer));
    claims.insert("iat".into(), json!(req.now));
    claims.insert("nbf".into(), json!(req.now));
    claims.insert("exp".into(), json!(req.now + req.lifetime_secs));
    claims.insert("aio".into(), json!(random_b64(48)));
    let (caller, acr) = if v1 {
        ("appid", "appidacr")
    } else {
        ("azp", "azpacr")
    };
    claims.insert(caller.into(), json!(req.client_id));
    claims.insert(acr.into(), json!(req.auth.acr()));
    if v1 {
        claims.insert("idp".into(), json!(v1_issuer(req.tenant_id)));
    }
    claims.insert("idtyp".into(), json!("app"));
    claims.insert("oid".into(), json!(req.object_id));
    claims.insert("rh".into(), json!(format!("0.{}.", random_b64(32))));
    if !req.roles.is_empty() {
        claims.insert("roles".into(), json!(req.roles));
    }
    claims.insert("sub".into(), json!(req.object_id));
    claims.insert("tid".into(), json!(req.tenant_id));
    claims.insert("uti".into(), json!(random_b64(16)));
    claims.insert("ver".into(), json!(if v1 { "1.0" } else { "2.0" }));
    if let Some(mirid) = req.mi_resource_id {
        claims.insert("xms_mirid".into(), json!(mirid));
    }
    if !req.capabilities.is_empty() {
        claims.insert("xms_cc".into(), json!(req.capabilities));
    }
    key.sign_jwt(&Value::Object(claims), v1)
}

/// The Azure CLI's public client id: user tokens from Cloud Shell and the developer tools are
/// issued to it.
pub(crate) const AZURE_CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// Signs a delegated (user) access token for `user`, issued to the Azure CLI client.
pub(crate) fn user_token(
    key: &SigningKey,
    user: &crate::config::User,
    audience: &str,
    version: u8,
    now: i64,
    lifetime_secs: i64,
    origin: &str,
) -> String {
    let v1 = version == 1;
    let issuer = if v1 {
        v1_issuer(&user.tenant)
    } else {
        v2_issuer(origin, &user.tenant)
    };
    let mut claims = Map::with_capacity(20);
    claims.insert("aud".into(), json!(audience));
    claims.insert("iss".into(), json!(issuer));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(now + lifetime_secs));
    let (caller, acr) = if v1 {
        ("appid", "appidacr")
    } else {
        ("azp", "azpacr")
    };
    claims.insert(caller.into(), json!(AZURE_CLI_CLIENT_ID));
    claims.insert(acr.into(), json!("0"));
    claims.insert("idtyp".into(), json!("user"));
    claims.insert("name".into(), json!(user.display_name));
    claims.insert("oid".into(), json!(user.object_id));
    claims.insert("scp".into(), json!("user_impersonation"));
    claims.insert("sub".into(), json!(random_b64(32)));
    claims.insert("tid".into(), json!(user.tenant));
    claims.insert(
        if v1 { "upn" } else { "preferred_username" }.into(),
        json!(user.user_principal_name),
    );
    claims.insert("uti".into(), json!(random_b64(16)));
    claims.insert("ver".into(), json!(if v1 { "1.0" } else { "2.0" }));
    key.sign_jwt(&Value::Object(claims), v1)
}

/// Claims of a projected Kubernetes service-account token.
#[derive(Debug, Serialize)]
struct KubernetesClaims<'a> {
    aud: [&'a str; 1],
    exp: i64,
    iat: i64,
    iss: &'a str,
    #[serde(rename = "kubernetes.io")]
    kubernetes: Value,
    nbf: i64,
    sub: String,
}

/// What to mint a Kubernetes token for.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct KubernetesTokenRequest {
    /// The namespace.
    pub namespace: String,
    /// The service account.
    pub service_account: String,
    /// The audience (default `api://AzureADTokenExchange`).
    #[serde(default)]
    pub audience: Option<String>,
    /// Lifetime in seconds (default 3600).
    #[serde(default)]
    pub lifetime_secs: Option<i64>,
}

impl KubernetesTokenRequest {
    /// A request for `system:serviceaccount:{namespace}:{service_account}`.
    pub fn new(namespace: impl Into<String>, service_account: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            service_account: service_account.into(),
            audience: None,
            lifetime_secs: None,
        }
    }

    /// Parses a subject of the form `system:serviceaccount:NS:SA`.
    pub fn from_subject(subject: &str) -> Option<Self> {
        let rest = subject.strip_prefix("system:serviceaccount:")?;
        let (ns, sa) = rest.split_once(':')?;
        Some(Self::new(ns, sa))
    }
}

/// Signs a Kubernetes service-account token.
pub(crate) fn kubernetes_token(
    key: &SigningKey,
    issuer: &str,
    req: &KubernetesTokenRequest,
    now: i64,
) -> String {
    let audience = req
        .audience
        .as_deref()
        .unwrap_or(crate::config::well_known::FEDERATION_AUDIENCE);
    let claims = KubernetesClaims {
        aud: [audience],
        exp: now + req.lifetime_secs.unwrap_or(3600),
        iat: now,
        iss: issuer,
        kubernetes: json!({
            "namespace": req.namespace,
            "serviceaccount": { "name": req.service_account, "uid": uuid::Uuid::new_v4().to_string() },
        }),
        nbf: now,
        sub: format!(
            "system:serviceaccount:{}:{}",
            req.namespace, req.service_account
        ),
    };
    key.sign_jwt(&claims, false)
}

/// Signs an Azure Pipelines OIDC token for a service connection.
pub(crate) fn pipelines_token(key: &SigningKey, conn: &ServiceConnection, now: i64) -> String {
    let claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": conn.subject(),
        "aud": crate::config::well_known::FEDERATION_AUDIENCE,
        "org_id": conn.organization_id,
        "prj_id": conn.project_id,
        "sc_id": conn.service_connection_id,
        "def_id": "1",
        "rpo_id": uuid::Uuid::new_v4().to_string(),
        "rpo_uri": format!("https://dev.azure.com/{}/{}/_git/{}", conn.organization, conn.project, conn.project),
        "rpo_ver": "0000000000000000000000000000000000000000",
        "rpo_ref": "refs/heads/main",
        "run_id": "1",
        "iss": conn.issuer(),
        "nbf": now,
        "exp": now + 600,
        "iat": now,
    });
    key.sign_jwt(&claims, false)
}

/// The JWKS document for `keys`.
pub(crate) fn jwks(keys: &[SigningKey], issuer: Option<&str>) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            let (n, e) = k.public().jwk_components();
            let mut jwk = json!({
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": k.kid(),
                "x5t": k.kid(),
                "n": n,
                "e": e,
                "x5c": [crypto::b64std(k.certificate_der())],
            });
            if let Some(issuer) = issuer {
                jwk["issuer"] = json!(issuer);
            }
            jwk
        })
        .collect();
    json!({ "keys": keys })
}
