//! Signed, hash-chained settlement records (the integrity contract between kiosk and server).
//!
//! Every settlement a kiosk makes carries a [`Signed`] block: its place in the kiosk's chain
//! (`seq`, starting at 1), the hash of the previous record (`prev_hash`, [`GENESIS`] for the first)
//! and an Ed25519 signature by the kiosk's key over [`payload`]. The record's own hash,
//! [`record_hash`], is the sha256 of that payload, so it covers `seq` and `prev_hash` too: changing,
//! dropping or inserting any record breaks either a signature or a link.
//!
//! The payload is a JSON array of the item's fields in a fixed order, each written by `serde_json`
//! (built with `float_roundtrip`, so an `f64` parses back to the same bits) and `served_at` as RFC 3339 with its own offset. It is rebuilt
//! from the parsed item on both sides, so whitespace or key order on the wire do not matter.
//!
//! Pure: signing takes the key as an argument; key generation (randomness) is the kiosk's job.

use chrono::SecondsFormat;
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest, Sha256};

use crate::api::SettlementItem;

pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// `prev_hash` of the first record of a chain: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub use crate::api::Signed;

/// Why a signature block does not verify. `field` names the offending part for error bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing: a kiosk must sign every settlement")]
    Missing,
    #[error("{field}: {reason}")]
    Malformed { field: &'static str, reason: String },
    #[error("the signature does not match the record and the kiosk's key")]
    Invalid,
}

impl SignatureError {
    /// The stable error code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed { .. } => "signature_malformed",
            SignatureError::Invalid => "signature_invalid",
        }
    }

    /// The field path inside an item (`signed.signature`, ...).
    pub fn field(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signed",
            SignatureError::Malformed { field, .. } => field,
            SignatureError::Invalid => "signed.signature",
        }
    }
}

/// The exact bytes that are hashed and signed: everything in the item except the signature.
/// `seq`/`prev_hash` are taken from `item.signed` (0 and "" when it has none). Optional
/// fields added after v1 (`proxy_carer_id`) are appended as a name and a value when set.
pub fn payload(item: &SettlementItem) -> Vec<u8> {
    let (seq, prev) = item
        .signed
        .as_ref()
        .map_or((0, ""), |s| (s.seq, s.prev_hash.as_str()));
    let mut v = serde_json::json!([
        "zhucan-settlement-v1",
        seq,
        prev,
        item.id,
        item.resident_id.0,
        item.canteen_id.0,
        item.served_at.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        item.method.as_str(),
        item.match_score,
        item.liveness_score,
        item.delivered,
        item.staff_reason,
    ]);
    // Fields added since v1 follow as (name, value) pairs, only when set: a record without
    // them has exactly the v1 payload, so every record signed before still verifies and
    // hashes as it did.
    if let (Some(carer), Some(a)) = (item.proxy_carer_id, v.as_array_mut()) {
        a.push("proxy_carer_id".into());
        a.push(carer.into());
    }
    if let (Some(price), Some(a)) = (item.counter_price, v.as_array_mut()) {
        a.push("counter_price".into());
        a.push(price.0.into());
    }
    // Serialising a `Value` built from plain values cannot fail.
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The record's hash (lower-case hex sha256 of [`payload`]): the next record's `prev_hash`.
pub fn record_hash(item: &SettlementItem) -> String {
    hex_lower(&Sha256::digest(payload(item)))
}

/// Fills in `item.signed` as record `seq` after `prev_hash` and signs it with `key`.
pub fn sign(item: &mut SettlementItem, seq: u64, prev_hash: &str, key: &SigningKey) {
    item.signed = Some(Signed {
        seq,
        prev_hash: prev_hash.to_owned(),
        signature: String::new(),
    });
    let sig = key.sign(&payload(item));
    if let Some(s) = item.signed.as_mut() {
        s.signature = crate::api::base64_encode(&sig.to_bytes());
    }
}

/// Checks the shape of the signature block and the signature against `key`.
pub fn verify(item: &SettlementItem, key: &VerifyingKey) -> Result<(), SignatureError> {
    verify_payload(item, key).map(|_| ())
}

/// [`verify`], returning the [`payload`] it verified (the server stores it and hashes it into
/// the chain without building it again).
pub fn verify_payload(
    item: &SettlementItem,
    key: &VerifyingKey,
) -> Result<Vec<u8>, SignatureError> {
    let s = item.signed.as_ref().ok_or(SignatureError::Missing)?;
    if s.seq == 0 {
        return Err(SignatureError::Malformed {
            field: "signed.seq",
            reason: "must be 1 or more".into(),
        });
    }
    if !is_hash(&s.prev_hash) {
        return Err(SignatureError::Malformed {
            field: "signed.prev_hash",
            reason: "must be 64 lower-case hex digits".into(),
        });
    }
    let sig = decode_signature(&s.signature).ok_or_else(|| SignatureError::Malformed {
        field: "signed.signature",
        reason: "must be base64 of 64 bytes".into(),
    })?;
    let payload = payload(item);
    key.verify(&payload, &sig)
        .map_err(|_| SignatureError::Invalid)?;
    Ok(payload)
}

/// A base64 Ed25519 signature (64 bytes), or `None`.
fn decode_signature(b64: &str) -> Option<ed25519_dalek::Signature> {
    let bytes: [u8; 64] = crate::api::base64_decode(b64)?.try_into().ok()?;
    Some(ed25519_dalek::Signature::from_bytes(&bytes))
}

/// A public key as sent on the wire: base64 of the 32 key bytes.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    crate::api::base64_encode(key.as_bytes())
}

/// Parses [`encode_public_key`]'s output; the error says why.
pub fn decode_public_key(s: &str) -> Result<VerifyingKey, String> {
    let bytes = crate::api::base64_decode(s.trim())
        .filter(|b| b.len() == 32)
        .ok_or_else(|| "must be base64 of a 32-byte Ed25519 public key".to_owned())?;
    let mut arr = [0u8; 32];
    arr.copy_from_slice(&bytes);
    VerifyingKey::from_bytes(&arr).map_err(|_| "not a valid Ed25519 public key".to_owned())
}

/// The bytes a kiosk signs with its CURRENT key to hand over to a new key (credential rotation):
/// records from `from_seq` on are signed by `new_key`.
pub fn rotation_payload(kiosk_id: i64, from_seq: u64, new_key: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([
        "zhucan-rotate-v1",
        kiosk_id,
        from_seq,
        new_key
    ]))
    .unwrap_or_default()
}

/// Signs arbitrary bytes (rotation handover); base64 of the signature.
pub fn sign_bytes(bytes: &[u8], key: &SigningKey) -> String {
    crate::api::base64_encode(&key.sign(bytes).to_bytes())
}

/// Verifies [`sign_bytes`]'s output.
pub fn verify_bytes(bytes: &[u8], signature: &str, key: &VerifyingKey) -> bool {
    decode_signature(signature).is_some_and(|sig| key.verify(bytes, &sig).is_ok())
}

/// True for 64 lower-case hex digits.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use uuid::Uuid;

    use super::*;
    use crate::{CanteenId, Method, ResidentId};

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn item() -> SettlementItem {
        SettlementItem {
            counter_price: None,
            id: Uuid::parse_str("01900000-0000-7000-8000-000000000001").unwrap(),
            resident_id: ResidentId(7),
            canteen_id: CanteenId(2),
            served_at: DateTime::parse_from_rfc3339("2026-11-23T11:30:05.250+08:00").unwrap(),
            method: Method::Face,
            match_score: Some(0.8123),
            liveness_score: Some(0.97),
            delivered: false,
            staff_reason: None,
            proxy_carer_id: None,
            signed: None,
        }
    }

    #[test]
    fn a_signed_item_verifies_and_survives_the_wire() {
        let mut it = item();
        sign(&mut it, 1, GENESIS, &key(1));
        assert_eq!(verify(&it, &key(1).verifying_key()), Ok(()));
        let wire = serde_json::to_string(&it).unwrap();
        let back: SettlementItem = serde_json::from_str(&wire).unwrap();
        assert_eq!(verify(&back, &key(1).verifying_key()), Ok(()));
        assert_eq!(record_hash(&back), record_hash(&it));
    }

    #[test]
    fn scores_from_f32_survive_the_wire_bit_for_bit() {
        let mut it = item();
        it.match_score = Some(f64::from(0.97f32));
        it.liveness_score = Some(f64::from(0.123_456_79_f32));
        sign(&mut it, 9, GENESIS, &key(1));
        let back: SettlementItem =
            serde_json::from_slice(&serde_json::to_vec(&it).unwrap()).unwrap();
        assert_eq!(
            back.match_score.map(f64::to_bits),
            it.match_score.map(f64::to_bits)
        );
        assert_eq!(verify(&back, &key(1).verifying_key()), Ok(()));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let mut it = item();
        sign(&mut it, 3, &"a".repeat(64), &key(1));
        let vk = key(1).verifying_key();
        type Change = Box<dyn Fn(&mut SettlementItem)>;
        let tampered: Vec<Change> = vec![
            Box::new(|i| i.resident_id = ResidentId(8)),
            Box::new(|i| i.canteen_id = CanteenId(3)),
            Box::new(|i| i.served_at += chrono::Duration::milliseconds(1)),
            Box::new(|i| i.method = Method::Staff),
            Box::new(|i| i.match_score = Some(0.8124)),
            Box::new(|i| i.delivered = true),
            Box::new(|i| i.staff_reason = Some("x".into())),
            Box::new(|i| i.proxy_carer_id = Some(1)),
            Box::new(|i| i.signed.as_mut().unwrap().seq = 4),
            Box::new(|i| i.signed.as_mut().unwrap().prev_hash = "b".repeat(64)),
        ];
        for (n, t) in tampered.iter().enumerate() {
            let mut c = it.clone();
            t(&mut c);
            assert_eq!(verify(&c, &vk), Err(SignatureError::Invalid), "change {n}");
        }
        assert_eq!(
            verify(&it, &key(2).verifying_key()),
            Err(SignatureError::Invalid)
        );
    }

    /// The v1 payload of [`item`] as every kiosk signed it before `proxy_carer_id` existed.
    const V1_PAYLOAD: &str = r#"["zhucan-settlement-v1",1,"0000000000000000000000000000000000000000000000000000000000000000","01900000-0000-7000-8000-000000000001",7,2,"2026-11-23T11:30:05.250+08:00","face",0.8123,0.97,false,null]"#;

    #[test]
    fn a_record_without_a_carer_signs_and_hashes_exactly_as_before() {
        let mut it = item();
        sign(&mut it, 1, GENESIS, &key(1));
        assert_eq!(String::from_utf8(payload(&it)).unwrap(), V1_PAYLOAD);
        assert_eq!(record_hash(&it), hex_lower(&Sha256::digest(V1_PAYLOAD)));
        // A record as an older kiosk sent it (no such key at all) still verifies.
        let mut wire = serde_json::to_value(&it).unwrap();
        assert!(wire.get("proxy_carer_id").is_none(), "{wire}");
        wire.as_object_mut().unwrap().remove("proxy_carer_id");
        let back: SettlementItem = serde_json::from_value(wire).unwrap();
        assert_eq!(back.proxy_carer_id, None);
        assert_eq!(verify(&back, &key(1).verifying_key()), Ok(()));
        assert!(
            key(1)
                .verifying_key()
                .verify(
                    V1_PAYLOAD.as_bytes(),
                    &decode_signature(&it.signed.unwrap().signature).unwrap()
                )
                .is_ok()
        );
    }

    #[test]
    fn a_proxy_record_verifies_and_its_carer_is_signed() {
        let mut it = item();
        it.method = Method::Card;
        it.match_score = None;
        it.liveness_score = None;
        it.proxy_carer_id = Some(12);
        sign(&mut it, 4, GENESIS, &key(1));
        let vk = key(1).verifying_key();
        assert_eq!(verify(&it, &vk), Ok(()));
        let p = String::from_utf8(payload(&it)).unwrap();
        assert!(p.ends_with(r#",null,"proxy_carer_id",12]"#), "{p}");
        let back: SettlementItem =
            serde_json::from_slice(&serde_json::to_vec(&it).unwrap()).unwrap();
        assert_eq!(verify(&back, &vk), Ok(()));
        for change in [Some(13), None] {
            let mut c = it.clone();
            c.proxy_carer_id = change;
            assert_eq!(verify(&c, &vk), Err(SignatureError::Invalid), "{change:?}");
        }
        // Nor can a carer be added to a record signed without one.
        let mut own = item();
        sign(&mut own, 5, GENESIS, &key(1));
        own.proxy_carer_id = Some(12);
        assert_eq!(verify(&own, &vk), Err(SignatureError::Invalid));
    }

    #[test]
    fn malformed_blocks_name_their_field() {
        let vk = key(1).verifying_key();
        assert_eq!(verify(&item(), &vk), Err(SignatureError::Missing));
        let mut it = item();
        sign(&mut it, 1, GENESIS, &key(1));
        let mut c = it.clone();
        c.signed.as_mut().unwrap().signature = "abc".into();
        assert_eq!(verify(&c, &vk).unwrap_err().field(), "signed.signature");
        let mut c = it.clone();
        c.signed.as_mut().unwrap().prev_hash = "XYZ".into();
        assert_eq!(verify(&c, &vk).unwrap_err().field(), "signed.prev_hash");
        let mut c = it;
        c.signed.as_mut().unwrap().seq = 0;
        assert_eq!(verify(&c, &vk).unwrap_err().field(), "signed.seq");
    }

    #[test]
    fn the_chain_links_by_record_hash() {
        let mut a = item();
        sign(&mut a, 1, GENESIS, &key(1));
        let mut b = item();
        b.id = Uuid::parse_str("01900000-0000-7000-8000-000000000002").unwrap();
        sign(&mut b, 2, &record_hash(&a), &key(1));
        assert!(is_hash(&record_hash(&a)));
        assert_eq!(b.signed.as_ref().unwrap().prev_hash, record_hash(&a));
        assert_ne!(record_hash(&a), record_hash(&b));
    }

    #[test]
    fn public_keys_and_rotation_handover_round_trip() {
        let vk = key(5).verifying_key();
        assert_eq!(decode_public_key(&encode_public_key(&vk)), Ok(vk));
        assert!(decode_public_key("AAAA").is_err());
        let p = rotation_payload(3, 10, &encode_public_key(&key(6).verifying_key()));
        let s = sign_bytes(&p, &key(5));
        assert!(verify_bytes(&p, &s, &vk));
        assert!(!verify_bytes(&p, &s, &key(6).verifying_key()));
        assert!(!verify_bytes(b"other", &s, &vk));
    }
}
