//! Spec §6, "Account keys": master key, identities, fingerprints, OPAQUE configuration.
