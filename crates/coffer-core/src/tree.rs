//! Spec §7, "Tree": nodes, node keys and signed node records.
