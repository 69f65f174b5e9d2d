//! The settlement batch decoder: the exact path a kiosk's POST body takes before anything is
//! stored — JSON through the API's extractor, the batch checks, and signature verification.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zhucan_domain::api::SettlementBatch;
use zhucan_domain::signing::{self, SigningKey};

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = zhucan_server::http::extract::parse_json::<SettlementBatch>(data) else {
        return;
    };
    let _ = zhucan_server::ingest::validate(&batch);
    let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
    for item in &batch.items {
        let _ = signing::payload(item);
        let _ = signing::record_hash(item);
        // Random input must never verify against a key it was not signed with.
        assert!(signing::verify(item, &key).is_err());
    }
});
