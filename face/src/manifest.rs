//! The model manifest (`models/manifest.tsv`): which ONNX files make up the face pipeline, their
//! checksums, and everything about their tensors and preprocessing that code must not hard-code.
//!
//! A deployment swaps a detector or embedder of the same kind by editing the manifest: input size,
//! colour order, normalisation mean/std, output names and the embedding dimension are read from it.
//! Every model file is checked against the manifest's size and sha256 when it is loaded
//! ([`Manifest::load_verified`]); `zhucan-kiosk models fetch` ([`fetch`]) copies or downloads the
//! files and checks them the same way.
//!
//! Format: UTF-8 TSV, one header row, one model per row. Columns (in any order, all required):
//! `file sha256 bytes role input input_shape outputs colour mean std embedding_dim params licence
//! source url`. `role` is `detector`, `embedder`, `liveness` (one or more) or `spare` (fetched and
//! verified, not loaded). Shapes are comma-separated with `-1` for a dynamic dimension; `mean`/`std`
//! are three comma-separated numbers in the model's colour order; `params` is `key=value` pairs
//! separated by `;` (e.g. `crop_scale=2.7;live_index=1`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Error;

/// File name of the manifest inside a models folder.
pub const MANIFEST_FILE: &str = "manifest.tsv";

/// What a model does in the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// YuNet-style face detector.
    Detector,
    /// Face embedder taking an aligned crop.
    Embedder,
    /// Presentation-attack (liveness) classifier; several are averaged.
    Liveness,
    /// Listed, fetched and verified, but not loaded.
    Spare,
}

/// Channel order the model expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColourOrder {
    Rgb,
    Bgr,
}

/// One row of the manifest.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub role: Role,
    pub input: String,
    /// NCHW; `-1` marks a dynamic dimension.
    pub input_shape: Vec<i64>,
    pub outputs: Vec<String>,
    pub colour: ColourOrder,
    /// Per channel, in the model's colour order: the tensor value is `(x - mean) / std`.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub embedding_dim: Option<usize>,
    pub params: BTreeMap<String, String>,
    pub licence: String,
    pub source: String,
    pub url: String,
}

impl ModelSpec {
    /// A numeric `params` entry.
    pub fn param_f64(&self, key: &str) -> Option<f64> {
        self.params.get(key).and_then(|v| v.parse().ok())
    }

    /// Input height and width if fixed (`None` for dynamic dimensions).
    pub fn fixed_hw(&self) -> Option<(usize, usize)> {
        match self.input_shape.as_slice() {
            [_, _, h, w] if *h > 0 && *w > 0 => Some((*h as usize, *w as usize)),
            _ => None,
        }
    }
}

/// The parsed manifest plus the folder it came from.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub dir: PathBuf,
    pub models: Vec<ModelSpec>,
}

const COLUMNS: [&str; 15] = [
    "file",
    "sha256",
    "bytes",
    "role",
    "input",
    "input_shape",
    "outputs",
    "colour",
    "mean",
    "std",
    "embedding_dim",
    "params",
    "licence",
    "source",
    "url",
];

impl Manifest {
    /// Reads and parses `<dir>/manifest.tsv` (does not touch the model files).
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            context: format!(
                "cannot read model manifest {} (pass --models DIR pointing at the repo's models/ folder)",
                path.display()
            ),
            source,
        })?;
        let models = parse(&text).map_err(|(line, message)| Error::Manifest {
            path: path.clone(),
            line,
            message,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            models,
        })
    }

    /// Reads the manifest and checks every non-spare model file's size and sha256.
    pub fn load_verified(dir: &Path) -> Result<Self, Error> {
        let m = Self::read(dir)?;
        for spec in m.models.iter().filter(|s| s.role != Role::Spare) {
            m.read_verified(spec)?;
        }
        Ok(m)
    }

    /// Path of a model file.
    pub fn path_of(&self, spec: &ModelSpec) -> PathBuf {
        self.dir.join(&spec.file)
    }

    /// Reads a model file and checks it against the manifest; returns its bytes.
    pub fn read_verified(&self, spec: &ModelSpec) -> Result<Vec<u8>, Error> {
        let path = self.path_of(spec);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::ModelMissing { path });
            }
            Err(source) => {
                return Err(Error::Io {
                    context: format!("cannot read model {}", path.display()),
                    source,
                });
            }
        };
        let found = sha256_hex(&bytes);
        if bytes.len() as u64 != spec.bytes || found != spec.sha256 {
            return Err(Error::ModelAltered {
                path,
                expected: spec.sha256.clone(),
                expected_bytes: spec.bytes,
                found,
                found_bytes: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    /// The single model with a role (detector, embedder).
    pub fn one(&self, role: Role) -> Result<&ModelSpec, Error> {
        let mut it = self.models.iter().filter(|m| m.role == role);
        match (it.next(), it.next()) {
            (Some(m), None) => Ok(m),
            (None, _) => Err(self.invalid(format!("no model with role {role:?}"))),
            (Some(_), Some(_)) => Err(self.invalid(format!(
                "more than one model with role {role:?}; mark the unused one `spare`"
            ))),
        }
    }

    /// All models with a role (liveness).
    pub fn all(&self, role: Role) -> Vec<&ModelSpec> {
        self.models.iter().filter(|m| m.role == role).collect()
    }

    /// The model with this file name, whatever its role.
    pub fn by_file(&self, file: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.file == file)
    }

    fn invalid(&self, message: String) -> Error {
        Error::Manifest {
            path: self.dir.join(MANIFEST_FILE),
            line: 0,
            message,
        }
    }
}

/// Lower-case hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Parses manifest text; errors carry the 1-based line number.
pub fn parse(text: &str) -> Result<Vec<ModelSpec>, (usize, String)> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or((1, "empty manifest".to_string()))?;
    let header: Vec<&str> = header.split('\t').map(str::trim).collect();
    let mut index = BTreeMap::new();
    for col in COLUMNS {
        let i = header
            .iter()
            .position(|h| *h == col)
            .ok_or((1, format!("missing column `{col}`")))?;
        index.insert(col, i);
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        let line_no = n + 1;
        let cells: Vec<&str> = line.split('\t').collect();
        let get = |col: &str| -> Result<&str, (usize, String)> {
            cells
                .get(index[col])
                .map(|s| s.trim())
                .ok_or((line_no, format!("missing cell `{col}`")))
        };
        let err = |m: String| (line_no, m);
        let sha256 = get("sha256")?.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(format!("bad sha256 `{sha256}`")));
        }
        let role = match get("role")? {
            "detector" => Role::Detector,
            "embedder" => Role::Embedder,
            "liveness" => Role::Liveness,
            "spare" => Role::Spare,
            other => return Err(err(format!("unknown role `{other}`"))),
        };
        let colour = match get("colour")?.to_ascii_lowercase().as_str() {
            "rgb" => ColourOrder::Rgb,
            "bgr" => ColourOrder::Bgr,
            other => return Err(err(format!("unknown colour order `{other}`"))),
        };
        let triple = |col: &str| -> Result<[f32; 3], (usize, String)> {
            let v: Vec<f32> = get(col)?
                .split(',')
                .map(|s| s.trim().parse::<f32>())
                .collect::<Result<_, _>>()
                .map_err(|e| err(format!("`{col}`: {e}")))?;
            <[f32; 3]>::try_from(v.as_slice()).map_err(|_| err(format!("`{col}` needs 3 values")))
        };
        let std = triple("std")?;
        if std.contains(&0.0) {
            return Err(err("`std` must not be zero".into()));
        }
        let input_shape: Vec<i64> = get("input_shape")?
            .split(',')
            .map(|s| s.trim().parse::<i64>())
            .collect::<Result<_, _>>()
            .map_err(|e| err(format!("`input_shape`: {e}")))?;
        if input_shape.len() != 4 || input_shape[1] != 3 {
            return Err(err("`input_shape` must be NCHW with 3 channels".into()));
        }
        let embedding_dim = match get("embedding_dim")? {
            "" | "-" => None,
            s => Some(
                s.parse::<usize>()
                    .map_err(|e| err(format!("`embedding_dim`: {e}")))?,
            ),
        };
        if role == Role::Embedder && embedding_dim.is_none() {
            return Err(err("an embedder needs `embedding_dim`".into()));
        }
        let mut params = BTreeMap::new();
        for kv in get("params")?.split(';').filter(|s| !s.trim().is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| err(format!("param `{kv}` is not key=value")))?;
            params.insert(k.trim().to_string(), v.trim().to_string());
        }
        out.push(ModelSpec {
            file: get("file")?.to_string(),
            sha256,
            bytes: get("bytes")?
                .parse()
                .map_err(|e| err(format!("`bytes`: {e}")))?,
            role,
            input: get("input")?.to_string(),
            input_shape,
            outputs: get("outputs")?
                .split(',')
                .map(|s| s.trim().to_string())
                .collect(),
            colour,
            mean: triple("mean")?,
            std,
            embedding_dim,
            params,
            licence: get("licence")?.to_string(),
            source: get("source")?.to_string(),
            url: get("url")?.to_string(),
        });
    }
    Ok(out)
}

/// Where `models fetch` takes files from.
#[derive(Clone, Debug)]
pub enum FetchSource {
    /// A local folder holding the files (e.g. `../shared/models`).
    Dir(PathBuf),
    /// An HTTP(S) base URL; the file name is appended. Uses the system `curl`.
    BaseUrl(String),
}

/// What `fetch` did with one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    AlreadyPresent,
    Copied,
    Downloaded,
}

/// Copies or downloads every model in the manifest at `dest` into `dest`, verifying sha256 and
/// size; files already present and correct are left alone. A file that fails verification is not
/// left behind.
/// The models in `dir`, verified; when they are missing or do not verify, fetched from `source`
/// first (as `zhucan-kiosk models fetch --from` does). The error says both what was wrong and
/// what the fetch said.
pub fn verified_or_fetched(dir: &Path, source: &FetchSource) -> Result<Manifest, String> {
    match Manifest::load_verified(dir) {
        Ok(m) => Ok(m),
        Err(first) => {
            fetch(dir, source).map_err(|e| {
                format!(
                    "models in {} are not usable ({first}) and fetching them failed: {e}; run \
                     `zhucan-kiosk models fetch --from DIR`",
                    dir.display()
                )
            })?;
            Manifest::load_verified(dir).map_err(|e| e.to_string())
        }
    }
}

pub fn fetch(dest: &Path, source: &FetchSource) -> Result<Vec<(String, FetchOutcome)>, Error> {
    let manifest = Manifest::read(dest)?;
    let mut done = Vec::new();
    for spec in &manifest.models {
        if manifest.read_verified(spec).is_ok() {
            done.push((spec.file.clone(), FetchOutcome::AlreadyPresent));
            continue;
        }
        let target = manifest.path_of(spec);
        let tmp = dest.join(format!(".{}.part", spec.file));
        let outcome = match source {
            FetchSource::Dir(dir) => {
                let from = dir.join(&spec.file);
                copy_file(&from, &tmp)?;
                FetchOutcome::Copied
            }
            FetchSource::BaseUrl(base) => {
                let url = format!("{}/{}", base.trim_end_matches('/'), spec.file);
                download(&url, &tmp)?;
                FetchOutcome::Downloaded
            }
        };
        let bytes = read_all(&tmp)?;
        let found = sha256_hex(&bytes);
        if found != spec.sha256 || bytes.len() as u64 != spec.bytes {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::ModelAltered {
                path: target,
                expected: spec.sha256.clone(),
                expected_bytes: spec.bytes,
                found,
                found_bytes: bytes.len() as u64,
            });
        }
        std::fs::rename(&tmp, &target).map_err(|source| Error::Io {
            context: format!("cannot move {} into place", target.display()),
            source,
        })?;
        done.push((spec.file.clone(), outcome));
    }
    Ok(done)
}

fn copy_file(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|source| Error::Io {
            context: format!("cannot copy {} to {}", from.display(), to.display()),
            source,
        })
}

fn read_all(path: &Path) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|source| Error::Io {
            context: format!("cannot read {}", path.display()),
            source,
        })?;
    Ok(buf)
}

fn download(url: &str, to: &Path) -> Result<(), Error> {
    let status = std::process::Command::new("curl")
        .args([
            "--fail",
            "--silent",
            "--show-error",
            "--location",
            "--output",
        ])
        .arg(to)
        .arg(url)
        .status()
        .map_err(|source| Error::Io {
            context: "cannot run `curl` (needed for --base-url downloads)".to_string(),
            source,
        })?;
    if !status.success() {
        let _ = std::fs::remove_file(to);
        return Err(Error::Fetch(format!("curl failed for {url} ({status})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = include_str!("../../models/manifest.tsv");

    #[test]
    fn repo_manifest_parses_and_has_the_pipeline_roles() {
        let models = parse(MANIFEST).unwrap();
        assert_eq!(models.len(), 5);
        let roles = |r| models.iter().filter(|m| m.role == r).count();
        assert_eq!(roles(Role::Detector), 1);
        assert_eq!(roles(Role::Embedder), 1);
        assert_eq!(roles(Role::Liveness), 2);
        let emb = models.iter().find(|m| m.role == Role::Embedder).unwrap();
        assert_eq!(emb.embedding_dim, Some(192));
        assert_eq!(emb.colour, ColourOrder::Rgb);
        assert_eq!(emb.mean, [127.5; 3]);
        assert_eq!(emb.fixed_hw(), Some((112, 112)));
        let det = models.iter().find(|m| m.role == Role::Detector).unwrap();
        assert_eq!(det.fixed_hw(), Some((640, 640)));
        assert_eq!(det.outputs.len(), 12);
        let live: Vec<f64> = models
            .iter()
            .filter(|m| m.role == Role::Liveness)
            .map(|m| m.param_f64("crop_scale").unwrap())
            .collect();
        assert_eq!(live, vec![2.7, 4.0]);
    }

    #[test]
    fn bad_rows_name_their_line() {
        let mut bad = MANIFEST.to_string();
        bad = bad.replacen("\tdetector\t", "\tdetektor\t", 1);
        let (line, msg) = parse(&bad).unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.contains("detektor"), "{msg}");
        let (line, msg) = parse("file\tsha256\n").unwrap_err();
        assert_eq!(line, 1);
        assert!(msg.contains("bytes"), "{msg}");
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
