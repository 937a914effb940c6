//! The identity directory (spec §6.6, §11.7): fetch and verify identity chains, pin
//! fingerprints on first use, refuse loudly when a pinned identity changes without a valid
//! chain.
//!
//! (Being written by the "share" helper; this placeholder only reserves the module.)
