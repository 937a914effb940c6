//! In-memory implementation of both storage traits.
