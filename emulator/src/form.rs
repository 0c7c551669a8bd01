//! Strict parsing of `application/x-www-form-urlencoded` bodies and query strings.

use percent_encoding::percent_decode;

/// Why a form did not parse.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FormError {
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// A decoded value that is not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadPercentEncoding => {
                f.write_str("the body contains an invalid percent-encoding")
            }
            Self::NotUtf8 => f.write_str("the body does not decode to UTF-8 text"),
        }
    }
}

fn decode(part: &[u8]) -> Result<String, FormError> {
    let mut i = 0;
    while i < part.len() {
        if part[i] == b'%' {
            let ok = part.len() > i + 2
                && part[i + 1].is_ascii_hexdigit()
                && part[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(FormError::BadPercentEncoding);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let plus_decoded: Vec<u8> = part
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_decode(&plus_decoded)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| FormError::NotUtf8)
}

/// Parses `a=1&b=2` into ordered pairs. Empty segments are skipped.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    body.split(|b| *b == b'&')
        .filter(|seg| !seg.is_empty())
        .map(|seg| {
            let (k, v) = match seg.iter().position(|b| *b == b'=') {
                Some(at) => (&seg[..at], &seg[at + 1..]),
                None => (seg, &b""[..]),
            };
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The first value of `name`.
pub(crate) fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let pairs = parse(b"a=1&scope=https%3A%2F%2Fx%2F.default+y&&flag").unwrap();
        assert_eq!(get(&pairs, "a"), Some("1"));
        assert_eq!(get(&pairs, "scope"), Some("https://x/.default y"));
        assert_eq!(get(&pairs, "flag"), Some(""));
    }

    #[test]
    fn rejects_bad_encodings() {
        assert_eq!(parse(b"a=%zz").unwrap_err(), FormError::BadPercentEncoding);
        assert_eq!(parse(b"a=%4").unwrap_err(), FormError::BadPercentEncoding);
        assert_eq!(parse(b"a=%ff%fe").unwrap_err(), FormError::NotUtf8);
    }
}
