//! Minting: Entra access tokens (v1 and v2 claim sets), Kubernetes service-account tokens and
//! Azure Pipelines OIDC tokens.

use serde::Serialize;
use serde_json::{Value, json};

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
    /// `appidacr`: "1" for a secret, "2" for an assertion.
    pub(crate) fn acr(self) -> &'static str {
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

/// The v1 issuer of a tenant.
pub(crate) fn v1_issuer(tenant_id: &str) -> String {
    format!("https://sts.windows.net/{tenant_id}/")
}

/// The v2 issuer of a tenant at `origin`.
pub(crate) fn v2_issuer(origin: &str, tenant_id: &str) -> String {
    format!("{origin}/{tenant_id}/v2.0")
}

/// The claims of an access token as Entra issues them, v1 and v2, app and user (fields in
/// alphabetical order, as Entra's tokens list them). Absent fields are left out.
#[derive(Debug, Default, Serialize)]
struct AccessTokenClaims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    aio: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    appid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    appidacr: Option<&'a str>,
    aud: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    azp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    azpacr: Option<&'a str>,
    exp: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    idp: Option<String>,
    idtyp: &'static str,
    iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    nbf: i64,
    oid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rh: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    scp: Option<&'a str>,
    sub: String,
    tid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    upn: Option<&'a str>,
    uti: String,
    ver: &'static str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    xms_cc: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    xms_mirid: Option<&'a str>,
}

impl<'a> AccessTokenClaims<'a> {
    /// The claims every token has: audience, issuer, times, tenant, version, the caller.
    fn common(v1: bool, audience: &'a str, tenant: &'a str, caller: (&'a str, &'a str)) -> Self {
        let (client_id, acr) = caller;
        let (appid, azp) = if v1 {
            (Some(client_id), None)
        } else {
            (None, Some(client_id))
        };
        Self {
            appid,
            appidacr: appid.map(|_| acr),
            azp,
            azpacr: azp.map(|_| acr),
            aud: audience,
            tid: tenant,
            uti: crypto::random_b64(16),
            ver: if v1 { "1.0" } else { "2.0" },
            ..Self::default()
        }
    }

    /// Issued at `now`, expiring after `lifetime_secs`, by `issuer`.
    fn at(mut self, issuer: String, now: i64, lifetime_secs: i64) -> Self {
        self.iss = issuer;
        self.iat = now;
        self.nbf = now;
        self.exp = now + lifetime_secs;
        self
    }
}

fn issuer(v1: bool, origin: &str, tenant_id: &str) -> String {
    if v1 {
        v1_issuer(tenant_id)
    } else {
        v2_issuer(origin, tenant_id)
    }
}

/// Signs an app-only access token.
pub(crate) fn app_token(key: &SigningKey, req: &AppTokenRequest<'_>) -> String {
    let v1 = req.version == 1;
    let caller = (req.client_id, req.auth.acr());
    let claims = AccessTokenClaims {
        aio: Some(crypto::random_b64(48)),
        idp: v1.then(|| v1_issuer(req.tenant_id)),
        idtyp: "app",
        oid: req.object_id,
        rh: Some(format!("0.{}.", crypto::random_b64(32))),
        roles: req.roles,
        sub: req.object_id.to_string(),
        xms_mirid: req.mi_resource_id,
        xms_cc: req.capabilities,
        ..AccessTokenClaims::common(v1, req.audience, req.tenant_id, caller)
    }
    .at(
        issuer(v1, req.origin, req.tenant_id),
        req.now,
        req.lifetime_secs,
    );
    key.sign_jwt(&claims, v1)
}

/// The Azure CLI's public client id: user tokens from Cloud Shell and the developer tools are
/// issued to it.
pub(crate) const AZURE_CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// Everything a delegated (user) access token needs.
#[derive(Debug)]
pub(crate) struct UserTokenRequest<'a> {
    pub(crate) user: &'a crate::config::User,
    /// The tenant the token is issued in (the user's home tenant, or one it is a guest in).
    pub(crate) tenant_id: &'a str,
    /// The client the user signed in to.
    pub(crate) client_id: &'a str,
    /// `0` for a public client, `1` secret, `2` certificate or assertion.
    pub(crate) client_acr: &'static str,
    pub(crate) audience: &'a str,
    pub(crate) version: u8,
    /// The delegated permissions (`scp`), space-separated.
    pub(crate) scp: &'a str,
    pub(crate) now: i64,
    pub(crate) lifetime_secs: i64,
    pub(crate) origin: &'a str,
    /// Client capabilities (`cp1`) declared through `claims`.
    pub(crate) capabilities: &'a [String],
}

/// The user's object id in `tenant_id`: its own at home, a stable derived one where it is a
/// guest (Entra gives a guest a separate object in the host tenant).
pub(crate) fn user_object_id(user: &crate::config::User, tenant_id: &str) -> String {
    if user.tenant.eq_ignore_ascii_case(tenant_id) {
        return user.object_id.clone();
    }
    crypto::derived_uuid(&format!("guest:{}:{}", user.object_id, tenant_id))
}

/// The `sub` of a user's tokens: pairwise per user and client, stable (Entra's is too).
fn pairwise_sub(oid: &str, client_id: &str) -> String {
    crypto::b64url(crypto::sha256(format!("sub:{oid}:{client_id}").as_bytes()))
}

/// Signs a delegated (user) access token.
pub(crate) fn user_token(key: &SigningKey, req: &UserTokenRequest<'_>) -> String {
    let v1 = req.version == 1;
    let user = req.user;
    let upn = user.user_principal_name.as_str();
    let oid = user_object_id(user, req.tenant_id);
    let guest = !user.tenant.eq_ignore_ascii_case(req.tenant_id);
    let claims = AccessTokenClaims {
        idp: guest.then(|| v1_issuer(&user.tenant)),
        idtyp: "user",
        name: Some(&user.display_name),
        oid: &oid,
        scp: Some(req.scp),
        sub: pairwise_sub(&oid, req.client_id),
        upn: v1.then_some(upn),
        preferred_username: (!v1).then_some(upn),
        xms_cc: req.capabilities,
        ..AccessTokenClaims::common(
            v1,
            req.audience,
            req.tenant_id,
            (req.client_id, req.client_acr),
        )
    }
    .at(
        issuer(v1, req.origin, req.tenant_id),
        req.now,
        req.lifetime_secs,
    );
    key.sign_jwt(&claims, v1)
}

/// The claims of an OpenID Connect ID token (v2), as Entra issues them.
#[derive(Debug, Serialize)]
struct IdTokenClaims<'a> {
    aud: &'a str,
    exp: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    idp: Option<String>,
    iss: String,
    name: &'a str,
    nbf: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    oid: &'a str,
    preferred_username: &'a str,
    rh: String,
    sub: String,
    tid: &'a str,
    uti: String,
    ver: &'static str,
}

/// Signs an ID token for the user of `req`, for `req.client_id`, with `nonce` when the sign-in
/// request had one.
pub(crate) fn id_token(
    key: &SigningKey,
    req: &UserTokenRequest<'_>,
    nonce: Option<&str>,
) -> String {
    let user = req.user;
    let oid = user_object_id(user, req.tenant_id);
    let guest = !user.tenant.eq_ignore_ascii_case(req.tenant_id);
    let claims = IdTokenClaims {
        aud: req.client_id,
        exp: req.now + req.lifetime_secs,
        iat: req.now,
        idp: guest.then(|| v1_issuer(&user.tenant)),
        iss: v2_issuer(req.origin, req.tenant_id),
        name: &user.display_name,
        nbf: req.now,
        nonce,
        oid: &oid,
        preferred_username: &user.user_principal_name,
        rh: format!("0.{}.", crypto::random_b64(32)),
        sub: pairwise_sub(&oid, req.client_id),
        tid: req.tenant_id,
        uti: crypto::random_b64(16),
        ver: "2.0",
    };
    key.sign_jwt(&claims, false)
}

/// MSAL's `client_info`: base64url of `{"uid": home object id, "utid": home tenant}`; MSAL
/// keys its account on it.
pub(crate) fn client_info(user: &crate::config::User) -> String {
    let json = json!({ "uid": user.object_id, "utid": user.tenant });
    crypto::b64url(json.to_string())
}

/// Claims of a projected Kubernetes service-account token.
#[derive(Debug, Serialize)]
struct KubernetesClaims<'a> {
    aud: [&'a str; 1],
    exp: i64,
    iat: i64,
    iss: &'a str,
    #[serde(rename = "kubernetes.io")]
    kubernetes: KubernetesInfo<'a>,
    nbf: i64,
    sub: String,
}

/// The `kubernetes.io` claim: the pod's namespace and service account.
#[derive(Debug, Serialize)]
struct KubernetesInfo<'a> {
    namespace: &'a str,
    serviceaccount: ServiceAccount<'a>,
}

#[derive(Debug, Serialize)]
struct ServiceAccount<'a> {
    name: &'a str,
    uid: String,
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
        exp: now.saturating_add(req.lifetime_secs.unwrap_or(3600)),
        iat: now,
        iss: issuer,
        kubernetes: KubernetesInfo {
            namespace: &req.namespace,
            serviceaccount: ServiceAccount {
                name: &req.service_account,
                uid: uuid::Uuid::new_v4().to_string(),
            },
        },
        nbf: now,
        sub: format!(
            "system:serviceaccount:{}:{}",
            req.namespace, req.service_account
        ),
    };
    key.sign_jwt(&claims, false)
}

/// Claims of an Azure Pipelines OIDC token.
#[derive(Debug, Serialize)]
struct PipelinesClaims<'a> {
    aud: &'static str,
    def_id: &'static str,
    exp: i64,
    iat: i64,
    iss: String,
    jti: String,
    nbf: i64,
    org_id: &'a str,
    prj_id: &'a str,
    rpo_id: String,
    rpo_ref: &'static str,
    rpo_uri: String,
    rpo_ver: &'static str,
    run_id: &'static str,
    sc_id: &'a str,
    sub: String,
}

/// Signs an Azure Pipelines OIDC token for a service connection.
pub(crate) fn pipelines_token(key: &SigningKey, conn: &ServiceConnection, now: i64) -> String {
    let claims = PipelinesClaims {
        aud: crate::config::well_known::FEDERATION_AUDIENCE,
        def_id: "1",
        exp: now + 600,
        iat: now,
        iss: conn.issuer(),
        jti: uuid::Uuid::new_v4().to_string(),
        nbf: now,
        org_id: &conn.organization_id,
        prj_id: &conn.project_id,
        rpo_id: uuid::Uuid::new_v4().to_string(),
        rpo_ref: "refs/heads/main",
        rpo_uri: format!(
            "https://dev.azure.com/{}/{}/_git/{}",
            conn.organization, conn.project, conn.project
        ),
        rpo_ver: "0000000000000000000000000000000000000000",
        run_id: "1",
        sc_id: &conn.service_connection_id,
        sub: conn.subject(),
    };
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
