//! One-off commands on a data folder: register the kiosk ([`enrol_kiosk`]), rotate its key
//! ([`rotate_key`]), upload templates. They and a running kiosk exclude each other through the
//! folder's [`DataLock`].

use std::path::Path;

use zhucan_domain::ResidentId;
use zhucan_domain::api::{KeyRotated, KeyRotation, KioskCreated, TemplateUpload, encode_embedding};
use zhucan_domain::signing::{self};

use crate::store::Store;
use crate::store::lock::DataLock;
use crate::store::secret::{self, Secrets};
use crate::sync::client::Pinned;
use crate::sync::{self, Client};

use super::*;

/// Opens the kiosk's store with the key from its secret file (created on first use).
pub fn open_store(data_dir: &Path) -> Result<(Store, Secrets), Error> {
    let secrets = Secrets::load_or_create(&secret::path_in(data_dir))?;
    let store = Store::open(&data_dir.join("kiosk.sqlite"), secrets.template_key()?)?;
    Ok((store, secrets))
}

/// A client of `server` for this data folder: pinned when the folder holds a pin.
pub fn client_for(data_dir: &Path, server: &str, token: Option<String>) -> Result<Client, Error> {
    let pin = Pinned::load(data_dir)?;
    Ok(Client::new(server, token, pin.as_ref())?)
}

fn not_registered() -> Error {
    Error::Usage("this kiosk is not registered: run `zhucan-kiosk enrol-kiosk` first".into())
}

/// `zhucan-kiosk enrol-kiosk`: registers this device with a one-time code. A fresh Ed25519 key
/// pair is generated (the private key is saved in the secret file BEFORE the server hears the
/// public key) and the token is kept in the secret file (never in the database). With
/// `server_ca`, that PEM certificate or CA is checked, used for this call, and copied to
/// `<data>/server-ca.pem`: from then on every client of this kiosk trusts only it.
pub async fn enrol_kiosk(
    server: &str,
    code: &str,
    data_dir: &Path,
    server_ca: Option<&Path>,
) -> Result<KioskCreated, Error> {
    let _lock = DataLock::acquire(data_dir)?;
    let (store, mut secrets) = open_store(data_dir)?;
    if secrets.token.is_some() {
        let id = store.setting("kiosk_id")?.unwrap_or_default();
        return Err(Error::Usage(format!(
            "{} is already registered (kiosk {id}); `zhucan-kiosk rotate-key` changes its key, \
             a new registration needs a fresh --data folder",
            data_dir.display()
        )));
    }
    if store.chain_head()?.0 != 0 {
        return Err(Error::Usage(format!(
            "{} already holds signed settlements of another registration; use a fresh --data \
             folder",
            data_dir.display()
        )));
    }
    let pin = server_ca.map(Pinned::read).transpose()?;
    let client = Client::new(server, None, pin.as_ref())?;
    let key = secrets.generate_signing_key();
    let secret_path = secret::path_in(data_dir);
    secrets.save(&secret_path)?;
    let created = client
        .enrol(code, &signing::encode_public_key(&key.verifying_key()))
        .await?;
    match &pin {
        Some(p) => p.save(data_dir)?,
        None => match std::fs::remove_file(Pinned::path_in(data_dir)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    context: "removing a stale server-ca.pem".into(),
                    source: e,
                });
            }
        },
    }
    secrets.token = Some(created.token.clone());
    secrets.save(&secret_path)?;
    store.set_setting("server_url", server.trim().trim_end_matches('/'))?;
    store.set_setting("kiosk_id", &created.id.to_string())?;
    store.set_setting("canteen_id", &created.canteen_id.0.to_string())?;
    Ok(created)
}

/// `zhucan-kiosk rotate-key`: hands this kiosk's chain over to a new key pair and credential.
///
/// The kiosk must be stopped (the data folder's lock is taken; a running kiosk holds it). The
/// new key is saved as pending BEFORE the server is asked; records from `from_seq = head + 1`
/// on will be signed by it, the ones already in the outbox stay signed by the old key. On the
/// server's yes the new key and token replace the old ones. If the server cannot be reached the
/// rotation stays pending (the kiosk will not start) and running this again resumes it with the
/// same key; a definite refusal drops it and the old key stays in use.
pub async fn rotate_key(data_dir: &Path) -> Result<KeyRotated, Error> {
    let _lock = DataLock::acquire(data_dir)?;
    let (store, mut secrets) = open_store(data_dir)?;
    let secret_path = secret::path_in(data_dir);
    let current = secrets.signing_key()?.ok_or_else(not_registered)?;
    let token = secrets.token.clone().ok_or_else(not_registered)?;
    let server = store.setting("server_url")?.ok_or_else(not_registered)?;
    let kiosk_id: i64 = store
        .setting("kiosk_id")?
        .and_then(|v| v.parse().ok())
        .ok_or_else(not_registered)?;
    let client = client_for(data_dir, &server, Some(token))?;
    let from_seq = store.chain_head()?.0 + 1;
    let new_key = secrets.begin_rotation(from_seq)?;
    secrets.save(&secret_path)?;
    let public_key = signing::encode_public_key(&new_key.verifying_key());
    let rotation = KeyRotation {
        signature: signing::sign_bytes(
            &signing::rotation_payload(kiosk_id, from_seq, &public_key),
            &current,
        ),
        public_key,
        from_seq,
    };
    match client.rotate(&rotation).await {
        Ok(done) => {
            if (done.kiosk_id, done.from_seq) != (kiosk_id, from_seq) {
                tracing::warn!(
                    kiosk = done.kiosk_id,
                    from_seq = done.from_seq,
                    "the server's rotation answer names another kiosk or seq"
                );
            }
            secrets.finish_rotation(done.token.clone())?;
            secrets.save(&secret_path)?;
            tracing::info!(kiosk = kiosk_id, from_seq, "signing key rotated");
            Ok(done)
        }
        Err(e) if e.is_transient() => Err(Error::Usage(format!(
            "{e}; the new key is kept as pending (the kiosk will not start until this is \
             finished): run `zhucan-kiosk rotate-key` again"
        ))),
        Err(e @ sync::client::Error::Status { status, .. })
            if status == reqwest::StatusCode::UNAUTHORIZED =>
        {
            Err(Error::Usage(format!(
                "{e}; the server did not accept this kiosk's token (revoked, or an earlier \
                 attempt of this rotation went through and its answer was lost). The new key is \
                 kept as pending: ask the administrator, then run `zhucan-kiosk rotate-key` \
                 again, or `zhucan-kiosk rotate-key --abandon` to keep the current key"
            )))
        }
        Err(e @ sync::client::Error::Status { .. }) => {
            secrets.abandon_rotation();
            secrets.save(&secret_path)?;
            Err(Error::Usage(format!(
                "the server refused the rotation ({e}); the current key stays in use"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// `zhucan-kiosk rotate-key --abandon`: drops an unfinished rotation (the current key and token
/// stay). Returns whether there was one.
pub fn abandon_rotation(data_dir: &Path) -> Result<bool, Error> {
    let _lock = DataLock::acquire(data_dir)?;
    let (_store, mut secrets) = open_store(data_dir)?;
    let had = secrets.abandon_rotation();
    if had {
        secrets.save(&secret::path_in(data_dir))?;
    }
    Ok(had)
}

/// `zhucan-kiosk enrol-photo`: uploads a resident's templates, with the consent recorded, as this
/// registered kiosk (the templates then reach the kiosk's gallery through sync like any other).
pub async fn upload_templates(
    data_dir: &Path,
    resident: ResidentId,
    sharing: bool,
    by: &str,
    model: &str,
    embeddings: &[Vec<f32>],
) -> Result<(), Error> {
    let (store, secrets) = open_store(data_dir)?;
    let server = store.setting("server_url")?.ok_or_else(not_registered)?;
    let up = TemplateUpload {
        consent_face_enrolment: true,
        consent_template_sharing: sharing,
        by: by.to_owned(),
        model: model.to_owned(),
        embeddings: embeddings.iter().map(|e| encode_embedding(e)).collect(),
        duplicate_confirmed: None,
    };
    client_for(data_dir, &server, secrets.token.clone())?
        .put_templates(resident, &up)
        .await?;
    Ok(())
}
