//! Links (spec §10, §11.11): create (password, expiry, download limit, upload-only), list,
//! revoke, rotate, and open without an account (password unlock, drop upload).
//!
//! (Being written by the "share" helper; this placeholder only reserves the module.)
