//! Integration tests of the face pipeline with the real models through ONNX Runtime:
//! fixtures from `../shared/models/reference/expected_outputs.json`, and the dev data in
//! `../shared/testdata/faces` (LFW verification and identification, spoof samples).
//!
//! Models are found through `models/manifest.tsv`; if the files are missing they are fetched
//! from `../shared/models` with the same code as `zhucan-kiosk models fetch`. ONNX Runtime is
//! found as the kiosk finds it (run `scripts/install-onnxruntime.sh` once).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use image::RgbImage;
use serde_json::Value;
use zhucan_face::align::{ARCFACE_112, umeyama, warp_affine};
use zhucan_face::detect::{Detector, Select};
use zhucan_face::embed::cosine;
use zhucan_face::eval;
use zhucan_face::image_io::load_rgb;
use zhucan_face::liveness::{crop_box, int_box};
use zhucan_face::manifest::{FetchSource, Manifest, fetch, verified_or_fetched};
use zhucan_face::matcher::MatchConfig;
use zhucan_face::runtime::{self, SessionOptions};
use zhucan_face::{Error, FacePipeline, Outcome, PipelineConfig};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shared() -> PathBuf {
    repo().join("../shared")
}

fn models_dir() -> PathBuf {
    repo().join("models")
}

fn reference(name: &str) -> PathBuf {
    shared().join("models/reference").join(name)
}

fn faces() -> PathBuf {
    shared().join("testdata/faces")
}

/// Makes sure ONNX Runtime loads and the models are present and verified (fetching them from
/// `../shared/models` once if needed); panics with the fix otherwise.
fn ready() -> PathBuf {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        runtime::init(None).map_err(|e| e.to_string())?;
        verified_or_fetched(&models_dir(), &FetchSource::Dir(shared().join("models")))?;
        Ok(())
    });
    if let Err(msg) = r {
        panic!("face tests cannot run: {msg}");
    }
    models_dir()
}

/// One pipeline per test process (ONNX Runtime sessions are not cheap to build).
fn pipeline() -> std::sync::MutexGuard<'static, FacePipeline> {
    static P: OnceLock<Mutex<FacePipeline>> = OnceLock::new();
    P.get_or_init(|| {
        let dir = ready();
        Mutex::new(FacePipeline::load(PipelineConfig::new(dir)).expect("load pipeline"))
    })
    .lock()
    .unwrap_or_else(|e| e.into_inner())
}

fn expected() -> Value {
    let text =
        std::fs::read_to_string(reference("expected_outputs.json")).expect("expected_outputs.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn points(v: &Value) -> Vec<[f32; 2]> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|p| {
            let p = f32s(p);
            [p[0], p[1]]
        })
        .collect()
}

fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let s: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    s as f64 / a.as_raw().len() as f64
}

fn check_detector_fixture(file: &str) {
    let dir = ready();
    let exp = &expected()[file];
    let m = Manifest::read(&dir).unwrap();
    let spec = m
        .by_file(file)
        .unwrap_or_else(|| panic!("{file} not in the manifest"));
    let mut det = Detector::load(&m, spec, SessionOptions::default()).unwrap();
    let img = load_rgb(&reference("astronaut.png")).unwrap();
    let (dets, pre_nms, sums) = det.detect_unresized(&img).unwrap();
    assert_eq!(
        pre_nms as u64,
        exp["pre_nms_candidates_score_gt_0.6"].as_u64().unwrap(),
        "{file}"
    );
    let want = exp["after_nms_iou_0.3"].as_array().unwrap();
    assert_eq!(dets.len(), want.len(), "{file}: {dets:?}");
    for (d, w) in dets.iter().zip(want) {
        assert_eq!(d.stride as u64, w["stride"].as_u64().unwrap());
        assert_eq!(d.anchor as u64, w["anchor_index"].as_u64().unwrap());
        assert!(
            (d.score - w["score"].as_f64().unwrap() as f32).abs() < 1e-4,
            "{file} score {}",
            d.score
        );
        for (a, b) in d.bbox.iter().zip(f32s(&w["box_xywh"])) {
            assert!((a - b).abs() < 1e-2, "{file} box {:?}", d.bbox);
        }
        for (a, b) in d.landmarks.iter().zip(points(&w["landmarks_xy"])) {
            assert!(
                (a[0] - b[0]).abs() < 1e-2 && (a[1] - b[1]).abs() < 1e-2,
                "{file} landmark {a:?} vs {b:?}"
            );
        }
    }
    let raw = exp["raw_output_checksums"].as_object().unwrap();
    assert_eq!(sums.len(), raw.len());
    for (name, sum) in sums {
        let want = raw[&name]["sum"].as_f64().unwrap();
        assert!(
            (sum - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{file} {name}: sum {sum} vs {want}"
        );
    }
}

#[test]
fn fixture_yunet_2023mar_detections_and_raw_outputs() {
    check_detector_fixture("face_detection_yunet_2023mar.onnx");
}

#[test]
fn fixture_yunet_dynamic_detections_and_raw_outputs() {
    check_detector_fixture("yunet_n_dynamic.onnx");
}

#[test]
fn fixture_similarity_transform_and_aligned_crop() {
    let exp = &expected()["alignment"];
    let lm = points(&exp["landmarks_used"]);
    let template = points(&exp["template_112"]);
    for (a, b) in template.iter().zip(ARCFACE_112) {
        assert!((a[0] - b[0]).abs() < 1e-4 && (a[1] - b[1]).abs() < 1e-4);
    }
    let m = umeyama(&lm, &ARCFACE_112).unwrap();
    let want = exp["similarity_matrix_2x3"].as_array().unwrap();
    for r in 0..2 {
        let row = f32s(&want[r]);
        for c in 0..3 {
            assert!((m[r][c] as f32 - row[c]).abs() < 1e-3, "matrix {m:?}");
        }
    }
    let img = load_rgb(&reference("astronaut.png")).unwrap();
    let mut crop = RgbImage::new(112, 112);
    warp_affine(&img, &m, &mut crop);
    let reference_crop = load_rgb(&reference("astronaut_aligned_112.png")).unwrap();
    let diff = mean_abs_diff(&crop, &reference_crop);
    println!("aligned crop mean |diff| vs reference: {diff:.3} grey levels");
    assert!(diff < 0.5, "aligned crop differs by {diff}");
}

#[test]
fn fixture_embedding_of_aligned_crop() {
    let exp = &expected()["face_recognition_mobilefacenet_192d.onnx"];
    let want = f32s(&exp["embedding_l2_normalized"]);
    let crop = load_rgb(&reference("astronaut_aligned_112.png")).unwrap();
    let mut p = pipeline();
    let got = p.embed_aligned(&crop).unwrap();
    assert_eq!(got.len(), 192);
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!("embedding max |diff| vs reference: {worst:.2e}");
    assert!(worst <= 1e-4, "embedding differs by {worst}");
    // the mirrored crop embeds to nearly the same vector
    let flipped = image::imageops::flip_horizontal(&crop);
    let f = p.embed_aligned(&flipped).unwrap();
    let want_cos = exp["cosine_with_horizontally_flipped_input"]
        .as_f64()
        .unwrap() as f32;
    assert!((cosine(&got, &f) - want_cos).abs() < 1e-3);
}

#[test]
fn fixture_liveness_probabilities_and_crops() {
    let exp = &expected()["anti_spoofing"];
    let files = [
        "anti_spoof_minifasnet_v2_2.7_80x80.onnx",
        "anti_spoof_minifasnet_v1se_4.0_80x80.onnx",
    ];
    let img = load_rgb(&reference("astronaut.png")).unwrap();
    let mut p = pipeline();
    let live = p.liveness_stage();
    assert_eq!(
        live.scales(),
        vec![2.7, 4.0],
        "manifest order of the liveness models"
    );
    let mut patches = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let e = &exp[*file];
        let b: Vec<i64> = e["box_int_xywh"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let ltrb: Vec<u32> = e["crop_ltrb_inclusive"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let cb = crop_box(
            img.width(),
            img.height(),
            [b[0], b[1], b[2], b[3]],
            e["scale"].as_f64().unwrap(),
        )
        .unwrap();
        assert_eq!(vec![cb.left, cb.top, cb.right, cb.bottom], ltrb, "{file}");
        // the detector's float box truncates to the same integer box
        let fbox = f32s(
            &expected()["face_detection_yunet_2023mar.onnx"]["after_nms_iou_0.3"][0]["box_xywh"],
        );
        let fbox = [fbox[0], fbox[1], fbox[2], fbox[3]];
        assert_eq!(int_box(&fbox).to_vec(), b);
        let ours = live.patch(&img, &fbox, i).unwrap();
        let theirs = load_rgb(&reference(e["patch_png"].as_str().unwrap())).unwrap();
        let diff = mean_abs_diff(&ours, &theirs);
        println!("{file}: crop mean |diff| vs reference patch: {diff:.3}");
        assert!(diff < 0.5, "{file}: patch differs by {diff}");
        patches.push(theirs);
    }
    let score = live.check_patches(&patches).unwrap();
    for (i, file) in files.iter().enumerate() {
        let want = f32s(&exp[*file]["prob"]);
        for k in 0..3 {
            assert!(
                (score.per_model[i][k] - want[k]).abs() < 1e-4,
                "{file}: {:?} vs {want:?}",
                score.per_model[i]
            );
        }
    }
    let avg = f32s(&exp["average_prob"]);
    assert!((score.prob[1] - avg[1]).abs() < 1e-4);
    assert!(score.live);
    // and from the frame itself, through our own crops
    let face = p.detector().detect_unresized(&img).unwrap().0[0];
    let from_frame = p.liveness(&img, &face).unwrap();
    assert!(
        (from_frame.prob[1] - avg[1]).abs() < 0.02,
        "{:?}",
        from_frame.prob
    );
}

#[test]
fn whole_pipeline_on_a_camera_frame() {
    let src = load_rgb(&reference("astronaut.png")).unwrap();
    let frame = zhucan_face::bench::frame_640x480(&src);
    let want =
        f32s(&expected()["face_recognition_mobilefacenet_192d.onnx"]["embedding_l2_normalized"]);
    let mut p = pipeline();
    let r = p.process(&frame).unwrap();
    assert_eq!(r.faces, 1);
    let q = r.quality.unwrap();
    assert_eq!(q.rejection, None, "{q:?}");
    assert!(r.liveness.as_ref().unwrap().live);
    let Outcome::Embedded(e) = r.outcome else {
        panic!("not embedded: {:?}", r.outcome)
    };
    let c = cosine(&e, &want);
    println!("rescaled frame vs reference embedding: cosine {c:.3}");
    assert!(c > 0.9);
    // a blank frame has no face
    let blank = RgbImage::from_pixel(640, 480, image::Rgb([90, 90, 90]));
    assert_eq!(p.process(&blank).unwrap().outcome, Outcome::NoFace);
}

#[test]
fn kiosk_frames_live_and_print_attack_in_both_stage_orders() {
    let d = faces().join("spoof/nuaa");
    let live = load_rgb(&d.join("ClientRaw/0002/0002_01_00_01_150.jpg")).unwrap();
    let print = load_rgb(&d.join("ImposterRaw/0002/0002_01_01_02_0.jpg")).unwrap();
    assert_eq!(live.dimensions(), (640, 480));
    let mut p = pipeline();
    let mut embeddings = Vec::new();
    for parallel in [true, false] {
        p.set_parallel_stages(parallel);
        let r = p.process(&live).unwrap();
        let Outcome::Embedded(e) = r.outcome else {
            panic!("live frame: {:?}", r.outcome)
        };
        assert!(r.timings.wall > std::time::Duration::ZERO);
        embeddings.push(e);
        let r = p.process(&print).unwrap();
        assert_eq!(
            r.outcome,
            Outcome::Spoof,
            "print attack, parallel={parallel}"
        );
        assert!(r.liveness.unwrap().prob[1] < 0.5);
    }
    p.set_parallel_stages(true);
    assert_eq!(embeddings[0], embeddings[1]);
}

#[test]
fn exif_orientation_is_applied() {
    // stored 640x480 sideways with Orientation = 6
    let img = load_rgb(&faces().join("spoof/silentface/image_T1.jpg")).unwrap();
    assert!(img.height() > img.width(), "{:?}", img.dimensions());
    let mut p = pipeline();
    let face = p
        .detect_one(&img, Select::Largest)
        .unwrap()
        .expect("upright face found");
    // upright: eyes above the mouth
    assert!(face.landmarks[0][1] < face.landmarks[3][1]);
}

#[test]
fn lfw_verification_auc() {
    let mut p = pipeline();
    let d = faces();
    let r = eval::verify(
        &mut p,
        &d.join("lfw/pairs.tsv"),
        &d,
        eval::Templates::FlipAveraged,
    )
    .unwrap();
    println!("{r}");
    assert_eq!(r.pairs, 498);
    assert_eq!(r.failures_to_detect, 0);
    assert!(r.auc >= 0.99, "AUC {}", r.auc);
    assert!(r.best_accuracy >= 0.98);
}

/// First photo of each identity enrolled, the rest probes; every third identity (sorted) held
/// out entirely as never-enrolled distractors.
fn write_roles(dir: &Path) -> PathBuf {
    let tsv = eval::Tsv::read(&faces().join("lfw/images.tsv")).unwrap();
    let groups = eval::group_by_identity(&tsv).unwrap();
    let mut out = String::from("path\tidentity\trole\n");
    for (i, (id, paths)) in groups.iter().enumerate() {
        for (k, p) in paths.iter().enumerate() {
            let role = if i % 3 == 0 {
                "distractor"
            } else if k == 0 {
                "gallery"
            } else {
                "probe"
            };
            out.push_str(&format!("{p}\t{id}\t{role}\n"));
        }
    }
    let path = dir.join("roles.tsv");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn lfw_identification_rank1_with_first_photo_enrolment() {
    let tmp = tempfile::tempdir().unwrap();
    let roles = write_roles(tmp.path());
    let mut p = pipeline();
    let cfg = MatchConfig::default();
    let r = eval::identify(&mut p, &roles, &faces(), &cfg, Default::default()).unwrap();
    println!("{r}");
    assert_eq!(
        (r.gallery_residents, r.mated_probes, r.nonmated_probes),
        (20, 70, 44)
    );
    // --holdout-every 3 holds out the same identities as the roles file
    let opts = eval::IdentifyOptions {
        holdout_every: Some(3),
        ..Default::default()
    };
    let h = eval::identify(
        &mut p,
        &faces().join("lfw/images.tsv"),
        &faces(),
        &cfg,
        opts,
    )
    .unwrap();
    assert_eq!(
        (
            h.gallery_residents,
            h.mated_probes,
            h.nonmated_probes,
            h.default_fnir
        ),
        (20, 70, 44, r.default_fnir)
    );
    assert!(r.rank1 >= 0.9, "rank-1 {}", r.rank1);
    // the default open-set rule lets none of the 44 never-enrolled faces in
    assert_eq!(r.default_fpir, 0.0);
    // and all 30 identities enrolled, without a role column (first photo = gallery)
    let r = eval::identify(
        &mut p,
        &faces().join("lfw/images.tsv"),
        &faces(),
        &cfg,
        Default::default(),
    )
    .unwrap();
    println!("{r}");
    assert_eq!((r.gallery_residents, r.mated_probes), (30, 104));
    assert!(r.rank1 >= 0.9, "rank-1 {}", r.rank1);
}

#[test]
fn flip_averaged_templates_miss_fewer_enrolled_faces() {
    let mut p = pipeline();
    let cfg = MatchConfig::default();
    let images = faces().join("lfw/images.tsv");
    let fnir = |p: &mut FacePipeline, templates, holdout_every| {
        let opts = eval::IdentifyOptions {
            templates,
            holdout_every,
            ..Default::default()
        };
        let r = eval::identify(p, &images, &faces(), &cfg, opts).unwrap();
        assert_eq!(r.default_fpir, 0.0);
        (r.default_fnir * r.mated_probes as f64).round() as usize
    };
    for holdout in [None, Some(3)] {
        let flip = fnir(&mut p, eval::Templates::FlipAveraged, holdout);
        let plain = fnir(&mut p, eval::Templates::Plain, holdout);
        println!("holdout {holdout:?}: missed {flip} with flip-averaged templates, {plain} plain");
        assert!(flip < plain, "holdout {holdout:?}: {flip} vs {plain}");
    }
}

#[test]
fn cohort_normalisation_applies_only_to_a_large_enough_cohort() {
    let mut p = pipeline();
    let cfg = MatchConfig::default();
    let images = faces().join("lfw/images.tsv");
    let run = |p: &mut FacePipeline, cohort| {
        let opts = eval::IdentifyOptions {
            cohort,
            holdout_every: Some(3),
            ..Default::default()
        };
        eval::identify(p, &images, &faces(), &cfg, opts).unwrap()
    };
    // the kiosk's default: a 20-resident gallery is too small a cohort, scores stay raw
    let raw = run(&mut p, eval::CohortChoice::Kiosk);
    assert_eq!(raw.normalised, 0);
    // every other listed face (100+ of them) is large enough for every probe
    let norm = run(&mut p, eval::CohortChoice::Others);
    println!("{norm}");
    assert_eq!(norm.normalised, norm.mated_probes + norm.nonmated_probes);
    assert_eq!(
        norm.rank1, raw.rank1,
        "normalisation does not reorder residents"
    );
    assert_eq!(norm.default_fpir, 0.0);
    assert_ne!(norm.max_nonmated, raw.max_nonmated);
}

/// Sequences of the spoof samples: NUAA subject 0002's live webcam session and print attacks,
/// and the Silent-Face subject's printed photo and screen replay (made into sequences), with
/// both subjects enrolled from a live frame.
fn write_attack_visits(dir: &Path) -> PathBuf {
    let nuaa = "spoof/nuaa";
    let mut out = String::from("path\tidentity\trole\tvisit\n");
    out.push_str(&format!(
        "{nuaa}/ClientRaw/0002/0002_01_00_01_85.jpg\tnuaa-0002\tgallery\t\n"
    ));
    out.push_str("spoof/silentface/image_T1.jpg\tsilentface\tgallery\t\n");
    for f in ["14", "150", "496", "319"] {
        out.push_str(&format!(
            "{nuaa}/ClientRaw/0002/0002_01_00_01_{f}.jpg\tnuaa-0002\tprobe\tlive\n"
        ));
    }
    for f in ["00_01", "01_02", "02_02", "03_02", "04_02"] {
        out.push_str(&format!(
            "{nuaa}/ImposterRaw/0002/0002_01_{f}_0.jpg\tnuaa-0002\tattack\tprint\n"
        ));
    }
    out.push_str("spoof/silentface/image_F1.jpg\tsilentface\tattack\t\n");
    out.push_str("spoof/silentface/image_F2.jpg\tsilentface\tattack\t\n");
    let path = dir.join("visits.tsv");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn fusion_accepts_the_live_session_and_refuses_prints_and_the_screen_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let visits = write_attack_visits(tmp.path());
    let mut p = pipeline();
    let cfg = MatchConfig::default();
    let opts = |liveness| eval::SequenceOptions {
        frames: 12,
        liveness_threshold: Some(liveness),
        ..Default::default()
    };
    let r = eval::sequences(&mut p, &visits, &faces(), &cfg, opts(0.5)).unwrap();
    println!("{r}");
    assert_eq!((r.mated, r.attacks, r.real, r.synthetic), (1, 3, 2, 2));
    assert_eq!(r.fusion.fnir, 0.0, "the live session is settled");
    assert_eq!(r.fusion.attacks_accepted, 0.0);
    assert!(r.still_yaw_wander < r.rule.min_turn_deg);
    // Suppose the liveness models were fooled by every attack (threshold 0: any face passes,
    // with the probability the models gave it). Frame by frame and by voting the attacks are
    // then accepted as the enrolled subjects; the kiosk's rule asks a face the models were
    // unsure of to turn its head, and a picture on paper or a screen cannot.
    let r = eval::sequences(&mut p, &visits, &faces(), &cfg, opts(0.0)).unwrap();
    println!("{r}");
    assert!(r.first_frame.attacks_accepted > 0.0 && r.voting.attacks_accepted > 0.0);
    assert_eq!(r.fusion.attacks_accepted, 0.0);
    assert!(r.challenged >= 1);
    assert_eq!(
        r.fusion.fnir, 0.0,
        "live faces are confident: not challenged"
    );
}

#[test]
fn fusion_of_synthetic_sequences_misses_no_more_than_voting() {
    let mut p = pipeline();
    let cfg = MatchConfig::default();
    let opts = eval::SequenceOptions {
        identify: eval::IdentifyOptions {
            holdout_every: Some(3),
            ..Default::default()
        },
        quality_gate: false,
        ..Default::default()
    };
    let r = eval::sequences(
        &mut p,
        &faces().join("lfw/images.tsv"),
        &faces(),
        &cfg,
        opts,
    )
    .unwrap();
    println!("{r}");
    assert_eq!((r.mated, r.nonmated, r.synthetic), (70, 44, 114));
    assert!(r.fusion.fnir <= r.voting.fnir, "{r}");
    assert!(r.fusion.fnir <= r.first_frame.fnir, "{r}");
    assert_eq!((r.fusion.fpir, r.voting.fpir), (0.0, 0.0));
    assert!(r.still_yaw_wander < r.rule.min_turn_deg, "{r}");
}

#[test]
fn spoof_samples_rejected_and_live_accepted() {
    let mut p = pipeline();
    let d = faces();
    let r = eval::liveness(&mut p, &d.join("spoof/labels.tsv"), &d).unwrap();
    println!("{r}");
    assert_eq!(r.samples.len(), 13);
    for s in &r.samples {
        assert!(s.score.is_some(), "no face in {}", s.path);
        assert_eq!(s.accepted, s.live_label, "{} scored {:?}", s.path, s.score);
    }
    assert_eq!((r.apcer, r.bpcer), (0.0, 0.0));
}

#[test]
fn live_samples_pass_the_quality_gate() {
    let mut p = pipeline();
    let d = faces();
    let q = eval::quality(&mut p, &d.join("spoof/labels.tsv"), &d).unwrap();
    println!("{q}");
    let labels = eval::Tsv::read(&d.join("spoof/labels.tsv")).unwrap();
    let mut live = 0;
    for (row, (path, report)) in labels.rows.iter().zip(&q.rows) {
        assert_eq!(&row.1[0], path);
        if row.1[1] == "live" {
            live += 1;
            let r = report.expect("face found");
            assert_eq!(r.rejection, None, "{path}: {r:?}");
        }
    }
    assert_eq!(live, 6);
}

#[test]
fn missing_or_altered_model_is_a_clear_error() {
    ready();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        models_dir().join("manifest.tsv"),
        tmp.path().join("manifest.tsv"),
    )
    .unwrap();
    let err = FacePipeline::load(PipelineConfig::new(tmp.path()))
        .err()
        .expect("must fail");
    assert!(matches!(err, Error::ModelMissing { .. }), "{err}");
    assert!(
        err.to_string().contains("zhucan-kiosk models fetch"),
        "{err}"
    );
    let m = Manifest::read(tmp.path()).unwrap();
    for spec in &m.models {
        std::fs::write(tmp.path().join(&spec.file), b"not a model").unwrap();
    }
    let err = FacePipeline::load(PipelineConfig::new(tmp.path()))
        .err()
        .expect("must fail");
    assert!(matches!(err, Error::ModelAltered { .. }), "{err}");
    assert!(err.to_string().contains("sha256"), "{err}");
    // fetch repairs the folder from the shared copy
    for spec in &m.models {
        std::fs::remove_file(tmp.path().join(&spec.file)).unwrap();
    }
    let done = fetch(tmp.path(), &FetchSource::Dir(shared().join("models"))).unwrap();
    assert_eq!(done.len(), m.models.len());
    Manifest::load_verified(tmp.path()).unwrap();
}

#[test]
fn a_cohort_file_built_from_photos_normalises_identification() {
    let tmp = tempfile::tempdir().unwrap();
    let mut p = pipeline();
    let cfg = MatchConfig::default();
    let images = faces().join("lfw/images.tsv");
    let (cohort, missed) = eval::build_cohort(&mut p, &images, &faces()).unwrap();
    assert_eq!((cohort.len(), cohort.dim(), missed), (134, 192, 0));
    let path = tmp.path().join("cohort.txt");
    cohort.write(&path).unwrap();
    let opts = eval::IdentifyOptions {
        cohort_file: Some(path),
        holdout_every: Some(3),
        ..Default::default()
    };
    let r = eval::identify(&mut p, &images, &faces(), &cfg, opts).unwrap();
    println!("{r}");
    assert!(r.cohort.contains("134 faces"), "{}", r.cohort);
    assert_eq!(r.normalised, r.mated_probes + r.nonmated_probes);
}
