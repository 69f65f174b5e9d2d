//! `zhucan-face`: the kiosk's face pipeline, its evaluation and benchmark, and loading images from
//! files — the only crate that depends on `ort` and `ndarray` (Cargo enforces it: nothing else
//! lists them).
//!
//! [`FacePipeline`] owns the ONNX Runtime sessions (detector, liveness models, embedder) and
//! preallocated buffers; a frame goes detect (largest face) → quality gate → liveness → align →
//! embed, and the embedding is matched 1:N against a [`matcher::Gallery`]. Pre- and
//! post-processing (letterbox, decode, NMS, Umeyama, warp, resize, L2, cosine, matching) are plain
//! functions in the submodules with unit tests; the models, their tensors and preprocessing come
//! from the manifest ([`manifest`]), and the ONNX Runtime library is found by [`runtime`].
//! Defaults and how they were calibrated: `face/README.md`.

pub mod align;
pub mod bench;
pub mod detect;
pub mod embed;
pub mod eval;
pub mod image_io;
pub mod imgproc;
pub mod liveness;
pub mod locate;
pub mod manifest;
pub mod matcher;
pub mod quality;
pub mod runtime;
pub mod visit;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::RgbImage;

use self::align::Affine;
use self::detect::{Detection, Detector, DetectorConfig, Select};
use self::embed::Embedder;
use self::liveness::{Liveness, LivenessScore};
use self::manifest::{Manifest, ModelSpec, Role};
use self::matcher::{Gallery, Identification, MatchConfig};
use self::quality::{QualityConfig, QualityReport, Reason};
use self::runtime::SessionOptions;

/// Errors of the face layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ONNX Runtime library could not be found or loaded (message lists what was tried).
    #[error("{0}")]
    Runtime(String),
    #[error("ONNX Runtime: {0}")]
    Ort(#[from] ort::Error),
    #[error("model manifest {}: line {line}: {message}", path.display())]
    Manifest {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("model file {} is missing; run `zhucan-kiosk models fetch` (or pass --models DIR)", path.display())]
    ModelMissing { path: PathBuf },
    #[error(
        "model file {} does not match the manifest: expected sha256 {expected} ({expected_bytes} bytes), \
         found {found} ({found_bytes} bytes); run `zhucan-kiosk models fetch` to restore it",
        path.display()
    )]
    ModelAltered {
        path: PathBuf,
        expected: String,
        expected_bytes: u64,
        found: String,
        found_bytes: u64,
    },
    #[error("model {file}: {message}")]
    Model { file: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("models fetch: {0}")]
    Fetch(String),
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn model_error(spec: &ModelSpec, message: String) -> Error {
    Error::Model {
        file: spec.file.clone(),
        message,
    }
}

/// Everything configurable about the pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Folder holding `manifest.tsv` and the model files.
    pub models_dir: PathBuf,
    /// Explicit ONNX Runtime library (else env / beside the binary / repo cache).
    pub ort_lib: Option<PathBuf>,
    pub session: SessionOptions,
    pub detector: DetectorConfig,
    /// Which face to keep: largest for the kiosk.
    pub select: Select,
    pub quality: QualityConfig,
    /// Live if the averaged live probability is >= this.
    pub liveness_threshold: f32,
    pub matching: MatchConfig,
    /// Average the embedding with that of the mirrored crop.
    pub flip: bool,
    /// Run liveness on a second thread while this one aligns and embeds (each session still has
    /// one intra-op thread). The embedding of a face that fails liveness is discarded, never
    /// returned. On the 2-core kiosks this takes the longer of the two branches instead of their
    /// sum off every frame.
    pub parallel_stages: bool,
}

impl PipelineConfig {
    /// Defaults with the given models folder.
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            ort_lib: None,
            session: SessionOptions::default(),
            detector: DetectorConfig::default(),
            select: Select::Largest,
            quality: QualityConfig::default(),
            liveness_threshold: liveness::DEFAULT_THRESHOLD,
            matching: MatchConfig::default(),
            flip: false,
            parallel_stages: true,
        }
    }
}

/// Time spent in each stage of one frame (zero for stages not reached).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimings {
    pub detect: Duration,
    pub quality: Duration,
    pub liveness: Duration,
    pub align: Duration,
    pub embed: Duration,
    /// Wall-clock time of the whole frame (less than the sum of the stages when liveness runs in
    /// parallel with align + embed).
    pub wall: Duration,
}

impl StageTimings {
    /// Sum of the stage times (CPU work, whatever ran in parallel).
    pub fn total(&self) -> Duration {
        self.detect + self.quality + self.liveness + self.align + self.embed
    }
}

/// How a frame ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// No face found.
    NoFace,
    /// The quality gate said no; tell the resident why.
    Rejected(Reason),
    /// Not a live face (print, screen…).
    Spoof,
    /// A live face of acceptable quality, embedded (unit length).
    Embedded(Vec<f32>),
}

/// Result of [`FacePipeline::process`].
#[derive(Clone, Debug, PartialEq)]
pub struct FrameResult {
    pub outcome: Outcome,
    pub face: Option<Detection>,
    /// Number of faces detected.
    pub faces: usize,
    pub quality: Option<QualityReport>,
    pub liveness: Option<LivenessScore>,
    pub timings: StageTimings,
}

impl FrameResult {
    /// Matches an embedded face against a gallery (`None` when nothing was embedded).
    pub fn identify(&self, gallery: &Gallery, cfg: &MatchConfig) -> Option<Identification> {
        match &self.outcome {
            Outcome::Embedded(e) => Some(gallery.identify(e, cfg)),
            _ => None,
        }
    }
}

/// The loaded models and their buffers.
pub struct FacePipeline {
    config: PipelineConfig,
    manifest: Manifest,
    detector: Detector,
    liveness: Liveness,
    embedder: Embedder,
    aligned: RgbImage,
}

impl FacePipeline {
    /// Loads ONNX Runtime and every model named by the manifest, verifying checksums.
    pub fn load(config: PipelineConfig) -> Result<Self, Error> {
        runtime::init(config.ort_lib.as_deref())?;
        // each stage verifies its own file's size and sha256 as it reads it
        let manifest = Manifest::read(&config.models_dir)?;
        let mut detector =
            Detector::load(&manifest, manifest.one(Role::Detector)?, config.session)?;
        detector.set_config(config.detector);
        let mut liveness =
            Liveness::load(&manifest, &manifest.all(Role::Liveness), config.session)?;
        liveness.set_threshold(config.liveness_threshold);
        let embedder = Embedder::load(&manifest, manifest.one(Role::Embedder)?, config.session)?;
        let (h, w) = embedder.input_hw();
        Ok(Self {
            config,
            manifest,
            detector,
            liveness,
            embedder,
            aligned: RgbImage::new(w as u32, h as u32),
        })
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Switches liveness-in-parallel-with-embedding on or off (see [`PipelineConfig`]).
    pub fn set_parallel_stages(&mut self, on: bool) {
        self.config.parallel_stages = on;
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn models_dir(&self) -> &Path {
        &self.manifest.dir
    }

    /// Embedding dimension of the loaded embedder.
    pub fn embedding_dim(&self) -> usize {
        self.embedder.dim()
    }

    /// All faces, best score first.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>, Error> {
        self.detector.detect(img)
    }

    /// The face to keep per `how`.
    pub fn detect_one(&mut self, img: &RgbImage, how: Select) -> Result<Option<Detection>, Error> {
        let dets = self.detector.detect(img)?;
        Ok(detect::select(&dets, img.width(), img.height(), how).map(|i| dets[i]))
    }

    /// Quality gate with the configured limits.
    pub fn quality(&self, img: &RgbImage, face: &Detection) -> QualityReport {
        quality::assess(img, face, &self.config.quality)
    }

    /// Liveness of a face.
    pub fn liveness(&mut self, img: &RgbImage, face: &Detection) -> Result<LivenessScore, Error> {
        self.liveness.check(img, &face.bbox)
    }

    /// The liveness stage itself (fixtures, debugging).
    pub fn liveness_stage(&mut self) -> &mut Liveness {
        &mut self.liveness
    }

    /// The detector itself (fixtures, debugging).
    pub fn detector(&mut self) -> &mut Detector {
        &mut self.detector
    }

    /// Aligns a face into the pipeline's crop buffer; returns the crop and matrix.
    pub fn align(
        &mut self,
        img: &RgbImage,
        face: &Detection,
    ) -> Result<(&RgbImage, Affine), Error> {
        let m = align::align(img, &face.landmarks, &mut self.aligned)
            .ok_or_else(|| Error::Invalid("degenerate landmarks".into()))?;
        Ok((&self.aligned, m))
    }

    /// The aligned face crop of the last embedded frame (what an evidence photo keeps).
    pub fn aligned(&self) -> &RgbImage {
        &self.aligned
    }

    /// Embeds an aligned crop.
    pub fn embed_aligned(&mut self, aligned: &RgbImage) -> Result<Vec<f32>, Error> {
        self.embedder.embed(aligned, self.config.flip)
    }

    /// An enrolment template of a detected face: aligned, then embedded flip-averaged (the mean of
    /// the crop's and its mirror image's embeddings), whatever `config.flip` says for frames.
    /// Averaging the mirror evens out lighting from one side and a slight head turn, so the
    /// stored template sits nearer the middle of the person's frames (`eval identify` measures
    /// it). It costs a second embedding, paid once per template, not per frame.
    pub fn template(&mut self, img: &RgbImage, face: &Detection) -> Result<Vec<f32>, Error> {
        align::align(img, &face.landmarks, &mut self.aligned)
            .ok_or_else(|| Error::Invalid("degenerate landmarks".into()))?;
        self.embedder.embed(&self.aligned, true)
    }

    /// The enrolment template of the last frame [`FacePipeline::process`] embedded (its aligned
    /// crop is still in the buffer): see [`FacePipeline::template`].
    pub fn template_of_last_frame(&mut self) -> Result<Vec<f32>, Error> {
        self.embedder.embed(&self.aligned, true)
    }

    /// Align + embed a detected face.
    pub fn embed_face(&mut self, img: &RgbImage, face: &Detection) -> Result<Vec<f32>, Error> {
        align::align(img, &face.landmarks, &mut self.aligned)
            .ok_or_else(|| Error::Invalid("degenerate landmarks".into()))?;
        self.embedder.embed(&self.aligned, self.config.flip)
    }

    /// The kiosk path: detect (largest face) → quality gate → liveness → align → embed.
    pub fn process(&mut self, img: &RgbImage) -> Result<FrameResult, Error> {
        let mut t = StageTimings::default();
        let mut res = FrameResult {
            outcome: Outcome::NoFace,
            face: None,
            faces: 0,
            quality: None,
            liveness: None,
            timings: t,
        };
        let frame_start = Instant::now();
        let start = frame_start;
        let dets = self.detector.detect(img)?;
        let pick = detect::select(&dets, img.width(), img.height(), self.config.select);
        t.detect = start.elapsed();
        res.faces = dets.len();
        let Some(face) = pick.map(|i| dets[i]) else {
            t.wall = frame_start.elapsed();
            res.timings = t;
            return Ok(res);
        };
        res.face = Some(face);

        let start = Instant::now();
        let q = quality::assess(img, &face, &self.config.quality);
        t.quality = start.elapsed();
        res.quality = Some(q);
        if let Some(reason) = q.rejection {
            res.outcome = Outcome::Rejected(reason);
            t.wall = frame_start.elapsed();
            res.timings = t;
            return Ok(res);
        }

        let (live, embedded) = if self.config.parallel_stages {
            let (liveness, embedder, aligned) =
                (&mut self.liveness, &mut self.embedder, &mut self.aligned);
            let flip = self.config.flip;
            std::thread::scope(|s| {
                let live = s.spawn(|| {
                    let start = Instant::now();
                    liveness
                        .check(img, &face.bbox)
                        .map(|l| (l, start.elapsed()))
                });
                let embedded = align_and_embed(img, &face, aligned, embedder, flip, &mut t);
                let live = live
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (live, embedded)
            })
        } else {
            let start = Instant::now();
            let live = self
                .liveness
                .check(img, &face.bbox)
                .map(|l| (l, start.elapsed()));
            // a spoof is not aligned or embedded at all on this path
            let embedded = match &live {
                Ok((l, _)) if l.live => align_and_embed(
                    img,
                    &face,
                    &mut self.aligned,
                    &mut self.embedder,
                    self.config.flip,
                    &mut t,
                ),
                _ => Ok(Vec::new()),
            };
            (live, embedded)
        };
        let (live, live_time) = live?;
        t.liveness = live_time;
        let is_live = live.live;
        res.liveness = Some(live);
        if !is_live {
            res.outcome = Outcome::Spoof;
            t.wall = frame_start.elapsed();
            res.timings = t;
            return Ok(res);
        }
        let e = embedded?;
        res.outcome = Outcome::Embedded(e);
        t.wall = frame_start.elapsed();
        res.timings = t;
        Ok(res)
    }
}

/// Align then embed, recording both stage times.
fn align_and_embed(
    img: &RgbImage,
    face: &Detection,
    aligned: &mut RgbImage,
    embedder: &mut Embedder,
    flip: bool,
    t: &mut StageTimings,
) -> Result<Vec<f32>, Error> {
    let start = Instant::now();
    align::align(img, &face.landmarks, aligned)
        .ok_or_else(|| Error::Invalid("degenerate landmarks".into()))?;
    t.align = start.elapsed();
    let start = Instant::now();
    let e = embedder.embed(aligned, flip)?;
    t.embed = start.elapsed();
    Ok(e)
}
