//! Face templates on the server: checking an upload, sealing each embedding before it reaches the
//! database (XChaCha20-Poly1305, key derived from the secret key file, random nonce per record,
//! the resident id as associated data), storing it with the consent given at the counter, and
//! opening sealed sets again for kiosk sync. Embeddings are never logged.

use tracing::instrument;
use zhucan_domain::api::{TemplateUpload, decode_embedding, encode_embedding};
use zhucan_domain::resident::Consent;
use zhucan_domain::{CanteenId, ResidentId, ResidentStatus};

use crate::crypto::{self, SealError};
use crate::db::templates::{NewSet, Sealed, StoredSet};
use crate::db::{self, Tx};

/// The most and fewest embeddings one upload may carry.
pub const MAX_EMBEDDINGS: usize = 5;
/// Accepted embedding dimensions (every embedder the kiosks use lies in this range).
pub const DIMS: std::ops::RangeInclusive<usize> = 64..=1024;
/// How far from 1 an embedding's length may be.
pub const UNIT_TOLERANCE: f64 = 1e-3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Db(#[from] db::Error),
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A checked upload: decoded unit-length embeddings of one dimension.
#[derive(Debug, Clone)]
pub struct Valid {
    pub consent_template_sharing: bool,
    pub by: String,
    pub model: String,
    pub dim: usize,
    pub embeddings: Vec<Vec<f32>>,
}

/// Checks an upload, naming the failing field (`embeddings[2]`).
pub fn validate(u: &TemplateUpload) -> Result<Valid, Error> {
    if !u.consent_face_enrolment {
        return Err(invalid(
            "consent_face_enrolment",
            "face enrolment needs the resident's separate consent (must be true)",
        ));
    }
    let by = u.by.trim();
    if by.is_empty() || by.chars().count() > 64 {
        return Err(invalid("by", "must be 1 to 64 characters"));
    }
    let model = u.model.trim();
    if model.is_empty() || model.chars().count() > 128 {
        return Err(invalid("model", "must be 1 to 128 characters"));
    }
    if u.embeddings.is_empty() || u.embeddings.len() > MAX_EMBEDDINGS {
        return Err(invalid(
            "embeddings",
            format!(
                "1 to {MAX_EMBEDDINGS} embeddings, got {}",
                u.embeddings.len()
            ),
        ));
    }
    let mut embeddings = Vec::with_capacity(u.embeddings.len());
    for (i, e) in u.embeddings.iter().enumerate() {
        let field = format!("embeddings[{i}]");
        let v = decode_embedding(e)
            .ok_or_else(|| invalid(&field, "not base64 of little-endian f32 values"))?;
        if !DIMS.contains(&v.len()) {
            return Err(invalid(
                &field,
                format!(
                    "dimension {} outside {}..={}",
                    v.len(),
                    DIMS.start(),
                    DIMS.end()
                ),
            ));
        }
        if let Some(first) = embeddings.first().map(Vec::len)
            && first != v.len()
        {
            return Err(invalid(
                &field,
                format!("dimension {} differs from the first's {first}", v.len()),
            ));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(invalid(&field, "holds a value that is not finite"));
        }
        let norm = v
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if (norm - 1.0).abs() > UNIT_TOLERANCE {
            return Err(invalid(
                &field,
                format!("must be unit length, is {norm:.4}"),
            ));
        }
        embeddings.push(v);
    }
    Ok(Valid {
        consent_template_sharing: u.consent_template_sharing,
        by: by.to_owned(),
        model: model.to_owned(),
        dim: embeddings[0].len(),
        embeddings,
    })
}

/// The associated data binding a sealed template to its resident.
fn aad(resident: ResidentId) -> [u8; 8] {
    resident.0.to_le_bytes()
}

/// Seals each embedding (little-endian f32 bytes) for `resident`.
pub fn seal_all(
    key: &[u8; 32],
    resident: ResidentId,
    embeddings: &[Vec<f32>],
) -> Result<Vec<Sealed>, Error> {
    embeddings
        .iter()
        .map(|v| {
            let plain: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            let (nonce, ciphertext) = crypto::seal(key, &aad(resident), &plain)?;
            Ok(Sealed { nonce, ciphertext })
        })
        .collect()
}

/// Opens one sealed embedding of `resident`.
pub fn open_embedding(key: &[u8; 32], resident: ResidentId, s: &Sealed) -> Result<Vec<f32>, Error> {
    let plain = crypto::open(key, &aad(resident), &s.nonce, &s.ciphertext)?;
    Ok(plain
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Opens a stored set into the wire form (base64 embeddings).
pub fn open_set(key: &[u8; 32], set: &StoredSet) -> Result<zhucan_domain::api::TemplateSet, Error> {
    let embeddings = set
        .sealed
        .iter()
        .map(|s| Ok(encode_embedding(&open_embedding(key, set.resident_id, s)?)))
        .collect::<Result<_, Error>>()?;
    Ok(zhucan_domain::api::TemplateSet {
        resident_id: set.resident_id,
        enrolled_canteen: set.enrolled_canteen,
        model: set.model.clone(),
        embeddings,
    })
}

/// Who uploads: the kiosk (its id is recorded with the consent) or the administrator.
#[derive(Debug, Clone, Copy)]
pub struct Uploader {
    pub kiosk_id: Option<i64>,
    pub canteen: CanteenId,
}

/// Stores a checked, sealed upload in `tx`: consent history (who = `by` and the kiosk), consent
/// flags and `face_enrolled`, the templates replaced, changes recorded. A deceased resident
/// cannot be enrolled. Returns what the consent update changed, for the audit log.
#[instrument(skip_all, fields(resident = resident.0, kiosk = who.kiosk_id), err)]
pub fn store(
    tx: &Tx<'_>,
    resident: ResidentId,
    who: Uploader,
    upload: &Valid,
    sealed: &[Sealed],
    at: &str,
) -> db::Result<db::residents::Updated> {
    let current = db::residents::get(tx, resident)?;
    if matches!(current.status, ResidentStatus::Deceased { .. }) {
        return Err(db::Error::Conflict(
            "the resident is recorded as deceased".into(),
        ));
    }
    let by = match who.kiosk_id {
        Some(k) => format!("{} (kiosk {k})", upload.by),
        None => format!("{} (admin)", upload.by),
    };
    let updated = db::residents::update(
        tx,
        resident,
        &db::residents::Update {
            consent: Some(Consent {
                face_enrolment: true,
                template_sharing: upload.consent_template_sharing,
            }),
            face_enrolled: Some(true),
            ..Default::default()
        },
        at,
        &by,
    )?;
    db::templates::replace(
        tx,
        &NewSet {
            resident_id: resident,
            enrolled_canteen: who.canteen,
            model: &upload.model,
            dim: upload.dim,
            sealed,
            kiosk_id: who.kiosk_id,
        },
        at,
    )?;
    Ok(updated)
}
