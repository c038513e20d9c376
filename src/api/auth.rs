//! Bearer tokens: the daemon keeps only their SHA-256, so the config file holds no secret.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};

use super::AppState;
use super::error::ApiError;
use crate::config::{Role, Token};

/// Who may read incidents and what hangs off them.
pub(super) const READ: &[Role] = &[Role::Viewer, Role::Responder, Role::Approver];
/// Who may work on incidents: declare, change, page, do tasks.
pub(super) const WRITE: &[Role] = &[Role::Responder];

/// The roles a route needs, as a type: [`Authorized<R>`] checks them while the request's head
/// is read, before any body extractor runs.
pub trait Roles: Send + Sync + 'static {
    const ROLES: &'static [Role];
}

/// The role sets the routes use.
pub mod role {
    use super::{READ, Role, Roles, WRITE};

    /// Viewers, responders and approvers: reading incidents and what hangs off them.
    pub struct Read;
    /// Responders: declaring, changing, paging, doing tasks.
    pub struct Write;
    /// Alert senders.
    pub struct Ingest;
    /// Approvers: deciding gates (the departments they act for are checked after).
    pub struct Approve;
    /// The host site: its users' inboxes.
    pub struct Site;
    /// Operators only.
    pub struct Admin;

    impl Roles for Read {
        const ROLES: &'static [Role] = READ;
    }
    impl Roles for Write {
        const ROLES: &'static [Role] = WRITE;
    }
    impl Roles for Ingest {
        const ROLES: &'static [Role] = &[Role::Ingest];
    }
    impl Roles for Approve {
        const ROLES: &'static [Role] = &[Role::Approver];
    }
    impl Roles for Site {
        const ROLES: &'static [Role] = &[Role::Site];
    }
    impl Roles for Admin {
        const ROLES: &'static [Role] = &[Role::Admin];
    }
}

/// A caller holding one of `R`'s roles (or admin). As an extractor it authenticates and
/// authorises from the request head alone, so a caller without the role gets 403 before the
/// body is read, limited or parsed (never 400 or 413 for a body they may not send at all).
pub struct Authorized<R: Roles> {
    caller: Caller,
    roles: PhantomData<R>,
}

impl<R: Roles> Deref for Authorized<R> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<R: Roles> Authorized<R> {
    pub fn into_caller(self) -> Caller {
        self.caller
    }
}

impl<R: Roles> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(R::ROLES)?;
        Ok(Authorized {
            caller,
            roles: PhantomData,
        })
    }
}

/// Tokens by hash.
#[derive(Debug, Clone, Default)]
pub struct Tokens(HashMap<[u8; 32], Caller>);

impl Tokens {
    pub fn new(tokens: &[Token]) -> Self {
        Tokens(
            tokens
                .iter()
                .map(|t| {
                    (
                        t.sha256,
                        Caller {
                            name: t.name.clone(),
                            roles: t.roles.clone(),
                            departments: t.departments.clone(),
                        },
                    )
                })
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn find(&self, token: &str) -> Option<&Caller> {
        self.0.get(&token_hash(token))
    }
}

/// SHA-256 of a token, as the config stores it.
pub fn token_hash(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
    );
    out
}

/// Who is calling, by the name their token has in the config.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub roles: Vec<Role>,
    /// The departments this token acts for (approvals, `mine` task lists).
    pub departments: Vec<String>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    pub fn actor(&self) -> String {
        crate::engine::token_actor(&self.name)
    }

    /// Allowed when the caller holds any of `roles`, or `admin`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.roles.contains(&Role::Admin) || roles.iter().any(|r| self.roles.contains(r)) {
            return Ok(());
        }
        let names = |rs: &[Role]| rs.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
        Err(ApiError::forbidden(format!(
            "token `{}` has roles [{}]; this needs one of [{}] (or admin)",
            self.name,
            names(&self.roles),
            names(roles)
        )))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Caller::from_headers(&parts.headers, state)
    }
}

impl Caller {
    /// The caller a request's `Authorization` header names, or why there is none.
    pub(super) fn from_headers(
        headers: &axum::http::HeaderMap,
        state: &AppState,
    ) -> Result<Caller, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "this endpoint needs a bearer token: send `Authorization: Bearer <token>`",
            ));
        };
        let value = value.to_str().unwrap_or_default();
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        state
            .live()
            .tokens
            .find(token)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("this token is not known to incidentd"))
    }
}

/// Failed sign-ins within the lockout window, by key (`login:<login>`, and `*` for all).
#[derive(Debug, Clone, Default)]
pub struct SignInLimiter(
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, (u32, std::time::Instant)>>>,
);

impl SignInLimiter {
    pub(crate) fn locked(&self, key: &str, max: u32, window: std::time::Duration) -> bool {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key)
            .is_some_and(|(n, since)| *n >= max && since.elapsed() < window)
    }

    pub(crate) fn failed(&self, key: &str, window: std::time::Duration) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = map
            .entry(key.to_string())
            .or_insert((0, std::time::Instant::now()));
        if e.1.elapsed() >= window {
            *e = (0, std::time::Instant::now());
        }
        e.0 += 1;
        if map.len() > 10_000 {
            map.retain(|_, (_, since)| since.elapsed() < window);
        }
    }

    pub(crate) fn succeeded(&self, key: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}
