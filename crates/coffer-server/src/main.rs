//! `cofferd`: serves the Coffer HTTP API.

fn main() {}
