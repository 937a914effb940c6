//! The server side of OPAQUE (spec §6.2) on arbitrary messages.
//!
//! Properties: `ServerSetup::from_bytes` never panics and accepted bytes re-serialise
//! identically; `server_registration_start`, `server_registration_finish`, `server_login_start`
//! (with an arbitrary or absent password file) and `server_login_finish` (with an arbitrary
//! state) never panic on arbitrary messages; after a `server_login_start` on arbitrary input, no
//! arbitrary finalization authenticates; against an arbitrary (server-held, so trusted) state, a
//! finalization that authenticates stops doing so after any single bit flip. The client-side finish steps run Argon2id on every call and are exercised by
//! the unit tests and vectors instead.
#![no_main]

use std::sync::OnceLock;

use coffer_core::account::opaque::{
    server_login_finish, server_login_start, server_registration_finish, server_registration_start,
    OpaqueIdentities, ServerLoginState, ServerSetup, CREDENTIAL_FINALIZATION_LEN,
    CREDENTIAL_REQUEST_LEN, REGISTRATION_REQUEST_LEN, REGISTRATION_UPLOAD_LEN,
    SERVER_LOGIN_STATE_LEN, SERVER_SETUP_LEN,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;

fn setup() -> &'static ServerSetup {
    static SETUP: OnceLock<ServerSetup> = OnceLock::new();
    SETUP.get_or_init(|| ServerSetup::generate(&mut rand_chacha::ChaCha20Rng::from_seed([6; 32])))
}

/// Mostly the exact length (so parsing goes past the length check), sometimes anything.
fn msg<'a>(u: &mut Unstructured<'a>, len: usize) -> Result<&'a [u8]> {
    if u.ratio(7, 8)? {
        u.bytes(len)
    } else {
        u.arbitrary()
    }
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let ids = OpaqueIdentities {
        user_name: "alice",
        server_identity: "https://coffer.example",
    };
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([7; 32]);
    match u.int_in_range(0u8..=4)? {
        0 => {
            let b = msg(u, SERVER_SETUP_LEN)?;
            if let Ok(s) = ServerSetup::from_bytes(b) {
                assert_eq!(&s.to_bytes()[..], b);
            }
        }
        1 => {
            let _ = server_registration_start(setup(), msg(u, REGISTRATION_REQUEST_LEN)?, &ids);
        }
        2 => {
            if let Ok(file) = server_registration_finish(msg(u, REGISTRATION_UPLOAD_LEN)?) {
                assert_eq!(file.len(), REGISTRATION_UPLOAD_LEN);
            }
        }
        3 => {
            let file = if u.arbitrary()? {
                Some(msg(u, REGISTRATION_UPLOAD_LEN)?)
            } else {
                None
            };
            let request = msg(u, CREDENTIAL_REQUEST_LEN)?;
            if let Ok((state, _)) = server_login_start(setup(), file, request, &ids, &mut rng) {
                let fin = msg(u, CREDENTIAL_FINALIZATION_LEN)?;
                assert!(server_login_finish(&state, fin).is_err());
            }
        }
        _ => {
            // The login state is the server's own (trusted) data: a state holding the expected
            // MAC `m` accepts exactly the finalization `m`. Check no other finalization passes.
            let state = ServerLoginState::from_bytes(msg(u, SERVER_LOGIN_STATE_LEN)?);
            let fin = msg(u, CREDENTIAL_FINALIZATION_LEN)?;
            if server_login_finish(&state, fin).is_ok() {
                let mut other = fin.to_vec();
                let i = u.choose_index(other.len())?;
                other[i] ^= 1 << u.int_in_range(0..=7)?;
                assert!(server_login_finish(&state, &other).is_err());
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
