//! Content decryption (spec §4) on arbitrary input under a fixed file key.
//!
//! Half of the inputs get a valid header and key commitment for the fixed key prepended (salt
//! chosen by the fuzzer), so that fuzzing reaches the chunk layer rather than stopping at the
//! commitment. Properties: no panic; `decrypt`, the streaming `Decryptor` (fed at
//! fuzzer-chosen split points) and `decrypt_range` (fuzzer-chosen ranges) agree; the length
//! helpers are consistent.
#![no_main]

use coffer_core::content::{
    ciphertext_len, ciphertext_range, decrypt, decrypt_range, payload_key, plaintext_len,
    ContentHeader, Decryptor, HEADER_LEN,
};
use coffer_core::encoding::{encode, Bytes};
use coffer_core::primitives::SecretKey;
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SecretKey::from_bytes([0x11; 32]);
    let mut u = Unstructured::new(data);
    let with_header: bool = u.arbitrary().unwrap_or(false);
    let salt: [u8; 32] = u.arbitrary().unwrap_or([0; 32]);
    let splits: Vec<u16> = u.arbitrary().unwrap_or_default();
    let range: (u64, u64) = u.arbitrary().unwrap_or((0, 1));
    let any_len: u64 = u.arbitrary().unwrap_or(0);
    let body = u.take_rest();

    let mut ct = Vec::new();
    if with_header {
        let (_, commitment) = payload_key(&key, &salt);
        let header = encode(&ContentHeader {
            salt: Bytes(salt),
            commitment: Bytes(commitment),
        });
        assert_eq!(header.len(), HEADER_LEN);
        ct.extend_from_slice(&header);
    }
    ct.extend_from_slice(body);

    // Whole-buffer decryption.
    let whole = decrypt(&key, &ct);

    // Streaming decryption at arbitrary split points must agree with it.
    let mut dec = Decryptor::new(&key);
    let mut out = Vec::new();
    let mut rest = &ct[..];
    let mut streamed = Ok(());
    for s in splits {
        let n = usize::from(s).min(rest.len());
        let (a, b) = rest.split_at(n);
        if let Err(e) = dec.update(a, &mut out) {
            streamed = Err(e);
            break;
        }
        rest = b;
    }
    if streamed.is_ok() {
        streamed = dec
            .update(rest, &mut out)
            .and_then(|()| dec.finish(&mut out));
    }
    match (&whole, &streamed) {
        (Ok(pt), Ok(())) => assert_eq!(pt, &out),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "decrypt and Decryptor disagree: {:?} vs {:?}",
            whole.is_ok(),
            streamed
        ),
    }

    // Ranged decryption of the same ciphertext, with a fuzzer-chosen plaintext range.
    if let Ok(pt_len) = plaintext_len(ct.len() as u64) {
        assert_eq!(ciphertext_len(pt_len).ok(), Some(ct.len() as u64));
        if pt_len > 0 {
            let start = range.0 % pt_len;
            let end = start + 1 + range.1 % (pt_len - start);
            let r = ciphertext_range(ct.len() as u64, start..end).expect("valid range");
            assert!(r.start >= HEADER_LEN as u64 && r.end <= ct.len() as u64);
            let chunks = &ct[r.start as usize..r.end as usize];
            let ranged =
                decrypt_range(&key, &ct[..HEADER_LEN], ct.len() as u64, start..end, chunks);
            if let (Ok(pt), Ok(part)) = (&whole, &ranged) {
                assert_eq!(&pt[start as usize..end as usize], &part[..]);
            }
        }
    }
    // Arbitrary (mostly impossible) lengths and ranges: never panic.
    let header = ct.get(..HEADER_LEN).unwrap_or(&ct[..]);
    let _ = decrypt_range(&key, header, any_len, range.0..range.1, body);
    let _ = ciphertext_range(any_len, range.0..range.1);
    if let Ok(c) = ciphertext_len(any_len) {
        assert_eq!(plaintext_len(c).ok(), Some(any_len));
    }
    if let Ok(p) = plaintext_len(any_len) {
        assert_eq!(ciphertext_len(p).ok(), Some(any_len));
    }
});
