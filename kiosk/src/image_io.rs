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
