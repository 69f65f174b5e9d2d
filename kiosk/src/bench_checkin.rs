//! `zhucan-kiosk bench-checkin`: time from the first frame of a face to the settlement committed
//! in the outbox, over replayed sequences at a fixed frame rate with the real pipeline, tracker,
//! decision and store (a temporary database with one synthetic canteen serving all day).
//!
//! For each identity of a labelled list (`path<TAB>identity`), the first photo is enrolled and
//! another photo is then shown for up to 2n frames, paced at the frame interval as a camera
//! would deliver them; the clock starts when the first frame is due.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use uuid::Uuid;
use zhucan_domain::settle::Decision;
use zhucan_domain::{Policy, ResidentId};

use crate::checkin::{self, Frame, How, Rule, Step, Tracker};
use crate::run::{self, observe};
use crate::store;
use crate::store::Store;
use crate::store::secret::TemplateKey;
use zhucan_face::image_io;
use zhucan_face::matcher::Gallery;
use zhucan_face::{FacePipeline, Outcome, PipelineConfig};

/// Errors of the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Face(#[from] zhucan_face::Error),
    #[error(transparent)]
    Image(#[from] image_io::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Run(#[from] run::Error),
    #[error("{0}")]
    Input(String),
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn synthetic_sync(n: usize) -> zhucan_domain::api::SyncResponse {
    let residents: Vec<serde_json::Value> = (1..=n)
        .map(|i| {
            serde_json::json!({
                "diner": {"id": i, "birth_date": "1940-01-01",
                    "local_registration": true, "registered_town": "choucheng",
                    "residence_town": "choucheng", "categories": [], "status": {"status": "active"},
                    "prepaid_balance": null, "face_ready": true},
                "name": format!("老人{i}"),
                "card": zhucan_domain::api::card_index(&[0; 32], &format!("C{i}")),
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "cursor": 1, "full": true, "kiosk_id": 1,
        "canteen": {
            "id": 1, "name": "bench", "kind": "care_centre", "town": "choucheng", "operator": "x",
            "operator_kind": "contracted", "delivery_surcharge": null,
            "slots": [{"slot": "lunch", "start": "00:00:00", "end": "23:59:59", "price": 1200}]
        },
        "policies": [Policy::example_yiwu()],
        "residents": residents, "card_key": zhucan_domain::api::encode_key(&[0; 32]),
        "templates": [], "purged": [], "meals": [], "voided": []
    }))
    .expect("synthetic sync answer is valid")
}

/// Runs the benchmark; returns the report.
pub fn run(
    pcfg: PipelineConfig,
    images: &Path,
    root: &Path,
    sequences: usize,
    fps: u32,
    rule: Rule,
) -> Result<String, Error> {
    let text = std::fs::read_to_string(images)
        .map_err(|e| Error::Input(format!("{}: {e}", images.display())))?;
    let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let mut cols = line.split('\t');
        if let (Some(p), Some(id)) = (cols.next(), cols.next()) {
            by_id.entry(id.to_owned()).or_default().push(p.to_owned());
        }
    }
    let people: Vec<(String, Vec<String>)> = by_id
        .into_iter()
        .filter(|(_, v)| v.len() >= 2)
        .take(sequences)
        .collect();
    if people.is_empty() {
        return Err(Error::Input(
            "no identity with two photos in the list".into(),
        ));
    }
    let threshold = pcfg.liveness_threshold;
    let mut p = FacePipeline::load(pcfg)?;
    let matching = p.config().matching;
    let mut gallery = Gallery::new(p.embedding_dim());
    for (i, (_, photos)) in people.iter().enumerate() {
        let img = image_io::load_rgb(&root.join(&photos[0]))?;
        if let Outcome::Embedded(e) = p.process(&img)?.outcome {
            gallery.add(&(i + 1).to_string(), &e)?;
        }
    }
    let dir = std::env::temp_dir().join(format!("zhucan-bench-{}", Uuid::now_v7()));
    let store = Store::open(
        &dir.join("kiosk.sqlite"),
        TemplateKey::from_bytes(rand::random()),
    )?;
    let now = chrono::Utc
        .with_ymd_and_hms(2026, 3, 15, 4, 0, 0)
        .single()
        .expect("valid time");
    store.apply_sync(&synthetic_sync(people.len()), now)?;
    // a throwaway key: the commit signs and chains every settlement like a registered kiosk
    let signer = zhucan_domain::signing::SigningKey::from_bytes(&rand::random());
    let canteen = store
        .canteen()?
        .ok_or_else(|| Error::Input("no canteen".into()))?;
    let policies = store.policies()?;

    let interval = Duration::from_secs_f64(1.0 / f64::from(fps.max(1)));
    let mut tracker = Tracker::new(rule);
    let mut latencies = Vec::new();
    let mut frames_needed = Vec::new();
    let mut missed = 0;
    let mut wrong = 0;
    for (i, (_, photos)) in people.iter().enumerate() {
        let img = image_io::load_rgb(&root.join(&photos[1]))?;
        tracker.observe(Frame::NoFace, now, &gallery, &matching);
        let t0 = Instant::now();
        let mut done = false;
        for f in 0..rule.visit.window * 2 {
            let due = t0 + interval * f as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let res = p.process(&img)?;
            if let Step::Confirm {
                resident,
                score,
                liveness,
            } = tracker.observe(observe(res), now, &gallery, &matching)
            {
                let r = store
                    .resident(resident)?
                    .ok_or_else(|| Error::Input("resident".into()))?;
                let hist = store.history(resident)?;
                let how = How::Face { score, liveness };
                let prep = checkin::prepare(
                    &r,
                    &canteen,
                    &policies,
                    &hist,
                    &how,
                    crate::screen::Order::default(),
                    chrono_tz::Asia::Shanghai,
                    now,
                    Uuid::now_v7(),
                );
                if let (Some(item), Decision::Accepted(a)) = (&prep.item, &prep.decision) {
                    store.commit_checkin(item, a, &signer, None, now)?;
                }
                latencies.push(t0.elapsed());
                frames_needed.push(f + 1);
                if resident != ResidentId(i as i64 + 1) {
                    wrong += 1;
                }
                done = true;
                break;
            }
        }
        if !done {
            missed += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort();
    let mean_frames = if frames_needed.is_empty() {
        0.0
    } else {
        frames_needed.iter().sum::<usize>() as f64 / frames_needed.len() as f64
    };
    Ok(format!(
        "check-in latency: first frame of a face -> settlement committed in the outbox\n\
         rule: fusion of {k} live frames of {n} at {fps} fps (frame every {iv} ms), liveness threshold {threshold}, \
         {m} sequences ({ok} confirmed, {wrong} of them as the wrong resident, {missed} not within {nn} frames)\n\
         p50 {p50:.0} ms   p95 {p95:.0} ms   max {max:.0} ms   frames to confirm: {mean_frames:.1} on average\n\
         target: under 1000 ms",
        k = rule.visit.min_frames,
        n = rule.visit.window,
        iv = interval.as_millis(),
        m = people.len(),
        ok = latencies.len(),
        nn = rule.visit.window * 2,
        p50 = percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        p95 = percentile(&latencies, 0.95).as_secs_f64() * 1e3,
        max = latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    ))
}
