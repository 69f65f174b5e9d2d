//! Finding and initialising the ONNX Runtime shared library, and building sessions.
//!
//! `ort` is built with `load-dynamic`: nothing is linked at build time, and the library is loaded
//! once per process by [`init`]. Lookup order (first hit wins):
//!
//! 1. an explicit path (config / `--ort-lib`), then the environment variables `ZHUCAN_ORT_LIB` and
//!    `ORT_DYLIB_PATH` — an explicit path that does not load is an error, never a silent fallback;
//! 2. `libonnxruntime.so.1.31.1` (or `libonnxruntime.so`) beside the current executable;
//! 3. `<repo>/.cache/onnxruntime/libonnxruntime.so.1.31.1`, found by walking up from the current
//!    directory and from the executable's directory (installed by `scripts/install-onnxruntime.sh`).
//!
//! A missing or too-old library is an [`Error::Runtime`] listing every path tried and the script to
//! run; it never panics.
//!
//! Sessions default to one intra-op thread with spinning off: on the 2-core kiosks two spinning
//! ONNX Runtime threads were measured about 3x slower than one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

use super::Error;

/// The ONNX Runtime release the kiosk is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";
/// File name of the shared library of that release.
pub const ORT_LIB_FILE: &str = "libonnxruntime.so.1.31.1";
/// The script that installs it into the repo cache.
pub const INSTALL_SCRIPT: &str = "scripts/install-onnxruntime.sh";

/// Session threading options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Intra-op threads (1 by default).
    pub intra_threads: usize,
    /// Whether idle ONNX Runtime worker threads spin (off by default).
    pub spinning: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            intra_threads: 1,
            spinning: false,
        }
    }
}

static ENV: Mutex<Option<(Environment, PathBuf)>> = Mutex::new(None);

/// Where a candidate library path came from.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub origin: &'static str,
    pub path: PathBuf,
    /// Explicit candidates must load; implicit ones are skipped when absent.
    pub explicit: bool,
}

/// The library paths [`init`] tries, in order.
pub fn candidates(explicit: Option<&Path>) -> Vec<Candidate> {
    let mut out = Vec::new();
    if let Some(p) = explicit {
        out.push(Candidate {
            origin: "--ort-lib / config",
            path: p.to_path_buf(),
            explicit: true,
        });
    }
    for var in ["ZHUCAN_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            out.push(Candidate {
                origin: var,
                path: PathBuf::from(v),
                explicit: true,
            });
        }
    }
    if let Some(dir) = crate::locate::exe_dir() {
        for name in [ORT_LIB_FILE, "libonnxruntime.so"] {
            out.push(Candidate {
                origin: "beside the executable",
                path: dir.join(name),
                explicit: false,
            });
        }
    }
    for root in crate::locate::search_roots() {
        out.push(Candidate {
            origin: "repo cache",
            path: root.join(".cache/onnxruntime").join(ORT_LIB_FILE),
            explicit: false,
        });
    }
    out
}

/// Loads ONNX Runtime (once per process) and returns the path it was loaded from.
///
/// Later calls return the first library loaded, whatever `explicit` says (ONNX Runtime cannot be
/// unloaded or loaded twice in one process).
pub fn init(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    environment(explicit).map(|(_, p)| p)
}

fn environment(explicit: Option<&Path>) -> Result<(Environment, PathBuf), Error> {
    let mut guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((env, path)) = guard.as_ref() {
        return Ok((env.clone(), path.clone()));
    }
    let mut tried = Vec::new();
    for c in candidates(explicit) {
        let abs = std::path::absolute(&c.path).unwrap_or_else(|_| c.path.clone());
        if !abs.is_file() {
            if c.explicit {
                return Err(runtime_error(
                    &format!("{} ({}) does not exist", abs.display(), c.origin),
                    &tried,
                ));
            }
            tried.push(format!("{} ({}): not found", abs.display(), c.origin));
            continue;
        }
        match ort::init_from(&abs) {
            Ok(builder) => {
                let env = builder
                    .with_name("zhucan-kiosk")
                    .with_telemetry(false)
                    .build()?;
                tracing::info!(path = %abs.display(), "loaded ONNX Runtime");
                *guard = Some((env.clone(), abs.clone()));
                return Ok((env, abs));
            }
            Err(e) => {
                let why = format!("{} ({}): {e}", abs.display(), c.origin);
                if c.explicit {
                    return Err(runtime_error(&why, &tried));
                }
                tried.push(why);
            }
        }
    }
    Err(runtime_error("no usable library found", &tried))
}

fn runtime_error(what: &str, tried: &[String]) -> Error {
    let mut msg = format!("ONNX Runtime {ORT_VERSION} could not be loaded: {what}.");
    if !tried.is_empty() {
        msg.push_str("\nTried:");
        for t in tried {
            msg.push_str("\n  - ");
            msg.push_str(t);
        }
    }
    msg.push_str(&format!(
        "\nFix: run `{INSTALL_SCRIPT}` from the repository root (it puts {ORT_LIB_FILE} into \
         .cache/onnxruntime/), or point --ort-lib / ZHUCAN_ORT_LIB at {ORT_LIB_FILE}."
    ));
    Error::Runtime(msg)
}

fn builder_err(e: ort::Error<SessionBuilder>) -> Error {
    Error::Ort(e.into())
}

/// Builds a session from model bytes (already verified against the manifest).
pub fn session(model: &[u8], opts: SessionOptions) -> Result<Session, Error> {
    let (env, _) = environment(None)?;
    let mut builder = Session::builder(&env)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(builder_err)?
        .with_intra_threads(opts.intra_threads.max(1))
        .map_err(builder_err)?
        .with_inter_threads(1)
        .map_err(builder_err)?
        .with_intra_op_spinning(opts.spinning)
        .map_err(builder_err)?
        .with_inter_op_spinning(false)
        .map_err(builder_err)?;

    Ok(builder.commit_from_memory(model)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_comes_first_and_cache_is_searched() {
        let c = candidates(Some(Path::new("/nowhere/libonnxruntime.so")));
        assert_eq!(c[0].path, Path::new("/nowhere/libonnxruntime.so"));
        assert!(c[0].explicit);
        assert!(c.iter().any(|c| {
            c.path
                .ends_with(".cache/onnxruntime/libonnxruntime.so.1.31.1")
        }));
    }

    #[test]
    fn missing_library_error_names_the_script() {
        let e = runtime_error(
            "no usable library found",
            &["/x (repo cache): not found".into()],
        );
        let s = e.to_string();
        assert!(
            s.contains(INSTALL_SCRIPT) && s.contains("/x (repo cache)"),
            "{s}"
        );
    }
}
