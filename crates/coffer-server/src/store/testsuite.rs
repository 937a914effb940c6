//! The storage test suite, written against the traits.
