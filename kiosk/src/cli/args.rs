//! The command line's words: what `zhucan-kiosk --help` shows, parsed by clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "zhucan-kiosk",
    version,
    about = "Zhucan canteen kiosk: run the kiosk, register it, face pipeline tools"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Models folder holding manifest.tsv (default: the repo's models/).
    #[arg(long, global = true, env = "ZHUCAN_MODELS_DIR")]
    pub models: Option<PathBuf>,
    /// ONNX Runtime shared library (default: env ZHUCAN_ORT_LIB / ORT_DYLIB_PATH, beside the
    /// binary, then <repo>/.cache/onnxruntime/).
    #[arg(long, global = true)]
    pub ort_lib: Option<PathBuf>,
    /// ONNX Runtime intra-op threads.
    #[arg(long, global = true, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Model files: fetch and verify.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Detect faces in an image; JSON to stdout.
    Detect {
        image: PathBuf,
        #[arg(long, value_enum, default_value_t = Which::All)]
        select: Which,
    },
    /// Embed the face in an image; JSON to stdout.
    Embed {
        image: PathBuf,
        #[arg(long, value_enum, default_value_t = Which::Largest)]
        select: Which,
        /// Average with the mirrored crop's embedding.
        #[arg(long)]
        flip: bool,
    },
    /// Evaluate on labelled image lists.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// A cohort of never-enrolled faces for score normalisation (the kiosk's `cohort` setting).
    Cohort {
        #[command(subcommand)]
        command: CohortCommand,
    },
    /// Per-stage latency and 1:N search time.
    Bench {
        /// Image to build the 640x480 frame from (default: ../shared/models/reference/astronaut.png).
        #[arg(long)]
        image: Option<PathBuf>,
        #[arg(long, default_value_t = 200)]
        runs: usize,
        /// Gallery sizes for the 1:N search.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1000,10000,100000,1000000"
        )]
        sizes: Vec<usize>,
        /// Only the 1:N search part (no models needed).
        #[arg(long)]
        search_only: bool,
        /// ONNX Runtime configurations to compare: thread count, `spin` suffix = spinning on.
        #[arg(long, value_delimiter = ',', default_value = "1,2,2spin")]
        configs: Vec<String>,
    },
    /// Run the kiosk: face loop, outbox and sync, and the screen (see `kiosk::config`).
    Run {
        /// The kiosk's JSON configuration file.
        #[arg(long, env = "ZHUCAN_KIOSK_CONFIG")]
        config: PathBuf,
    },
    /// Register this device with the server using a one-time enrolment code: generates the
    /// kiosk's Ed25519 key pair (private key in the secret file) and sends the public key.
    EnrolKiosk {
        #[arg(long)]
        server: String,
        #[arg(long)]
        code: String,
        /// The kiosk's data folder (database and secret file).
        #[arg(long, default_value = "data/kiosk")]
        data: PathBuf,
        /// PEM certificate or CA of the server (https): copied into the data folder, and from
        /// then on the kiosk trusts only it.
        #[arg(long)]
        server_ca: Option<PathBuf>,
    },
    /// Rotate this kiosk's signing key and credential. Stop the kiosk first (it holds the data
    /// folder's lock). Interrupted? Run it again to resume with the same new key.
    RotateKey {
        /// The kiosk's data folder.
        #[arg(long, default_value = "data/kiosk")]
        data: PathBuf,
        /// Drop an unfinished rotation and keep the current key and credential.
        #[arg(long)]
        abandon: bool,
    },
    /// Enrol a resident's face from photos (e.g. at the registration desk, with the resident's
    /// signed consent), through the same quality and liveness checks as the counter, and upload
    /// the templates to the server for this kiosk's canteen.
    EnrolPhoto {
        /// The kiosk's data folder (its registration and secret file).
        #[arg(long, default_value = "data/kiosk")]
        data: PathBuf,
        #[arg(long)]
        resident: i64,
        /// The resident also consented to their template being used at other canteens.
        #[arg(long)]
        share: bool,
        /// Who recorded the consent.
        #[arg(long, default_value = "registration-desk")]
        by: String,
        /// 1 to 5 photos of the resident.
        #[arg(required = true, num_args = 1..=5)]
        images: Vec<PathBuf>,
    },
    /// Time from the first frame of a face to the settlement committed in the outbox.
    BenchCheckin {
        /// `path<TAB>identity` list (default: ../shared/testdata/faces/lfw/images.tsv).
        #[arg(long)]
        images: Option<PathBuf>,
        /// Folder the list's paths are relative to (default: the list's parent's parent).
        #[arg(long)]
        root: Option<PathBuf>,
        #[arg(long, default_value_t = 20)]
        sequences: usize,
        #[arg(long, default_value_t = 10)]
        fps: u32,
        #[arg(long, default_value_t = 3)]
        k: usize,
        #[arg(long, default_value_t = 5)]
        n: usize,
        /// Liveness threshold (LFW news photos are not camera frames; see the face README).
        #[arg(long)]
        liveness_threshold: Option<f32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Copy (or download) the models listed in the manifest and verify their sha256.
    Fetch {
        /// Folder to copy from (default: ../shared/models next to the repo).
        #[arg(long, conflicts_with = "base_url")]
        from: Option<PathBuf>,
        /// Download `<URL>/<file>` with curl instead.
        #[arg(long)]
        base_url: Option<String>,
        /// Destination folder holding manifest.tsv (default: --models, i.e. the repo's models/).
        #[arg(long)]
        dest: Option<PathBuf>,
    },
    /// Verify the models folder against the manifest.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum CohortCommand {
    /// Embed the face nearest the centre of every `path` in a TSV list and write the embeddings
    /// (no images) to a cohort file. Use photos of people who will never be enrolled, from a
    /// collection licensed for it; 100 faces at least, a few thousand is better.
    Build {
        #[arg(long)]
        images: PathBuf,
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// 1:1 verification on `img1 img2 same [fold]` pairs.
    Verify {
        #[arg(long)]
        pairs: PathBuf,
        #[arg(long)]
        root: PathBuf,
        /// Write `img1 img2 same score` TSV here.
        #[arg(long)]
        scores_out: Option<PathBuf>,
        /// Embed img1 as an enrolment template (flip-averaged) rather than like img2 (a frame).
        #[arg(long)]
        template_img1: bool,
    },
    /// Open-set 1:N identification on `path identity role`.
    Identify {
        #[arg(long)]
        images: PathBuf,
        #[arg(long)]
        root: PathBuf,
        /// Override the match threshold at 200 templates (default 0.62).
        #[arg(long)]
        anchor_threshold: Option<f32>,
        /// Override the required lead over the second-best resident (default 0.05).
        #[arg(long)]
        margin: Option<f32>,
        #[command(flatten)]
        gallery: GalleryArgs,
    },
    /// Per-visit FNIR / FPIR of several frames: first frame, voting 3 of 5, fusion (the kiosk's
    /// rule) on `path identity [role] [visit]`; photos without a visit become synthetic
    /// sequences (small shifts, scale and brightness changes).
    Sequences {
        #[arg(long)]
        images: PathBuf,
        #[arg(long)]
        root: PathBuf,
        /// Frames of a synthetic sequence.
        #[arg(long, default_value_t = 5)]
        frames: usize,
        /// Run liveness with this threshold (default: not run; every face counts as live — right
        /// for news photos, wrong for camera frames).
        #[arg(long)]
        liveness_threshold: Option<f32>,
        /// Live probability below which the visit must turn the head (default 0.97).
        #[arg(long)]
        challenge_below: Option<f32>,
        /// Do not refuse the frames the quality gate refuses (photos cannot be asked to face the
        /// screen; the kiosk's camera frames can).
        #[arg(long)]
        no_quality_gate: bool,
        #[command(flatten)]
        gallery: GalleryArgs,
    },
    /// Quality-gate measurements (size, brightness, sharpness, pose) on `path ...` images.
    Quality {
        #[arg(long)]
        images: PathBuf,
        #[arg(long)]
        root: PathBuf,
    },
    /// Presentation-attack detection on `path label`.
    Liveness {
        #[arg(long)]
        labels: PathBuf,
        #[arg(long)]
        root: PathBuf,
        /// Live-probability threshold (default 0.5).
        #[arg(long)]
        threshold: Option<f32>,
    },
}

/// How `eval identify` and `eval sequences` build the gallery.
#[derive(Debug, Clone, clap::Args)]
pub struct GalleryArgs {
    /// Without a `role` column: every K-th identity (in name order) is never enrolled and its
    /// photos are distractors (non-mated probes).
    #[arg(long, value_name = "K")]
    pub holdout_every: Option<usize>,
    /// Enrol each gallery photo like a frame instead of as a flip-averaged template (the rule
    /// before).
    #[arg(long)]
    pub plain_templates: bool,
    /// Normalise scores against this cohort file (`zhucan-kiosk cohort build`), as a kiosk
    /// configured with one; default: rows with role `cohort`, else the gallery's other residents.
    #[arg(long, conflicts_with = "cohort_others")]
    pub cohort: Option<PathBuf>,
    /// Normalise each probe against every listed face of another identity (a stand-in for a
    /// shipped cohort on a small labelled set).
    #[arg(long)]
    pub cohort_others: bool,
}

/// Face choice on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Which {
    All,
    Largest,
    Centre,
}
