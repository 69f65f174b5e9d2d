//! The command line of `zhucan-kiosk` (parsing with clap, then calls into the library): `models
//! fetch`, `detect`, `embed`, `eval verify|identify|liveness`, `bench`, and the kiosk itself: `run`,
//! `enrol-kiosk`, `rotate-key`, `enrol-photo`, `bench-checkin`.

use std::path::{Path, PathBuf};

mod args;

pub use args::{Cli, CohortCommand, Command, Common, EvalCommand, ModelsCommand, Which};
use serde_json::json;

use zhucan_face::detect::{Detection, Select};
use zhucan_face::manifest::{self, FetchSource};
use zhucan_face::{self as face, FacePipeline, PipelineConfig};
use zhucan_face::{bench, eval, image_io, locate};

/// Prints a line to stdout; a closed pipe (`| head`) ends output quietly instead of panicking.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// Errors at the command-line layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Eval(#[from] eval::Error),
    #[error(transparent)]
    Face(#[from] face::Error),
    #[error(transparent)]
    Image(#[from] image_io::Error),
    #[error(transparent)]
    Kiosk(#[from] crate::run::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    BenchCheckin(#[from] crate::bench_checkin::Error),
    #[error("{0}")]
    Usage(String),
}

fn templates(plain: bool) -> eval::Templates {
    if plain {
        eval::Templates::Plain
    } else {
        eval::Templates::FlipAveraged
    }
}

fn identify_options(g: &args::GalleryArgs) -> eval::IdentifyOptions {
    eval::IdentifyOptions {
        templates: templates(g.plain_templates),
        holdout_every: g.holdout_every,
        cohort: if g.cohort_others {
            eval::CohortChoice::Others
        } else {
            eval::CohortChoice::Kiosk
        },
        cohort_file: g.cohort.clone(),
    }
}

fn models_dir(common: &Common) -> Result<PathBuf, Error> {
    common
        .models
        .clone()
        .or_else(locate::default_models_dir)
        .ok_or_else(|| {
            Error::Usage(
                "cannot find the models folder (no models/manifest.tsv above the current or the \
                 executable's directory); pass --models DIR"
                    .into(),
            )
        })
}

fn pipeline_config(common: &Common) -> Result<PipelineConfig, Error> {
    let mut cfg = PipelineConfig::new(models_dir(common)?);
    cfg.ort_lib = common.ort_lib.clone();
    cfg.session.intra_threads = common.threads.max(1);
    Ok(cfg)
}

fn detection_json(d: &Detection) -> serde_json::Value {
    json!({
        "box_xywh": d.bbox,
        "landmarks_xy": d.landmarks,
        "score": d.score,
    })
}

/// Runs a parsed command line, printing to stdout.
pub fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Cohort {
            command: CohortCommand::Build { images, root, out },
        } => {
            let mut p = FacePipeline::load(pipeline_config(&cli.common)?)?;
            let (cohort, missed) = eval::build_cohort(&mut p, &images, &root)?;
            cohort.write(&out)?;
            out!(
                "{}: {} faces ({missed} images without a face){}",
                out.display(),
                cohort.len(),
                if cohort.len() < face::matcher::MatchConfig::default().cohort_min {
                    " — fewer than 100: the kiosk will not normalise against it"
                } else {
                    ""
                }
            );
        }
        Command::Models { command } => match command {
            ModelsCommand::Fetch {
                from,
                base_url,
                dest,
            } => {
                let dest = match dest {
                    Some(d) => d,
                    None => models_dir(&cli.common)?,
                };
                let source = match (from, base_url) {
                    (_, Some(url)) => FetchSource::BaseUrl(url),
                    (Some(dir), None) => FetchSource::Dir(dir),
                    (None, None) => FetchSource::Dir(locate::default_shared_models_dir().ok_or_else(|| {
                        Error::Usage("cannot find ../shared/models next to the repo; pass --from DIR or --base-url URL".into())
                    })?),
                };
                for (file, outcome) in manifest::fetch(&dest, &source)? {
                    out!("{outcome:?}\t{file}");
                }
                out!("all models verified in {}", dest.display());
            }
            ModelsCommand::Verify => {
                let dir = models_dir(&cli.common)?;
                let m = manifest::Manifest::load_verified(&dir)?;
                out!("{} models verified in {}", m.models.len(), dir.display());
            }
        },
        Command::Detect { image, select } => {
            let mut p = FacePipeline::load(pipeline_config(&cli.common)?)?;
            let img = image_io::load_rgb(&image)?;
            let dets = p.detect(&img)?;
            let chosen: Vec<&Detection> = match select {
                Which::All => dets.iter().collect(),
                Which::Largest | Which::Centre => {
                    let how = if select == Which::Largest {
                        Select::Largest
                    } else {
                        Select::NearestCentre
                    };
                    face::detect::select(&dets, img.width(), img.height(), how)
                        .map(|i| &dets[i])
                        .into_iter()
                        .collect()
                }
            };
            let faces: Vec<_> = chosen.into_iter().map(detection_json).collect();
            let out = json!({
                "image": image.display().to_string(),
                "width": img.width(),
                "height": img.height(),
                "faces": faces,
            });
            out!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Command::Embed {
            image,
            select,
            flip,
        } => {
            let mut cfg = pipeline_config(&cli.common)?;
            cfg.flip = flip;
            let mut p = FacePipeline::load(cfg)?;
            let img = image_io::load_rgb(&image)?;
            let how = if select == Which::Centre {
                Select::NearestCentre
            } else {
                Select::Largest
            };
            let face = p
                .detect_one(&img, how)?
                .ok_or_else(|| Error::Usage(format!("no face found in {}", image.display())))?;
            let e = p.embed_face(&img, &face)?;
            let out = json!({
                "image": image.display().to_string(),
                "face": detection_json(&face),
                "flip": flip,
                "embedding": e,
            });
            out!("{}", serde_json::to_string(&out).unwrap_or_default());
        }
        Command::Eval { command } => {
            let mut cfg = pipeline_config(&cli.common)?;
            match command {
                EvalCommand::Verify {
                    pairs,
                    root,
                    scores_out,
                    template_img1,
                } => {
                    let mut p = FacePipeline::load(cfg)?;
                    let r = eval::verify(&mut p, &pairs, &root, templates(!template_img1))?;
                    out!("{r}");
                    if let Some(out) = scores_out {
                        eval::write_scores(&out, &r)?;
                    }
                }
                EvalCommand::Identify {
                    images,
                    root,
                    anchor_threshold,
                    margin,
                    gallery,
                } => {
                    let mut matching = cfg.matching;
                    if let Some(t) = anchor_threshold {
                        matching.anchor_threshold = t;
                    }
                    if let Some(m) = margin {
                        matching.margin = m;
                    }
                    let mut p = FacePipeline::load(cfg)?;
                    let opts = identify_options(&gallery);
                    out!(
                        "{}",
                        eval::identify(&mut p, &images, &root, &matching, opts)?
                    );
                }
                EvalCommand::Sequences {
                    images,
                    root,
                    frames,
                    liveness_threshold,
                    challenge_below,
                    no_quality_gate,
                    gallery,
                } => {
                    let matching = cfg.matching;
                    let mut opts = eval::SequenceOptions {
                        identify: identify_options(&gallery),
                        frames,
                        liveness_threshold,
                        quality_gate: !no_quality_gate,
                        ..Default::default()
                    };
                    if let Some(c) = challenge_below {
                        opts.rule.challenge_below = c;
                    }
                    let mut p = FacePipeline::load(cfg)?;
                    out!(
                        "{}",
                        eval::sequences(&mut p, &images, &root, &matching, opts)?
                    );
                }
                EvalCommand::Quality { images, root } => {
                    let mut p = FacePipeline::load(cfg)?;
                    out!("{}", eval::quality(&mut p, &images, &root)?);
                }
                EvalCommand::Liveness {
                    labels,
                    root,
                    threshold,
                } => {
                    if let Some(t) = threshold {
                        cfg.liveness_threshold = t;
                    }
                    let mut p = FacePipeline::load(cfg)?;
                    out!("{}", eval::liveness(&mut p, &labels, &root)?);
                }
            }
        }
        Command::Run { config } => {
            let config = crate::config::Config::load(&config)?;
            let rt = tokio::runtime::Runtime::new()
                .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
            rt.block_on(crate::run::run(config, async {
                zhucan_platform::shutdown::signal().await;
            }))?;
        }
        Command::EnrolKiosk {
            server,
            code,
            data,
            server_ca,
        } => {
            let rt = tokio::runtime::Runtime::new()
                .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
            let created = rt.block_on(crate::run::enrol_kiosk(
                &server,
                &code,
                &data,
                server_ca.as_deref(),
            ))?;
            out!(
                "registered as kiosk {} ({}) of canteen {}; signing key and credential stored in {}",
                created.id,
                created.name,
                created.canteen_id.0,
                crate::store::secret::path_in(&data).display()
            );
            if server_ca.is_some() {
                out!(
                    "server certificate pinned: {}",
                    crate::sync::client::Pinned::path_in(&data).display()
                );
            }
        }
        Command::RotateKey { data, abandon } => {
            if abandon {
                if crate::run::abandon_rotation(&data)? {
                    out!("unfinished key rotation dropped; the current key stays in use");
                } else {
                    out!("no key rotation was pending");
                }
            } else {
                let rt = tokio::runtime::Runtime::new()
                    .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
                let done = rt.block_on(crate::run::rotate_key(&data))?;
                out!(
                    "kiosk {}: settlements from seq {} on are signed with the new key; new \
                     credential stored in {}",
                    done.kiosk_id,
                    done.from_seq,
                    crate::store::secret::path_in(&data).display()
                );
            }
        }
        Command::EnrolPhoto {
            data,
            resident,
            share,
            by,
            images,
        } => {
            let mut p = FacePipeline::load(pipeline_config(&cli.common)?)?;
            let model = p
                .manifest()
                .one(face::manifest::Role::Embedder)?
                .file
                .clone();
            let mut embeddings = Vec::with_capacity(images.len());
            for image in &images {
                let img = image_io::load_rgb(image)?;
                let frame = p.process(&img)?;
                match frame.outcome {
                    // stored flip-averaged, as every enrolment template is
                    face::Outcome::Embedded(_) => embeddings.push(p.template_of_last_frame()?),
                    face::Outcome::NoFace => {
                        return Err(Error::Usage(format!("{}: no face found", image.display())));
                    }
                    face::Outcome::Rejected(r) => {
                        return Err(Error::Usage(format!(
                            "{}: {} / {}",
                            image.display(),
                            r.message_zh(),
                            r.message_en()
                        )));
                    }
                    face::Outcome::Spoof => {
                        return Err(Error::Usage(format!(
                            "{}: not a live face / 非活体",
                            image.display()
                        )));
                    }
                }
            }
            if let Some((s, i, j)) = face::visit::agreement(&embeddings)
                && s < face::visit::TEMPLATE_AGREEMENT
            {
                return Err(Error::Usage(format!(
                    "{} 与 {} 不像同一个人（相似度 {s:.2}），未登记 / {} and {} do not look like the same \
                     person (similarity {s:.2} < {}): nothing enrolled",
                    images[i].display(),
                    images[j].display(),
                    images[i].display(),
                    images[j].display(),
                    face::visit::TEMPLATE_AGREEMENT
                )));
            }
            let rt = tokio::runtime::Runtime::new()
                .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
            rt.block_on(crate::run::upload_templates(
                &data,
                zhucan_domain::ResidentId(resident),
                share,
                &by,
                &model,
                &embeddings,
            ))?;
            out!(
                "resident {resident}: {} template(s) enrolled and uploaded",
                embeddings.len()
            );
        }
        Command::BenchCheckin {
            images,
            root,
            sequences,
            fps,
            k,
            n,
            liveness_threshold,
        } => {
            let mut cfg = pipeline_config(&cli.common)?;
            if let Some(t) = liveness_threshold {
                cfg.liveness_threshold = t;
            }
            let images = match images {
                Some(i) => i,
                None => locate::default_shared_models_dir()
                    .and_then(|m| m.parent().map(|s| s.join("testdata/faces/lfw/images.tsv")))
                    .filter(|p| p.exists())
                    .ok_or_else(|| {
                        Error::Usage(
                            "cannot find ../shared/testdata/faces/lfw/images.tsv; pass --images"
                                .into(),
                        )
                    })?,
            };
            let root = match root {
                Some(r) => r,
                None => images
                    .parent()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            };
            let rule = crate::checkin::Rule::k_of_n(k, n, crate::checkin::Rule::default().cooldown);
            out!(
                "{}",
                crate::bench_checkin::run(cfg, &images, &root, sequences, fps, rule)?
            );
        }
        Command::Bench {
            search_only: true,
            sizes,
            ..
        } => {
            out!("{}", bench::run_search(&sizes, 192)?);
        }
        Command::Bench {
            image,
            runs,
            sizes,
            configs,
            ..
        } => {
            let cfg = pipeline_config(&cli.common)?;
            let image = match image {
                Some(i) => i,
                None => default_bench_image()?,
            };
            let threads = configs
                .iter()
                .map(|c| {
                    bench::parse_threads(c).ok_or_else(|| {
                        Error::Usage(format!("bad --configs entry `{c}` (use 1, 2, 2spin)"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            out!(
                "{}",
                bench::run(&cfg, &image, runs.max(1), &sizes, &threads)?
            );
        }
    }
    Ok(())
}

fn default_bench_image() -> Result<PathBuf, Error> {
    locate::default_shared_models_dir()
        .map(|d| d.join("reference/astronaut.png"))
        .filter(|p| Path::new(p).exists())
        .ok_or_else(|| {
            Error::Usage(
                "cannot find ../shared/models/reference/astronaut.png; pass --image".into(),
            )
        })
}
