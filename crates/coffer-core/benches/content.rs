//! Throughput of content encryption (spec §4) against raw ChaCha20-Poly1305.
//!
//! Encrypts and decrypts a 256 MiB buffer with coffer-core, single-threaded and parallel, and
//! runs the `chacha20poly1305` crate directly (64 KiB chunks, in place, detached tags) over the
//! same bytes. Each figure is the best of three runs. Run with
//! `cargo bench -p coffer-core --bench content`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInPlace as _, KeyInit as _};
use coffer_core::content::{self, Parallelism, CHUNK_LEN};
use coffer_core::primitives::SecretKey;
use rand_chacha::rand_core::SeedableRng as _;

const SIZE: usize = 256 << 20;
const RUNS: usize = 3;

fn time(mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    f();
    black_box(());
    t.elapsed()
}

fn gbps(d: Duration) -> f64 {
    SIZE as f64 / d.as_secs_f64() / 1e9
}

fn main() {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([7; 32]);
    let file_key = SecretKey::generate(&mut rng);
    let plaintext: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let ct_len = usize::try_from(content::ciphertext_len(SIZE as u64).expect("len")).expect("fits");
    let mut ciphertext = vec![0u8; ct_len];
    let mut decrypted = vec![0u8; SIZE];

    // Raw: the AEAD crate directly, 64 KiB chunks in place, over a copy of the plaintext.
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&[0x42u8; 32].into());
    let mut raw_buf = plaintext.clone();
    let mut raw = || {
        for (i, chunk) in raw_buf.chunks_mut(CHUNK_LEN).enumerate() {
            let mut nonce = [0u8; 12];
            nonce[3..11].copy_from_slice(&(i as u64).to_be_bytes());
            let tag = cipher
                .encrypt_in_place_detached(&nonce.into(), &[0u8; 71], chunk)
                .expect("raw encrypt");
            black_box(tag);
        }
    };
    // Warm up every buffer (first-touch page faults are not what is measured here).
    raw();
    content::encrypt_into(
        &file_key,
        &plaintext,
        &mut ciphertext,
        Parallelism::Sequential,
        &mut rng,
    )
    .expect("encrypt");
    content::decrypt_into(
        &file_key,
        &ciphertext,
        &mut decrypted,
        Parallelism::Sequential,
    )
    .expect("decrypt");

    // The runs are interleaved (raw, single, parallel, raw, ...) so that load from other processes
    // affects every variant alike; each figure is the best of RUNS.
    let mut t = [Duration::MAX; 7];
    let mut rng2 = rand_chacha::ChaCha20Rng::from_seed([8; 32]);
    for _ in 0..RUNS {
        t[0] = t[0].min(time(&mut raw));
        t[1] = t[1].min(time(|| {
            content::encrypt_into(
                &file_key,
                &plaintext,
                &mut ciphertext,
                Parallelism::Sequential,
                &mut rng,
            )
            .expect("encrypt");
        }));
        t[2] = t[2].min(time(|| {
            content::encrypt_into(
                &file_key,
                &plaintext,
                &mut ciphertext,
                Parallelism::Auto,
                &mut rng,
            )
            .expect("encrypt");
        }));
        t[3] = t[3].min(time(|| {
            content::decrypt_into(
                &file_key,
                &ciphertext,
                &mut decrypted,
                Parallelism::Sequential,
            )
            .expect("decrypt");
        }));
        t[4] = t[4].min(time(|| {
            content::decrypt_into(&file_key, &ciphertext, &mut decrypted, Parallelism::Auto)
                .expect("decrypt");
        }));
        // The allocating one-shot API, including allocation and first touch of the output.
        t[5] = t[5].min(time(|| {
            black_box(content::encrypt(&file_key, &plaintext, &mut rng2));
        }));
        t[6] = t[6].min(time(|| {
            black_box(content::decrypt(&file_key, &ciphertext).expect("decrypt"));
        }));
    }
    assert!(decrypted == plaintext, "round trip");
    let [raw, enc_single, enc_par, dec_single, dec_par, enc_alloc, dec_alloc] = t;

    println!(
        "content bench: {} MiB, best of {RUNS}, {} threads",
        SIZE >> 20,
        rayon_threads()
    );
    println!(
        "raw ChaCha20-Poly1305 (64 KiB, in place)  {:6.3} GB/s",
        gbps(raw)
    );
    println!(
        "encrypt_into single                       {:6.3} GB/s",
        gbps(enc_single)
    );
    println!(
        "encrypt_into parallel                     {:6.3} GB/s",
        gbps(enc_par)
    );
    println!(
        "decrypt_into single                       {:6.3} GB/s",
        gbps(dec_single)
    );
    println!(
        "decrypt_into parallel                     {:6.3} GB/s",
        gbps(dec_par)
    );
    println!(
        "encrypt (allocating, auto)                {:6.3} GB/s",
        gbps(enc_alloc)
    );
    println!(
        "decrypt (allocating, auto)                {:6.3} GB/s",
        gbps(dec_alloc)
    );
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    println!(
        "encrypt single/raw   {:.3} (target >= 0.90)",
        ratio(enc_single, raw)
    );
    println!(
        "decrypt single/raw   {:.3} (target >= 0.90)",
        ratio(dec_single, raw)
    );
    println!(
        "encrypt parallel/single {:.3} (target >= 1.7 on 2 cores)",
        ratio(enc_par, enc_single)
    );
    println!(
        "decrypt parallel/single {:.3} (target >= 1.7 on 2 cores)",
        ratio(dec_par, dec_single)
    );
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
