//! Property tests of the managed-identity parsers: Azure Arc's `WWW-Authenticate` challenge and
//! the Service Fabric thumbprint. Never a panic; never a file outside the key directory.

use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::{RawResponse, StatusCode};
use proptest::prelude::*;

use super::arc::answer_challenge as answer_arc_challenge;
use super::tls::parse_thumbprint;
use crate::os::Os;

fn challenge(dir: &std::path::Path) -> impl Strategy<Value = String> {
    let dir = dir.display().to_string();
    prop_oneof![
        ".{0,80}",
        ("[A-Za-z]{0,8}", ".{0,40}").prop_map(|(scheme, rest)| format!("{scheme} realm={rest}")),
        "[a-z0-9./ ]{0,30}".prop_map(move |name| format!("Basic realm={dir}/{name}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arc_challenges_never_panic_or_escape_the_key_directory(
        status in prop_oneof![Just(401u16), 100u16..600],
        header in challenge(std::path::Path::new("/tmp/arc-fuzz-keys")),
        with_header in any::<bool>(),
    ) {
        let dir = std::path::Path::new("/tmp/arc-fuzz-keys");
        let mut headers = Headers::new();
        if with_header {
            headers.insert(HeaderName::from_static("www-authenticate"), header.clone());
        }
        let response = RawResponse::from_bytes(StatusCode::from(status), headers, Vec::new());
        match answer_arc_challenge(&response, dir, &Os::default()) {
            Ok(_) => {
                // Only a .key file directly inside the directory can ever be read.
                let path = header.split_once('=').map(|(_, p)| p.trim()).unwrap_or_default();
                let path = std::path::Path::new(path);
                prop_assert_eq!(path.parent(), Some(dir));
                prop_assert_eq!(path.extension().and_then(|e| e.to_str()), Some("key"));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn thumbprints_never_panic(text in prop_oneof![".{0,60}", "[0-9a-fA-F: é]{38,44}"]) {
        if let Ok(bytes) = parse_thumbprint(&text) {
            prop_assert_eq!(bytes.len(), 20);
        }
    }
}

#[test]
fn a_multibyte_thumbprint_is_an_error() {
    let text = format!("{}é", "a".repeat(38));
    assert_eq!(text.len(), 40);
    assert!(parse_thumbprint(&text).is_err());
}
