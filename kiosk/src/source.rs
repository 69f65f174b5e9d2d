//! Where frames come from: a [`FrameSource`] gives the face loop one RGB frame at a time.
//!
//! - [`ReplaySource`] plays a list of image files at a frame interval (optionally looping), with
//!   EXIF orientation applied — for the demo, tests and recorded incident reviews.
//! - [`QueueSource`] plays frames pushed through a [`QueueHandle`] (tests drive the kiosk frame
//!   by frame).
//! - `camera::CameraSource` (cargo feature `camera`): a real camera through nokhwa.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use image::RgbImage;

use zhucan_face::image_io;

/// Errors of the frame sources.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] image_io::Error),
    #[error("replay list {}: {message}", path.display())]
    List { path: PathBuf, message: String },
    #[error("camera: {0}")]
    Camera(String),
}

/// A source of frames.
pub trait FrameSource: Send {
    /// The next frame, waiting for it if needed; `Ok(None)` when there is no frame right now (the
    /// source is finished or nothing arrived within its wait); the loop then checks for shutdown
    /// and asks again.
    fn next_frame(&mut self) -> Result<Option<RgbImage>, Error>;
}

/// One entry of a replay list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An image file.
    File(PathBuf),
    /// Nobody in front of the camera (a plain grey frame): written `-` in a list.
    Blank,
}

/// Reads a replay list: one entry per line, the first tab-separated column is the path (relative
/// paths are resolved against `root`, default the list's folder); `-` is an empty frame; blank
/// lines, `#` comments and a `path` header are skipped.
pub fn read_list(path: &Path, root: Option<&Path>) -> Result<Vec<Entry>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::List {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let base = root
        .map(Path::to_path_buf)
        .or_else(|| path.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    Ok(text
        .lines()
        .filter_map(|l| l.split('\t').next())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && *l != "path")
        .map(|l| {
            if l == "-" {
                Entry::Blank
            } else {
                Entry::File(base.join(l))
            }
        })
        .collect())
}

/// Plays image files at a fixed interval.
#[derive(Debug)]
pub struct ReplaySource {
    entries: Vec<Entry>,
    /// How many consecutive frames each entry is shown for (a person stands for a while).
    repeat: u32,
    interval: Duration,
    looping: bool,
    pos: usize,
    shown: u32,
    next_at: Option<Instant>,
    current: Option<RgbImage>,
}

impl ReplaySource {
    pub fn new(entries: Vec<Entry>, interval: Duration, looping: bool, repeat: u32) -> Self {
        ReplaySource {
            entries,
            repeat: repeat.max(1),
            interval,
            looping,
            pos: 0,
            shown: 0,
            next_at: None,
            current: None,
        }
    }

    /// Frames left before the end (without looping).
    pub fn remaining(&self) -> usize {
        (self.entries.len().saturating_sub(self.pos)) * self.repeat as usize - self.shown as usize
    }
}

fn blank() -> RgbImage {
    RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]))
}

impl FrameSource for ReplaySource {
    fn next_frame(&mut self) -> Result<Option<RgbImage>, Error> {
        if self.pos >= self.entries.len() {
            if !self.looping || self.entries.is_empty() {
                std::thread::sleep(self.interval.max(Duration::from_millis(20)));
                return Ok(None);
            }
            self.pos = 0;
        }
        // pace: one frame per interval
        let now = Instant::now();
        if let Some(at) = self.next_at.filter(|at| *at > now) {
            std::thread::sleep(at - now);
        }
        self.next_at = Some(self.next_at.unwrap_or(now).max(now - self.interval) + self.interval);
        if self.shown == 0 || self.current.is_none() {
            self.current = Some(match &self.entries[self.pos] {
                Entry::File(p) => image_io::load_rgb(p)?,
                Entry::Blank => blank(),
            });
        }
        let frame = self.current.clone();
        self.shown += 1;
        if self.shown >= self.repeat {
            self.shown = 0;
            self.pos += 1;
            self.current = None;
        }
        Ok(frame)
    }
}

/// Frames pushed from elsewhere (tests).
pub struct QueueSource {
    rx: mpsc::Receiver<RgbImage>,
    wait: Duration,
    pending: Arc<AtomicUsize>,
}

/// The sending side of a [`QueueSource`].
#[derive(Clone)]
pub struct QueueHandle {
    tx: mpsc::Sender<RgbImage>,
    pending: Arc<AtomicUsize>,
}

impl QueueHandle {
    /// Queues a frame; false when the kiosk has stopped.
    pub fn push(&self, frame: RgbImage) -> bool {
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.tx.send(frame).is_ok()
    }

    /// Frames queued and not yet taken by the face loop. The loop takes a frame only after it
    /// has finished with the previous one, so 0 means every frame but the last was processed.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

impl QueueSource {
    pub fn new() -> (QueueSource, QueueHandle) {
        let (tx, rx) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        (
            QueueSource {
                rx,
                wait: Duration::from_millis(50),
                pending: pending.clone(),
            },
            QueueHandle { tx, pending },
        )
    }
}

impl FrameSource for QueueSource {
    fn next_frame(&mut self) -> Result<Option<RgbImage>, Error> {
        match self.rx.recv_timeout(self.wait) {
            Ok(f) => {
                self.pending.fetch_sub(1, Ordering::SeqCst);
                Ok(Some(f))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(self.wait);
                Ok(None)
            }
        }
    }
}

#[cfg(feature = "camera")]
pub mod camera {
    //! A V4L2 camera through nokhwa: the device index, the requested resolution, MJPEG frames
    //! decoded with `image`. A missing or busy camera is an error, never a panic.

    use image::RgbImage;
    use nokhwa::Camera;
    use nokhwa::pixel_format::RgbFormat;
    use nokhwa::utils::{
        CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution,
    };

    use super::{Error, FrameSource};

    /// The camera lives on its own capture thread (nokhwa's camera is not `Send`); frames come
    /// over a channel holding at most two, so a slow face loop always gets a recent frame.
    pub struct CameraSource {
        rx: std::sync::mpsc::Receiver<Result<RgbImage, String>>,
    }

    fn decode(buf: &nokhwa::Buffer) -> Result<RgbImage, String> {
        let res = buf.resolution();
        match buf.source_frame_format() {
            FrameFormat::MJPEG => {
                image::load_from_memory_with_format(buf.buffer(), image::ImageFormat::Jpeg)
                    .map(|img| img.to_rgb8())
                    .map_err(|e| format!("MJPEG frame: {e}"))
            }
            FrameFormat::RAWRGB => {
                RgbImage::from_raw(res.width(), res.height(), buf.buffer().to_vec())
                    .ok_or_else(|| "short RGB frame".to_owned())
            }
            other => Err(format!(
                "the camera sends {other:?}; configure it for MJPEG"
            )),
        }
    }

    impl CameraSource {
        /// Opens `/dev/video<device>` asking for MJPEG at `width`x`height`; a missing or busy
        /// camera is an error here, before the kiosk starts.
        pub fn open(device: u32, width: u32, height: u32) -> Result<CameraSource, Error> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<RgbImage, String>>(2);
            let (opened_tx, opened_rx) = std::sync::mpsc::channel::<Result<(), String>>();
            std::thread::Builder::new()
                .name("camera".into())
                .spawn(move || {
                    let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(
                        CameraFormat::new(Resolution::new(width, height), FrameFormat::MJPEG, 30),
                    ));
                    let camera = Camera::new(CameraIndex::Index(device), format)
                        .map_err(|e| {
                            format!(
                                "cannot open camera {device} (/dev/video{device}): {e}; is it \
                                 connected and not used by another program?"
                            )
                        })
                        .and_then(|mut c| {
                            c.open_stream()
                                .map_err(|e| format!("camera {device}: cannot start: {e}"))
                                .map(|()| c)
                        });
                    let mut camera = match camera {
                        Ok(c) => {
                            let _ = opened_tx.send(Ok(()));
                            c
                        }
                        Err(e) => {
                            let _ = opened_tx.send(Err(e));
                            return;
                        }
                    };
                    loop {
                        let frame = camera
                            .frame()
                            .map_err(|e| format!("frame: {e}"))
                            .and_then(|b| decode(&b));
                        if tx.send(frame).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| Error::Camera(format!("cannot start the capture thread: {e}")))?;
            match opened_rx.recv() {
                Ok(Ok(())) => Ok(CameraSource { rx }),
                Ok(Err(e)) => Err(Error::Camera(e)),
                Err(_) => Err(Error::Camera("the capture thread ended".into())),
            }
        }
    }

    impl FrameSource for CameraSource {
        fn next_frame(&mut self) -> Result<Option<RgbImage>, Error> {
            match self.rx.recv_timeout(std::time::Duration::from_secs(2)) {
                Ok(Ok(f)) => Ok(Some(f)),
                Ok(Err(e)) => Err(Error::Camera(e)),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(None),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    Err(Error::Camera("the camera stopped".into()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_resolves_paths_and_blanks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let list = dir.path().join("list.tsv");
        std::fs::write(
            &list,
            "path\tidentity\n# a comment\na.jpg\tA\n-\n\nsub/b.png\n",
        )
        .expect("write");
        let got = read_list(&list, None).expect("list");
        assert_eq!(
            got,
            vec![
                Entry::File(dir.path().join("a.jpg")),
                Entry::Blank,
                Entry::File(dir.path().join("sub/b.png")),
            ]
        );
    }

    #[test]
    fn replay_repeats_paces_and_ends() {
        let mut src = ReplaySource::new(
            vec![Entry::Blank, Entry::Blank],
            Duration::from_millis(10),
            false,
            3,
        );
        let start = Instant::now();
        let mut frames = 0;
        while src.remaining() > 0 {
            assert!(src.next_frame().expect("frame").is_some());
            frames += 1;
        }
        assert_eq!(frames, 6);
        assert!(start.elapsed() >= Duration::from_millis(50), "paced");
        assert!(src.next_frame().expect("end").is_none());
    }

    #[cfg(feature = "camera")]
    #[test]
    fn missing_camera_is_a_clear_error_not_a_panic() {
        let e = camera::CameraSource::open(57, 640, 480)
            .err()
            .expect("no /dev/video57 here");
        assert!(e.to_string().contains("camera 57"), "{e}");
    }

    #[test]
    fn missing_file_is_an_error_not_a_panic() {
        let mut src = ReplaySource::new(
            vec![Entry::File("/nonexistent/x.jpg".into())],
            Duration::from_millis(1),
            true,
            1,
        );
        assert!(src.next_frame().is_err());
    }
}
