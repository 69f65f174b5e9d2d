//! Loading images from files with their EXIF orientation applied (the `image` crate decodes the
//! stored pixels; phone photos such as the Silent-Face samples are stored sideways with
//! Orientation = 6).

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

/// Errors reading an image file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open image {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot decode image {}: {source}", path.display())]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
}

/// Reads an image as RGB8 with EXIF orientation applied.
pub fn load_rgb(path: &Path) -> Result<RgbImage, Error> {
    let dec_err = |source| Error::Decode {
        path: path.to_path_buf(),
        source,
    };
    let reader = ImageReader::open(path)
        .map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?
        .with_guessed_format()
        .map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let mut decoder = reader.into_decoder().map_err(dec_err)?;
    let orientation = decoder.orientation().map_err(dec_err)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(dec_err)?;
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small picture of four flat colours (so a GIF's palette holds it exactly).
    fn picture() -> RgbImage {
        RgbImage::from_fn(16, 8, |x, y| match (x < 8, y < 4) {
            (true, true) => image::Rgb([200, 30, 30]),
            (false, true) => image::Rgb([30, 200, 30]),
            (true, false) => image::Rgb([30, 30, 200]),
            (false, false) => image::Rgb([240, 240, 240]),
        })
    }

    #[test]
    fn the_formats_users_bring_decode_and_the_lossless_ones_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let want = picture();
        for ext in ["png", "bmp", "gif", "ppm", "pgm", "tiff", "webp", "jpg"] {
            // saved under a name without its extension: the format is read from the bytes
            let path = dir.path().join(format!("face-{ext}"));
            let img = DynamicImage::ImageRgb8(want.clone());
            let img = if ext == "pgm" {
                DynamicImage::ImageLuma8(img.to_luma8())
            } else {
                img
            };
            let format = image::ImageFormat::from_extension(ext).expect("known extension");
            img.save_with_format(&path, format).expect(ext);
            let got = load_rgb(&path).unwrap_or_else(|e| panic!("{ext}: {e}"));
            assert_eq!(got.dimensions(), want.dimensions(), "{ext}");
            match ext {
                "pgm" => assert_eq!(got, DynamicImage::ImageLuma8(img.to_luma8()).to_rgb8()),
                "jpg" => {
                    let close = got
                        .pixels()
                        .zip(want.pixels())
                        .all(|(a, b)| a.0.iter().zip(b.0).all(|(&p, q)| p.abs_diff(q) <= 40));
                    assert!(close, "jpeg is lossy, but not that lossy");
                }
                _ => assert_eq!(got, want, "{ext} is lossless"),
            }
        }
    }

    #[test]
    fn a_file_that_is_no_image_names_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "not a picture").expect("write");
        let e = load_rgb(&path).expect_err("not an image");
        assert!(e.to_string().contains("notes.txt"), "{e}");
    }
}
