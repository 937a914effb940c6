//! Spec §4 through the public API only: a streamed upload, then ranged downloads of the stored
//! blob, as a client would do them.

use coffer_core::content::{self, Decryptor, Encryptor, CHUNK_LEN, HEADER_LEN};
use coffer_core::primitives::SecretKey;
use coffer_core::Error;
use rand_chacha::rand_core::SeedableRng as _;

fn assert_send<T: Send>() {}

#[test]
fn streaming_state_is_send() {
    assert_send::<Encryptor>();
    assert_send::<Decryptor>();
}

#[test]
fn streamed_upload_then_ranged_reads() {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([42; 32]);
    let file_key = SecretKey::generate(&mut rng);
    let plaintext: Vec<u8> = (0..3 * CHUNK_LEN + 999)
        .map(|i| (i * 7 % 256) as u8)
        .collect();

    // Upload: stream in 10 000-byte pieces, as read from disk.
    let mut enc = Encryptor::new(&file_key, &mut rng);
    let mut blob = Vec::new();
    for piece in plaintext.chunks(10_000) {
        enc.update(piece, &mut blob);
    }
    enc.finish(&mut blob);
    let total = blob.len() as u64;
    assert_eq!(content::ciphertext_len(plaintext.len() as u64), Ok(total));
    assert_eq!(content::plaintext_len(total), Ok(plaintext.len() as u64));

    // Ranged reads: header + the covering chunks only.
    for (a, b) in [
        (0u64, 10u64),
        (65_530, 65_540),
        (100_000, 197_000),
        (3 * 65_536, 3 * 65_536 + 999),
    ] {
        let r = content::ciphertext_range(total, a..b).expect("range");
        let got = content::decrypt_range(
            &file_key,
            &blob[..HEADER_LEN],
            total,
            a..b,
            &blob[r.start as usize..r.end as usize],
        )
        .expect("decrypt_range");
        assert_eq!(got, &plaintext[a as usize..b as usize]);
    }

    // Download: streamed decryption in odd-sized pieces.
    let mut dec = Decryptor::new(&file_key);
    let mut out = Vec::new();
    for piece in blob.chunks(7_777) {
        dec.update(piece, &mut out).expect("update");
    }
    dec.finish(&mut out).expect("finish");
    assert_eq!(out, plaintext);

    // A server dropping the final chunk is caught by the decryptor's finish.
    let mut dec = Decryptor::new(&file_key);
    let mut out = Vec::new();
    let cut = HEADER_LEN + 3 * content::ENCRYPTED_CHUNK_LEN;
    dec.update(&blob[..cut], &mut out).expect("update");
    assert_eq!(
        out.len(),
        2 * CHUNK_LEN,
        "the held-back chunk is not released"
    );
    assert_eq!(dec.finish(&mut out), Err(Error::Truncated));
}
