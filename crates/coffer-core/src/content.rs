//! Spec §4, "Content": file bodies in 64 KiB committed STREAM chunks.
