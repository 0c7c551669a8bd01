//! Property tests: malformed requests at every endpoint (paths, methods, query strings,
//! headers, bodies, encodings, JWT-shaped assertions) never panic, never get a 5xx, and every
//! error is JSON in the endpoint's shape.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use tower::ServiceExt;

use super::{Origin, app};
use crate::clock::SystemClock;
use crate::config::{Seed, well_known};
use crate::state::Shared;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::new(dir.path(), Seed::default_seed(), Arc::new(SystemClock)).unwrap();
        Fixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            router: app(
                Arc::new(shared),
                Origin {
                    scheme: "https",
                    service_fabric: false,
                },
            ),
            _dir: dir,
        }
    })
}

fn tenant() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(well_known::TENANT_ID.to_string()),
        Just(well_known::TENANT_DOMAIN.to_string()),
        Just("common".to_string()),
        Just("organizations".to_string()),
        "[a-zA-Z0-9.%_-]{0,40}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    let templates = prop_oneof![
        Just("/{t}/oauth2/v2.0/token"),
        Just("/{t}/oauth2/token"),
        Just("/{t}/v2.0/.well-known/openid-configuration"),
        Just("/{t}/.well-known/openid-configuration"),
        Just("/{t}/discovery/v2.0/keys"),
        Just("/common/discovery/instance"),
        Just("/org/proj/_apis/distributedtask/hubs/{t}/plans/p/jobs/j/oidctoken"),
        Just("/metadata/identity/oauth2/token"),
        Just("/metadata/identity/oauth2/token/"),
        Just("/msi/token"),
        Just("/arc/metadata/identity/oauth2/token"),
        Just("/oauth2/token"),
        Just("/azureml/msi/token"),
        Just("/{t}"),
    ];
    (templates, tenant()).prop_map(|(template, t)| template.replace("{t}", &t))
}

/// A random value: plain text, percent-encoded junk, a known id, or nothing.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "(%[0-9A-Fa-f]{2}|%[G-Zg-z]{1,2}|%|[a-z0-9+])*",
        Just(well_known::SECRET_APP_CLIENT_ID.to_string()),
        Just(well_known::CERTIFICATE_APP_CLIENT_ID.to_string()),
        Just(well_known::USER_ASSIGNED_CLIENT_ID.to_string()),
        Just("https://management.azure.com/.default".to_string()),
        Just("https://management.azure.com".to_string()),
        Just(String::new()),
    ]
}

/// A JWT-shaped string: three base64url segments of random or JSON-ish content.
fn jwt() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        (
            prop_oneof![Just("RS256"), Just("PS256"), Just("none"), Just("HS256")],
            value()
        )
            .prop_map(|(alg, kid)| URL_SAFE_NO_PAD
                .encode(format!(r#"{{"alg":"{alg}","typ":"JWT","x5t":"{kid}","kid":"{kid}"}}"#))),
        (value(), value(), any::<i64>()).prop_map(|(iss, sub, exp)| URL_SAFE_NO_PAD.encode(
            serde_json::json!({"iss": iss, "sub": sub, "aud": iss, "exp": exp, "nbf": exp, "jti": sub})
                .to_string()
        )),
        ".{0,20}",
    ];
    prop::collection::vec(segment, 1..5).prop_map(|parts| parts.join("."))
}

fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("grant_type"),
        Just("client_id"),
        Just("client_secret"),
        Just("scope"),
        Just("resource"),
        Just("client_assertion"),
        Just("client_assertion_type"),
        Just("assertion"),
        Just("requested_token_use"),
        Just("refresh_token"),
        Just("username"),
        Just("password"),
        Just("claims"),
        Just("client_info"),
        Just("x-client-SKU"),
    ];
    let grant = prop_oneof![
        Just("client_credentials".to_string()),
        Just("password".to_string()),
        Just("refresh_token".to_string()),
        Just("urn:ietf:params:oauth:grant-type:jwt-bearer".to_string()),
        Just("urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string()),
    ];
    let pair = (field, prop_oneof![value(), jwt(), grant]).prop_map(|(k, v)| {
        let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        format!("{k}={v}")
    });
    prop::collection::vec(pair, 0..8).prop_map(|pairs| pairs.join("&").into_bytes())
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        form_body(),
        prop::collection::vec(any::<u8>(), 0..200),
        "(%[0-9A-Fa-f]{0,2}|[&=a-z_]){0,80}".prop_map(String::into_bytes),
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    let key = prop_oneof![
        Just("api-version"),
        Just("resource"),
        Just("client_id"),
        Just("object_id"),
        Just("msi_res_id"),
        Just("mi_res_id"),
        Just("principal_id"),
        Just("serviceConnectionId"),
        Just("client-request-id"),
    ];
    let pair = (key, value()).prop_map(|(k, v)| format!("{k}={v}"));
    prop_oneof![
        Just(None),
        prop::collection::vec(pair, 0..5).prop_map(|p| Some(p.join("&"))),
        "[a-zA-Z0-9=&%._~+-]{0,60}".prop_map(Some),
    ]
}

#[derive(Debug, Clone)]
struct Fuzzed {
    method: &'static str,
    path: String,
    query: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn request() -> impl Strategy<Value = Fuzzed> {
    let method = prop_oneof![
        3 => Just("POST"),
        3 => Just("GET"),
        1 => Just("PUT"),
        1 => Just("DELETE"),
    ];
    let header = prop_oneof![
        (
            Just("content-type"),
            prop_oneof![
                Just("application/x-www-form-urlencoded".to_string()),
                Just("application/x-www-form-urlencoded; charset=utf-8".to_string()),
                Just("application/json".to_string()),
                "[ -~]{0,30}",
            ]
        ),
        (
            Just("metadata"),
            prop_oneof![Just("true".to_string()), "[ -~]{0,10}"]
        ),
        (Just("x-identity-header"), value()),
        (Just("secret"), value()),
        (
            Just("authorization"),
            prop_oneof![jwt().prop_map(|t| format!("Bearer {t}")), "[ -~]{0,30}"]
        ),
        (Just("x-tfs-fedauthredirect"), Just("Suppress".to_string())),
        (Just("client-request-id"), value()),
    ];
    (
        method,
        path(),
        query(),
        prop::collection::vec(header, 0..5),
        body(),
    )
        .prop_map(|(method, path, query, headers, body)| Fuzzed {
            method,
            path,
            query,
            headers,
            body,
        })
}

fn send(f: &Fuzzed) -> Option<(u16, Vec<u8>, String)> {
    let fixture = fixture();
    let uri = match &f.query {
        Some(q) => format!("{}?{q}", f.path),
        None => f.path.clone(),
    };
    // What a client library would put on the wire: bytes a URI cannot hold, percent-encoded.
    let uri: String = uri
        .bytes()
        .map(|b| {
            if b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
                )
            {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut builder = Request::builder()
        .method(f.method)
        .uri(&uri)
        .header("host", "127.0.0.1:8443");
    for (name, value) in &f.headers {
        if let Ok(v) = axum::http::HeaderValue::from_str(value) {
            builder = builder.header(*name, v);
        }
    }
    let Ok(request) = builder.body(Body::from(f.body.clone())) else {
        // Not a valid HTTP request (a URI hyper would refuse): nothing to send.
        return None;
    };
    Some(fixture.runtime.block_on(async {
        let response = fixture.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec();
        (status, body, content_type)
    }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn malformed_requests_get_shaped_errors_never_5xx(f in request()) {
        let sent = send(&f);
        prop_assume!(sent.is_some(), "not a valid HTTP request");
        let (status, body, content_type) = sent.unwrap_or_default();
        prop_assert!(status < 500, "{status} for {f:?}: {}", String::from_utf8_lossy(&body));
        if status >= 400 {
            prop_assert!(content_type.contains("json"), "{status} {content_type} for {f:?}");
            let json: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| TestCaseError::fail(format!("{e}: {f:?}")))?;
            // Entra and the managed-identity hosts say `error`; Cloud Shell nests
            // `error.message` (ARM's shape); Azure DevOps says `message`.
            prop_assert!(
                json["error"].is_string()
                    || json["error"]["message"].is_string()
                    || json["message"].is_string(),
                "{json} for {f:?}"
            );
        }
    }
}

/// A separate emulator for the control plane, whose calls change state.
struct ControlFixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
}

fn control_fixture() -> &'static ControlFixture {
    static FIXTURE: OnceLock<ControlFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let shared =
            Arc::new(Shared::new(dir.path(), Seed::default_seed(), Arc::new(SystemClock)).unwrap());
        let origin = Origin {
            scheme: "https",
            service_fabric: false,
        };
        ControlFixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            router: app(shared.clone(), origin),
            shared,
            _dir: dir,
        }
    })
}

/// Any JSON value, biased toward the control plane's field names and extreme numbers.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![
            Just(i64::MAX),
            Just(i64::MIN),
            Just(0i64),
            Just(-1),
            Just(4_000_000_000),
            any::<i64>()
        ]
        .prop_map(Value::from),
        prop_oneof![Just(f64::MAX), Just(1e308), Just(-0.5), any::<f64>()].prop_map(|f| json!(f)),
        ".{0,30}".prop_map(Value::from),
        Just(json!("../../etc/passwd")),
        Just(json!("/tmp/x")),
        Just(json!("hang@token")),
        Just(json!("status@imds,status=999")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            Just("offset_secs"),
            Just("lifetime_secs"),
            Just("namespace"),
            Just("service_account"),
            Just("audience"),
            Just("file"),
            Just("spec"),
            Just("ring"),
            Just("match"),
            Just("action"),
            Just("kind"),
            Just("status"),
            Just("times"),
            Just("probability"),
            Just("seed"),
            Just("value"),
            Just("id"),
            Just("client_id"),
            Just("tenant"),
            Just("issuer"),
            Just("subject"),
            Just("x"),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key.prop_map(str::to_string), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn control_call() -> impl Strategy<Value = (&'static str, &'static str)> {
    prop_oneof![
        Just(("PUT", "/_emulator/clock")),
        Just(("POST", "/_emulator/tokens/kubernetes")),
        Just(("POST", "/_emulator/faults")),
        Just(("POST", "/_emulator/keys/rotate")),
        Just(("POST", "/_emulator/revoke")),
        Just(("POST", "/_emulator/tenants")),
        Just(("POST", "/_emulator/applications")),
        Just((
            "POST",
            "/_emulator/applications/22222222-2222-2222-2222-222222222222/secrets"
        )),
        Just((
            "POST",
            "/_emulator/applications/22222222-2222-2222-2222-222222222222/certificates"
        )),
        Just((
            "POST",
            "/_emulator/applications/nobody/federated-credentials"
        )),
        Just(("PUT", "/_emulator/seed")),
        Just(("POST", "/_emulator/reset")),
        Just(("DELETE", "/_emulator/faults")),
    ]
}

/// Sends one control call, then (faults cleared) a token request; returns both statuses and
/// the control call's body.
fn send_control(method: &str, path: &str, body: &serde_json::Value) -> (u16, Vec<u8>, u16) {
    let fixture = control_fixture();
    fixture.runtime.block_on(async {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:8443")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = fixture.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec();
        fixture.shared.faults.clear();
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
            well_known::SECRET_APP_CLIENT_ID,
            well_known::CLIENT_SECRET
        );
        let token = Request::builder()
            .method("POST")
            .uri(format!("/{}/oauth2/v2.0/token", well_known::TENANT_ID))
            .header("host", "127.0.0.1:8443")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap();
        let token_status = fixture.router.clone().oneshot(token).await.unwrap().status().as_u16();
        let _ = fixture.shared.reset();
        (status, bytes, token_status)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// No JSON input makes a control call answer 5xx or leave the emulator unable to issue a
    /// token afterwards.
    #[test]
    fn control_plane_inputs_never_5xx_or_break_token_issuance(
        (method, path) in control_call(),
        body in json_value(),
    ) {
        let (status, bytes, token_status) = send_control(method, path, &body);
        prop_assert!(status < 500, "{status} for {method} {path} {body}: {}", String::from_utf8_lossy(&bytes));
        if status >= 400 {
            let json: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| TestCaseError::fail(format!("{e}: {method} {path} {body}")))?;
            prop_assert!(json["message"].is_string() || json["error"].is_string(), "{json}");
        }
        // A valid new seed may legitimately remove the tenant; every other call must leave
        // token issuance working.
        if path != "/_emulator/seed" || status >= 400 {
            prop_assert_eq!(token_status, 200, "token issuance after {} {} {}", method, path, body);
        }
    }
}

/// A Key Vault listener's router, and a valid token for it (so requests reach the handlers).
struct VaultFixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    token: String,
    _dir: tempfile::TempDir,
}

fn vault_fixture() -> &'static VaultFixture {
    static FIXTURE: OnceLock<VaultFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let shared =
            Arc::new(Shared::new(dir.path(), Seed::default_seed(), Arc::new(SystemClock)).unwrap());
        let now = shared.now().unix_timestamp();
        let token = crate::tokens::app_token(
            &shared.signing_key(crate::state::Ring::Tokens),
            &crate::tokens::AppTokenRequest {
                tenant_id: well_known::TENANT_ID,
                client_id: well_known::SECRET_APP_CLIENT_ID,
                object_id: "a2222222-2222-2222-2222-222222222222",
                roles: &[],
                audience: "https://vault.azure.net",
                version: 1,
                auth: crate::tokens::ClientAuthMethod::Secret,
                now,
                lifetime_secs: 86_400,
                origin: "https://127.0.0.1:8443",
                capabilities: &["cp1".to_string()],
                mi_resource_id: None,
            },
        );
        VaultFixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            router: super::key_vault::app(shared, well_known::KEY_VAULT_NAME),
            token,
            _dir: dir,
        }
    })
}

#[derive(Debug, Clone)]
struct VaultRequest {
    method: &'static str,
    path: String,
    /// `None`: no header; `Some(None)`: the valid token; `Some(Some(text))`: this header.
    authorization: Option<Option<String>>,
    body: Vec<u8>,
}

fn vault_request() -> impl Strategy<Value = VaultRequest> {
    let method = prop_oneof![
        Just("GET"),
        Just("PUT"),
        Just("PATCH"),
        Just("DELETE"),
        Just("POST")
    ];
    let name = prop_oneof![
        Just("db".to_string()),
        "[a-zA-Z0-9-]{1,20}",
        "[ -~]{0,20}".prop_map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect()),
    ];
    let template = prop_oneof![
        Just("/secrets"),
        Just("/secrets/{n}"),
        Just("/secrets/{n}/"),
        Just("/secrets/{n}/versions"),
        Just("/secrets/{n}/{n}"),
        Just("/deletedsecrets"),
        Just("/deletedsecrets/{n}"),
        Just("/deletedsecrets/{n}/recover"),
        Just("/{n}"),
    ];
    let query = prop_oneof![
        Just(String::new()),
        Just("?api-version=7.5".to_string()),
        Just("?api-version=2025-07-01&maxresults=1".to_string()),
        "[a-zA-Z0-9=&%._$-]{0,40}".prop_map(|q| format!("?{q}")),
        (0usize..40, "[0-9a-z-]{0,6}")
            .prop_map(|(skip, m)| format!("?api-version=7.6&$skiptoken={skip}&maxresults={m}")),
    ];
    let path = (template, name, query).prop_map(|(t, n, q)| format!("{}{q}", t.replace("{n}", &n)));
    let authorization = prop_oneof![
        Just(None),
        Just(Some(None)),
        jwt().prop_map(|t| Some(Some(format!("Bearer {t}")))),
        "[ -~]{0,40}".prop_map(|t| Some(Some(t))),
    ];
    let body = prop_oneof![
        Just(Vec::new()),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        Just(br#"{"value":"v","contentType":"c","tags":{"a":"b"},"attributes":{"enabled":false,"exp":1}}"#.to_vec()),
        prop::collection::vec(any::<u8>(), 0..100),
    ];
    (method, path, authorization, body).prop_map(|(method, path, authorization, body)| {
        VaultRequest {
            method,
            path,
            authorization,
            body,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// No Authorization header, token, path or body makes the vault panic or answer 5xx;
    /// every error is Key Vault's JSON.
    #[test]
    fn the_vault_never_fails_on_bad_input(r in vault_request()) {
        let fixture = vault_fixture();
        let mut builder = Request::builder()
            .method(r.method)
            .uri(&r.path)
            .header("host", "127.0.0.1:9443")
            .header("content-type", "application/json");
        match &r.authorization {
            None => {}
            Some(None) => builder = builder.header("authorization", format!("Bearer {}", fixture.token)),
            Some(Some(text)) => {
                if let Ok(v) = axum::http::HeaderValue::from_str(text) {
                    builder = builder.header("authorization", v);
                }
            }
        }
        let request = builder.body(Body::from(r.body.clone()));
        prop_assume!(request.is_ok(), "not a valid HTTP request");
        let (status, body) = fixture.runtime.block_on(async {
            let response = fixture.router.clone().oneshot(request.unwrap()).await.unwrap();
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (status, body)
        });
        prop_assert!(status < 500, "{status} for {r:?}: {}", String::from_utf8_lossy(&body));
        if status >= 400 {
            let json: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| TestCaseError::fail(format!("{e}: {r:?}")))?;
            prop_assert!(json["error"]["code"].is_string(), "{json} for {r:?}");
        }
    }
}
