//! Kiosk use cases, called by the JSON API and the dashboard's 终端 page alike: issue a one-time
//! enrolment code, revoke a kiosk. Each is audited in the transaction that does it.

use chrono::Duration;
use zhucan_domain::CanteenId;
use zhucan_domain::api::{EnrolmentCode, KioskStatus};

use crate::config::Clock;
use crate::crypto::{new_enrolment_code, normalise_code, sha256_hex};
use crate::db::audit::Actor;
use crate::db::{self, Db};

/// How long an enrolment code stays valid.
pub const CODE_VALIDITY: Duration = Duration::hours(24);

/// Issues a one-time enrolment code for a kiosk `name` (already checked) at `canteen`, valid
/// for [`CODE_VALIDITY`]: stores its hash and audits `kiosk.enrolment_code` in one transaction.
#[tracing::instrument(skip_all, fields(canteen = canteen.0))]
pub async fn issue_code(
    db: &Db,
    clock: &dyn Clock,
    actor: Actor,
    canteen: CanteenId,
    name: String,
) -> db::Result<EnrolmentCode> {
    let code = new_enrolment_code();
    let hash = sha256_hex(normalise_code(&code).as_bytes());
    let now = clock.now();
    let expires = now + CODE_VALIDITY;
    let (created_at, expires_at) = (zhucan_platform::stamp(now), zhucan_platform::stamp(expires));
    db.write(move |tx| {
        db::kiosks::insert_code(
            tx,
            &db::kiosks::NewCode {
                code_hash: &hash,
                canteen_id: canteen,
                name: &name,
                created_at: &created_at,
                expires_at: &expires_at,
            },
        )?;
        // Audited without the code itself (only its hash is kept anywhere).
        db::audit::append(
            tx,
            &created_at,
            &actor,
            "kiosk.enrolment_code",
            &format!("canteen:{}", canteen.0),
            &serde_json::json!({ "name": name, "expires_at": expires_at }),
        )
    })
    .await?;
    Ok(EnrolmentCode {
        code,
        canteen_id: canteen,
        expires_at: expires.fixed_offset(),
    })
}

/// Revokes kiosk `id` (its token stops working at once; revoking again keeps the first time)
/// and audits `kiosk.revoke`, with the reason when one is given, in one transaction. The API
/// and the dashboard's 终端 page both revoke through here. `NotFound` if there is no such kiosk.
#[tracing::instrument(skip_all, fields(kiosk = id))]
pub async fn revoke(
    db: &Db,
    clock: &dyn Clock,
    actor: Actor,
    id: i64,
    reason: Option<String>,
) -> db::Result<KioskStatus> {
    let now = zhucan_platform::stamp(clock.now());
    db.write(move |tx| {
        db::kiosks::revoke(tx, id, &now)?;
        let detail = match reason {
            Some(reason) => serde_json::json!({ "reason": reason }),
            None => serde_json::json!({}),
        };
        db::audit::append(
            tx,
            &now,
            &actor,
            "kiosk.revoke",
            &format!("kiosk:{id}"),
            &detail,
        )?;
        db::kiosks::status(tx, id)
    })
    .await
}
