//! Keys, hashing and sealing for the server: the keyed blind index of national ID numbers
//! (HMAC-SHA256 from the `hmac` crate), token hashes,
//! random tokens and kiosk enrolment codes, and the XChaCha20-Poly1305 sealing of face templates
//! and of full national ID numbers.
//!
//! One secret key file feeds every keyed use. The blind index keeps using the file's key as is
//! (existing databases hold indexes made with it); the template key and the national-ID key are
//! subkeys derived from it with HMAC under fixed labels, so no two uses share a key. No key is
//! ever written to the database.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// HMAC-SHA256 of `msg` under `key` (RFC 2104, the RustCrypto `hmac` crate).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// A 32-byte subkey of `master` for one use, HKDF-SHA256 (RFC 5869) with `label` as the info.
/// Keys added from now on are derived this way; the template and national-ID keys keep their
/// HMAC(master, label) derivation so the ciphertext already stored still opens.
pub fn subkey(master: &[u8], label: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(None, master)
        .expand(label, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// The label the books-MAC subkey is derived under.
const BOOKS_KEY_LABEL: &[u8] = b"zhucan/v2/books-mac";

/// The key of the MAC over every settlement and adjustment row the statement sums
/// (`db::books`), derived from the server's secret key file.
pub fn books_key(master: &[u8]) -> [u8; 32] {
    subkey(master, BOOKS_KEY_LABEL)
}

/// The key a kiosk finds residents' card codes by ([`zhucan_domain::api::card_index`]): one per
/// kiosk, so the card hashes on one kiosk's disk say nothing about another's.
pub fn kiosk_card_key(master: &[u8], kiosk_id: i64) -> [u8; 32] {
    subkey(
        master,
        format!("zhucan/v2/kiosk-card-index/{kiosk_id}").as_bytes(),
    )
}

/// The blind index of a national ID number: hex HMAC under the server's key. It lets the server
/// find a resident by their number without being able to read the number back.
pub fn blind_index(key: &[u8], national_id: &zhucan_domain::NationalId) -> String {
    hex::encode(hmac_sha256(key, national_id.expose().as_bytes()))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A fresh bearer token: 32 random bytes, hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// The label the template-encryption subkey is derived under.
const TEMPLATE_KEY_LABEL: &[u8] = b"zhucan/v1/face-template-encryption";

/// The face-template encryption key, derived from the server's secret key file.
pub fn template_key(master: &[u8]) -> [u8; 32] {
    hmac_sha256(master, TEMPLATE_KEY_LABEL)
}

/// The label the national-ID encryption subkey is derived under.
const NATIONAL_ID_KEY_LABEL: &[u8] = b"zhucan/v1/national-id-encryption";

/// The national-ID encryption key, derived from the server's secret key file.
pub fn national_id_key(master: &[u8]) -> [u8; 32] {
    hmac_sha256(master, NATIONAL_ID_KEY_LABEL)
}

/// Seals the full national ID number for storage: XChaCha20-Poly1305 under
/// [`national_id_key`], a random nonce, and the number's blind index as associated data (so a
/// sealed number cannot be moved to another resident's row). Returns (nonce, ciphertext).
pub fn seal_national_id(
    master: &[u8],
    national_id: &zhucan_domain::NationalId,
) -> Result<(String, Vec<u8>, Vec<u8>), SealError> {
    let index = blind_index(master, national_id);
    let (nonce, ct) = seal(
        &national_id_key(master),
        index.as_bytes(),
        national_id.expose().as_bytes(),
    )?;
    Ok((index, nonce, ct))
}

/// Opens what [`seal_national_id`] made, for the row with blind index `index`.
pub fn open_national_id(
    master: &[u8],
    index: &str,
    nonce: &[u8],
    ct: &[u8],
) -> Result<String, SealError> {
    let plain = open(&national_id_key(master), index.as_bytes(), nonce, ct)?;
    String::from_utf8(plain).map_err(|_| SealError)
}

/// Sealing failed, or a sealed record does not open under this key and associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("template record does not open under the server's key")]
pub struct SealError;

/// Seals `plain` with XChaCha20-Poly1305 under `key`, a fresh random 24-byte nonce and `aad`
/// (bound to the record, checked on opening). Returns (nonce, ciphertext with tag).
pub fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), SealError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce: [u8; 24] = rand::random();
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| SealError)?;
    Ok((nonce.to_vec(), ct))
}

/// Opens what [`seal`] made; fails if the key, nonce, ciphertext or `aad` differ.
pub fn open(key: &[u8; 32], aad: &[u8], nonce: &[u8], ct: &[u8]) -> Result<Vec<u8>, SealError> {
    if nonce.len() != 24 {
        return Err(SealError);
    }
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| SealError)
}

/// Characters of enrolment codes: Crockford base32 (no I, L, O, U), easy to read aloud and type.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A fresh one-time kiosk enrolment code: 8 groups of 3 characters (120 random bits),
/// e.g. `7KQ-2XR-...`.
pub fn new_enrolment_code() -> String {
    let bytes: [u8; 24] = rand::random();
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| CODE_ALPHABET[(b & 31) as usize] as char)
        .collect();
    chars
        .chunks(3)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The canonical form of a typed code: separators and spaces dropped, upper case, and the
/// look-alikes Crockford allows (O→0, I/L→1). What is hashed and stored.
pub fn normalise_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

/// Compares two secrets in time independent of where they differ (`subtle`; the length is not
/// secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sealed_templates_open_only_with_the_same_key_and_resident() {
        let key = template_key(&[42; 32]);
        let (nonce, ct) = seal(&key, b"7", b"embedding bytes").expect("seal");
        assert_eq!(
            open(&key, b"7", &nonce, &ct).expect("open"),
            b"embedding bytes"
        );
        assert_eq!(open(&key, b"8", &nonce, &ct), Err(SealError));
        assert_eq!(
            open(&template_key(&[1; 32]), b"7", &nonce, &ct),
            Err(SealError)
        );
        assert_ne!(template_key(&[42; 32]).to_vec(), vec![42u8; 32]);
    }

    #[test]
    fn national_ids_open_only_with_the_same_key_and_index() {
        let nid = zhucan_domain::NationalId::parse("11010519491231002X").expect("valid");
        let master = [9u8; 32];
        let (index, nonce, ct) = seal_national_id(&master, &nid).expect("seal");
        assert_eq!(index, blind_index(&master, &nid));
        assert_eq!(
            open_national_id(&master, &index, &nonce, &ct).expect("open"),
            "11010519491231002X"
        );
        assert!(!ct.windows(18).any(|w| w == b"11010519491231002X"));
        assert_eq!(
            open_national_id(&master, &"0".repeat(64), &nonce, &ct),
            Err(SealError)
        );
        assert_eq!(
            open_national_id(&[8u8; 32], &index, &nonce, &ct),
            Err(SealError)
        );
        assert_ne!(national_id_key(&master), template_key(&master));
    }

    #[test]
    fn enrolment_codes_are_eight_groups_and_normalise() {
        let code = new_enrolment_code();
        assert_eq!(code.split('-').count(), 8);
        assert_eq!(normalise_code(&code).len(), 24);
        assert_eq!(normalise_code(" 7kq-o1l-i "), "7KQ0111");
    }

    #[test]
    fn subkeys_are_rfc5869_hkdf() {
        // RFC 5869 test case 3 (no salt, empty info): the first 32 bytes of its OKM.
        assert_eq!(
            hex::encode(subkey(&[0x0b; 22], b"")),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        );
        assert_ne!(books_key(b"k"), template_key(b"k"));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
