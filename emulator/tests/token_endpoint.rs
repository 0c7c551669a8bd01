//! The token endpoint: every grant, every AADSTS error, token shape and verification.

mod common;

use base64::Engine;
use common::*;
use entra_emulator::{KubernetesTokenRequest, well_known};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Value, json};

async fn jwks(emu: &entra_emulator::Emulator) -> JwkSet {
    emu.http_client()
        .get(format!(
            "{}/{}/discovery/v2.0/keys",
            emu.https_url(),
            well_known::TENANT_ID
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies `token` against the emulator's JWKS with jsonwebtoken; returns its claims.
async fn verify(emu: &entra_emulator::Emulator, token: &str, aud: &str, iss: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let set = jwks(emu).await;
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[iss]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("token verifies against JWKS")
        .claims
}

#[tokio::test]
async fn client_secret_grant_issues_a_v1_token_for_arm_that_verifies() {
    let emu = emulator().await;
    let (status, body) = token(
        &emu,
        well_known::TENANT_ID,
        &secret_form(well_known::CLIENT_SECRET, ARM),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    assert!(body.get("refresh_in").is_none());
    let iss = format!("https://sts.windows.net/{}/", well_known::TENANT_ID);
    let claims = verify(
        &emu,
        body["access_token"].as_str().unwrap(),
        "https://management.azure.com",
        &iss,
    )
    .await;
    assert_eq!(claims["appid"], well_known::SECRET_APP_CLIENT_ID);
    assert_eq!(claims["appidacr"], "1");
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["tid"], well_known::TENANT_ID);
    assert_eq!(claims["oid"], claims["sub"]);
    assert_eq!(claims["roles"], json!(["Emulator.ReadWrite.All"]));
    for claim in ["iat", "nbf", "exp", "uti", "rh", "aio", "idp"] {
        assert!(claims.get(claim).is_some(), "missing {claim}");
    }
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3599
    );
}

#[tokio::test]
async fn custom_api_gets_a_v2_token_whose_issuer_matches_discovery() {
    let emu = emulator().await;
    let (status, body) = token(
        &emu,
        well_known::TENANT_DOMAIN,
        &secret_form(
            well_known::CLIENT_SECRET,
            "api://entra-emulator-api/.default",
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let discovery: Value = emu
        .http_client()
        .get(format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            emu.https_url(),
            well_known::TENANT_ID
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let iss = discovery["issuer"].as_str().unwrap();
    assert_eq!(
        iss,
        format!("{}/{}/v2.0", emu.https_url(), well_known::TENANT_ID)
    );
    let claims = verify(
        &emu,
        body["access_token"].as_str().unwrap(),
        "99999999-9999-9999-9999-999999999999",
        iss,
    )
    .await;
    assert_eq!(claims["azp"], well_known::SECRET_APP_CLIENT_ID);
    assert_eq!(claims["azpacr"], "1");
    assert_eq!(claims["ver"], "2.0");
}

#[tokio::test]
async fn client_secret_in_http_basic_is_accepted() {
    let emu = emulator().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        well_known::SECRET_APP_CLIENT_ID,
        well_known::CLIENT_SECRET
    ));
    let response = emu
        .http_client()
        .post(emu.token_url(well_known::TENANT_ID))
        .header("authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "client_credentials"), ("scope", ARM)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn v1_endpoint_takes_resource_and_answers_with_strings() {
    let emu = emulator().await;
    let body: Value = emu
        .http_client()
        .post(format!(
            "{}/{}/oauth2/token",
            emu.https_url(),
            well_known::TENANT_ID
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", well_known::SECRET_APP_CLIENT_ID),
            ("client_secret", well_known::CLIENT_SECRET),
            ("resource", "https://vault.azure.net"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["expires_in"], "3599");
    assert_eq!(body["resource"], "https://vault.azure.net");
    assert!(body["expires_on"].as_str().unwrap().parse::<i64>().is_ok());
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["aud"],
        "https://vault.azure.net"
    );
}

#[tokio::test]
async fn cae_clients_get_long_lived_tokens_with_refresh_in() {
    let emu = emulator().await;
    let mut form = secret_form(well_known::CLIENT_SECRET, ARM);
    form.push((
        "claims",
        r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#,
    ));
    let (status, body) = token(&emu, well_known::TENANT_ID, &form).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 86399);
    assert_eq!(body["refresh_in"], 43199);
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["xms_cc"],
        json!(["cp1"])
    );
}

#[tokio::test]
async fn certificate_assertions_in_every_client_dialect_are_accepted() {
    let emu = emulator().await;
    let (pkcs8, cert) = certificate_app_material(&emu);
    let b64 = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let pem_text = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        b64.encode(&cert)
    );
    let headers = [
        // Upstream Rust: RS256, x5t in standard base64 with padding, x5c of PEM text.
        json!({"alg": "RS256", "typ": "JWT", "x5c": [b64.encode(pem_text.as_bytes())], "x5t": b64.encode(sha1(&cert))}),
        // MSAL Python with PEM input: RS256 and padded x5t.
        json!({"alg": "RS256", "typ": "JWT", "x5t": b64.encode(sha1(&cert))}),
        // msal-node / documented form: PS256 with x5t#S256.
        json!({"alg": "PS256", "typ": "JWT", "x5t#S256": url.encode(sha256(&cert))}),
        // Legacy: base64url x5t, DER x5c.
        json!({"alg": "RS256", "typ": "JWT", "x5t": url.encode(sha1(&cert)), "x5c": [b64.encode(&cert)]}),
    ];
    for header in headers {
        let assertion = sign(&pkcs8, &header, &assertion_claims(&emu, now()));
        let form = assertion_form(well_known::CERTIFICATE_APP_CLIENT_ID, &assertion, ARM);
        let (status, body) = token_owned(&emu, well_known::TENANT_ID, &form).await;
        assert_eq!(status, 200, "{header}: {body}");
        assert_eq!(
            claims_of(body["access_token"].as_str().unwrap())["appidacr"],
            "2"
        );
    }
}

async fn certificate_error(
    emu: &entra_emulator::Emulator,
    header: Value,
    claims: Value,
    pkcs8: &[u8],
) -> (u16, Value) {
    let assertion = sign(pkcs8, &header, &claims);
    let form = assertion_form(well_known::CERTIFICATE_APP_CLIENT_ID, &assertion, ARM);
    token_owned(emu, well_known::TENANT_ID, &form).await
}

#[tokio::test]
async fn certificate_assertion_failures_map_to_their_codes() {
    let emu = emulator().await;
    let (pkcs8, cert) = certificate_app_material(&emu);
    let b64 = base64::engine::general_purpose::STANDARD;
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": b64.encode(sha1(&cert))});
    let now = now();

    // Unknown thumbprint: 700027 "key was not found".
    let unknown = json!({"alg": "RS256", "typ": "JWT", "x5t": b64.encode([7u8; 20])});
    let (s, b) = certificate_error(&emu, unknown, assertion_claims(&emu, now), &pkcs8).await;
    assert_entra_error(s, &b, 700027, 401);
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("The key was not found.")
    );

    // Signed by another key: 700027.
    let other = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let (s, b) = certificate_error(
        &emu,
        header.clone(),
        assertion_claims(&emu, now),
        &other.serialize_der(),
    )
    .await;
    assert_entra_error(s, &b, 700027, 401);

    // Expired beyond the 5-minute skew: 700024.
    let mut expired = assertion_claims(&emu, now);
    expired["nbf"] = json!(now - 3600);
    expired["exp"] = json!(now - 301);
    let (s, b) = certificate_error(&emu, header.clone(), expired, &pkcs8).await;
    assert_entra_error(s, &b, 700024, 401);

    // Within the skew it is fine.
    let mut skewed = assertion_claims(&emu, now);
    skewed["nbf"] = json!(now + 200);
    skewed["exp"] = json!(now + 600);
    let (s, b) = certificate_error(&emu, header.clone(), skewed, &pkcs8).await;
    assert_eq!(s, 200, "{b}");

    // Wrong audience: 700023.
    let mut wrong_aud = assertion_claims(&emu, now);
    wrong_aud["aud"] = json!("https://example.com/oauth2/token");
    let (s, b) = certificate_error(&emu, header.clone(), wrong_aud, &pkcs8).await;
    assert_entra_error(s, &b, 700023, 401);

    // sub differs from the client: 700021.
    let mut wrong_sub = assertion_claims(&emu, now);
    wrong_sub["sub"] = json!("someone-else");
    let (s, b) = certificate_error(&emu, header.clone(), wrong_sub, &pkcs8).await;
    assert_entra_error(s, &b, 700021, 401);

    // Not a JWT at all: 50027.
    let form = assertion_form(well_known::CERTIFICATE_APP_CLIENT_ID, "not-a-jwt", ARM);
    let (s, b) = token_owned(&emu, well_known::TENANT_ID, &form).await;
    assert_entra_error(s, &b, 50027, 400);

    // Wrong assertion type: 50027.
    let assertion = sign(&pkcs8, &header, &assertion_claims(&emu, now));
    let mut form = assertion_form(well_known::CERTIFICATE_APP_CLIENT_ID, &assertion, ARM);
    form[2].1 = "urn:something:else".into();
    let (s, b) = token_owned(&emu, well_known::TENANT_ID, &form).await;
    assert_entra_error(s, &b, 50027, 400);
}

#[tokio::test]
async fn federated_assertions_match_issuer_subject_and_audience_exactly() {
    let emu = emulator().await;
    let app = well_known::WORKLOAD_APP_CLIENT_ID;
    let good = KubernetesTokenRequest::from_subject(well_known::KUBERNETES_SUBJECT).unwrap();
    let send = |assertion: String| {
        let form = assertion_form(app, &assertion, ARM);
        let emu = &emu;
        async move { token_owned(emu, well_known::TENANT_ID, &form).await }
    };

    let (s, b) = send(emu.mint_kubernetes_token(&good)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(claims_of(b["access_token"].as_str().unwrap())["appid"], app);

    // Subject differs only in case: 700213.
    let upper = KubernetesTokenRequest::new("default", "Workload-Identity-SA");
    let (s, b) = send(emu.mint_kubernetes_token(&upper)).await;
    assert_entra_error(s, &b, 700213, 400);

    // Audience mismatch: 700212.
    let mut wrong_aud = good.clone();
    wrong_aud.audience = Some("api://other".into());
    let (s, b) = send(emu.mint_kubernetes_token(&wrong_aud)).await;
    assert_entra_error(s, &b, 700212, 400);

    // Expired token: 700024.
    let mut expired = good.clone();
    expired.lifetime_secs = Some(-600);
    let (s, b) = send(emu.mint_kubernetes_token(&expired)).await;
    assert_entra_error(s, &b, 700024, 401);

    // An issuer the app does not trust: 700211.
    let (pkcs8, _) = certificate_app_material(&emu);
    let foreign = sign(
        &pkcs8,
        &json!({"alg": "RS256", "typ": "JWT"}),
        &json!({"iss": "https://issuer.example", "sub": "x", "aud": "api://AzureADTokenExchange", "exp": now() + 600}),
    );
    let (s, b) = send(foreign).await;
    assert_entra_error(s, &b, 700211, 400);

    // The trusted issuer's name with a forged signature: 50013.
    let forged = sign(
        &pkcs8,
        &json!({"alg": "RS256", "typ": "JWT"}),
        &json!({"iss": well_known::KUBERNETES_ISSUER, "sub": well_known::KUBERNETES_SUBJECT, "aud": "api://AzureADTokenExchange", "exp": now() + 600}),
    );
    let (s, b) = send(forged).await;
    assert_entra_error(s, &b, 50013, 401);
}

#[tokio::test]
async fn request_errors_map_to_their_codes() {
    let emu = emulator().await;
    let t = well_known::TENANT_ID;
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u32, u16);
    let cases: Vec<Case> = vec![
        (
            "00000000-0000-0000-0000-000000000000",
            secret_form(well_known::CLIENT_SECRET, ARM),
            90002,
            400,
        ),
        (
            "unknown.onmicrosoft.com",
            secret_form(well_known::CLIENT_SECRET, ARM),
            90002,
            400,
        ),
        (
            "not a tenant!",
            secret_form(well_known::CLIENT_SECRET, ARM),
            900023,
            400,
        ),
        (t, secret_form("wrong", ARM), 7000215, 401),
        (
            t,
            secret_form(well_known::EXPIRED_CLIENT_SECRET, ARM),
            7000222,
            401,
        ),
        (
            t,
            secret_form(
                well_known::CLIENT_SECRET,
                "https://management.azure.com/user_impersonation",
            ),
            1002012,
            400,
        ),
        (
            t,
            secret_form(
                well_known::CLIENT_SECRET,
                "https://a/.default https://b/.default",
            ),
            70011,
            400,
        ),
        (
            t,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "01234567-89ab-cdef-0123-456789abcdef"),
                ("client_secret", "x"),
                ("scope", ARM),
            ],
            700016,
            400,
        ),
        (
            t,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", well_known::SECRET_APP_CLIENT_ID),
                ("scope", ARM),
            ],
            7000218,
            401,
        ),
        (
            t,
            vec![
                ("grant_type", "urn:example:unsupported"),
                ("client_id", well_known::SECRET_APP_CLIENT_ID),
                ("scope", ARM),
            ],
            70003,
            400,
        ),
        (
            t,
            vec![
                ("client_id", well_known::SECRET_APP_CLIENT_ID),
                ("scope", ARM),
            ],
            900144,
            400,
        ),
        (
            t,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", well_known::SECRET_APP_CLIENT_ID),
                ("client_secret", "x"),
            ],
            900144,
            400,
        ),
    ];
    for (tenant, form, code, http) in cases {
        let tenant = tenant.replace(' ', "%20");
        let (s, b) = token(&emu, &tenant, &form).await;
        assert_entra_error(s, &b, code, http);
    }
}

#[tokio::test]
async fn correlation_id_echoes_the_client_request_id() {
    let emu = emulator().await;
    let response = emu
        .http_client()
        .post(emu.token_url(well_known::TENANT_ID))
        .header("client-request-id", "5b1e0c52-0000-4000-8000-00000000abcd")
        .form(&secret_form("wrong", ARM))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["correlation_id"],
        "5b1e0c52-0000-4000-8000-00000000abcd"
    );
}

#[tokio::test]
async fn malformed_requests_get_entra_shaped_400s_never_a_panic() {
    let emu = emulator().await;
    let client = emu.http_client();
    let url = emu.token_url(well_known::TENANT_ID);
    let attempts: Vec<(&str, Vec<u8>)> = vec![
        (
            "application/json",
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"grant_type=%zz".to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"grant_type=%ff%fe".to_vec(),
        ),
        ("application/x-www-form-urlencoded", vec![b'a'; 300 * 1024]),
        ("text/plain", vec![0, 159, 146, 150]),
    ];
    for (content_type, body) in attempts {
        let response = client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_entra_error(status, &body, 90004, 400);
    }
}

#[tokio::test]
async fn strict_mode_rejects_unknown_resources_and_fields() {
    let mut seed = entra_emulator::Seed::default_seed();
    seed.settings.strict = true;
    let emu = entra_emulator::Emulator::builder()
        .seed(seed)
        .start()
        .await
        .unwrap();
    let (s, b) = token(
        &emu,
        well_known::TENANT_ID,
        &secret_form(
            well_known::CLIENT_SECRET,
            "https://unknown.example/.default",
        ),
    )
    .await;
    assert_entra_error(s, &b, 500011, 400);
    let mut form = secret_form(well_known::CLIENT_SECRET, ARM);
    form.push(("surprise", "1"));
    let (s, b) = token(&emu, well_known::TENANT_ID, &form).await;
    assert_entra_error(s, &b, 90004, 400);
    // Lenient (default) mode accepts both.
    let lenient = emulator().await;
    let (s, _) = token(
        &lenient,
        well_known::TENANT_ID,
        &secret_form(
            well_known::CLIENT_SECRET,
            "https://unknown.example/.default",
        ),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn federated_assertions_from_an_external_issuer_verify_against_its_configured_jwks() {
    use aws_lc_rs::signature::KeyPair;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let pkcs8 = key.serialize_der();
    let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
    let n = URL_SAFE_NO_PAD.encode(
        pair.public_key()
            .modulus()
            .big_endian_without_leading_zero(),
    );
    let e = URL_SAFE_NO_PAD.encode(
        pair.public_key()
            .exponent()
            .big_endian_without_leading_zero(),
    );
    let issuer = "https://token.actions.githubusercontent.com";
    let mut seed = entra_emulator::Seed::default_seed();
    seed.issuers.push(entra_emulator::config::ExternalIssuer {
        issuer: issuer.into(),
        jwks: Some(json!({"keys": [{"kty": "RSA", "kid": "gh", "n": n, "e": e}]}).to_string()),
        jwks_file: None,
    });
    seed.applications[0]
        .federated_credentials
        .push(entra_emulator::config::FederatedCredential {
            name: "github".into(),
            issuer: issuer.into(),
            subject: "repo:octo/app:ref:refs/heads/main".into(),
            audience: "api://AzureADTokenExchange".into(),
        });
    let emu = entra_emulator::Emulator::builder()
        .seed(seed)
        .start()
        .await
        .unwrap();
    let claims = json!({
        "iss": issuer,
        "sub": "repo:octo/app:ref:refs/heads/main",
        "aud": "api://AzureADTokenExchange",
        "exp": now() + 300,
        "nbf": now(),
    });
    let good = sign(
        &pkcs8,
        &json!({"alg": "RS256", "typ": "JWT", "kid": "gh"}),
        &claims,
    );
    let form = assertion_form(well_known::SECRET_APP_CLIENT_ID, &good, ARM);
    let (s, b) = token_owned(&emu, well_known::TENANT_ID, &form).await;
    assert_eq!(s, 200, "{b}");
    let other = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let forged = sign(
        &other.serialize_der(),
        &json!({"alg": "RS256", "typ": "JWT", "kid": "gh"}),
        &claims,
    );
    let form = assertion_form(well_known::SECRET_APP_CLIENT_ID, &forged, ARM);
    let (s, b) = token_owned(&emu, well_known::TENANT_ID, &form).await;
    assert_entra_error(s, &b, 50013, 401);
}
