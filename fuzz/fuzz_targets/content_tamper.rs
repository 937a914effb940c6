//! Content ciphertext integrity (spec §4): encrypts a fuzzer-chosen plaintext (up to a little
//! over three chunks) under a fuzzer-chosen key, applies one fuzzer-chosen mutation (bit flip,
//! truncation, extension, insertion, deletion, chunk swap, chunk duplication) and asserts that
//! `decrypt` and the streaming `Decryptor` reject the result, that the `Decryptor` only ever
//! releases a prefix of the genuine plaintext, and that `decrypt_range` returns either an error or
//! exactly the genuine plaintext of the range.
#![no_main]

use coffer_core::content::{
    ciphertext_range, decrypt, decrypt_range, encrypt, plaintext_len, Decryptor, CHUNK_LEN,
    ENCRYPTED_CHUNK_LEN, HEADER_LEN,
};
use coffer_core::primitives::SecretKey;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;

fn mutate(u: &mut Unstructured<'_>, ct: &[u8]) -> Result<Vec<u8>> {
    let mut m = ct.to_vec();
    let pos = u.int_in_range(0..=ct.len() - 1)?;
    match u.int_in_range(0u8..=6)? {
        0 => {
            let bit: u8 = u.int_in_range(0..=7)?;
            m[pos] ^= 1 << bit;
        }
        1 => m.truncate(pos),
        2 => {
            let extra: Vec<u8> = u.arbitrary()?;
            m.extend_from_slice(&extra);
            if extra.is_empty() {
                m.push(0);
            }
        }
        3 => m.insert(pos, u.arbitrary()?),
        4 => {
            let n = u.int_in_range(1..=ct.len() - pos)?;
            m.drain(pos..pos + n);
        }
        5 | 6 => {
            // Swap two chunks (5) or duplicate one over another (6).
            let n = (ct.len() - HEADER_LEN).div_ceil(ENCRYPTED_CHUNK_LEN);
            let i = u.int_in_range(0..=n - 1)?;
            let j = u.int_in_range(0..=n - 1)?;
            let span = |k: usize| {
                let s = HEADER_LEN + k * ENCRYPTED_CHUNK_LEN;
                s..(s + ENCRYPTED_CHUNK_LEN).min(ct.len())
            };
            let (a, b) = (span(i), span(j));
            if a.len() != b.len() {
                m.truncate(pos);
            } else if u.arbitrary::<bool>()? {
                m[a.clone()].copy_from_slice(&ct[b.clone()]);
                m[b].copy_from_slice(&ct[a]);
            } else {
                m[a].copy_from_slice(&ct[b]);
            }
        }
        _ => unreachable!(),
    }
    Ok(m)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(key) = u.arbitrary::<[u8; 32]>() else {
        return;
    };
    let key = SecretKey::from_bytes(key);
    let Ok(len) = u.int_in_range(0..=3 * CHUNK_LEN + 17) else {
        return;
    };
    let Ok(fill) = u.arbitrary::<u8>() else {
        return;
    };
    let Ok(seed) = u.arbitrary::<[u8; 32]>() else {
        return;
    };
    let pt: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ fill)
        .collect();
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
    let ct = encrypt(&key, &pt, &mut rng);
    let Ok(m) = mutate(&mut u, &ct) else { return };
    if m == ct {
        return;
    }

    assert!(
        decrypt(&key, &m).is_err(),
        "decrypt accepted a mutated ciphertext"
    );

    let mut dec = Decryptor::new(&key);
    let mut out = Vec::new();
    let mut rest = &m[..];
    let mut failed = false;
    while !rest.is_empty() {
        let n = usize::from(u.arbitrary::<u16>().unwrap_or(u16::MAX)).clamp(1, rest.len());
        let (a, b) = rest.split_at(n);
        if dec.update(a, &mut out).is_err() {
            failed = true;
            break;
        }
        rest = b;
    }
    if !failed {
        failed = dec.finish(&mut out).is_err();
    }
    assert!(failed, "Decryptor accepted a mutated ciphertext");
    assert!(
        pt.starts_with(&out),
        "Decryptor released non-genuine plaintext"
    );

    // A ranged read of the mutated ciphertext never yields anything but the genuine bytes.
    if let Ok(m_pt_len) = plaintext_len(m.len() as u64) {
        if m_pt_len > 0 {
            let a = u.arbitrary::<u64>().unwrap_or(0) % m_pt_len;
            let b = a + 1 + u.arbitrary::<u64>().unwrap_or(0) % (m_pt_len - a);
            let r = ciphertext_range(m.len() as u64, a..b).expect("valid range");
            let got = decrypt_range(
                &key,
                &m[..HEADER_LEN],
                m.len() as u64,
                a..b,
                &m[r.start as usize..r.end as usize],
            );
            if let Ok(got) = got {
                assert_eq!(
                    pt.get(a as usize..b as usize),
                    Some(&got[..]),
                    "decrypt_range returned non-genuine plaintext"
                );
            }
        }
    }
});
