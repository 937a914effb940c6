//! Spec §8, "Sharing to a user": shares, generations and grants.
