//! The one HTTP path to Entra's token endpoint, shared by every confidential-client credential:
//! authority resolution, the azure_core pipeline, the form POST, and response/error parsing.

use std::sync::Arc;

use azure_core::cloud::CloudConfiguration;
use azure_core::credentials::AccessToken;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::{
    ClientOptions, Context, Method, Pipeline, PipelineSendOptions, RawResponse, Request, Url,
};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use crate::errors::credential_error;
use crate::os::Os;
use crate::token::{FetchRequest, FetchedToken};

/// `AZURE_AUTHORITY_HOST`.
pub(crate) const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The authority host for `options`: the cloud configuration, else `AZURE_AUTHORITY_HOST`, else
/// the public cloud. It must be https.
pub(crate) fn authority(options: &ClientOptions, os: &Os) -> azure_core::Result<Url> {
    let host = match options.cloud.as_deref() {
        None => os
            .var(AZURE_AUTHORITY_HOST)
            .unwrap_or_else(|| PUBLIC_AUTHORITY.to_string()),
        Some(CloudConfiguration::AzurePublic) => PUBLIC_AUTHORITY.to_string(),
        Some(CloudConfiguration::AzureGovernment) => "https://login.microsoftonline.us".to_string(),
        Some(CloudConfiguration::AzureChina) => "https://login.chinacloudapi.cn".to_string(),
        Some(CloudConfiguration::Custom(custom)) => custom.authority_host.clone(),
        Some(other) => {
            return Err(Error::with_message(
                ErrorKind::Other,
                format!("unexpected cloud configuration: {other:?}"),
            ));
        }
    };
    let url = Url::parse(&host).map_err(|e| {
        Error::with_error(
            ErrorKind::Other,
            e,
            format!("authority host {host} is not a valid URL"),
        )
    })?;
    if url.scheme() != "https" {
        return Err(Error::with_message(
            ErrorKind::Other,
            format!("authority host doesn't use HTTPS scheme: {host}"),
        ));
    }
    Ok(url)
}

/// A number or a numeric string (Entra sends numbers; other token sources send strings).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Seconds {
    Number(i64),
    Text(String),
}

impl Seconds {
    /// The number of seconds, when it is one.
    pub(crate) fn value(&self) -> Option<i64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(s) => s.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<Seconds>,
    expires_on: Option<Seconds>,
    refresh_in: Option<Seconds>,
}

#[derive(Deserialize, Default)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<i64>,
}

impl ErrorResponse {
    /// The AADSTS codes (`"7000215"`), else the OAuth `error`.
    fn code(&self) -> Option<String> {
        if self.error_codes.is_empty() {
            return self.error.clone();
        }
        let codes: Vec<String> = self.error_codes.iter().map(i64::to_string).collect();
        Some(codes.join(","))
    }
}

/// Parses a successful token response received at `now`.
pub(crate) fn parse_token_response(
    body: &[u8],
    now: OffsetDateTime,
) -> azure_core::Result<FetchedToken> {
    let response: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        Error::with_error(
            ErrorKind::DataConversion,
            e,
            "the token endpoint's response is not the expected JSON",
        )
    })?;
    let expires_on = expires_on(&response, now)?;
    let refresh_at = refresh_at(&response, now)?;
    let token = response
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::with_message(
                ErrorKind::DataConversion,
                "the token endpoint's response has no access_token",
            )
        })?;
    Ok(FetchedToken {
        token: AccessToken::new(token, expires_on),
        refresh_at,
    })
}

fn out_of_range(field: &str) -> Error {
    Error::with_message(
        ErrorKind::DataConversion,
        format!("the token endpoint's {field} is out of range"),
    )
}

/// `expires_in` from `now`, else the absolute `expires_on`.
fn expires_on(response: &TokenResponse, now: OffsetDateTime) -> azure_core::Result<OffsetDateTime> {
    let expires_in = response.expires_in.as_ref().and_then(Seconds::value);
    let expires_on = response.expires_on.as_ref().and_then(Seconds::value);
    match (expires_in, expires_on) {
        (Some(secs), _) => now
            .checked_add(Duration::seconds(secs))
            .ok_or_else(|| out_of_range("expires_in")),
        (None, Some(epoch)) => OffsetDateTime::from_unix_timestamp(epoch).map_err(|e| {
            Error::with_error(ErrorKind::DataConversion, e, "expires_on is out of range")
        }),
        (None, None) => Err(Error::with_message(
            ErrorKind::DataConversion,
            "the token endpoint's response has neither expires_in nor expires_on",
        )),
    }
}

/// Entra's `refresh_in` hint as a time, when it sent a positive one.
fn refresh_at(
    response: &TokenResponse,
    now: OffsetDateTime,
) -> azure_core::Result<Option<OffsetDateTime>> {
    let Some(secs) = response
        .refresh_in
        .as_ref()
        .and_then(Seconds::value)
        .filter(|s| *s > 0)
    else {
        return Ok(None);
    };
    now.checked_add(Duration::seconds(secs))
        .map(Some)
        .ok_or_else(|| out_of_range("refresh_in"))
}

/// Turns a non-success response into `ErrorKind::HttpResponse` carrying the AADSTS codes and
/// description, with the raw response attached.
pub(crate) fn error_from_response(response: RawResponse) -> Error {
    let status = response.status();
    let parsed: ErrorResponse =
        serde_json::from_slice(response.body().as_ref()).unwrap_or_default();
    let error_code = parsed.code();
    // An empty or blank description says nothing: fall back to the status and `error` code.
    let description = parsed.error_description.as_deref().map(str::trim);
    let code = parsed
        .error
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let message = match (description.filter(|d| !d.is_empty()), code) {
        (Some(d), _) => d.to_string(),
        (None, Some(e)) => format!("{status} response from the token endpoint: {e}"),
        (None, None) => format!(
            "{status} response from the token endpoint with a body that is not an Entra error"
        ),
    };
    Error::with_message(
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response: Some(Box::new(response)),
        },
        message,
    )
}

/// An HTTP client for one authority.
#[derive(Debug, Clone)]
pub(crate) struct EntraClient {
    pipeline: Arc<Pipeline>,
    authority: Url,
}

impl EntraClient {
    /// Resolves the authority and builds the pipeline.
    pub(crate) fn new(options: ClientOptions, os: &Os) -> azure_core::Result<Self> {
        let authority = authority(&options, os)?;
        Ok(Self {
            pipeline: Arc::new(new_pipeline(options)),
            authority,
        })
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`. A path in the authority is kept, as the other
    /// Azure SDKs keep it (upstream Rust drops it).
    #[cfg_attr(not(feature = "client_certificate"), allow(dead_code))]
    pub(crate) fn token_url(&self, tenant: &str) -> azure_core::Result<Url> {
        self.endpoint(tenant, "token")
    }

    /// The authority host URL.
    pub(crate) fn authority(&self) -> &Url {
        &self.authority
    }

    /// `{authority}/{tenant}/oauth2/v2.0/{name}` (`token`, `authorize`, `devicecode`).
    pub(crate) fn endpoint(&self, tenant: &str, name: &str) -> azure_core::Result<Url> {
        let mut url = self.authority.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                credential_error(format!(
                    "authority host {} cannot hold a path",
                    self.authority
                ))
            })?;
            segments
                .pop_if_empty()
                .extend([tenant, "oauth2", "v2.0", name]);
        }
        Ok(url)
    }

    /// POSTs `form` to the tenant's endpoint `name` and returns the response whatever its
    /// status.
    pub(crate) async fn post(
        &self,
        ctx: &Context<'_>,
        tenant: &str,
        name: &str,
        form: &[(&str, &str)],
    ) -> azure_core::Result<RawResponse> {
        let url = self.endpoint(tenant, name)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        post_form(&self.pipeline, ctx, url, body).await
    }

    /// POSTs `form` to the tenant's token endpoint.
    pub(crate) async fn request_token(
        &self,
        ctx: &Context<'_>,
        tenant: &str,
        form: &[(&str, &str)],
        os: &Os,
    ) -> azure_core::Result<FetchedToken> {
        let response = self.post(ctx, tenant, "token", form).await?;
        if !response.status().is_success() {
            return Err(error_from_response(response));
        }
        parse_token_response(response.body().as_ref(), os.now())
    }

    /// Exchanges a client assertion for a token.
    pub(crate) async fn request_with_assertion(
        &self,
        request: &FetchRequest<'_>,
        client_id: &str,
        assertion: &str,
        os: &Os,
    ) -> azure_core::Result<FetchedToken> {
        let scope = request.scopes.join(" ");
        let mut form = vec![
            ("client_assertion", assertion),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_id", client_id),
            ("grant_type", "client_credentials"),
            ("scope", scope.as_str()),
        ];
        if let Some(claims) = request.claims.as_deref() {
            form.push(("claims", claims));
        }
        self.request_token(request.context, request.tenant, &form, os)
            .await
    }
}

/// The azure_core pipeline identity uses: the caller's options, labelled with this crate, with
/// the default [`ExchangeLimits`](crate::ExchangeLimits) on every try.
pub(crate) fn new_pipeline(options: ClientOptions) -> Pipeline {
    Pipeline::new(
        option_env!("CARGO_PKG_NAME"),
        option_env!("CARGO_PKG_VERSION"),
        options,
        Vec::new(),
        vec![Arc::new(crate::limits::ExchangeLimits::default())],
        None,
    )
}

/// Sends `request` through `pipeline` and returns the response whatever its status: callers
/// inspect the status themselves.
pub(crate) async fn send(
    pipeline: &Pipeline,
    ctx: &Context<'_>,
    request: &mut Request,
) -> azure_core::Result<RawResponse> {
    let options = PipelineSendOptions {
        skip_checks: true,
        ..Default::default()
    };
    pipeline.send(ctx, request, Some(options)).await
}

/// Sends a form POST through `pipeline` and returns the response whatever its status.
pub(crate) async fn post_form(
    pipeline: &Pipeline,
    ctx: &Context<'_>,
    url: Url,
    body: String,
) -> azure_core::Result<RawResponse> {
    let mut request = Request::new(url, Method::Post);
    request.insert_header("content-type", "application/x-www-form-urlencoded");
    request.insert_header("accept", "application/json");
    request.set_body(body);
    send(pipeline, ctx, &mut request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::MapEnv;

    fn os_with(vars: &[(&str, &str)]) -> Os {
        Os {
            env: Arc::new(vars.iter().map(|(k, v)| (*k, *v)).collect::<MapEnv>()),
            ..Os::default()
        }
    }

    /// The case the property test once found: a blank description must not give a blank error.
    #[test]
    fn a_blank_description_falls_back_to_the_status_and_error_code() {
        use azure_core::http::StatusCode;
        use azure_core::http::headers::Headers;
        let body = br#"{"error":"\u00a1","error_description":""}"#.to_vec();
        let response = RawResponse::from_bytes(StatusCode::from(100), Headers::new(), body);
        let text = error_from_response(response).to_string();
        assert!(text.contains("100") && text.contains('\u{a1}'), "{text}");
        let body = br#"{"error":" ","error_description":"  "}"#.to_vec();
        let response = RawResponse::from_bytes(StatusCode::from(400), Headers::new(), body);
        let text = error_from_response(response).to_string();
        assert!(
            text.contains("400") && text.contains("not an Entra error"),
            "{text}"
        );
    }

    #[test]
    fn authority_comes_from_cloud_then_env_then_public() {
        let env = os_with(&[(AZURE_AUTHORITY_HOST, "https://emulator.local:8443")]);
        assert_eq!(
            authority(&ClientOptions::default(), &env).unwrap().as_str(),
            "https://emulator.local:8443/"
        );
        assert_eq!(
            authority(&ClientOptions::default(), &os_with(&[]))
                .unwrap()
                .as_str(),
            "https://login.microsoftonline.com/"
        );
        let options = ClientOptions {
            cloud: Some(Arc::new(CloudConfiguration::AzureChina)),
            ..Default::default()
        };
        assert_eq!(
            authority(&options, &env).unwrap().as_str(),
            "https://login.chinacloudapi.cn/"
        );
    }

    #[test]
    fn non_https_authority_is_rejected_with_upstreams_words() {
        let env = os_with(&[(AZURE_AUTHORITY_HOST, "http://127.0.0.1:8080")]);
        let e = authority(&ClientOptions::default(), &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "authority host doesn't use HTTPS scheme: http://127.0.0.1:8080"
        );
    }

    #[test]
    fn token_url_keeps_an_authority_path_and_encodes_the_tenant() {
        let env = os_with(&[(AZURE_AUTHORITY_HOST, "https://h/base/")]);
        let client = EntraClient::new(ClientOptions::default(), &env).unwrap();
        assert_eq!(
            client.token_url("t").unwrap().as_str(),
            "https://h/base/t/oauth2/v2.0/token"
        );
        let env = os_with(&[(AZURE_AUTHORITY_HOST, "https://h")]);
        let client = EntraClient::new(ClientOptions::default(), &env).unwrap();
        assert_eq!(
            client.token_url("a b").unwrap().as_str(),
            "https://h/a%20b/oauth2/v2.0/token"
        );
    }

    #[test]
    fn responses_parse_leniently() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let t = parse_token_response(br#"{"access_token":"a","expires_in":3599}"#, now).unwrap();
        assert_eq!(t.token.expires_on.unix_timestamp(), 1_003_599);
        assert!(t.refresh_at.is_none());
        let t = parse_token_response(
            br#"{"access_token":"a","expires_in":"86399","refresh_in":43199}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.refresh_at.unwrap().unix_timestamp(), 1_043_199);
        let t =
            parse_token_response(br#"{"access_token":"a","expires_on":"2000000"}"#, now).unwrap();
        assert_eq!(t.token.expires_on.unix_timestamp(), 2_000_000);
        for bad in [
            &b"not json"[..],
            br#"{"expires_in":1}"#,
            br#"{"access_token":"a"}"#,
            br#"[]"#,
        ] {
            let e = parse_token_response(bad, now).unwrap_err();
            assert_eq!(e.kind(), &ErrorKind::DataConversion);
        }
    }
}
