//! The endpoint index of spec §11.20: every method and path, who may call it, what it takes and
//! what it returns on success. Servers route from it and clients build requests from it, so both
//! sides share one table; a test checks it against the spec's table.

/// Who may call an endpoint (spec §11.2, §11.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    None,
    /// A session (`Authorization: Bearer <session token>`); the endpoint's own rules decide
    /// access to the resource named.
    Session,
    /// A session of the account named in the path.
    SessionOfAccount,
    /// A session and a fresh OPAQUE proof (spec §11.6.6).
    SessionAndProof,
    /// No session; a link access token if the link has a password (spec §11.2.2).
    Link,
    /// The operator's credential, on a non-public listener (spec §11.12).
    Operator,
}

impl Auth {
    /// The text of the spec's endpoint index.
    #[must_use]
    pub const fn spec_text(self) -> &'static str {
        match self {
            Auth::None => "—",
            Auth::Session => "session",
            Auth::SessionOfAccount => "session (self)",
            Auth::SessionAndProof => "session + proof",
            Auth::Link => "link",
            Auth::Operator => "operator",
        }
    }
}

/// What a request or response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Nothing (an empty body).
    Empty,
    /// A body of spec §11.17, by structure name (`application/cbor`).
    Body(&'static str),
    /// Ciphertext (`application/octet-stream`).
    Octets,
    /// Plain text (`text/plain`, operations endpoints only).
    Text,
}

/// One endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// The HTTP method.
    pub method: &'static str,
    /// The path template; `{name}` segments are parameters (spec §11.1).
    pub path: &'static str,
    /// Who may call it.
    pub auth: Auth,
    /// The request body.
    pub request: Payload,
    /// The success statuses (more than one for creation-or-update and for ranges).
    pub success: &'static [u16],
    /// The success response body.
    pub response: Payload,
}

macro_rules! endpoints {
    ($( $method:literal $path:literal, $auth:ident, $req:expr => [$($status:literal),+] $resp:expr; )+) => {
        /// Every endpoint, in the order of spec §11.20.
        pub static ENDPOINTS: &[Endpoint] = &[$(
            Endpoint {
                method: $method,
                path: $path,
                auth: Auth::$auth,
                request: $req,
                success: &[$($status),+],
                response: $resp,
            }
        ),+];
    };
}

use Payload::{Body as B, Empty as E, Octets as O, Text as T};

endpoints! {
    "POST" "/v1/accounts/register/start", None, B("RegisterStartRequest") => [201] B("RegisterStartResponse");
    "POST" "/v1/accounts/register/finish", None, B("RegisterFinishRequest") => [201] B("RegisterFinishResponse");
    "POST" "/v1/sessions/login/start", None, B("LoginStartRequest") => [200] B("LoginStartResponse");
    "POST" "/v1/sessions/login/finish", None, B("LoginFinishRequest") => [200] B("LoginFinishResponse");
    "POST" "/v1/sessions/logout", Session, E => [204] E;
    "GET" "/v1/sessions", Session, E => [200] B("SessionList");
    "DELETE" "/v1/sessions/{session-id}", Session, E => [204] E;
    "POST" "/v1/sessions/revoke-others", Session, E => [200] B("SessionsRevoked");
    "GET" "/v1/account", Session, E => [200] B("AccountInfo");
    "GET" "/v1/users/{username}", Session, E => [200] B("UserLookupResponse");
    "POST" "/v1/account/password/start", Session, B("ReauthStartRequest") => [200] B("ReauthStartResponse");
    "POST" "/v1/account/password/finish", SessionAndProof, B("PasswordChangeFinishRequest") => [200] B("AccountUpdated");
    "POST" "/v1/account/recover/start", Session, B("ReauthStartRequest") => [200] B("ReauthStartResponse");
    "POST" "/v1/account/recover/finish", SessionAndProof, B("RecoveryFinishRequest") => [200] B("AccountUpdated");
    "POST" "/v1/account/delete/start", Session, B("ReauthStartRequest") => [200] B("ReauthStartResponse");
    "POST" "/v1/account/delete/finish", SessionAndProof, B("AccountDeleteFinishRequest") => [204] E;
    "GET" "/v1/identities/{account-id}", None, E => [200] B("IdentityChain");
    "PUT" "/v1/identities/{account-id}", SessionOfAccount, B("IdentityAppendRequest") => [200] B("IdentityChain");
    "GET" "/v1/root", Session, E => [200] B("NodeResponse");
    "POST" "/v1/nodes", Session, B("NodeCreateRequest") => [201] B("NodeWritten");
    "GET" "/v1/nodes/{node-id}", Session, E => [200] B("NodeResponse");
    "GET" "/v1/nodes/{node-id}/children", Session, E => [200] B("NodeList");
    "PUT" "/v1/nodes/{node-id}", Session, B("NodeUpdateRequest") => [200] B("NodeWritten");
    "DELETE" "/v1/nodes/{node-id}", Session, B("NodeDeleteRequest") => [200] B("NodeDeleted");
    "GET" "/v1/nodes/{node-id}/content", Session, E => [200, 206] O;
    "POST" "/v1/uploads", Session, B("UploadCreateRequest") => [201] B("UploadStatus");
    "PUT" "/v1/uploads/{upload-id}/parts/{index}", Session, O => [200] B("PartStored");
    "GET" "/v1/uploads/{upload-id}", Session, E => [200] B("UploadStatus");
    "POST" "/v1/uploads/{upload-id}/finalize", Session, B("UploadFinalizeRequest") => [201, 200] B("NodeWritten");
    "DELETE" "/v1/uploads/{upload-id}", Session, E => [204] E;
    "POST" "/v1/shares", Session, B("ShareCreateRequest") => [201] B("ShareUpdated");
    "GET" "/v1/shares", Session, E => [200] B("ShareList");
    "GET" "/v1/shares/{share-id}", Session, E => [200] B("ShareResponse");
    "DELETE" "/v1/shares/{share-id}", Session, B("ShareDeleteRequest") => [204] E;
    "POST" "/v1/shares/{share-id}/members", Session, B("MemberAddRequest") => [200] B("ShareUpdated");
    "DELETE" "/v1/shares/{share-id}/members/{account-id}", Session, B("MemberRemoveRequest") => [200] B("ShareUpdated");
    "POST" "/v1/shares/{share-id}/leave", Session, E => [204] E;
    "GET" "/v1/shares/{share-id}/grants/mine", Session, E => [200] B("MyGrants");
    "POST" "/v1/links", Session, B("LinkCreateRequest") => [201] B("LinkCreated");
    "GET" "/v1/links", Session, E => [200] B("LinkList");
    "DELETE" "/v1/links/{link-id}", Session, E => [204] E;
    "POST" "/v1/links/{link-id}/rotate", Session, B("LinkRotateRequest") => [201] B("LinkCreated");
    "PUT" "/v1/links/{link-id}", Session, B("LinkResealRequest") => [204] E;
    "GET" "/v1/drops", Session, E => [200] B("DropList");
    "GET" "/v1/drops/{drop-id}/content", Session, E => [200, 206] O;
    "DELETE" "/v1/drops/{drop-id}", Session, E => [204] E;
    "GET" "/v1/l/{link-id}", Link, E => [200] B("LinkResolved");
    "POST" "/v1/l/{link-id}/unlock", None, B("LinkUnlockRequest") => [200] B("LinkUnlocked");
    "GET" "/v1/l/{link-id}/content", Link, E => [200, 206] O;
    "GET" "/v1/l/{link-id}/nodes/{node-id}", Link, E => [200] B("NodeResponse");
    "GET" "/v1/l/{link-id}/nodes/{node-id}/children", Link, E => [200] B("NodeList");
    "GET" "/v1/l/{link-id}/nodes/{node-id}/content", Link, E => [200, 206] O;
    "POST" "/v1/l/{link-id}/drops", Link, B("DropCreateRequest") => [201] B("UploadStatus");
    "PUT" "/v1/l/{link-id}/uploads/{upload-id}/parts/{index}", Link, O => [200] B("PartStored");
    "GET" "/v1/l/{link-id}/uploads/{upload-id}", Link, E => [200] B("UploadStatus");
    "POST" "/v1/l/{link-id}/uploads/{upload-id}/finalize", Link, E => [204] E;
    "DELETE" "/v1/l/{link-id}/uploads/{upload-id}", Link, E => [204] E;
    "GET" "/healthz", None, E => [200] T;
    "GET" "/metrics", Operator, E => [200] T;
}

impl Endpoint {
    /// The endpoint whose method and template match `method` and the concrete `path`, with the
    /// values of its `{name}` segments in order. Segments are matched literally; parameter values
    /// are returned unparsed (spec §11.1 says how to parse them).
    #[must_use]
    pub fn route<'p>(
        method: &str,
        path: &'p str,
    ) -> Option<(&'static Endpoint, alloc::vec::Vec<&'p str>)> {
        ENDPOINTS.iter().find_map(|e| {
            if e.method != method {
                return None;
            }
            let mut params = alloc::vec::Vec::new();
            let mut want = e.path.split('/');
            let mut got = path.split('/');
            loop {
                match (want.next(), got.next()) {
                    (None, None) => return Some((e, params)),
                    (Some(w), Some(g))
                        if w.starts_with('{') && w.ends_with('}') && !g.is_empty() =>
                    {
                        params.push(g);
                    }
                    (Some(w), Some(g)) if w == g => {}
                    _ => return None,
                }
            }
        })
    }
}
