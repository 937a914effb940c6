//! Storage traits and backends.
