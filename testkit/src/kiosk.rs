//! A kiosk's signing, for tests that post settlements as a kiosk would: its key pair and its
//! hash chain of signed records.

use std::collections::HashMap;

use serde_json::Value;
use zhucan_domain::api::SettlementItem;
use zhucan_domain::signing::{self, GENESIS, SigningKey};

/// A fresh Ed25519 key pair, as a kiosk makes one.
pub fn new_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

/// The public half as registration sends it.
pub fn public_key(key: &SigningKey) -> String {
    signing::encode_public_key(&key.verifying_key())
}

/// Signs the item JSON as record `seq` after `prev_hash`: the JSON to post and its record hash.
pub fn sign_item(item: &Value, seq: u64, prev_hash: &str, key: &SigningKey) -> (Value, String) {
    let mut it: SettlementItem = serde_json::from_value(item.clone()).expect("a settlement item");
    signing::sign(&mut it, seq, prev_hash, key);
    let hash = signing::record_hash(&it);
    (serde_json::to_value(&it).expect("json"), hash)
}

/// A kiosk's signing state: its key, the next seq, the last record's hash, and the records it
/// already made (a retry of the same item sends the same signed record, like the outbox).
#[derive(Clone)]
pub struct Chain {
    pub key: SigningKey,
    pub next_seq: u64,
    pub prev_hash: String,
    made: HashMap<String, Value>,
}

impl Chain {
    pub fn new(key: SigningKey) -> Chain {
        Chain {
            key,
            next_seq: 1,
            prev_hash: GENESIS.to_owned(),
            made: HashMap::new(),
        }
    }

    /// The signed record for `item`: made before, or signed now as the next record. Items that
    /// already carry `signed`, or are not valid items at all, go out as they are.
    pub fn sign(&mut self, item: &Value) -> Value {
        if item.get("signed").is_some()
            || serde_json::from_value::<SettlementItem>(item.clone()).is_err()
        {
            return item.clone();
        }
        let key = item.to_string();
        if let Some(v) = self.made.get(&key) {
            return v.clone();
        }
        let (signed, hash) = sign_item(item, self.next_seq, &self.prev_hash, &self.key);
        self.next_seq += 1;
        self.prev_hash = hash;
        self.made.insert(key, signed.clone());
        signed
    }
}
