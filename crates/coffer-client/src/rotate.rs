//! Compromise recovery (spec §9.4, §11.6.8): new master key and identity generation,
//! everything re-wrapped, other sessions revoked.
//!
//! (Being written by the "share" helper; this placeholder only reserves the module.)
