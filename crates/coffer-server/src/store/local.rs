//! Local-directory blob store.
