//! Cloud Shell: `POST /oauth2/token` (`Metadata: true`, form `resource`). Tokens are the
//! signed-in user's: the seed's first user.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::header_is;
use crate::context::RequestContext;
use crate::directory::ResolvedResource;
use crate::state::{Ring, Shared};
use crate::tokens;
use crate::wire::CloudShellError;

/// `POST /oauth2/token`.
pub(crate) async fn token(State(shared): State<Arc<Shared>>, ctx: RequestContext) -> Response {
    answer(&shared, &ctx).unwrap_or_else(IntoResponse::into_response)
}

fn answer(shared: &Shared, ctx: &RequestContext) -> Result<Response, CloudShellError> {
    let bad =
        |code: &str, message: &str| CloudShellError::new(StatusCode::BAD_REQUEST, code, message);
    if !header_is(&ctx.headers, "metadata", "true") {
        return Err(bad("BadRequest", "Required metadata header not specified"));
    }
    let form = ctx
        .body()
        .form()
        .map_err(|_| bad("BadRequest", "The body is not a valid form"))?;
    let resource = crate::form::get(form, "resource")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad("BadRequest", "The 'resource' form field is required"))?;
    let directory = shared.directory();
    let user = directory.seed.users.first().ok_or_else(|| {
        bad(
            "NoUser",
            "The emulator's seed defines no user for Cloud Shell",
        )
    })?;
    let trimmed = resource.trim_end_matches('/');
    let resolved = directory
        .resource(&user.tenant, trimmed)
        .unwrap_or(ResolvedResource {
            audience: trimmed.to_string(),
            version: 2,
        });
    let now = ctx.now.unix_timestamp();
    let lifetime = directory.settings().token_lifetime_secs as i64;
    let origin = shared.https_origin.get().cloned().unwrap_or_default();
    let key = shared.signing_key(Ring::Tokens);
    let token = tokens::user_token(
        &key,
        &tokens::UserTokenRequest {
            user,
            tenant_id: &user.tenant,
            client_id: tokens::AZURE_CLI_CLIENT_ID,
            client_acr: "0",
            audience: &resolved.audience,
            version: resolved.version,
            scp: "user_impersonation",
            now,
            lifetime_secs: lifetime,
            origin: &origin,
            capabilities: &[],
        },
    );
    Ok(Json(json!({
        "access_token": token,
        "refresh_token": "",
        "expires_in": lifetime.to_string(),
        "expires_on": (now + lifetime).to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response())
}
