use chrono::Duration as Days;
use zhucan_domain::Method;
use zhucan_domain::api::SettlementItem;
use zhucan_domain::signing::{GENESIS, record_hash, verify};

use super::commands::*;
use super::counter::*;
use super::face_loop::*;
use super::provision::*;
use super::*;
use crate::screen::Order;
use std::path::Path;
use std::sync::{Arc, Mutex};
use zhucan_domain::Fen;

use image::RgbImage;
use tokio::sync::{Notify, watch};
use uuid::Uuid;
use zhucan_domain::ResidentId;
use zhucan_domain::api::{DuplicateConfirmed, TemplateUpload};
use zhucan_domain::signing::SigningKey;

use crate::checkin::How;
use crate::config::{Config, EvidencePhotos, SourceConfig};
use crate::screen::{CarerReply, EnrolError, ScreenState};
use crate::store::Store;
use crate::store::lock::DataLock;
use crate::store::secret::{self, Secrets};
use crate::sync::client::Pinned;
use crate::sync::{Client, GallerySlot};
use zhucan_platform::clock::Clock;

use crate::store::testing::{CARD_KEY, accepted, now, open, signer, sync, synced};
use zhucan_platform::clock::FixedClock;

#[test]
fn five_wrong_pins_lock_the_pin_even_the_right_one_for_five_minutes() {
    let mut g = PinGuard::default();
    let t = now();
    for i in 0..4 {
        assert_eq!(g.check("0000", "2468", t), Err(BAD_PIN.into()), "try {i}");
    }
    // a right PIN before the fifth wrong one resets the count
    assert_eq!(g.check("2468", "2468", t), Ok(()));
    for _ in 0..5 {
        assert_eq!(g.check("1111", "2468", t), Err(BAD_PIN.into()));
    }
    let locked = g.check("2468", "2468", t + Days::seconds(10));
    assert!(
        locked.as_ref().is_err_and(|e| e.contains("290 秒后再试")),
        "{locked:?}"
    );
    assert!(g.check("2468", "2468", t + Days::seconds(299)).is_err());
    assert_eq!(g.check("2468", "2468", t + Days::minutes(5)), Ok(()));
    // a PIN of another length is wrong, not an error
    assert_eq!(
        g.check("24680", "2468", t + Days::minutes(5)),
        Err(BAD_PIN.into())
    );
}

fn counter(store: &Store, key: Option<SigningKey>, evidence: bool) -> (Counter, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(now()));
    let (screen, _) = watch::channel(ScreenState::idle(""));
    let c = Counter::new(
        store.clone(),
        clock.clone(),
        chrono_tz::Asia::Shanghai,
        Arc::new(screen),
        Arc::new(Notify::new()),
        key,
        EvidencePhotos {
            enabled: evidence,
            retention_days: 30,
        },
    );
    (c, clock)
}

fn face() -> How {
    How::Face {
        score: 0.81,
        liveness: 0.97,
    }
}

fn photo() -> Vec<u8> {
    let img = RgbImage::from_fn(112, 112, |x, y| image::Rgb([x as u8, y as u8, 90]));
    jpeg(&img).expect("jpeg")
}

fn outbox(store: &Store) -> Vec<SettlementItem> {
    store
        .due(now() + Days::days(400), 100)
        .expect("due")
        .into_iter()
        .map(|p| p.item)
        .collect()
}

#[test]
fn a_carers_card_at_the_card_box_lists_their_elders_and_settles_the_chosen_ones_meal_as_proxy() {
    let (_d, store) = open();
    let mut answer = sync(true, serde_json::json!([]), serde_json::json!([]));
    answer.carers = vec![zhucan_domain::api::KioskCarer {
        id: 31,
        name: "王小红".into(),
        card: zhucan_domain::api::card_index(&CARD_KEY, "CARER31"),
        residents: vec![ResidentId(7)],
    }];
    store.apply_sync(&answer, now()).expect("apply");
    let (c, _) = counter(&store, Some(signer()), false);
    // a resident's card is no carer's
    assert!(matches!(c.carer_card("CARD7", None), Ok(None)));
    // the carer's card: whose meal?
    let Ok(Some(CarerReply::Choose { carer })) = c.carer_card("CARER31", None) else {
        panic!("expected the carer's elders")
    };
    assert_eq!(carer.name, "王小红");
    assert_eq!(carer.residents, vec![(ResidentId(7), "王建国".to_owned())]);
    assert!(outbox(&store).is_empty(), "nothing settled before a choice");
    // not one of theirs
    let e = c
        .carer_card("CARER31", Some(ResidentId(8)))
        .expect_err("refused");
    assert!(matches!(e, CheckinError::CarerNotLinked), "{e}");
    assert!(e.to_string().contains("代取"), "{e}");
    // 王建国's meal, collected by 王小红: signed with the carer, decided as proxy
    let Ok(Some(CarerReply::Checkin(v))) = c.carer_card("CARER31", Some(ResidentId(7))) else {
        panic!("expected a settled meal")
    };
    assert_eq!(v.proxy_carer.as_deref(), Some("王小红"));
    assert_eq!(v.rejection, None);
    let shown = c.screen.borrow().message_zh.clone();
    assert!(shown.starts_with("代取：王小红 为 王建国 取餐"), "{shown}");
    assert!(shown.contains("自付"), "{shown}");
    let items = outbox(&store);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].resident_id, ResidentId(7));
    assert_eq!(items[0].method, Method::Card);
    assert_eq!(items[0].proxy_carer_id, Some(31));
    assert_eq!(verify(&items[0], &signer().verifying_key()), Ok(()));
    // a later answer without the carer (link removed) takes the card away
    store
        .apply_sync(
            &sync(false, serde_json::json!([]), serde_json::json!([])),
            now(),
        )
        .expect("apply");
    assert!(matches!(c.carer_card("CARER31", None), Ok(None)));
}

#[test]
fn a_kiosk_without_a_key_cannot_settle_and_says_to_register() {
    let (_d, store) = synced();
    let (c, _) = counter(&store, None, true);
    for how in [face(), How::Card] {
        let e = c
            .checkin(ResidentId(7), how, Some(photo()))
            .expect_err("refused");
        assert!(matches!(e, CheckinError::NotRegistered), "{e}");
        assert!(e.to_string().contains("enrol-kiosk"), "{e}");
    }
    assert_eq!(store.outbox_counts().expect("c").total, 0);
    assert_eq!(store.evidence_count().expect("e"), 0);
    assert_eq!(store.chain_head().expect("head").0, 0);
}

#[test]
fn face_card_and_staff_checkins_are_signed_in_one_chain_and_staff_stays_labelled() {
    let (_d, store) = synced();
    let (c, clock) = counter(&store, Some(signer()), false);
    // one lunch a day: a day apart each
    c.checkin(ResidentId(7), face(), None).expect("face");
    clock.advance(Days::days(1));
    c.checkin(ResidentId(7), How::Card, None).expect("card");
    clock.advance(Days::days(1));
    let staff = How::Staff {
        reason: "camera fogged".into(),
    };
    c.checkin(ResidentId(7), staff, None).expect("staff");
    let items = outbox(&store);
    assert_eq!(
        items.iter().map(|i| i.method).collect::<Vec<_>>(),
        vec![Method::Face, Method::Card, Method::Staff]
    );
    let vk = signer().verifying_key();
    let mut prev = GENESIS.to_owned();
    for (i, it) in items.iter().enumerate() {
        let s = it.signed.as_ref().expect("every check-in is signed");
        assert_eq!((s.seq, &s.prev_hash), (i as u64 + 1, &prev));
        assert_eq!(verify(it, &vk), Ok(()));
        prev = record_hash(it);
    }
    // the staff label is inside the signature: relabelling it as a face meal breaks it
    let staff = &items[2];
    assert_eq!(staff.staff_reason.as_deref(), Some("camera fogged"));
    let mut relabelled = staff.clone();
    relabelled.method = Method::Face;
    relabelled.staff_reason = None;
    assert!(verify(&relabelled, &vk).is_err());
    // a refused attempt (the same lunch again) is neither sent nor given a seq
    let v = c.checkin(ResidentId(7), How::Card, None).expect("shown");
    assert!(v.rejection.is_some());
    assert_eq!(store.chain_head().expect("head").0, 3);
}

#[test]
fn evidence_off_writes_no_image_even_when_a_photo_is_offered() {
    let (_d, store) = synced();
    let (c, _) = counter(&store, Some(signer()), false);
    c.checkin(ResidentId(7), face(), Some(photo()))
        .expect("face");
    assert_eq!(store.outbox_counts().expect("c").total, 1);
    assert_eq!(store.evidence_count().expect("e"), 0);
}

#[test]
fn evidence_on_keeps_one_encrypted_photo_with_the_face_checkin() {
    let (_d, store) = synced();
    let (c, clock) = counter(&store, Some(signer()), true);
    let jpg = photo();
    c.checkin(ResidentId(7), face(), Some(jpg.clone()))
        .expect("face");
    clock.advance(Days::days(1));
    c.checkin(ResidentId(7), How::Card, None).expect("card");
    let items = outbox(&store);
    assert_eq!(store.evidence_count().expect("e"), 1);
    assert_eq!(store.evidence_photo(items[0].id).expect("open"), Some(jpg));
    assert_eq!(store.evidence_photo(items[1].id).expect("open"), None);
}

/// A registered data folder whose server is a closed port (connection refused).
fn registered_offline() -> (tempfile::TempDir, SigningKey) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, mut secrets) = open_store(dir.path()).expect("store");
    let key = secrets.generate_signing_key();
    secrets.token = Some("token-1".into());
    secrets.save(&secret::path_in(dir.path())).expect("save");
    store
        .set_setting("server_url", "http://127.0.0.1:1")
        .expect("url");
    store.set_setting("kiosk_id", "3").expect("id");
    store
        .apply_sync(
            &crate::store::testing::sync(true, serde_json::json!([]), serde_json::json!([])),
            now(),
        )
        .expect("sync");
    let (item, a) = accepted(&store, now());
    for _ in 0..2 {
        let mut it = item.clone();
        it.id = Uuid::now_v7();
        store
            .commit_checkin(&it, &a, &key, None, now())
            .expect("commit");
    }
    (dir, key)
}

fn reload(dir: &Path) -> Secrets {
    Secrets::load_or_create(&secret::path_in(dir)).expect("secrets")
}

#[tokio::test]
async fn an_interrupted_rotation_is_pending_blocks_the_kiosk_and_resumes_with_the_same_key() {
    let (dir, old) = registered_offline();
    let e = rotate_key(dir.path())
        .await
        .expect_err("server unreachable");
    assert!(e.to_string().contains("rotate-key` again"), "{e}");
    let s = reload(dir.path());
    let (pending, from_seq) = s.pending_rotation().expect("p").expect("pending");
    assert_eq!(from_seq, 3, "hands over after the 2 records in the outbox");
    assert_eq!(
        s.signing_key().expect("k").expect("key").to_bytes(),
        old.to_bytes(),
        "the old key still signs"
    );
    assert_eq!(s.token.as_deref(), Some("token-1"));

    // the kiosk refuses to start while the rotation is unfinished
    let (source, _frames) = crate::source::QueueSource::new();
    let mut config = Config::new(
        dir.path(),
        SourceConfig::Camera {
            device: 0,
            width: 640,
            height: 480,
        },
        "2468",
    );
    config.ui_listen = "127.0.0.1:0".parse().expect("addr");
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(now()));
    let e = start(config, clock, Box::new(source))
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("rotate-key"), "{e}");

    // running it again resumes with the same pending key
    rotate_key(dir.path()).await.expect_err("still unreachable");
    let (again, _) = reload(dir.path())
        .pending_rotation()
        .expect("p")
        .expect("pending");
    assert_eq!(again.to_bytes(), pending.to_bytes());

    // --abandon keeps the current key and credential
    assert!(abandon_rotation(dir.path()).expect("abandon"));
    let s = reload(dir.path());
    assert!(s.pending_rotation().expect("p").is_none());
    assert_eq!(
        s.signing_key().expect("k").expect("key").to_bytes(),
        old.to_bytes()
    );
    assert!(!abandon_rotation(dir.path()).expect("nothing left"));
}

#[tokio::test]
async fn rotation_and_enrolment_refuse_while_the_kiosk_runs_or_when_misused() {
    let (dir, _) = registered_offline();
    // a running kiosk holds the lock
    let running = DataLock::acquire(dir.path()).expect("lock");
    let e = rotate_key(dir.path()).await.expect_err("busy");
    assert!(e.to_string().contains("stop the kiosk first"), "{e}");
    assert!(reload(dir.path()).pending_rotation().expect("p").is_none());
    drop(running);
    // a registered folder is not registered again
    let e = enrol_kiosk("http://127.0.0.1:1", "code", dir.path(), None)
        .await
        .expect_err("registered");
    assert!(e.to_string().contains("rotate-key"), "{e}");
    // an unregistered folder has nothing to rotate
    let fresh = tempfile::tempdir().expect("tempdir");
    let e = rotate_key(fresh.path()).await.expect_err("unregistered");
    assert!(e.to_string().contains("enrol-kiosk"), "{e}");
}

#[tokio::test]
async fn enrol_refuses_a_bad_server_certificate_before_anything_is_registered() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let data = dir.path().join("kiosk");
    let e = enrol_kiosk("https://127.0.0.1:1", "code", &data, Some(&bad))
        .await
        .expect_err("bad PEM");
    let msg = e.to_string();
    assert!(
        msg.contains("server certificate") && msg.contains("bad.pem"),
        "{msg}"
    );
    let s = reload(&data);
    assert!(s.token.is_none() && s.signing_key().expect("k").is_none());
    assert!(!Pinned::path_in(&data).exists());
    // a good CA with a plain-http server URL is refused too
    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem");
    let e = enrol_kiosk("http://127.0.0.1:1", "code", &data, Some(&ca))
        .await
        .expect_err("http with a pin");
    assert!(e.to_string().contains("https://"), "{e}");
    // an unreachable server: the key pair exists (saved before the call), no token, no pin
    let e = enrol_kiosk("https://127.0.0.1:1", "code", &data, Some(&ca))
        .await
        .expect_err("unreachable");
    assert!(matches!(e, Error::Client(_)), "{e}");
    let s = reload(&data);
    assert!(s.token.is_none());
    assert!(s.signing_key().expect("k").is_some());
    assert!(!Pinned::path_in(&data).exists());
}

/// A stand-in server for template uploads: refuses a face as resident 12's (李秀英) unless
/// the upload confirms exactly that resident; records every body it gets.
async fn duplicate_server() -> (String, Arc<Mutex<Vec<TemplateUpload>>>) {
    use axum::Json;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let seen: Arc<Mutex<Vec<TemplateUpload>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/api/v1/residents/{id}/templates",
        axum::routing::put(move |Json(up): Json<TemplateUpload>| {
            let log = log.clone();
            async move {
                let ok = up
                    .duplicate_confirmed
                    .as_ref()
                    .is_some_and(|c| c.other_resident_id == ResidentId(12));
                log.lock().expect("log").push(up);
                if ok {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    (
                        StatusCode::CONFLICT,
                        Json(serde_json::json!({ "error": {
                            "code": "duplicate_face", "field": "embeddings",
                            "message": "the face matches resident 12 (李秀英)",
                            "duplicate_of": { "resident_id": 12, "name": "李秀英" } } })),
                    )
                        .into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn a_face_the_server_calls_a_duplicate_is_stored_only_after_staff_confirm_it() {
    let (_dir, store) = synced();
    let (c, _) = counter(&store, Some(signer()), false);
    let (url, seen) = duplicate_server().await;
    let (enrol_tx, enrol_rx) = std::sync::mpsc::channel::<EnrolRequest>();
    // the face loop's part: every capture is the same two embeddings
    let face: Vec<Vec<f32>> = vec![vec![0.6, 0.8, 0.0, 0.0], vec![0.0, 0.6, 0.8, 0.0]];
    let capture = face.clone();
    std::thread::spawn(move || {
        while let Ok(r) = enrol_rx.recv() {
            let _ = r.reply.send(Ok(capture.clone()));
        }
    });
    let cmds = Commands {
        counter: c,
        gallery: GallerySlot::default(),
        client: Some(Client::new(&url, Some("t".into()), None).expect("client")),
        pin: "2468".into(),
        pin_guard: Arc::default(),
        model: "m.onnx".into(),
        dim: 4,
        enrol: Arc::new(Mutex::new(enrol_tx)),
        held: Arc::default(),
    };
    let r7 = ResidentId(7);
    let refused = cmds.enrol(r7, false).await;
    assert_eq!(
        refused,
        Err(EnrolError::Duplicate {
            other_resident_id: ResidentId(12),
            other_name: "李秀英".into(),
            message: "the face matches resident 12 (李秀英)".into(),
        })
    );
    assert_eq!(
        store.template_count(r7).expect("count"),
        0,
        "stored before the server accepted"
    );
    let screen = cmds.counter.screen.borrow().clone();
    assert_eq!(screen.message_zh, "疑似与已登记的居民（李秀英）为同一人");
    // a confirmation naming another resident is not what the server matched
    let wrong = cmds
        .confirm_duplicate(r7, ResidentId(13), "双胞胎".into())
        .await;
    assert!(matches!(wrong, Err(EnrolError::Failed(_))), "{wrong:?}");
    assert_eq!(
        seen.lock().expect("seen").len(),
        1,
        "sent without a held capture"
    );
    // staff confirm: the same capture goes again, with the confirmation, and is stored
    let done = cmds
        .confirm_duplicate(r7, ResidentId(12), "双胞胎姐妹".into())
        .await;
    assert_eq!(done, Ok(2));
    assert_eq!(store.template_count(r7).expect("count"), 2);
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].embeddings, seen[1].embeddings);
    assert_eq!(seen[0].duplicate_confirmed, None);
    assert_eq!(
        seen[1].duplicate_confirmed,
        Some(DuplicateConfirmed {
            other_resident_id: ResidentId(12),
            reason: "双胞胎姐妹".into(),
        })
    );
    // the held capture is used once
    let again = cmds
        .confirm_duplicate(r7, ResidentId(12), "双胞胎姐妹".into())
        .await;
    assert!(matches!(again, Err(EnrolError::Failed(_))), "{again:?}");
}

#[test]
fn a_delivered_order_waits_for_a_card_and_is_never_taken_by_a_face() {
    let (_d, store) = synced();
    let (c, clock) = counter(&store, Some(signer()), false);
    let order = Order {
        price: None,
        delivered: true,
    };
    c.set_order(Some(order)).expect("order set");
    // the elder's face at the counter: eaten here, not delivered; the order keeps waiting
    let v = c.checkin(ResidentId(7), face(), None).expect("face");
    assert_eq!(v.delivery_fee, Fen::ZERO, "{v:?}");
    assert!(!outbox(&store)[0].delivered);
    assert_eq!(c.screen.borrow().order, Some(order), "still waiting");
    // the deliverer's card takes it (the next day's lunch)
    clock.advance(Days::days(1));
    c.checkin(ResidentId(7), How::Card, None).expect("card");
    assert!(outbox(&store)[1].delivered);
    assert_eq!(c.screen.borrow().order, None);
}
