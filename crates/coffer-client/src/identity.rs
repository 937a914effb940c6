//! Identities of other users (spec §6.6, §6.7, §11.7): fetching identity chains from the
//! directory, verifying them through coffer-core, and pinning them on first use (TOFU).
//!
//! A pin records, per user name, the account id and the highest identity generation seen with
//! its fingerprint. It lives in `pins.json` under the config directory (mode 0600, written
//! atomically). Later chains must *extend* the pin ([`coffer_core::account::verify_pinned`]): a
//! chain that forks from the pinned generation, rolls back behind it or names another account is
//! refused loudly with [`Error::IdentityChanged`]; a valid rotation chain advances the pin.

use std::collections::BTreeMap;
use std::path::PathBuf;

use coffer_core::account::{self, Fingerprint, IdentityPin, VerifiedIdentity};
use coffer_core::api;
use coffer_core::ids::AccountId;
use coffer_core::share::PinnedIdentity;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::state::{write_private, ConfigDir};
use crate::Client;

/// The file name of the pin store under the config directory.
pub const PINS_FILE: &str = "pins.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct PinRecord {
    account_id: String,
    generation: u64,
    fingerprint: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PinFile {
    version: u32,
    pins: BTreeMap<String, PinRecord>,
}

/// The pinned identities of other users, as stored under the config directory.
#[derive(Debug)]
pub struct PinStore {
    path: PathBuf,
    pins: BTreeMap<String, PinRecord>,
}

/// What checking an identity against the pin store did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOutcome {
    /// Nothing was pinned for the user: the identity is now pinned (trust on first use).
    FirstUse,
    /// The pinned generation is still the current one.
    Unchanged,
    /// The identity advanced through a valid rotation chain from the pinned generation.
    Rotated {
        /// The generation pinned before.
        from: u64,
    },
}

/// A verified and pinned identity of another user.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The account.
    pub account_id: AccountId,
    /// The current generation, verified through the whole chain.
    pub current: VerifiedIdentity,
    /// Every generation, generation 0 first.
    pub generations: Vec<VerifiedIdentity>,
    /// What the pin check did.
    pub outcome: PinOutcome,
}

impl Identity {
    /// The current generation as core's [`PinnedIdentity`] (what share records and grants name).
    #[must_use]
    pub fn pinned(&self) -> PinnedIdentity {
        pinned_identity(&self.current)
    }

    /// The generation whose Ed25519 key is `key`, if any.
    #[must_use]
    pub fn generation_with_key(&self, key: &[u8; 32]) -> Option<&VerifiedIdentity> {
        self.generations
            .iter()
            .find(|g| &g.signing_key.to_bytes() == key)
    }
}

/// A verified identity generation as core's [`PinnedIdentity`].
#[must_use]
pub fn pinned_identity(v: &VerifiedIdentity) -> PinnedIdentity {
    PinnedIdentity {
        user_name: v.user_name.clone(),
        identity_generation: v.generation,
        ed25519: v.signing_key,
        x25519: v.agreement_key,
    }
}

impl PinStore {
    /// Loads the pin store of `config` (empty when there is no file yet).
    ///
    /// # Errors
    /// [`Error::State`] for a damaged file; [`Error::Io`].
    pub fn load(config: &ConfigDir) -> Result<Self> {
        let path = config.path().join(PINS_FILE);
        let pins = match std::fs::read(&path) {
            Ok(bytes) => {
                let f: PinFile = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::State(format!("{} is damaged: {e}", path.display())))?;
                if f.version != 1 {
                    return Err(Error::State(format!(
                        "{}: unknown version {}",
                        path.display(),
                        f.version
                    )));
                }
                f.pins
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        Ok(PinStore { path, pins })
    }

    /// The pin of `user_name`: its account id and pinned generation and fingerprint.
    ///
    /// # Errors
    /// [`Error::State`] for a damaged entry.
    pub fn get(&self, user_name: &str) -> Result<Option<(AccountId, IdentityPin)>> {
        let Some(r) = self.pins.get(user_name) else {
            return Ok(None);
        };
        let damaged = || {
            Error::State(format!(
                "{}: damaged pin of {user_name}",
                self.path.display()
            ))
        };
        let account_id = AccountId::from_b64(&r.account_id).map_err(|_| damaged())?;
        let fingerprint = Fingerprint::parse(&r.fingerprint).map_err(|_| damaged())?;
        Ok(Some((
            account_id,
            IdentityPin {
                user_name: user_name.to_owned(),
                generation: r.generation,
                fingerprint,
            },
        )))
    }

    /// Pins `identity` for its user name and saves the store (atomically, mode 0600).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn pin(&mut self, account_id: AccountId, identity: &VerifiedIdentity) -> Result<()> {
        self.pins.insert(
            identity.user_name.clone(),
            PinRecord {
                account_id: account_id.to_b64(),
                generation: identity.generation,
                fingerprint: identity.fingerprint.to_string(),
            },
        );
        let file = PinFile {
            version: 1,
            pins: self.pins.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::State(format!("encoding the pin store: {e}")))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        write_private(&self.path, &bytes)
    }

    /// Checks a fetched identity chain of `user_name` (account `account_id`) against the store,
    /// and pins it on first use or advances the pin along a valid rotation chain.
    ///
    /// # Errors
    /// [`Error::Integrity`] when the chain does not verify or names another user;
    /// [`Error::IdentityChanged`] when it does not extend the pinned identity (another account,
    /// a fork, a rollback).
    pub fn check_and_pin<B: AsRef<[u8]>>(
        &mut self,
        user_name: &str,
        account_id: AccountId,
        chain: &[B],
    ) -> Result<Identity> {
        let generations = account::verify_chain_generations(chain)?;
        let current = generations
            .last()
            .cloned()
            .ok_or_else(|| Error::integrity("empty identity chain"))?;
        if current.user_name != user_name {
            return Err(Error::integrity(format!(
                "the identity chain served for {user_name} names {}",
                current.user_name
            )));
        }
        let outcome = match self.get(user_name)? {
            None => PinOutcome::FirstUse,
            Some((pinned_account, pin)) => {
                let changed = || Error::IdentityChanged {
                    user: user_name.to_owned(),
                    pinned: pin.fingerprint.to_string(),
                    pinned_generation: pin.generation,
                    served: current.fingerprint.to_string(),
                    served_generation: current.generation,
                };
                if pinned_account != account_id {
                    return Err(changed());
                }
                account::verify_pinned(&pin, chain).map_err(|_| changed())?;
                if current.generation > pin.generation {
                    PinOutcome::Rotated {
                        from: pin.generation,
                    }
                } else {
                    PinOutcome::Unchanged
                }
            }
        };
        if outcome != PinOutcome::Unchanged {
            self.pin(account_id, &current)?;
        }
        Ok(Identity {
            account_id,
            current,
            generations,
            outcome,
        })
    }
}

impl Client {
    /// Fetches and verifies the identity chain of `account_id` (`GET /v1/identities/{id}`, no
    /// authentication), returning the encoded generations.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown account; [`Error::Integrity`] for a chain of another
    /// account.
    pub async fn identity_chain(&self, account_id: AccountId) -> Result<Vec<Vec<u8>>> {
        let chain: api::IdentityChain = self
            .http()
            .get(&format!("/v1/identities/{account_id}"), None)
            .await
            .map_err(|e| match e.problem_kind() {
                Some(api::ProblemKind::NotFound) => {
                    Error::NotFound(format!("no identity for account {account_id}"))
                }
                _ => e,
            })?;
        if chain.account_id != account_id {
            return Err(Error::integrity("identity chain of another account"));
        }
        Ok(chain
            .generations
            .into_iter()
            .map(|g| g.into_vec())
            .collect())
    }

    /// Looks `user_name` up in the directory (`GET /v1/users/{name}`), fetches and verifies its
    /// identity chain, and checks it against the pin store: pinned on first use, advanced along
    /// a valid rotation chain, refused loudly ([`Error::IdentityChanged`]) otherwise.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown user; [`Error::Integrity`]; [`Error::IdentityChanged`].
    pub async fn lookup_identity(&self, user_name: &str) -> Result<Identity> {
        let s = self.session()?;
        let name = api::Username::new(user_name)
            .map_err(|e| Error::Usage(format!("bad user name {user_name:?}: {e}")))?;
        let found: api::UserLookupResponse = self
            .http()
            .get(&format!("/v1/users/{}", name.as_str()), Some(&s.token))
            .await
            .map_err(|e| match e.problem_kind() {
                Some(api::ProblemKind::NotFound) => {
                    Error::NotFound(format!("no user named {user_name}"))
                }
                _ => crate::account::session_problem(e),
            })?;
        if found.username.as_str() != user_name {
            return Err(Error::integrity("directory answered for another user"));
        }
        let chain = self.identity_chain(found.account_id).await?;
        let mut store = PinStore::load(self.config())?;
        let id = store.check_and_pin(user_name, found.account_id, &chain)?;
        if id.current.generation < found.identity_generation {
            return Err(Error::integrity(format!(
                "the directory names identity generation {} of {user_name} but served a chain ending at {}",
                found.identity_generation, id.current.generation
            )));
        }
        Ok(id)
    }

    /// This account's own current identity, verified from its chain against the session's keys.
    ///
    /// # Errors
    /// [`Error::Integrity`] when the chain does not verify or is not this account's.
    pub async fn own_identity(&self) -> Result<VerifiedIdentity> {
        let s = self.session()?;
        let chain = self.identity_chain(s.account_id()).await?;
        let verified = account::verify_chain(&chain)?;
        if verified.user_name != s.username {
            return Err(Error::integrity("identity chain names another user"));
        }
        s.account.check_identity(&verified)?;
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::account::{create_identity, rotate_identity, IdentityKeys};
    use rand_core::OsRng;

    fn chain_of(name: &str, n: usize) -> (Vec<Vec<u8>>, Vec<IdentityKeys>) {
        let mut keys = vec![IdentityKeys::generate(&mut OsRng)];
        let mut chain = vec![create_identity(&keys[0], name, 1).expect("identity")];
        for i in 1..n {
            let next = IdentityKeys::generate(&mut OsRng);
            let prev = chain.last().expect("chain").clone();
            chain.push(
                rotate_identity(&prev, &keys[i - 1].signing, &next, 1 + i as u64).expect("rotate"),
            );
            keys.push(next);
        }
        (chain, keys)
    }

    #[test]
    fn pins_on_first_use_advance_on_rotation_and_refuse_forks() {
        let dir = tempfile::tempdir().expect("dir");
        let config = ConfigDir::new(dir.path());
        let id = AccountId::from_bytes([7; 16]);
        let (chain, _) = chain_of("bob", 3);
        let mut store = PinStore::load(&config).expect("empty store");
        let first = store
            .check_and_pin("bob", id, &chain[..1])
            .expect("first use");
        assert_eq!(first.outcome, PinOutcome::FirstUse);
        // Persisted, 0600, and reloaded.
        let mut store = PinStore::load(&config).expect("reload");
        let (pinned_id, pin) = store.get("bob").expect("read").expect("pinned");
        assert_eq!(pinned_id, id);
        assert_eq!(pin.generation, 0);
        assert_eq!(pin.fingerprint, first.current.fingerprint);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(PINS_FILE))
                .expect("pins file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            store
                .check_and_pin("bob", id, &chain[..1])
                .expect("same")
                .outcome,
            PinOutcome::Unchanged
        );
        // A valid rotation chain advances the pin.
        let rotated = store.check_and_pin("bob", id, &chain).expect("rotation");
        assert_eq!(rotated.outcome, PinOutcome::Rotated { from: 0 });
        assert_eq!(rotated.current.generation, 2);
        assert_eq!(
            store.get("bob").expect("read").expect("pin").1.generation,
            2
        );
        // Rolling back behind the pin, a forked chain, another account: refused loudly.
        for bad in [
            store.check_and_pin("bob", id, &chain[..2]),
            store.check_and_pin("bob", id, &chain_of("bob", 3).0),
            store.check_and_pin("bob", AccountId::from_bytes([8; 16]), &chain),
        ] {
            assert!(
                matches!(bad, Err(Error::IdentityChanged { ref user, .. }) if user == "bob"),
                "{bad:?}"
            );
        }
        // The pin did not move.
        assert_eq!(
            store.get("bob").expect("read").expect("pin").1.generation,
            2
        );
        // A chain naming another user is an integrity failure, not a pin.
        let (carol, _) = chain_of("carol", 1);
        assert!(matches!(
            store.check_and_pin("bob", id, &carol),
            Err(Error::Integrity(_))
        ));
    }
}
