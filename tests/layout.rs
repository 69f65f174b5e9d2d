//! The layout the code keeps (ARCHITECTURE.md): no import circles between modules, only the
//! face crate depends on ONNX Runtime and ndarray, and no kiosk file over 600 lines.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const CRATES: [&str; 6] = ["domain", "face", "platform", "server", "kiosk", "testkit"];

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let out = Command::new(root().join("scripts/module-cycles"))
        .args(CRATES.map(|c| format!("{c}/src")))
        .current_dir(root())
        .output()
        .expect("run scripts/module-cycles");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "import circles:\n{text}");
    assert!(text.trim_end().ends_with("0 cycles"), "{text}");
}

#[test]
fn only_the_face_crate_lists_ort_and_ndarray() {
    for c in CRATES {
        let manifest = std::fs::read_to_string(root().join(c).join("Cargo.toml")).expect(c);
        for dep in ["ort", "ndarray"] {
            let listed = manifest.lines().any(|l| {
                l.trim_start().starts_with(&format!("{dep}."))
                    || l.trim_start().starts_with(&format!("{dep} ="))
            });
            assert_eq!(listed, c == "face", "{c}/Cargo.toml and {dep}");
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_kiosk_file_is_over_600_lines() {
    let mut files = Vec::new();
    rust_files(&root().join("kiosk/src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).expect("read").lines().count();
            (n > 600).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "{long:?}");
}
