//! What user sign-in remembers between requests: pending sign-in flows, issued authorization
//! codes, device codes, browser sessions and each user's session generation (bumped when an
//! administrator revokes the user's sessions). Kept in memory and bounded; a restart forgets
//! codes and sessions, as a restarted Entra front end would not, which tests never need.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::crypto;

/// The most entries each table holds; beyond it the entries closest to expiry go first.
const CAPACITY: usize = 10_000;

/// How a PKCE challenge was derived from its verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChallengeMethod {
    /// `S256`: base64url(SHA-256(verifier)).
    S256,
    /// `plain`: the verifier itself.
    Plain,
}

/// A PKCE code challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) value: String,
    pub(crate) method: ChallengeMethod,
}

impl Challenge {
    /// Whether `verifier` is the one this challenge was made from.
    pub(crate) fn verifies(&self, verifier: &str) -> bool {
        let derived = match self.method {
            ChallengeMethod::S256 => crypto::b64url(crypto::sha256(verifier.as_bytes())),
            ChallengeMethod::Plain => verifier.to_string(),
        };
        crypto::constant_time_eq(derived.as_bytes(), self.value.as_bytes())
    }
}

/// How the authorization endpoint returns its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseMode {
    /// A redirect with the answer in the query.
    Query,
    /// A redirect with the answer in the fragment.
    Fragment,
    /// An HTML form that posts the answer to the redirect URI.
    FormPost,
}

/// The `prompt` of an authorization request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prompt {
    /// Always show the sign-in page.
    Login,
    /// Never show a page: a session or an error.
    None,
    /// Let the user pick an account (the page, prefilled).
    SelectAccount,
    /// Ask for consent (the page; consent is granted by signing in).
    Consent,
}

/// A validated authorization request, kept while the user signs in.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizeRequest {
    /// The tenant segment of the path (a tenant id, domain or alias).
    pub(crate) tenant: String,
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    /// The scopes asked for (v1: the resource).
    pub(crate) scope: String,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) challenge: Option<Challenge>,
    pub(crate) response_mode: ResponseMode,
    pub(crate) prompt: Option<Prompt>,
    pub(crate) login_hint: Option<String>,
}

/// What a sign-in page is signing the user in for.
#[derive(Debug, Clone)]
pub(crate) enum FlowKind {
    /// An authorization request: ends in a code sent to the redirect URI.
    Authorize(AuthorizeRequest),
    /// A device code, by its user code: ends in the device code's approval.
    Device { user_code: String },
}

/// A sign-in in progress (the page's hidden `flowToken`).
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    pub(crate) kind: FlowKind,
    pub(crate) expires: i64,
    /// The user whose password was right and who still owes the verification code.
    pub(crate) pending_mfa: Option<String>,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub(crate) struct IssuedCode {
    pub(crate) request: AuthorizeRequest,
    /// The signed-in user's home object id.
    pub(crate) user: String,
    /// The tenant the user signed in to.
    pub(crate) tenant_id: String,
    pub(crate) expires: i64,
    pub(crate) redeemed: bool,
    /// The user's session generation at sign-in.
    pub(crate) generation: u64,
}

/// Why a code cannot be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeError {
    /// Never issued (or forgotten).
    Unknown,
    /// Redeemed before (AADSTS54005).
    Redeemed,
    /// Past its lifetime (AADSTS70008).
    Expired,
}

/// Where a device code stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceStatus {
    /// Waiting for the user.
    Pending,
    /// Approved by a user (home object id) signing in to a tenant.
    Approved {
        user: String,
        tenant_id: String,
        generation: u64,
    },
    /// The user declined.
    Declined,
    /// Redeemed for tokens: a device code is good for one token response.
    Redeemed,
}

/// An issued device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceCode {
    /// The tenant segment of the path.
    pub(crate) tenant: String,
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) user_code: String,
    pub(crate) expires: i64,
    pub(crate) status: DeviceStatus,
}

/// A device-code poll's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Poll {
    Unknown,
    Expired,
    Pending,
    Declined,
    AlreadyRedeemed,
    /// Approved: the code and who approved it; the code is now spent.
    Approved(Box<DeviceCode>),
}

/// Why a user code cannot be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecideError {
    /// No such user code.
    Unknown,
    /// The code expired.
    Expired,
    /// Approved, declined or redeemed already.
    Decided,
}

/// A browser session (the `ESTSAUTH` cookie).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The user's home object id.
    pub(crate) user: String,
    pub(crate) generation: u64,
    pub(crate) expires: i64,
}

/// How long a sign-in page stays usable, seconds.
pub(crate) const FLOW_LIFETIME_SECS: i64 = 900;
/// How long a browser session lasts, seconds (Entra's default is longer; tests need no more).
pub(crate) const SESSION_LIFETIME_SECS: i64 = 24 * 3600;

#[derive(Default)]
struct Tables {
    flows: HashMap<String, Flow>,
    codes: HashMap<String, IssuedCode>,
    device_codes: HashMap<String, DeviceCode>,
    user_codes: HashMap<String, String>,
    sessions: HashMap<String, Session>,
    generations: HashMap<String, u64>,
    revoked_at: HashMap<String, i64>,
}

/// The sign-in store.
#[derive(Default)]
pub(crate) struct SignInStore(Mutex<Tables>);

impl std::fmt::Debug for SignInStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.lock();
        f.debug_struct("SignInStore")
            .field("flows", &t.flows.len())
            .field("codes", &t.codes.len())
            .field("device_codes", &t.device_codes.len())
            .field("sessions", &t.sessions.len())
            .finish()
    }
}

/// A user code as Entra shows them: nine letters and digits without look-alikes.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..9)
        .map(|_| ALPHABET[rand::random::<u32>() as usize % ALPHABET.len()] as char)
        .collect()
}

/// Drops expired entries once a table is large, and the soonest-expiring ones beyond
/// [`CAPACITY`].
fn prune<V>(table: &mut HashMap<String, V>, now: i64, expires: impl Fn(&V) -> i64) {
    if table.len() < CAPACITY / 10 {
        return;
    }
    table.retain(|_, v| expires(v) > now);
    while table.len() >= CAPACITY {
        let Some(oldest) = table
            .iter()
            .min_by_key(|(_, v)| expires(v))
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        table.remove(&oldest);
    }
}

impl SignInStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a sign-in flow; returns its token.
    pub(crate) fn begin_flow(&self, kind: FlowKind, now: i64) -> String {
        let token = crypto::random_b64(48);
        let mut t = self.lock();
        prune(&mut t.flows, now, |f| f.expires);
        let flow = Flow {
            kind,
            expires: now + FLOW_LIFETIME_SECS,
            pending_mfa: None,
        };
        t.flows.insert(token.clone(), flow);
        token
    }

    /// A flow that has not expired.
    pub(crate) fn flow(&self, token: &str, now: i64) -> Option<Flow> {
        self.lock()
            .flows
            .get(token)
            .filter(|f| f.expires > now)
            .cloned()
    }

    /// Records that `user` gave the right password and owes the verification code.
    pub(crate) fn await_mfa(&self, token: &str, user: &str) {
        if let Some(flow) = self.lock().flows.get_mut(token) {
            flow.pending_mfa = Some(user.to_string());
        }
    }

    /// Ends a flow (signed in, or cancelled).
    pub(crate) fn end_flow(&self, token: &str) {
        self.lock().flows.remove(token);
    }

    /// Issues an authorization code.
    pub(crate) fn issue_code(&self, code: IssuedCode, now: i64) -> String {
        let value = format!("1.A{}", crypto::random_b64(96));
        let mut t = self.lock();
        prune(&mut t.codes, now, |c| c.expires);
        t.codes.insert(value.clone(), code);
        value
    }

    /// Redeems a code: once, before it expires.
    pub(crate) fn redeem_code(&self, code: &str, now: i64) -> Result<IssuedCode, CodeError> {
        let mut t = self.lock();
        let issued = t.codes.get_mut(code).ok_or(CodeError::Unknown)?;
        if issued.redeemed {
            return Err(CodeError::Redeemed);
        }
        if issued.expires <= now {
            return Err(CodeError::Expired);
        }
        issued.redeemed = true;
        Ok(issued.clone())
    }

    /// Issues a device code; returns `(device_code, user_code)`.
    pub(crate) fn issue_device_code(&self, mut code: DeviceCode, now: i64) -> (String, String) {
        let device_code = format!("DAQABIQEAAAD{}", crypto::random_b64(96));
        let mut t = self.lock();
        prune(&mut t.device_codes, now, |c| c.expires);
        let live: std::collections::HashSet<String> = t
            .device_codes
            .values()
            .map(|c| c.user_code.clone())
            .collect();
        t.user_codes.retain(|u, _| live.contains(u));
        let mut user = user_code();
        while t.user_codes.contains_key(&user) {
            user = user_code();
        }
        code.user_code = user.clone();
        t.user_codes.insert(user.clone(), device_code.clone());
        t.device_codes.insert(device_code.clone(), code);
        (device_code, user)
    }

    /// A pending device code by its user code (case and spaces ignored).
    pub(crate) fn pending_device_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> Result<DeviceCode, DecideError> {
        let mut t = self.lock();
        pending_mut(&mut t, user_code, now).map(|d| d.clone())
    }

    /// Every device code still waiting for a user, oldest first.
    pub(crate) fn pending_device_codes(&self, now: i64) -> Vec<DeviceCode> {
        let t = self.lock();
        let mut codes: Vec<DeviceCode> = t
            .device_codes
            .values()
            .filter(|d| d.expires > now && d.status == DeviceStatus::Pending)
            .cloned()
            .collect();
        codes.sort_by_key(|d| d.expires);
        codes
    }

    /// Approves (`Some(..)`) or declines (`None`) a pending device code.
    pub(crate) fn decide(
        &self,
        user_code: &str,
        approval: Option<(String, String, u64)>,
        now: i64,
    ) -> Result<(), DecideError> {
        // Checked and decided under one lock: two deciders cannot both win.
        let mut t = self.lock();
        let device = pending_mut(&mut t, user_code, now)?;
        device.status = match approval {
            Some((user, tenant_id, generation)) => DeviceStatus::Approved {
                user,
                tenant_id,
                generation,
            },
            None => DeviceStatus::Declined,
        };
        Ok(())
    }

    /// A client's poll with `device_code`.
    pub(crate) fn poll(&self, device_code: &str, now: i64) -> Poll {
        let mut t = self.lock();
        let Some(device) = t.device_codes.get_mut(device_code) else {
            return Poll::Unknown;
        };
        match device.status {
            DeviceStatus::Approved { .. } => {
                let approved = device.clone();
                device.status = DeviceStatus::Redeemed;
                Poll::Approved(Box::new(approved))
            }
            DeviceStatus::Redeemed => Poll::AlreadyRedeemed,
            _ if device.expires <= now => Poll::Expired,
            DeviceStatus::Declined => Poll::Declined,
            DeviceStatus::Pending => Poll::Pending,
        }
    }

    /// Opens a browser session for `user`; returns the cookie value.
    pub(crate) fn open_session(&self, user: &str, now: i64) -> String {
        let cookie = crypto::random_b64(32);
        let mut t = self.lock();
        prune(&mut t.sessions, now, |s| s.expires);
        let generation = t.generations.get(user).copied().unwrap_or(0);
        let session = Session {
            user: user.to_string(),
            generation,
            expires: now + SESSION_LIFETIME_SECS,
        };
        t.sessions.insert(cookie.clone(), session);
        cookie
    }

    /// The live session a cookie names: not expired, not revoked.
    pub(crate) fn session(&self, cookie: &str, now: i64) -> Option<Session> {
        let t = self.lock();
        let session = t.sessions.get(cookie)?;
        let generation = t.generations.get(&session.user).copied().unwrap_or(0);
        (session.expires > now && session.generation == generation).then(|| session.clone())
    }

    /// Ends one session (sign-out).
    pub(crate) fn close_session(&self, cookie: &str) {
        self.lock().sessions.remove(cookie);
    }

    /// The user's current session generation.
    pub(crate) fn generation(&self, user: &str) -> u64 {
        self.lock().generations.get(user).copied().unwrap_or(0)
    }

    /// When `user`'s sessions were last revoked.
    pub(crate) fn revoked_at(&self, user: &str) -> Option<i64> {
        self.lock().revoked_at.get(user).copied()
    }

    /// Revokes every session and refresh token of `user`; returns the new generation.
    pub(crate) fn revoke(&self, user: &str, now: i64) -> u64 {
        let mut t = self.lock();
        t.revoked_at.insert(user.to_string(), now);
        let generation = t.generations.entry(user.to_string()).or_insert(0);
        *generation += 1;
        let generation = *generation;
        t.sessions.retain(|_, s| s.user != user);
        generation
    }

    /// Forgets everything (the control plane's reset).
    pub(crate) fn clear(&self) {
        *self.lock() = Tables::default();
    }
}

/// The pending device code a user code names, for reading or deciding.
fn pending_mut<'t>(
    t: &'t mut Tables,
    user_code: &str,
    now: i64,
) -> Result<&'t mut DeviceCode, DecideError> {
    let device_code = t
        .user_codes
        .get(&normalize_user_code(user_code))
        .ok_or(DecideError::Unknown)?;
    let device = t
        .device_codes
        .get_mut(device_code)
        .ok_or(DecideError::Unknown)?;
    if device.expires <= now {
        return Err(DecideError::Expired);
    }
    if device.status != DeviceStatus::Pending {
        return Err(DecideError::Decided);
    }
    Ok(device)
}

/// A user code as typed: upper case, without spaces or dashes.
fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AuthorizeRequest {
        AuthorizeRequest {
            tenant: "organizations".into(),
            client_id: "c".into(),
            redirect_uri: "http://localhost:1/".into(),
            scope: "openid".into(),
            state: None,
            nonce: None,
            challenge: None,
            response_mode: ResponseMode::Query,
            prompt: None,
            login_hint: None,
        }
    }

    fn issued(expires: i64) -> IssuedCode {
        IssuedCode {
            request: request(),
            user: "u".into(),
            tenant_id: "t".into(),
            expires,
            redeemed: false,
            generation: 0,
        }
    }

    #[test]
    fn a_code_is_redeemed_once_and_not_after_expiry() {
        let store = SignInStore::default();
        let code = store.issue_code(issued(100), 0);
        assert!(store.redeem_code(&code, 50).is_ok());
        assert_eq!(
            store.redeem_code(&code, 51).unwrap_err(),
            CodeError::Redeemed
        );
        let late = store.issue_code(issued(100), 0);
        assert_eq!(
            store.redeem_code(&late, 100).unwrap_err(),
            CodeError::Expired
        );
        assert_eq!(
            store.redeem_code("nope", 0).unwrap_err(),
            CodeError::Unknown
        );
    }

    #[test]
    fn pkce_challenges_verify_their_verifier_only() {
        // RFC 7636 appendix B.
        let s256 = Challenge {
            value: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            method: ChallengeMethod::S256,
        };
        assert!(s256.verifies("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!s256.verifies("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"));
        let plain = Challenge {
            value: "abc".into(),
            method: ChallengeMethod::Plain,
        };
        assert!(plain.verifies("abc") && !plain.verifies("abd"));
    }

    fn device(expires: i64) -> DeviceCode {
        DeviceCode {
            tenant: "organizations".into(),
            client_id: "c".into(),
            scope: "s".into(),
            user_code: String::new(),
            expires,
            status: DeviceStatus::Pending,
        }
    }

    #[test]
    fn a_device_code_goes_pending_approved_redeemed() {
        let store = SignInStore::default();
        let (device_code, user_code) = store.issue_device_code(device(100), 0);
        assert_eq!(user_code.len(), 9);
        assert_eq!(store.poll(&device_code, 1), Poll::Pending);
        let typed = format!(" {}-{} ", &user_code[..4], &user_code[4..]).to_lowercase();
        store
            .decide(&typed, Some(("u".into(), "t".into(), 0)), 2)
            .unwrap();
        assert!(matches!(store.poll(&device_code, 3), Poll::Approved(_)));
        assert_eq!(store.poll(&device_code, 4), Poll::AlreadyRedeemed);
        assert_eq!(
            store.decide(&user_code, None, 5).unwrap_err(),
            DecideError::Decided
        );
    }

    #[test]
    fn a_device_code_can_be_declined_and_expires() {
        let store = SignInStore::default();
        let (declined, code) = store.issue_device_code(device(100), 0);
        store.decide(&code, None, 1).unwrap();
        assert_eq!(store.poll(&declined, 2), Poll::Declined);
        let (late, code) = store.issue_device_code(device(100), 0);
        assert_eq!(store.poll(&late, 100), Poll::Expired);
        assert_eq!(
            store.decide(&code, None, 100).unwrap_err(),
            DecideError::Expired
        );
        assert_eq!(store.poll("nope", 0), Poll::Unknown);
    }

    #[test]
    fn revoking_ends_sessions_and_bumps_the_generation() {
        let store = SignInStore::default();
        let cookie = store.open_session("u", 0);
        assert!(store.session(&cookie, 1).is_some());
        assert_eq!(store.revoke("u", 1), 1);
        assert_eq!(store.revoked_at("u"), Some(1));
        assert!(store.session(&cookie, 1).is_none());
        let again = store.open_session("u", 2);
        assert_eq!(store.session(&again, 3).unwrap().generation, 1);
        assert!(store.session(&again, SESSION_LIFETIME_SECS + 2).is_none());
    }

    #[test]
    fn tables_stay_bounded() {
        let store = SignInStore::default();
        for i in 0..(CAPACITY as i64 + 50) {
            store.issue_code(issued(i + 1_000_000), i);
        }
        assert!(store.lock().codes.len() <= CAPACITY);
    }
}
