//! Embedded metadata store: SQLite through sqlx.
