//! User sign-in over the browser: the authorization endpoint (v2 and v1), the sign-in form's
//! post (`/{tenant}/login`), the device-code endpoint and the `/devicelogin` page.
//!
//! Errors Entra shows on its own page (unknown client, redirect URI not registered) stay on
//! the emulator's page; the others go back to the redirect URI with `error`,
//! `error_description` and `state`, in the request's response mode.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::config::User;
use crate::context::RequestContext;
use crate::directory::{AppEntry, Directory};
use crate::form;
use crate::grants::tenant_error;
use crate::sign_in::page::{self, SignInPage};
use crate::sign_in::store::{
    AuthorizeRequest, Challenge, ChallengeMethod, DecideError, DeviceCode, DeviceStatus, Flow,
    FlowKind, IssuedCode, Prompt, ResponseMode,
};
use crate::state::Shared;
use crate::wire::{Aadsts, EntraError};

/// Entra's session cookie.
const SESSION_COOKIE: &str = "ESTSAUTH";

/// The parameters of a request: the query, or the form of a POST.
fn parameters(method: &Method, uri: &Uri, ctx: &RequestContext) -> Vec<(String, String)> {
    let query = form::parse(uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
    if method == Method::POST {
        let mut body = ctx.body().form().map(<[_]>::to_vec).unwrap_or_default();
        body.extend(query);
        return body;
    }
    query
}

/// The session cookie's value, if the browser sent one.
fn session_cookie(ctx: &RequestContext) -> Option<String> {
    ctx.headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

fn page_error(ctx: &RequestContext, error: impl Into<EntraError>) -> Response {
    page::error(&ctx.entra_error(error).to_string())
}

/// An error sent back to the application at its redirect URI.
#[derive(Debug)]
struct Redirected {
    error: EntraError,
}

impl From<Aadsts> for Redirected {
    fn from(error: Aadsts) -> Self {
        Self {
            error: error.into(),
        }
    }
}

/// `GET|POST /{tenant}/oauth2/v2.0/authorize`.
pub(crate) async fn authorize_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    method: Method,
    uri: Uri,
    ctx: RequestContext,
) -> Response {
    authorize(
        &shared,
        &tenant,
        false,
        parameters(&method, &uri, &ctx),
        &ctx,
    )
}

/// `GET|POST /{tenant}/oauth2/authorize` (v1: `resource` instead of `scope`).
pub(crate) async fn authorize_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    method: Method,
    uri: Uri,
    ctx: RequestContext,
) -> Response {
    authorize(
        &shared,
        &tenant,
        true,
        parameters(&method, &uri, &ctx),
        &ctx,
    )
}

/// The tenant id a segment resolves to (`None` for an alias), or the page's error.
fn resolve_tenant(directory: &Directory, segment: &str) -> Result<Option<String>, EntraError> {
    if Directory::is_alias(segment) {
        return Ok(None);
    }
    directory
        .tenant(segment)
        .map(|t| Some(t.id.clone()))
        .map_err(|e| tenant_error(segment, e))
}

/// The application a sign-in names: it must exist where the user signs in, and be
/// multi-tenant to be reached through an alias.
fn sign_in_app<'d>(
    directory: &'d Directory,
    tenant: Option<&str>,
    client_id: &str,
    segment: &str,
) -> Result<&'d AppEntry, EntraError> {
    let home = directory
        .home_tenant()
        .map(|t| t.id.clone())
        .unwrap_or_default();
    let app = directory
        .sign_in_app(tenant.unwrap_or(&home), client_id)
        .ok_or_else(|| Aadsts::AppNotFound {
            client_id: client_id.to_string(),
            tenant: segment.to_string(),
        })?;
    if tenant.is_none() && !app.multi_tenant {
        return Err(Aadsts::AppNotMultiTenant {
            client_id: client_id.to_string(),
        }
        .into());
    }
    Ok(app)
}

/// What the authorization endpoint checks before it can trust the redirect URI: the tenant
/// (`None` for an alias), the application and the redirect URI — or Entra's page error.
fn client_and_redirect<'d, 'p>(
    directory: &'d Directory,
    segment: &str,
    get: &impl Fn(&str) -> Option<&'p str>,
) -> Result<(Option<String>, &'d AppEntry, &'p str), EntraError> {
    let tenant = resolve_tenant(directory, segment)?;
    let client_id = get("client_id").ok_or(Aadsts::MissingParameter { name: "client_id" })?;
    let app = sign_in_app(directory, tenant.as_deref(), client_id, segment)?;
    let redirect_uri = get("redirect_uri").ok_or(Aadsts::MissingParameter {
        name: "redirect_uri",
    })?;
    if !app.accepts_redirect(redirect_uri) {
        return Err(Aadsts::RedirectMismatch {
            redirect_uri: redirect_uri.to_string(),
            client_id: client_id.to_string(),
        }
        .into());
    }
    Ok((tenant, app, redirect_uri))
}

fn authorize(
    shared: &Shared,
    segment: &str,
    v1: bool,
    params: Vec<(String, String)>,
    ctx: &RequestContext,
) -> Response {
    let get = |name: &str| form::get(&params, name).filter(|v| !v.is_empty());
    let directory = shared.directory();
    // Errors Entra cannot send back: no trustworthy redirect URI yet.
    let (tenant, app, redirect_uri) = match client_and_redirect(&directory, segment, &get) {
        Ok(checked) => checked,
        Err(e) => return page_error(ctx, e),
    };
    let response_mode = match get("response_mode") {
        Some("form_post") => ResponseMode::FormPost,
        Some("fragment") => ResponseMode::Fragment,
        _ => ResponseMode::Query,
    };
    let state = get("state").map(str::to_string);
    let back = |e: Redirected| {
        let error = ctx.entra_error(e.error);
        send_error(redirect_uri, response_mode, state.as_deref(), &error)
    };
    let request = match authorize_request(segment, v1, &get, response_mode) {
        Ok(request) => request,
        Err(e) => return back(e),
    };
    match existing_session(shared, ctx, &directory, &request, tenant.as_deref()) {
        Some(user) if request.prompt.is_none() || request.prompt == Some(Prompt::None) => {
            complete_authorize(shared, ctx, request, user, tenant.as_deref(), None)
        }
        None if request.prompt == Some(Prompt::None) => back(Aadsts::LoginRequired.into()),
        _ => show_sign_in(shared, ctx, segment, app, request),
    }
}

/// The sign-in page for an authorization request.
fn show_sign_in(
    shared: &Shared,
    ctx: &RequestContext,
    segment: &str,
    app: &AppEntry,
    request: AuthorizeRequest,
) -> Response {
    let hint = request.login_hint.clone().unwrap_or_default();
    let flow = shared
        .sign_in
        .begin_flow(FlowKind::Authorize(request), ctx.now.unix_timestamp());
    page::sign_in(&SignInPage {
        action: &format!("/{segment}/login"),
        flow_token: &flow,
        app: &app.display_name,
        username: &hint,
        error: None,
    })
}

/// The validated request, or the error to send back to the application.
fn authorize_request<'p>(
    segment: &str,
    v1: bool,
    get: &impl Fn(&str) -> Option<&'p str>,
    response_mode: ResponseMode,
) -> Result<AuthorizeRequest, Redirected> {
    let response_type = get("response_type").unwrap_or_default();
    if response_type != "code" {
        return Err(Aadsts::UnsupportedResponseType {
            response_type: response_type.to_string(),
        }
        .into());
    }
    let scope = requested_scope(v1, get)?;
    let challenge = challenge(get("code_challenge"), get("code_challenge_method"))?;
    let prompt = prompt(get("prompt"))?;
    Ok(AuthorizeRequest {
        tenant: segment.to_string(),
        client_id: get("client_id").unwrap_or_default().to_string(),
        redirect_uri: get("redirect_uri").unwrap_or_default().to_string(),
        scope: scope.to_string(),
        state: get("state").map(str::to_string),
        nonce: get("nonce").map(str::to_string),
        challenge,
        response_mode,
        prompt,
        login_hint: get("login_hint").map(str::to_string),
    })
}

/// What a sign-in asks for: `scope`, or on the v1 endpoints `resource` (else `scope`).
fn requested_scope<'p>(
    v1: bool,
    get: &impl Fn(&str) -> Option<&'p str>,
) -> Result<&'p str, Aadsts> {
    let scope = if v1 {
        get("resource").or_else(|| get("scope"))
    } else {
        get("scope")
    };
    scope.ok_or(Aadsts::MissingParameter { name: "scope" })
}

/// The PKCE challenge of a request (method `plain` when absent, as RFC 7636 says).
fn challenge(value: Option<&str>, method: Option<&str>) -> Result<Option<Challenge>, Redirected> {
    let Some(value) = value else {
        return Ok(None);
    };
    let method = match method {
        None | Some("plain") => ChallengeMethod::Plain,
        Some("S256") => ChallengeMethod::S256,
        Some(other) => {
            return Err(Aadsts::Malformed {
                detail: format!(
                    "code_challenge_method '{other}' is not supported; use S256 or plain."
                ),
            }
            .into());
        }
    };
    Ok(Some(Challenge {
        value: value.to_string(),
        method,
    }))
}

/// The `prompt` of a request.
fn prompt(value: Option<&str>) -> Result<Option<Prompt>, Redirected> {
    Ok(match value {
        None => None,
        Some("login") => Some(Prompt::Login),
        Some("none") => Some(Prompt::None),
        Some("select_account") => Some(Prompt::SelectAccount),
        Some("consent") => Some(Prompt::Consent),
        Some(other) => {
            return Err(Aadsts::Malformed {
                detail: format!(
                    "Invalid value '{other}' for parameter 'prompt'; use login, none, select_account or consent."
                ),
            }
            .into());
        }
    })
}

/// The user of the browser's live session, when it may sign in to `tenant` and matches the
/// request's `login_hint`.
fn existing_session<'d>(
    shared: &Shared,
    ctx: &RequestContext,
    directory: &'d Directory,
    request: &AuthorizeRequest,
    tenant: Option<&str>,
) -> Option<&'d User> {
    let cookie = session_cookie(ctx)?;
    let session = shared.sign_in.session(&cookie, ctx.now.unix_timestamp())?;
    let user = directory.user(&session.user)?;
    let member = tenant.is_none_or(|t| user.member_of(t));
    let hinted = request
        .login_hint
        .as_deref()
        .is_none_or(|h| user.user_principal_name.eq_ignore_ascii_case(h));
    (member && hinted).then_some(user)
}

/// Issues the code for a signed-in user and sends it to the application; `cookie` is set when
/// the sign-in just opened a session.
fn complete_authorize(
    shared: &Shared,
    ctx: &RequestContext,
    request: AuthorizeRequest,
    user: &User,
    tenant: Option<&str>,
    cookie: Option<String>,
) -> Response {
    let now = ctx.now.unix_timestamp();
    let lifetime = shared
        .directory()
        .seed
        .sign_in
        .authorization_code_lifetime_secs as i64;
    let redirect_uri = request.redirect_uri.clone();
    let mode = request.response_mode;
    let state = request.state.clone();
    let code = shared.sign_in.issue_code(
        IssuedCode {
            request,
            user: user.object_id.clone(),
            tenant_id: tenant.unwrap_or(&user.tenant).to_string(),
            expires: now + lifetime,
            redeemed: false,
            generation: shared.sign_in.generation(&user.object_id),
        },
        now,
    );
    let mut fields = vec![("code", code.as_str())];
    if let Some(state) = &state {
        fields.push(("state", state));
    }
    let mut response = send(&redirect_uri, mode, &fields);
    if let Some(cookie) = cookie
        && let Ok(value) = HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={cookie}; Path=/; Secure; HttpOnly; SameSite=None"
        ))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Sends `fields` to the redirect URI in `mode`.
fn send(redirect_uri: &str, mode: ResponseMode, fields: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return page::error("The redirect URI is not a URL.");
    };
    match mode {
        ResponseMode::FormPost => return page::form_post(redirect_uri, fields),
        ResponseMode::Query => {
            url.query_pairs_mut().extend_pairs(fields);
        }
        ResponseMode::Fragment => {
            let fragment = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields)
                .finish();
            url.set_fragment(Some(&fragment));
        }
    }
    Redirect::to(url.as_str()).into_response()
}

/// Sends an OAuth error to the redirect URI.
fn send_error(
    redirect_uri: &str,
    mode: ResponseMode,
    state: Option<&str>,
    error: &EntraError,
) -> Response {
    let description = error.to_string();
    let mut fields = vec![
        ("error", error.oauth_error()),
        ("error_description", description.as_str()),
    ];
    if let Some(state) = state {
        fields.push(("state", state));
    }
    send(redirect_uri, mode, &fields)
}

/// `POST /{tenant}/login`: the sign-in form's answer (user name and password, the
/// verification code, or cancel).
pub(crate) async fn login(
    State(shared): State<Arc<Shared>>,
    Path(segment): Path<String>,
    ctx: RequestContext,
) -> Response {
    let fields = ctx.body().form().map(<[_]>::to_vec).unwrap_or_default();
    let get = |name: &str| form::get(&fields, name);
    let now = ctx.now.unix_timestamp();
    let token = get("flowToken").unwrap_or_default();
    let Some(flow) = shared.sign_in.flow(token, now) else {
        return page::error(
            "This sign-in page has expired or was already used. Go back to the application and sign in again.",
        );
    };
    if get("cancel").is_some() {
        shared.sign_in.end_flow(token);
        return cancel(&shared, &ctx, flow);
    }
    let directory = shared.directory();
    let action = format!("/{segment}/login");
    if let Some(pending) = flow.pending_mfa.clone() {
        let typed = get("otc").unwrap_or_default();
        return second_factor(&shared, &ctx, &action, token, flow, &pending, typed);
    }
    let username = get("loginfmt").unwrap_or_default().trim();
    let password = get("passwd").unwrap_or_default();
    let tenant = match flow_tenant(&directory, &flow) {
        Ok(tenant) => tenant,
        Err(e) => return page_error(&ctx, e),
    };
    match check_password(&directory, tenant.as_deref(), &segment, username, password) {
        Ok(user) if user.mfa_required => {
            shared.sign_in.await_mfa(token, &user.object_id);
            page::verification_code(&action, token, &user.user_principal_name, None)
        }
        Ok(user) => signed_in(&shared, &ctx, token, flow, user),
        Err(e) => {
            let app = flow_app_name(&shared, &directory, &flow);
            let error = ctx.entra_error(e).to_string();
            page::sign_in(&SignInPage {
                action: &action,
                flow_token: token,
                app: &app,
                username,
                error: Some(&error),
            })
        }
    }
}

/// The verification-code step: right, the user is signed in; wrong, the page says so.
fn second_factor(
    shared: &Shared,
    ctx: &RequestContext,
    action: &str,
    token: &str,
    flow: Flow,
    pending: &str,
    typed: &str,
) -> Response {
    let directory = shared.directory();
    let Some(user) = directory.user(pending) else {
        return page::error("The user signing in no longer exists.");
    };
    let expected = user.mfa_code.as_deref().unwrap_or_default();
    if expected.is_empty() || typed.trim() != expected {
        let error = ctx.entra_error(Aadsts::MfaFailed).to_string();
        return page::verification_code(action, token, &user.user_principal_name, Some(&error));
    }
    signed_in(shared, ctx, token, flow, user)
}

/// The tenant a flow signs in to (`None` for an alias).
fn flow_tenant(directory: &Directory, flow: &Flow) -> Result<Option<String>, EntraError> {
    match &flow.kind {
        FlowKind::Authorize(request) => resolve_tenant(directory, &request.tenant),
        FlowKind::Device { .. } => Ok(None),
    }
}

/// The display name of the application a flow signs in to.
fn flow_app_name(shared: &Shared, directory: &Directory, flow: &Flow) -> String {
    match &flow.kind {
        FlowKind::Authorize(request) => directory.app_display_name(&request.client_id),
        FlowKind::Device { user_code } => device_app_name(shared, directory, user_code),
    }
}

/// The display name of the application a pending device code was issued to.
fn device_app_name(shared: &Shared, directory: &Directory, user_code: &str) -> String {
    let client_id = shared
        .sign_in
        .pending_device_code(user_code, i64::MIN)
        .map(|d| d.client_id)
        .unwrap_or_default();
    directory.app_display_name(&client_id)
}

/// The user whose name and password these are, who may sign in to `tenant`.
fn check_password<'d>(
    directory: &'d Directory,
    tenant: Option<&str>,
    segment: &str,
    username: &str,
    password: &str,
) -> Result<&'d User, Aadsts> {
    let user = directory
        .seed
        .users
        .iter()
        .find(|u| u.user_principal_name.eq_ignore_ascii_case(username))
        .filter(|u| tenant.is_none_or(|t| u.member_of(t)))
        .ok_or_else(|| Aadsts::UserNotFound {
            user: username.to_string(),
            tenant: segment.to_string(),
        })?;
    let right = user.password_is(password);
    if right {
        Ok(user)
    } else {
        Err(Aadsts::InvalidUserCredentials)
    }
}

/// The user is signed in: open a session, then finish the flow.
fn signed_in(
    shared: &Shared,
    ctx: &RequestContext,
    token: &str,
    flow: Flow,
    user: &User,
) -> Response {
    shared.sign_in.end_flow(token);
    let now = ctx.now.unix_timestamp();
    let cookie = shared.sign_in.open_session(&user.object_id, now);
    let directory = shared.directory();
    match flow.kind {
        FlowKind::Authorize(request) => {
            let tenant = resolve_tenant(&directory, &request.tenant).ok().flatten();
            complete_authorize(shared, ctx, request, user, tenant.as_deref(), Some(cookie))
        }
        FlowKind::Device { user_code } => {
            let app = device_app_name(shared, &directory, &user_code);
            match approve_device_code(shared, &directory, &user_code, user, now) {
                Ok(()) => page::device_done(&app, true),
                Err(e) => page_error(ctx, e),
            }
        }
    }
}

/// Cancel: the application hears `access_denied`; a device code is declined.
fn cancel(shared: &Shared, ctx: &RequestContext, flow: Flow) -> Response {
    match flow.kind {
        FlowKind::Authorize(request) => {
            let error = ctx.entra_error(Aadsts::UserCancelled);
            send_error(
                &request.redirect_uri,
                request.response_mode,
                request.state.as_deref(),
                &error,
            )
        }
        FlowKind::Device { user_code } => {
            let app = device_app_name(shared, &shared.directory(), &user_code);
            let _ = shared
                .sign_in
                .decide(&user_code, None, ctx.now.unix_timestamp());
            page::device_done(&app, false)
        }
    }
}

/// Approves a device code for `user`, in the device code's tenant (the user's home tenant
/// through an alias).
pub(crate) fn approve_device_code(
    shared: &Shared,
    directory: &Directory,
    user_code: &str,
    user: &User,
    now: i64,
) -> Result<(), EntraError> {
    let device = shared
        .sign_in
        .pending_device_code(user_code, now)
        .map_err(device_error)?;
    let tenant = match resolve_tenant(directory, &device.tenant)? {
        Some(t) if user.member_of(&t) => t,
        Some(_) => {
            return Err(Aadsts::UserNotFound {
                user: user.user_principal_name.clone(),
                tenant: device.tenant.clone(),
            }
            .into());
        }
        None => user.tenant.clone(),
    };
    let generation = shared.sign_in.generation(&user.object_id);
    shared
        .sign_in
        .decide(
            user_code,
            Some((user.object_id.clone(), tenant, generation)),
            now,
        )
        .map_err(device_error)
}

/// A user-code problem as Entra words it.
pub(crate) fn device_error(e: DecideError) -> EntraError {
    match e {
        DecideError::Unknown => Aadsts::BadVerificationCode,
        DecideError::Expired => Aadsts::DeviceCodeExpired,
        DecideError::Decided => Aadsts::InvalidGrant {
            detail: "This code was already used. Start the sign-in again on your device."
                .to_string(),
        },
    }
    .into()
}

/// `POST /{tenant}/oauth2/v2.0/devicecode` and v1's `/{tenant}/oauth2/devicecode`.
pub(crate) async fn device_code_v2(
    State(shared): State<Arc<Shared>>,
    Path(segment): Path<String>,
    ctx: RequestContext,
) -> Response {
    device_code(&shared, &segment, false, &ctx)
}

/// `POST /{tenant}/oauth2/devicecode` (v1).
pub(crate) async fn device_code_v1(
    State(shared): State<Arc<Shared>>,
    Path(segment): Path<String>,
    ctx: RequestContext,
) -> Response {
    device_code(&shared, &segment, true, &ctx)
}

fn device_code(shared: &Shared, segment: &str, v1: bool, ctx: &RequestContext) -> Response {
    match start_device_code(shared, segment, v1, ctx) {
        Ok(body) => {
            let mut response = Json(body).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache"),
            );
            response
        }
        Err(e) => ctx.entra_error(e).into_response(),
    }
}

fn start_device_code(
    shared: &Shared,
    segment: &str,
    v1: bool,
    ctx: &RequestContext,
) -> Result<serde_json::Value, EntraError> {
    let directory = shared.directory();
    let tenant = resolve_tenant(&directory, segment)?;
    let fields = ctx.entra_form()?;
    let client_id =
        form::get(fields, "client_id").ok_or(Aadsts::MissingParameter { name: "client_id" })?;
    sign_in_app(&directory, tenant.as_deref(), client_id, segment)?;
    let scope = requested_scope(v1, &|name: &str| form::get(fields, name))?;
    let settings = &directory.seed.sign_in;
    let now = ctx.now.unix_timestamp();
    let lifetime = settings.device_code_lifetime_secs as i64;
    let (device_code, user_code) = shared.sign_in.issue_device_code(
        DeviceCode {
            tenant: segment.to_string(),
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            user_code: String::new(),
            expires: now + lifetime,
            status: DeviceStatus::Pending,
        },
        now,
    );
    decide_automatically(shared, &directory, &user_code, now)?;
    let origin = shared
        .https_origin
        .get()
        .cloned()
        .unwrap_or_else(|| ctx.origin.clone());
    let interval = settings.device_code_interval_secs;
    Ok(device_code_body(
        v1,
        &origin,
        &device_code,
        &user_code,
        lifetime,
        interval,
    ))
}

/// The seed's automatic approval (or refusal) of every new device code.
fn decide_automatically(
    shared: &Shared,
    directory: &Directory,
    user_code: &str,
    now: i64,
) -> Result<(), EntraError> {
    let settings = &directory.seed.sign_in;
    if let Some(who) = &settings.auto_approve_device_codes
        && let Some(user) = directory.user(who)
    {
        approve_device_code(shared, directory, user_code, user, now)?;
    } else if settings.auto_decline_device_codes {
        shared
            .sign_in
            .decide(user_code, None, now)
            .map_err(device_error)?;
    }
    Ok(())
}

/// The device-code endpoint's answer: v1's strings and `verification_url`, or v2's.
fn device_code_body(
    v1: bool,
    origin: &str,
    device_code: &str,
    user_code: &str,
    lifetime: i64,
    interval: u64,
) -> serde_json::Value {
    let uri = format!("{origin}/devicelogin");
    let message = format!(
        "To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."
    );
    if v1 {
        json!({
            "user_code": user_code, "device_code": device_code, "verification_url": uri,
            "expires_in": lifetime.to_string(), "interval": interval.to_string(), "message": message,
        })
    } else {
        json!({
            "user_code": user_code, "device_code": device_code, "verification_uri": uri,
            "expires_in": lifetime, "interval": interval, "message": message,
        })
    }
}

/// `GET /devicelogin`: the page that takes the code.
pub(crate) async fn device_login_page() -> Response {
    page::device_login(None)
}

/// `POST /devicelogin`: the code typed; on to the sign-in page.
pub(crate) async fn device_login(
    State(shared): State<Arc<Shared>>,
    ctx: RequestContext,
) -> Response {
    let fields = ctx.body().form().map(<[_]>::to_vec).unwrap_or_default();
    let typed = form::get(&fields, "otc").unwrap_or_default();
    let now = ctx.now.unix_timestamp();
    let device = match shared.sign_in.pending_device_code(typed, now) {
        Ok(device) => device,
        Err(e) => {
            let error = ctx.entra_error(device_error(e)).to_string();
            return page::device_login(Some(&error));
        }
    };
    let directory = shared.directory();
    let app = directory.app_display_name(&device.client_id);
    let flow = shared.sign_in.begin_flow(
        FlowKind::Device {
            user_code: device.user_code.clone(),
        },
        now,
    );
    page::sign_in(&SignInPage {
        action: &format!("/{}/login", device.tenant),
        flow_token: &flow,
        app: &app,
        username: "",
        error: None,
    })
}

/// `GET|POST /{tenant}/oauth2/v2.0/logout` (and v1's `/oauth2/logout`): ends the browser's
/// session; back to `post_logout_redirect_uri` when it is one of a seeded application's
/// redirect URIs, else a signed-out page.
pub(crate) async fn logout(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    ctx: RequestContext,
) -> Response {
    if let Some(cookie) = session_cookie(&ctx) {
        shared.sign_in.close_session(&cookie);
    }
    let params = parameters(&method, &uri, &ctx);
    let target = form::get(&params, "post_logout_redirect_uri")
        .filter(|target| shared.directory().is_redirect_uri(target));
    let mut response = match target {
        Some(target) => Redirect::to(target).into_response(),
        None => page::signed_out(),
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("ESTSAUTH=; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=0"),
    );
    response
}
