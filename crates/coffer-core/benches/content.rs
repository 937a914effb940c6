//! Throughput of content encryption (spec §4) against raw ChaCha20-Poly1305.
//!
//! Encrypts and decrypts a 256 MiB buffer with coffer-core, single-threaded and parallel, and
//! runs the `chacha20poly1305` crate directly (64 KiB chunks, in place, detached tags) over the
//! same bytes in the same run. Each figure is the best of three runs; the runs of the variants are
//! interleaved so that load from other processes affects all of them alike. Single-threaded
//! variants are also timed by the thread's on-CPU time (Linux `/proc/thread-self/schedstat`),
//! which waiting for a shared core does not inflate. Run with
//! `cargo bench -p coffer-core --bench content`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInPlace as _, KeyInit as _};
use coffer_core::content::{self, Parallelism, CHUNK_LEN};
use coffer_core::primitives::SecretKey;
use rand_chacha::rand_core::SeedableRng as _;

const SIZE: usize = 256 << 20;
const RUNS: usize = 3;

/// Nanoseconds this thread has spent on a CPU, if the platform says.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Best wall-clock and on-CPU times over the runs.
#[derive(Clone, Copy)]
struct Best {
    wall: Duration,
    cpu: Option<Duration>,
}

impl Best {
    const NONE: Best = Best {
        wall: Duration::MAX,
        cpu: None,
    };

    fn run(&mut self, mut f: impl FnMut()) {
        let c0 = thread_cpu_ns();
        let t = Instant::now();
        f();
        let wall = t.elapsed();
        let cpu = match (c0, thread_cpu_ns()) {
            (Some(a), Some(b)) => Some(Duration::from_nanos(b.saturating_sub(a))),
            _ => None,
        };
        self.wall = self.wall.min(wall);
        self.cpu = match (self.cpu, cpu) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

fn gbps(d: Duration) -> f64 {
    SIZE as f64 / d.as_secs_f64() / 1e9
}

fn ratio(num: Duration, den: Duration) -> f64 {
    // Throughput ratio num/den = time den / time num.
    den.as_secs_f64() / num.as_secs_f64()
}

#[allow(clippy::too_many_lines)]
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
    // Raw out of place: the same, but first copying each chunk from the plaintext into the output
    // buffer, as any encryption that leaves its input intact must. Shows what the copy costs.
    let mut raw_out = vec![0u8; SIZE];
    let mut raw_copy = || {
        for (i, (src, dst)) in plaintext
            .chunks(CHUNK_LEN)
            .zip(raw_out.chunks_mut(CHUNK_LEN))
            .enumerate()
        {
            dst.copy_from_slice(src);
            let mut nonce = [0u8; 12];
            nonce[3..11].copy_from_slice(&(i as u64).to_be_bytes());
            let tag = cipher
                .encrypt_in_place_detached(&nonce.into(), &[0u8; 71], dst)
                .expect("raw encrypt");
            black_box(tag);
        }
    };
    let seq = Parallelism::Sequential;
    let auto = Parallelism::Auto;
    // Warm up every buffer: first-touch page faults are not what is measured here.
    raw();
    raw_copy();
    content::encrypt_into(&file_key, &plaintext, &mut ciphertext, seq, &mut rng).expect("enc");
    content::decrypt_into(&file_key, &ciphertext, &mut decrypted, seq).expect("dec");

    // In place: the buffer is refilled (untimed) before every timed run.
    let mut work: Vec<u8> = Vec::with_capacity(ct_len);
    let mut b = [Best::NONE; 12];
    let mut rng2 = rand_chacha::ChaCha20Rng::from_seed([8; 32]);
    for _ in 0..RUNS {
        b[0].run(&mut raw);
        b[7].run(&mut raw_copy);
        for (slot, p) in [(8, seq), (9, auto)] {
            work.clear();
            work.extend_from_slice(&plaintext);
            b[slot].run(|| {
                content::encrypt_in_place(&file_key, &mut work, p, &mut rng).expect("encrypt");
            });
        }
        for (slot, p) in [(10, seq), (11, auto)] {
            work.clear();
            work.extend_from_slice(&ciphertext);
            b[slot].run(|| {
                content::decrypt_in_place(&file_key, &mut work, p).expect("decrypt");
            });
            assert!(work == plaintext, "in-place round trip");
        }
        b[1].run(|| {
            content::encrypt_into(&file_key, &plaintext, &mut ciphertext, seq, &mut rng)
                .expect("encrypt");
        });
        b[2].run(|| {
            content::encrypt_into(&file_key, &plaintext, &mut ciphertext, auto, &mut rng)
                .expect("encrypt");
        });
        b[3].run(|| {
            content::decrypt_into(&file_key, &ciphertext, &mut decrypted, seq).expect("decrypt");
        });
        b[4].run(|| {
            content::decrypt_into(&file_key, &ciphertext, &mut decrypted, auto).expect("decrypt");
        });
        // The allocating one-shot API, including allocation and first touch of the output.
        b[5].run(|| {
            black_box(content::encrypt(&file_key, &plaintext, &mut rng2));
        });
        b[6].run(|| {
            black_box(content::decrypt(&file_key, &ciphertext).expect("decrypt"));
        });
    }
    assert!(decrypted == plaintext, "round trip");
    let [raw, enc1, encp, dec1, decp, enca, deca, rawc, eip1, eipp, dip1, dipp] = b;

    println!(
        "content bench: {} MiB, best of {RUNS}, {} cores",
        SIZE >> 20,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    let cpu = |x: Best| {
        x.cpu
            .map_or_else(|| "n/a".to_owned(), |c| format!("{:.3}", gbps(c)))
    };
    println!("{:<44} {:>10} {:>10}", "", "wall GB/s", "cpu GB/s");
    for (name, x) in [
        ("raw ChaCha20-Poly1305 (64 KiB, in place)", raw),
        ("raw, copy then in place (out of place)", rawc),
        ("encrypt_in_place, single thread", eip1),
        ("decrypt_in_place, single thread", dip1),
        ("encrypt_into, single thread", enc1),
        ("decrypt_into, single thread", dec1),
    ] {
        println!("{name:<44} {:>10.3} {:>10}", gbps(x.wall), cpu(x));
    }
    for (name, x) in [
        ("encrypt_in_place, parallel", eipp),
        ("decrypt_in_place, parallel", dipp),
        ("encrypt_into, parallel", encp),
        ("decrypt_into, parallel", decp),
        ("encrypt (allocating, auto)", enca),
        ("decrypt (allocating, auto)", deca),
    ] {
        println!("{name:<44} {:>10.3}", gbps(x.wall));
    }
    let both = |a: Best, r: Best| match (a.cpu, r.cpu) {
        (Some(x), Some(y)) => format!("{:.3} wall, {:.3} cpu", ratio(a.wall, r.wall), ratio(x, y)),
        _ => format!("{:.3} wall", ratio(a.wall, r.wall)),
    };
    for (name, a, r) in [
        ("encrypt_in_place single/raw (target >= 0.90)", eip1, raw),
        ("decrypt_in_place single/raw (target >= 0.90)", dip1, raw),
        ("encrypt_into single/raw", enc1, raw),
        ("decrypt_into single/raw", dec1, raw),
        ("raw out of place/raw in place", rawc, raw),
    ] {
        println!("{name:<46} {}", both(a, r));
    }
    for (name, a, r) in [
        ("encrypt_into parallel/single (target >= 1.7)", encp, enc1),
        ("decrypt_into parallel/single (target >= 1.7)", decp, dec1),
        ("encrypt_in_place parallel/single", eipp, eip1),
        ("decrypt_in_place parallel/single", dipp, dip1),
    ] {
        println!("{name:<46} {:.3} wall", ratio(a.wall, r.wall));
    }
}
