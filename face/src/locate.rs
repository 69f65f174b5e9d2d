//! Finding files the kiosk needs at run time (the repository root, the models folder, the ONNX
//! Runtime cache) by walking up from the current directory and from the executable's directory.
//!
//! Tests run with the package directory as their working directory and binaries run from
//! `target/...`, so both starting points are searched; the first hit wins.

use std::path::{Path, PathBuf};

/// Every ancestor of the current directory, then every ancestor of the executable's directory,
/// without duplicates, nearest first.
pub fn search_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut push_ancestors = |start: &Path| {
        for dir in start.ancestors() {
            if !roots.iter().any(|r| r == dir) {
                roots.push(dir.to_path_buf());
            }
        }
    };
    if let Ok(cwd) = std::env::current_dir() {
        push_ancestors(&cwd);
    }
    if let Some(dir) = exe_dir() {
        push_ancestors(&dir);
    }
    roots
}

/// The directory holding the running executable, if it can be determined.
pub fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// The first directory among [`search_roots`] for which `dir.join(relative)` exists, joined.
pub fn find_upwards(relative: &str) -> Option<PathBuf> {
    search_roots()
        .into_iter()
        .map(|dir| dir.join(relative))
        .find(|p| p.exists())
}

/// The repository root: the nearest ancestor holding `models/manifest.tsv`.
pub fn repo_root() -> Option<PathBuf> {
    find_upwards("models/manifest.tsv")
        .and_then(|p| p.parent().and_then(Path::parent).map(Path::to_path_buf))
}

/// The default models folder: `<repo>/models`.
pub fn default_models_dir() -> Option<PathBuf> {
    repo_root().map(|r| r.join("models"))
}

/// The default source for `models fetch`: `<repo>/../shared/models`.
pub fn default_shared_models_dir() -> Option<PathBuf> {
    repo_root()
        .map(|r| r.join("../shared/models"))
        .filter(|p| p.join("MANIFEST.tsv").exists() || p.is_dir())
}
