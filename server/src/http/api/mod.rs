//! Handlers, one module per resource; each handler is a verb (`settlements::create`).

pub mod audit;
pub mod canteens;
pub mod carers;
pub mod corrections;
pub mod face_data;
pub mod flags;
pub mod health;
pub mod kiosks;
pub mod lookalikes;
pub mod months;
pub mod policies;
pub mod residents;
pub mod settlements;
pub mod spot_checks;
pub mod statements;
pub mod sync;
pub mod templates;
pub mod towns;

use serde_json::Value;

use super::AppState;
use super::auth::Access;
use super::error::Error;

/// Records a read of personal data through the API (`api.read`: who, what, how much) in the
/// audit log, before the answer is sent: an administrator's token reading the roster leaves the
/// same trace as a person on the dashboard.
pub(crate) async fn audit_read(
    st: &AppState,
    access: &Access,
    target: String,
    detail: Value,
) -> Result<(), Error> {
    let actor = access.actor();
    let at = zhucan_platform::stamp(st.clock.now());
    st.db
        .write(move |tx| crate::db::audit::append(tx, &at, &actor, "api.read", &target, &detail))
        .await?;
    Ok(())
}

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
