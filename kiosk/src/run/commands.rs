//! The screen's commands (card, carer, staff, search, enrol, unenrol, the counter's order),
//! each in its own task; card and staff check-ins take the face's decision path.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};
use zhucan_domain::ResidentId;
use zhucan_domain::api::{DuplicateConfirmed, TemplateUpload, encode_embedding};
use zhucan_domain::resident::Consent;

use crate::checkin::How;
use crate::screen::{Command, EnrolError, Mode};
use crate::sync::{self, Client, GallerySlot};

use super::*;

/// Handles the screen's commands.
#[derive(Clone)]
pub(super) struct Commands {
    pub(super) counter: Counter,
    pub(super) gallery: GallerySlot,
    pub(super) client: Option<Client>,
    pub(super) pin: String,
    /// Wrong PINs so far and the lock they set: shared by every command, so parallel guesses
    /// count one by one.
    pub(super) pin_guard: Arc<Mutex<PinGuard>>,
    pub(super) model: String,
    pub(super) dim: usize,
    pub(super) enrol: Arc<Mutex<std::sync::mpsc::Sender<EnrolRequest>>>,
    /// A capture the server refused as another resident's face, held (in memory only) until
    /// staff confirm it or start another enrolment.
    pub(super) held: Arc<Mutex<Option<HeldEnrolment>>>,
}

/// An enrolment the server refused as a duplicate of `other`'s face.
pub(super) struct HeldEnrolment {
    resident: ResidentId,
    sharing: bool,
    embeddings: Vec<Vec<f32>>,
    other: ResidentId,
}

pub(super) const BAD_PIN: &str = "操作密码错误 / wrong operator PIN";

/// Wrong operator PINs in a row before the PIN is locked, and for how long.
const PIN_TRIES: u32 = 5;
const PIN_LOCK: chrono::Duration = chrono::Duration::minutes(5);

/// Counts wrong operator PINs: after [`PIN_TRIES`] in a row, every PIN (the right one too) is
/// refused for [`PIN_LOCK`], so a 4-to-6-digit PIN cannot be guessed at the screen.
#[derive(Debug, Default)]
pub struct PinGuard {
    wrong: u32,
    locked_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl PinGuard {
    /// Checks `given` against `expected` at `now` (constant time), counting a wrong one.
    pub fn check(
        &mut self,
        given: &str,
        expected: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), String> {
        use subtle::ConstantTimeEq;
        if let Some(until) = self.locked_until {
            if now < until {
                let secs = (until - now).num_seconds().max(1);
                return Err(format!(
                    "操作密码错误次数过多，请 {secs} 秒后再试 / too many wrong PINs: try again in \
                     {secs} s"
                ));
            }
            self.locked_until = None;
        }
        let (a, b) = (given.as_bytes(), expected.as_bytes());
        if a.len() == b.len() && bool::from(a.ct_eq(b)) {
            self.wrong = 0;
            return Ok(());
        }
        self.wrong += 1;
        if self.wrong >= PIN_TRIES {
            self.wrong = 0;
            self.locked_until = Some(now + PIN_LOCK);
        }
        Err(BAD_PIN.into())
    }
}

impl Commands {
    pub(super) async fn serve(
        self,
        mut rx: mpsc::Receiver<Command>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => { tokio::spawn(self.clone().handle(cmd)); }
                    None => break,
                },
            }
        }
    }

    pub(super) fn check_pin(&self, pin: &str) -> Result<(), String> {
        let now = self.counter.clock.now();
        self.pin_guard
            .lock()
            .map_err(|_| "PIN guard poisoned".to_owned())?
            .check(pin, &self.pin, now)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Commands) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| e.to_string())?
    }

    async fn handle(self, cmd: Command) {
        match cmd {
            Command::Card { code, reply } => {
                let r = self
                    .blocking(move |c| {
                        let r = c
                            .counter
                            .store
                            .resident_by_card(&code)
                            .map_err(|e| CheckinError::from(e).to_string())?
                            .ok_or("未找到该卡 / card not found")?;
                        Ok(c.counter.checkin(r.id(), How::Card, None)?)
                    })
                    .await;
                let _ = reply.send(r);
            }
            Command::Order { order, reply } => {
                let r = self
                    .blocking(move |c| Ok(c.counter.set_order(order)?))
                    .await;
                let _ = reply.send(r);
            }
            Command::Carer {
                code,
                resident_id,
                reply,
            } => {
                let r = self
                    .blocking(move |c| Ok(c.counter.carer_card(&code, resident_id)?))
                    .await;
                let _ = reply.send(r);
            }
            Command::Staff {
                pin,
                resident_id,
                reason,
                reply,
            } => {
                let r = if let Err(e) = self.check_pin(&pin) {
                    Err(e)
                } else if reason.trim().is_empty() {
                    Err("请填写原因 / a reason is required".into())
                } else {
                    let reason = reason.trim().to_owned();
                    self.blocking(move |c| {
                        Ok(c.counter
                            .checkin(resident_id, How::Staff { reason }, None)?)
                    })
                    .await
                };
                let _ = reply.send(r);
            }
            Command::Search { pin, query, reply } => {
                let r = if let Err(e) = self.check_pin(&pin) {
                    Err(e)
                } else {
                    self.blocking(move |c| {
                        let today = c
                            .counter
                            .clock
                            .now()
                            .with_timezone(&c.counter.tz)
                            .date_naive();
                        c.counter
                            .store
                            .search(&query, today)
                            .map_err(|e| e.to_string())
                    })
                    .await
                };
                let _ = reply.send(r);
            }
            Command::Enrol {
                pin,
                resident_id,
                consent_face,
                consent_sharing,
                reply,
            } => {
                let r = if let Err(e) = self.check_pin(&pin) {
                    Err(e.into())
                } else if !consent_face {
                    Err(
                        "人脸登记需要本人单独同意 / face enrolment needs the resident's consent"
                            .into(),
                    )
                } else {
                    self.enrol(resident_id, consent_sharing).await
                };
                let _ = reply.send(r);
            }
            Command::ConfirmDuplicate {
                pin,
                resident_id,
                other_resident_id,
                reason,
                reply,
            } => {
                let r = if let Err(e) = self.check_pin(&pin) {
                    Err(e.into())
                } else {
                    self.confirm_duplicate(resident_id, other_resident_id, reason)
                        .await
                };
                let _ = reply.send(r);
            }
            Command::Unenrol {
                pin,
                resident_id,
                reply,
            } => {
                let r = if let Err(e) = self.check_pin(&pin) {
                    Err(e)
                } else {
                    self.unenrol(resident_id).await
                };
                let _ = reply.send(r);
            }
        }
    }

    pub(super) async fn enrol(
        &self,
        resident: ResidentId,
        sharing: bool,
    ) -> Result<u32, EnrolError> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
        let known = self
            .blocking(move |c| {
                c.counter
                    .store
                    .resident(resident)
                    .map_err(|e| e.to_string())
            })
            .await?;
        if known.is_none() {
            return Err("未找到该老人 / resident not found".into());
        }
        let (tx, rx) = oneshot::channel();
        self.enrol
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(EnrolRequest { reply: tx })
            .map_err(|_| "face loop stopped".to_owned())?;
        let embeddings = rx.await.map_err(|_| "face loop stopped".to_owned())??;
        self.upload(resident, sharing, embeddings, None).await
    }

    /// Sends the held capture again with staff's confirmation that the face is `resident`'s
    /// although it matches `other`'s.
    pub(super) async fn confirm_duplicate(
        &self,
        resident: ResidentId,
        other: ResidentId,
        reason: String,
    ) -> Result<u32, EnrolError> {
        let held = {
            let mut slot = self.held.lock().unwrap_or_else(|e| e.into_inner());
            match slot.take() {
                Some(h) if h.resident == resident && h.other == other => h,
                kept => {
                    *slot = kept;
                    return Err(
                        "没有等待确认的登记，请重新录入 / no enrolment of this resident is waiting \
                         for confirmation: enrol again"
                            .into(),
                    );
                }
            }
        };
        let confirmed = DuplicateConfirmed {
            other_resident_id: other,
            reason,
        };
        self.upload(resident, held.sharing, held.embeddings, Some(confirmed))
            .await
    }

    /// Uploads a capture; only once the server has accepted it are the templates stored here.
    pub(super) async fn upload(
        &self,
        resident: ResidentId,
        sharing: bool,
        embeddings: Vec<Vec<f32>>,
        confirmed: Option<DuplicateConfirmed>,
    ) -> Result<u32, EnrolError> {
        let n = embeddings.len() as u32;
        // The server first: it refuses a face meal for templates it never received (no face of
        // theirs can have matched here), so the gallery takes them only once the server has.
        let Some(client) = &self.client else {
            return Err("本机尚未注册，无法登记人脸 / kiosk not registered: cannot enrol".into());
        };
        let up = TemplateUpload {
            consent_face_enrolment: true,
            consent_template_sharing: sharing,
            by: "kiosk-operator".into(),
            model: self.model.clone(),
            embeddings: embeddings.iter().map(|e| encode_embedding(e)).collect(),
            duplicate_confirmed: confirmed,
        };
        match client.put_templates(resident, &up).await {
            Ok(()) => {}
            Err(sync::client::Error::DuplicateFace { other, message }) => {
                tracing::info!(
                    resident = resident.0,
                    other = other.resident_id.0,
                    "the server refused the face as another resident's"
                );
                self.counter.show_result(
                    Mode::Operator,
                    &format!("疑似与已登记的居民（{}）为同一人", other.name),
                    &format!(
                        "Possibly the same person as enrolled resident {}",
                        other.name
                    ),
                    None,
                );
                *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(HeldEnrolment {
                    resident,
                    sharing,
                    embeddings,
                    other: other.resident_id,
                });
                return Err(EnrolError::Duplicate {
                    other_resident_id: other.resident_id,
                    other_name: other.name,
                    message,
                });
            }
            Err(e) => {
                return Err(format!(
                    "上传失败，未登记，请联网后重试 / upload failed, not enrolled; retry online: {e}"
                )
                .into());
            }
        }
        let consent = Consent {
            face_enrolment: true,
            template_sharing: sharing,
        };
        self.blocking(move |c| {
            c.counter
                .store
                .replace_templates(resident, &c.model, &embeddings, consent)
                .and_then(|_| c.gallery.rebuild(&c.counter.store, &c.model, c.dim))
                .map_err(|e| e.to_string())
        })
        .await?;
        tracing::info!(resident = resident.0, templates = n, "enrolled");
        self.counter
            .show_result(Mode::Operator, "人脸登记完成", "Face enrolled", None);
        Ok(n)
    }

    /// Deletes here first (with a record that keeps stale sync answers from restoring them),
    /// then on the server; a deletion the server missed is sent again by the sync worker.
    pub(super) async fn unenrol(&self, resident: ResidentId) -> Result<(), String> {
        let now = self.counter.clock.now();
        self.blocking(move |c| {
            c.counter
                .store
                .delete_templates(resident, now)
                .and_then(|_| c.gallery.rebuild(&c.counter.store, &c.model, c.dim))
                .map_err(|e| e.to_string())
        })
        .await?;
        let Some(client) = &self.client else {
            return Ok(());
        };
        let (cursor, answer) = match client.delete_templates(resident).await {
            Ok(done) => (done.cursor, Ok(())),
            Err(e) if e.is_transient() => {
                self.counter.notify.notify_one(); // the sync worker tries again
                return Err(format!(
                    "已在本机删除，服务器稍后删除 / deleted here; the server will be told later: {e}"
                ));
            }
            Err(e) => (
                crate::store::REFUSED,
                Err(format!(
                    "已在本机删除；服务器未删除 / deleted here; the server refused: {e}"
                )),
            ),
        };
        self.blocking(move |c| {
            c.counter
                .store
                .confirm_template_deletion(resident, cursor)
                .map_err(|e| e.to_string())
        })
        .await?;
        answer
    }
}
