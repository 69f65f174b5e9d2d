//! Kiosks: the administrator registers one directly (token shown once) or issues a one-time
//! enrolment code that the device itself redeems, either way with the kiosk's Ed25519 public key;
//! lists kiosks with their last heartbeat; revokes. A kiosk rotates its own key and token
//! (`POST /kiosk/rotate`); administrators and finance re-verify a kiosk's whole signed chain
//! (`GET /kiosks/{id}/chain`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::{
    ChainLine, EnrolmentCode, KeyRotated, KeyRotation, KioskCreated, KioskEnrol, KioskStatus,
    NewEnrolmentCode, NewKiosk,
};
use zhucan_domain::signing;

use super::{parse_id, required};
use crate::crypto::{new_token, normalise_code, sha256_hex};
use crate::db;
use crate::db::audit::Actor;
use crate::db::kiosks::{CodeProblem, RotateProblem};
use crate::db::users::Role;
use crate::http::AppState;
use crate::http::auth::{Access, Admin, KioskCaller};
use crate::http::error::{Error, Result};
use crate::http::extract::AppJson;

/// A public key as sent: must decode to an Ed25519 key. Answers the trimmed text to store.
fn public_key(raw: &str) -> Result<String> {
    signing::decode_public_key(raw).map_err(|e| Error::bad("invalid", "public_key", e))?;
    Ok(raw.trim().to_owned())
}

#[utoipa::path(
    post, path = "/kiosks", operation_id = "createKiosk", summary = "register a kiosk", request_body = zhucan_domain::api::NewKiosk, responses((status = 201, description = "created; the token is shown once", body = zhucan_domain::api::KioskCreated))
)]
pub async fn create(
    State(st): State<AppState>,
    Admin(access): Admin,
    AppJson(k): AppJson<NewKiosk>,
) -> Result<(StatusCode, AppJson<KioskCreated>)> {
    let name = required(&k.name, "name", 64)?;
    let key = public_key(&k.public_key)?;
    let token = new_token();
    let hash = sha256_hex(token.as_bytes());
    let now = zhucan_platform::stamp(st.clock.now());
    let canteen = k.canteen_id;
    let n = name.clone();
    let id = st
        .db
        .write(move |tx| {
            let id = db::kiosks::insert(tx, canteen, &n, &hash, &key, &now)?;
            db::audit::append(
                tx,
                &now,
                &access.actor(),
                "kiosk.create",
                &format!("kiosk:{id}"),
                &serde_json::json!({ "canteen_id": canteen.0, "name": n, "public_key": key }),
            )?;
            Ok(id)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        AppJson(KioskCreated {
            id,
            canteen_id: canteen,
            name,
            token,
        }),
    ))
}

#[utoipa::path(
    post, path = "/kiosks/enrolment-codes", operation_id = "createEnrolmentCode", summary = "issue a one-time kiosk enrolment code (valid 24 h)", request_body = zhucan_domain::api::NewEnrolmentCode, responses((status = 201, description = "created; the code is shown once", body = zhucan_domain::api::EnrolmentCode))
)]
/// `POST /kiosks/enrolment-codes`: a one-time code for a new kiosk of a canteen, valid 24 h.
/// Only its hash is stored; the code is shown this once.
pub async fn create_code(
    State(st): State<AppState>,
    Admin(access): Admin,
    AppJson(c): AppJson<NewEnrolmentCode>,
) -> Result<(StatusCode, AppJson<EnrolmentCode>)> {
    let name = required(&c.name, "name", 64)?;
    let code =
        crate::kiosks::issue_code(&st.db, &*st.clock, access.actor(), c.canteen_id, name).await?;
    Ok((StatusCode::CREATED, AppJson(code)))
}

#[utoipa::path(
    post, path = "/kiosks/enrol", operation_id = "enrolKiosk", summary = "register this device with an enrolment code (the code is the credential)", request_body = zhucan_domain::api::KioskEnrol, responses((status = 201, description = "registered; the token is shown once", body = zhucan_domain::api::KioskCreated), (status = 400, description = "unknown, used or expired code (`error.field` is `code`), or a bad `public_key`", body = ErrorBody))
)]
/// `POST /kiosks/enrol` (no token: the code is the credential): registers the device and its
/// public key for the code's canteen and consumes the code.
pub async fn enrol(
    State(st): State<AppState>,
    AppJson(e): AppJson<KioskEnrol>,
) -> Result<(StatusCode, AppJson<KioskCreated>)> {
    let code = normalise_code(&e.code);
    if code.is_empty() {
        return Err(Error::bad("missing", "code", "must not be empty"));
    }
    let key = public_key(&e.public_key)?;
    let code_hash = sha256_hex(code.as_bytes());
    let token = new_token();
    let token_hash = sha256_hex(token.as_bytes());
    let now = zhucan_platform::stamp(st.clock.now());
    let outcome = st
        .db
        .write(move |tx| {
            let out = db::kiosks::enrol(tx, &code_hash, &token_hash, &key, &now)?;
            if let Ok((id, canteen, name)) = &out {
                db::audit::append(
                    tx,
                    &now,
                    &Actor::new(format!("kiosk:{id}"), "kiosk"),
                    "kiosk.enrol",
                    &format!("kiosk:{id}"),
                    &serde_json::json!({ "canteen_id": canteen.0, "name": name, "public_key": key }),
                )?;
            }
            Ok(out)
        })
        .await?;
    match outcome {
        Ok((id, canteen_id, name)) => {
            tracing::info!(kiosk = id, canteen = canteen_id.0, "kiosk enrolled");
            Ok((
                StatusCode::CREATED,
                AppJson(KioskCreated {
                    id,
                    canteen_id,
                    name,
                    token,
                }),
            ))
        }
        Err(CodeProblem::Unknown) => Err(Error::bad(
            "invalid_code",
            "code",
            "no such enrolment code; check it or ask for a new one",
        )),
        Err(CodeProblem::Used) => Err(Error::bad(
            "code_used",
            "code",
            "this enrolment code was already used; ask for a new one",
        )),
        Err(CodeProblem::Expired) => Err(Error::bad(
            "code_expired",
            "code",
            "this enrolment code has expired; ask for a new one",
        )),
    }
}

#[utoipa::path(
    get, path = "/kiosks", operation_id = "listKiosks", summary = "list kiosks with their last heartbeat", responses((status = 200, description = "kiosks", body = Vec<zhucan_domain::api::KioskStatus>))
)]
/// `GET /kiosks`: every kiosk with what its last heartbeat reported.
pub async fn list(State(st): State<AppState>, _: Admin) -> Result<AppJson<Vec<KioskStatus>>> {
    Ok(AppJson(st.db.read(db::kiosks::list).await?))
}

#[utoipa::path(
    post, path = "/kiosks/{id}/revoke", operation_id = "revokeKiosk", summary = "revoke a kiosk (its token stops working)", params(("id" = i64, Path, description = "the id")), responses((status = 200, description = "the kiosk", body = zhucan_domain::api::KioskStatus), (status = 404, description = "no such resource", body = ErrorBody))
)]
/// `POST /kiosks/{id}/revoke`: the kiosk's token stops working at once.
pub async fn revoke(
    State(st): State<AppState>,
    Admin(access): Admin,
    Path(id): Path<String>,
) -> Result<AppJson<KioskStatus>> {
    let id = parse_id(&id, "id")?;
    Ok(AppJson(
        crate::kiosks::revoke(&st.db, &*st.clock, access.actor(), id, None).await?,
    ))
}

#[utoipa::path(
    post, path = "/kiosk/rotate", operation_id = "rotateKioskKey", summary = "hand the kiosk over to a new key pair and token (kiosk token)", request_body = zhucan_domain::api::KeyRotation, responses((status = 200, description = "rotated; the new token is shown once", body = zhucan_domain::api::KeyRotated))
)]
/// `POST /kiosk/rotate` (kiosk token): records from `from_seq` on are signed by the new key; the
/// handover is signed by the current key; the answer carries a new token and the old one stops
/// working. One transaction.
pub async fn rotate(
    State(st): State<AppState>,
    KioskCaller(kiosk): KioskCaller,
    AppJson(r): AppJson<KeyRotation>,
) -> Result<AppJson<KeyRotated>> {
    public_key(&r.public_key)?;
    if r.from_seq == 0 || i64::try_from(r.from_seq).is_err() {
        return Err(Error::bad(
            "invalid",
            "from_seq",
            "must be between 1 and 9223372036854775807",
        ));
    }
    let token = new_token();
    let token_hash = sha256_hex(token.as_bytes());
    let now = zhucan_platform::stamp(st.clock.now());
    let from_seq = r.from_seq;
    let outcome = st
        .db
        .write(move |tx| {
            let out = db::kiosks::rotate(
                tx,
                &db::kiosks::Rotation {
                    kiosk_id: kiosk.id,
                    from_seq,
                    // The handover signs the key exactly as sent.
                    public_key: &r.public_key,
                    signature: &r.signature,
                    token_hash: &token_hash,
                    now: &now,
                },
            )?;
            if out.is_ok() {
                db::audit::append(
                    tx,
                    &now,
                    &Actor::new(format!("kiosk:{}", kiosk.id), "kiosk"),
                    "kiosk.rotate",
                    &format!("kiosk:{}", kiosk.id),
                    &serde_json::json!({ "from_seq": from_seq, "public_key": r.public_key }),
                )?;
            }
            Ok(out)
        })
        .await?;
    match outcome {
        Ok(()) => {
            tracing::info!(kiosk = kiosk.id, from_seq, "kiosk key rotated");
            Ok(AppJson(KeyRotated {
                kiosk_id: kiosk.id,
                from_seq,
                token,
            }))
        }
        Err(RotateProblem::Signature) => Err(Error::bad(
            "signature_invalid",
            "signature",
            "the handover must be signed by the kiosk's current key over \
             [\"zhucan-rotate-v1\", kiosk_id, from_seq, public_key]",
        )),
        Err(RotateProblem::FromSeq { at_least }) => Err(Error::bad(
            "from_seq_too_low",
            "from_seq",
            format!(
                "must be at least {at_least}: after every record already received from this kiosk"
            ),
        )),
    }
}

#[utoipa::path(
    get, path = "/kiosks/{id}/chain", operation_id = "getKioskChain", summary = "re-verify a kiosk's whole signed chain: gaps, forks, refused records, and every stored record against its hash, signature and settlement (administrator or finance)", params(("id" = i64, Path, description = "the id")), responses((status = 200, description = "the kiosk's chain, all time", body = zhucan_domain::api::ChainLine), (status = 404, description = "no such resource", body = ErrorBody))
)]
/// `GET /kiosks/{id}/chain` (administrator or finance): the kiosk's chain problems and a full
/// re-verification of every stored record against its hash, its signature and its settlement.
pub async fn chain(
    State(st): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<AppJson<ChainLine>> {
    match &access {
        Access::Admin => {}
        Access::User(u) if matches!(u.role, Role::Admin | Role::Finance) => {}
        _ => {
            return Err(Error::Forbidden(
                "only administrators and finance check kiosk chains".into(),
            ));
        }
    }
    let id = parse_id(&id, "id")?;
    let line = st.db.read(move |c| db::chain::reverify(c, id)).await?;
    Ok(AppJson(line))
}
