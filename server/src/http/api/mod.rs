//! Handlers, one module per resource; each handler is a verb (`settlements::create`).

pub mod audit;
pub mod canteens;
pub mod face_data;
pub mod health;
pub mod kiosks;
pub mod months;
pub mod policies;
pub mod residents;
pub mod settlements;
pub mod statements;
pub mod sync;
pub mod templates;
pub mod towns;

use super::error::Error;

/// Parses a path id, naming the field when it is not a number.
pub(crate) fn parse_id(raw: &str, field: &str) -> Result<i64, Error> {
    raw.parse()
        .map_err(|_| Error::bad("invalid", field, format!("'{raw}' is not an id")))
}

/// Trims a required text field; empty is an error naming it.
pub(crate) fn required(value: &str, field: &str, max: usize) -> Result<String, Error> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::bad("missing", field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(Error::bad(
            "too_long",
            field,
            format!("at most {max} characters"),
        ));
    }
    Ok(v.to_owned())
}
