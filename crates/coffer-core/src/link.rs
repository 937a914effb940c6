//! Spec §10, "Links": link secrets, URLs and link records.
