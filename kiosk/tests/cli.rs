//! The kiosk's command line over the real models: `detect` prints JSON, and a missing ONNX
//! Runtime is a message that says how to install it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use zhucan_face::manifest::{FetchSource, verified_or_fetched};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

fn reference(name: &str) -> PathBuf {
    shared().join("models/reference").join(name)
}

/// The verified models (fetched from `../shared/models` once if needed).
fn ready() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    if let Err(e) = verified_or_fetched(&dir, &FetchSource::Dir(shared().join("models"))) {
        panic!("{e}");
    }
    dir
}

#[test]
fn cli_detect_json_and_missing_runtime_message() {
    let models = ready();
    let bin = env!("CARGO_BIN_EXE_zhucan-kiosk");
    let out = Command::new(bin)
        .args(["--models"])
        .arg(&models)
        .args(["detect", "--select", "largest"])
        .arg(reference("astronaut.png"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["faces"].as_array().unwrap().len(), 1);
    assert!(v["faces"][0]["score"].as_f64().unwrap() > 0.9);

    let out = Command::new(bin)
        .args(["--models"])
        .arg(&models)
        .args([
            "--ort-lib",
            "/nonexistent/libonnxruntime.so.1.31.1",
            "detect",
        ])
        .arg(reference("astronaut.png"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/libonnxruntime.so.1.31.1")
            && err.contains("scripts/install-onnxruntime.sh"),
        "{err}"
    );
}
