//! Property tests: every parser of untrusted input (token responses, error bodies, CLI output,
//! PEM and PKCS#12 files) returns an error, never panics, whatever it is fed.

use azure_core::http::headers::Headers;
use azure_core::http::{RawResponse, StatusCode};
use proptest::prelude::*;
use time::OffsetDateTime;

#[cfg(feature = "client_certificate")]
use crate::client_certificate_credential::{parse_pem, parse_pkcs12};
use crate::developer_tools::{azure_cli, azure_developer_cli};
use crate::entra::{error_from_response, parse_token_response};

/// A JSON value of any shape, including the awkward numbers (huge, negative, fractional).
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
        any::<i64>().prop_map(|n| serde_json::Value::from(n.to_string())),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?"
            .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object with the given field names set to values of any shape (or left out).
fn object_with(fields: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::option::of(json_value()), fields.len()).prop_map(move |values| {
        let object: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .zip(values)
            .filter_map(|(k, v)| v.map(|v| ((*k).to_string(), v)))
            .collect();
        serde_json::Value::Object(object).to_string().into_bytes()
    })
}

/// Bytes: arbitrary, or a JSON object with `fields` of any shape, or one whose first field
/// (the token) is a string and the rest any shape, so the expiry logic is reached.
fn input(fields: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let plausible = (".{1,20}", object_with(&fields[1..])).prop_map(move |(token, rest)| {
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&rest).unwrap_or_default();
        object.insert(fields[0].to_string(), token.into());
        serde_json::Value::Object(object).to_string().into_bytes()
    });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        object_with(fields),
        plausible,
    ]
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn token_responses_never_panic(
        body in input(&["access_token", "expires_in", "expires_on", "refresh_in", "token_type"])
    ) {
        if let Ok(fetched) = parse_token_response(&body, now()) {
            prop_assert!(!fetched.token.token.secret().is_empty());
        }
    }

    #[test]
    fn error_bodies_never_panic(
        status in 100u16..600,
        body in input(&["error", "error_description", "error_codes", "correlation_id"]),
    ) {
        let response = RawResponse::from_bytes(StatusCode::from(status), Headers::new(), body);
        let error = error_from_response(response);
        // Never blank: at least the status or the error code says what failed.
        prop_assert!(!error.to_string().trim().is_empty(), "{error}");
    }

    #[test]
    fn azure_cli_output_never_panics(
        stdout in input(&["accessToken", "expires_on", "expiresOn", "tenant", "tokenType"])
    ) {
        let _ = azure_cli::parse_output(&stdout);
    }

    #[test]
    fn azure_developer_cli_output_never_panics(
        stdout in input(&["token", "expiresOn"])
    ) {
        let _ = azure_developer_cli::parse_output(&stdout);
    }

    #[cfg(feature = "client_certificate")]
    #[test]
    fn pem_input_never_panics(
        label in prop_oneof![
            Just("CERTIFICATE".to_string()), Just("PRIVATE KEY".to_string()),
            Just("RSA PRIVATE KEY".to_string()), Just("ENCRYPTED PRIVATE KEY".to_string()),
            "[A-Z ]{0,12}",
        ],
        payload in prop::collection::vec(any::<u8>(), 0..512),
        noise in ".{0,64}",
    ) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&payload);
        let pem = format!("{noise}\n-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n");
        prop_assert!(parse_pem(&pem).is_err());
        let _ = parse_pem(&noise);
    }

    #[cfg(feature = "client_certificate")]
    #[test]
    fn pkcs12_input_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
        password in ".{0,16}",
    ) {
        prop_assert!(parse_pkcs12(&bytes, &password).is_err());
    }
}

#[test]
fn extreme_expiry_values_are_errors_not_panics() {
    for body in [
        r#"{"access_token":"t","expires_in":9223372036854775807}"#,
        r#"{"access_token":"t","expires_in":-9223372036854775808}"#,
        r#"{"access_token":"t","expires_on":"9223372036854775807"}"#,
        r#"{"access_token":"t","expires_in":3600,"refresh_in":9223372036854775807}"#,
    ] {
        let _ = parse_token_response(body.as_bytes(), now());
    }
    for out in [
        r#"{"accessToken":"t","expires_on":9223372036854775807}"#,
        r#"{"accessToken":"t","expiresOn":"9999-99-99 99:99:99.9999999999"}"#,
    ] {
        assert!(azure_cli::parse_output(out.as_bytes()).is_err());
    }
}
