//! Spec §5, "Metadata": encrypted node metadata.
