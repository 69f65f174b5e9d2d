//! Test fixtures shared by the store's and the runtime's unit tests: a store in a temp folder, a
//! sync answer with one canteen, the Yiwu policy and one resident (王建国, id 7, card CARD7).

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;
use zhucan_domain::api::{self, KioskResident, SettlementItem, SyncResponse};
use zhucan_domain::settle::{Accepted, Decision};
use zhucan_domain::signing::SigningKey;
use zhucan_domain::{Policy, ResidentId};

use super::Store;
use super::secret::TemplateKey;

/// Inside the lunch window (12:00 in Shanghai).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 15, 4, 0, 0)
        .single()
        .expect("time")
}

pub fn signer() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

/// The card-index key of the fixture's sync answers.
pub const CARD_KEY: [u8; 32] = [5; 32];

/// 王建国 (id 7, card CARD7) as a kiosk holds him; `diner` patches his decision facts
/// (`face_ready`, `status`, `prepaid_balance`...).
pub fn resident_json(diner: serde_json::Value) -> serde_json::Value {
    let mut d = serde_json::json!({"id": 7, "birth_date": "1944-05-01",
        "local_registration": true, "registered_town": "choucheng",
        "residence_town": "choucheng", "categories": [], "status": {"status": "active"},
        "prepaid_balance": 10000, "face_ready": true});
    if let (Some(d), Some(patch)) = (d.as_object_mut(), diner.as_object()) {
        for (k, v) in patch {
            d.insert(k.clone(), v.clone());
        }
    }
    serde_json::json!({"diner": d, "name": "王建国", "card": api::card_index(&CARD_KEY, "CARD7")})
}

/// [`resident_json`] as the type.
pub fn resident(diner: serde_json::Value) -> KioskResident {
    serde_json::from_value(resident_json(diner)).expect("resident")
}

/// A sync answer; `diner` patches the resident's decision facts ([`resident_json`]).
pub fn sync_with(
    full: bool,
    templates: serde_json::Value,
    purged: serde_json::Value,
    diner: serde_json::Value,
) -> SyncResponse {
    let r = resident_json(diner);
    serde_json::from_value(serde_json::json!({
        "cursor": 7, "full": full, "kiosk_id": 3,
        "canteen": {"id": 1, "name": "宾王", "kind": "care_centre", "town": "choucheng",
            "operator": "x", "operator_kind": "contracted", "delivery_surcharge": null,
            "slots": [{"slot": "lunch", "start": "10:30:00", "end": "13:00:00", "price": 1200}]},
        "policies": [Policy::example_yiwu()],
        "residents": [r], "card_key": api::encode_key(&CARD_KEY),
        "templates": templates, "purged": purged, "meals": [], "voided": []
    }))
    .expect("sync answer")
}

pub fn sync(full: bool, templates: serde_json::Value, purged: serde_json::Value) -> SyncResponse {
    sync_with(full, templates, purged, serde_json::json!({}))
}

pub fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(
        &dir.path().join("kiosk.sqlite"),
        TemplateKey::from_bytes([1; 32]),
    )
    .expect("open");
    (dir, s)
}

/// A store that has synced the fixture.
pub fn synced() -> (tempfile::TempDir, Store) {
    let (d, s) = open();
    s.apply_sync(
        &sync(true, serde_json::json!([]), serde_json::json!([])),
        now(),
    )
    .expect("apply");
    (d, s)
}

/// An accepted card check-in of resident 7 at `at`, decided on an empty history (not committed).
/// For more records of one chain, clone the item with a new id: `commit_checkin` stores, it
/// does not decide again.
pub fn accepted(s: &Store, at: DateTime<Utc>) -> (SettlementItem, Accepted) {
    let r = s.resident(ResidentId(7)).expect("r").expect("resident");
    let c = s.canteen().expect("c").expect("canteen");
    let p = crate::checkin::prepare(
        &r,
        &c,
        &s.policies().expect("p"),
        &[],
        &crate::checkin::How::Card,
        crate::screen::Order::default(),
        chrono_tz::Asia::Shanghai,
        at,
        Uuid::now_v7(),
    );
    let Decision::Accepted(a) = p.decision else {
        panic!("expected an accepted meal, got {:?}", p.decision)
    };
    (p.item.expect("item"), a)
}

/// The bytes of the database file, its WAL and shared memory, after a checkpoint.
pub fn raw_bytes(dir: &std::path::Path, s: &Store) -> Vec<u8> {
    s.checkpoint().expect("checkpoint");
    let mut all = Vec::new();
    for name in ["kiosk.sqlite", "kiosk.sqlite-wal", "kiosk.sqlite-shm"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            all.extend(b);
        }
    }
    assert!(all.len() > 4096, "read the database files");
    all
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
