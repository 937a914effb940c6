//! Authentication extractors (spec §11.2) and path parameters.
//!
//! [`Session`] reads `Authorization: Bearer <base64url(token)>`, hashes the token with SHA-256,
//! looks the session up by that hash, and rejects ended sessions (logout, revocation, 30 days
//! idle, 90 days old) with `401 unauthenticated` and `WWW-Authenticate: Bearer realm="coffer"`.
//! A malformed header is treated exactly like a missing one. It also applies the per-session
//! request limit; the store records the last use.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use coffer_core::api::{SessionToken, SESSION_IDLE_TTL_SECS};
use coffer_core::encoding::Bytes;
use coffer_core::ids::AccountId;

use super::error::ApiError;
use super::AppState;
use crate::store::SessionId;

/// The authenticated session of a request.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session's account.
    pub account_id: AccountId,
    /// The session's public id.
    pub session_id: SessionId,
    /// SHA-256 of the session token.
    pub token_hash: [u8; 32],
}

/// Parses a `Bearer` token of 32 bytes from the `Authorization` header; `None` for a missing or
/// malformed header (§11.2.1: treated alike).
#[must_use]
pub fn bearer_token(parts: &Parts) -> Option<SessionToken> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    SessionToken::from_header(value).ok()
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or_else(ApiError::unauthenticated)?;
        let hash = token.hash();
        drop(token);
        let now = state.now();
        let record = state
            .meta
            .authenticate_session(hash.as_bytes(), now, SESSION_IDLE_TTL_SECS)
            .await
            .map_err(|e| ApiError::internal("session lookup", e))?
            .ok_or_else(ApiError::unauthenticated)?;
        let session = Session {
            account_id: record.account_id,
            session_id: record.session_id,
            token_hash: *hash.as_bytes(),
        };
        state
            .limits
            .requests_per_session
            .check(&session.session_id, &state.metrics)?;
        Ok(session)
    }
}

/// The connecting client's address (spec §11.13: the connecting address; forwarded addresses
/// are not trusted).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| ApiError::internal("client address", "no connection info"))?;
        Ok(ClientIp(canonical_ip(addr)))
    }
}

/// IPv4-mapped IPv6 addresses count as their IPv4 address; other IPv6 addresses are keyed by
/// their /64 (one host typically holds a whole /64).
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut seg = v6.segments();
            for s in &mut seg[4..] {
                *s = 0;
            }
            IpAddr::V6(seg.into())
        }
    }
}

/// Parses a 16-byte id path segment: exactly 22 characters of canonical base64url, else
/// `400 invalid-parameter` (§11.1).
///
/// # Errors
/// `400 invalid-parameter`.
pub fn path_id16(segment: &str) -> Result<[u8; 16], ApiError> {
    if segment.len() != 22 {
        return Err(ApiError::invalid_parameter("malformed identifier in path"));
    }
    let v = coffer_core::encoding::b64url_decode(segment)
        .map_err(|_| ApiError::invalid_parameter("malformed identifier in path"))?;
    v.as_slice()
        .try_into()
        .map_err(|_| ApiError::invalid_parameter("malformed identifier in path"))
}

/// Parses an id path segment into one of coffer-core's id types.
///
/// # Errors
/// `400 invalid-parameter`.
pub fn path_id<T: From16>(segment: &str) -> Result<T, ApiError> {
    path_id16(segment).map(T::from16)
}

/// Id types constructible from 16 bytes.
pub trait From16 {
    /// The id with these bytes.
    fn from16(b: [u8; 16]) -> Self;
}

macro_rules! from16 {
    ($($t:ty),*) => {$(
        impl From16 for $t {
            fn from16(b: [u8; 16]) -> Self {
                <$t>::from_bytes(b)
            }
        }
    )*};
}
from16!(
    coffer_core::ids::NodeId,
    coffer_core::ids::ShareId,
    coffer_core::ids::LinkId,
    coffer_core::ids::AccountId,
    coffer_core::ids::UploadId
);

impl From16 for Bytes<16> {
    fn from16(b: [u8; 16]) -> Self {
        Bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_ids_must_be_canonical() {
        let id = coffer_core::ids::NodeId::from_bytes([7; 16]);
        let text = id.to_b64();
        assert_eq!(path_id::<coffer_core::ids::NodeId>(&text).expect("ok"), id);
        assert!(path_id16(&text[..21]).is_err());
        assert!(path_id16(&format!("{text}A")).is_err());
        assert!(path_id16("AAAAAAAAAAAAAAAAAAAAA=").is_err());
        assert!(path_id16("AAAAAAAAAAAAAAAAAAAAA+").is_err());
        // The last character carries 4 unused bits, which must be zero.
        assert!(path_id16("AAAAAAAAAAAAAAAAAAAAAB").is_err());
    }

    #[test]
    fn ipv6_keys_by_prefix() {
        let a: IpAddr = "2001:db8::1".parse().expect("ip");
        let b: IpAddr = "2001:db8::2".parse().expect("ip");
        assert_eq!(canonical_ip(a), canonical_ip(b));
        let m: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(canonical_ip(m), "10.0.0.1".parse::<IpAddr>().expect("ip"));
    }
}
