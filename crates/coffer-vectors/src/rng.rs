//! Injected randomness: the generator records every random byte an operation draws, the vector
//! carries them as hex, and the verifier replays them so that encryption reproduces byte for byte.

use rand_chacha::rand_core::SeedableRng as _;
use rand_core::{CryptoRng, RngCore};

/// A seeded ChaCha20 RNG that records what it yields.
pub struct RecordingRng {
    inner: rand_chacha::ChaCha20Rng,
    recorded: Vec<u8>,
}

impl RecordingRng {
    /// A recorder seeded from `label` (so every vector file has its own fixed stream).
    pub fn new(label: &str) -> Self {
        let seed = coffer_core::primitives::sha256(label.as_bytes());
        RecordingRng {
            inner: rand_chacha::ChaCha20Rng::from_seed(seed),
            recorded: Vec::new(),
        }
    }

    /// Returns and clears what was drawn since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.recorded)
    }

    /// Draws `N` bytes (recorded too).
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        self.fill_bytes(&mut a);
        a
    }
}

impl RngCore for RecordingRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.inner.fill_bytes(dest);
        self.recorded.extend_from_slice(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for RecordingRng {}

/// Replays recorded bytes. Running out yields zeros and marks the replay as exhausted, which the
/// verifier reports as a failure (never a panic).
pub struct ReplayRng {
    bytes: Vec<u8>,
    pos: usize,
    exhausted: bool,
}

impl ReplayRng {
    /// Replays `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        ReplayRng {
            bytes,
            pos: 0,
            exhausted: false,
        }
    }

    /// True when every byte was used and no more were asked for.
    pub fn fully_used(&self) -> bool {
        !self.exhausted && self.pos == self.bytes.len()
    }
}

impl RngCore for ReplayRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest.iter_mut() {
            match self.bytes.get(self.pos) {
                Some(b) => {
                    *d = *b;
                    self.pos += 1;
                }
                None => {
                    *d = 0;
                    self.exhausted = true;
                }
            }
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for ReplayRng {}
