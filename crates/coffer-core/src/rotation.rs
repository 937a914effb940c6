//! Spec §9, "Key rotation".
