//! Dashboard accounts: argon2 password hashing, user creation, and the login check with its
//! lock-out (5 failures lock the account for 15 minutes, timed by the injected clock). Sessions
//! are random cookie values whose sha256 is stored with a per-session CSRF token. User creation,
//! every log-in (success, failure, refusal while locked) and every log-out is written to the
//! audit log in the same transaction.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use zhucan_domain::CanteenId;

use crate::crypto::{new_token, sha256_hex};
use crate::db::audit::{self, Actor};
use crate::db::users::{Role, User};
use crate::db::{self, Db};

/// Failed logins in a row that lock an account.
pub const MAX_FAILURES: i64 = 5;
/// How long a locked account stays locked.
pub const LOCK_MINUTES: i64 = 15;
/// How long a session lives.
pub const SESSION_HOURS: i64 = 12;

fn ts(t: DateTime<Utc>) -> String {
    zhucan_platform::stamp(t)
}

/// The argon2id PHC string of a password.
pub fn hash_password(password: &str) -> db::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(db::Error::other)
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).ok().is_some_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A new user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub password: String,
    pub role: Role,
    pub canteens: Vec<CanteenId>,
    pub town: Option<String>,
}

/// [`create_user_as`] from the command line (actor `cli`).
pub fn create_user(db: &Db, u: &NewUser, now: DateTime<Utc>) -> db::Result<i64> {
    create_user_as(db, u, &Actor::system("cli"), now)
}

/// Checks role and scope (an operator has canteens, a community worker a town), hashes the
/// password and stores the user, with an audit entry naming `actor`.
pub fn create_user_as(db: &Db, u: &NewUser, actor: &Actor, now: DateTime<Utc>) -> db::Result<i64> {
    let name = u.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(db::Error::invalid("name", "1 to 64 characters"));
    }
    if u.password.chars().count() < 8 {
        return Err(db::Error::invalid("password", "at least 8 characters"));
    }
    match u.role {
        Role::Operator if u.canteens.is_empty() => {
            return Err(db::Error::invalid(
                "canteen",
                "an operator needs at least one canteen",
            ));
        }
        Role::Community if u.town.is_none() => {
            return Err(db::Error::invalid(
                "town",
                "a community worker needs a town",
            ));
        }
        _ => {}
    }
    let canteens = if u.role == Role::Operator {
        u.canteens.clone()
    } else {
        Vec::new()
    };
    let town = if u.role == Role::Community {
        u.town.clone()
    } else {
        None
    };
    let hash = hash_password(&u.password)?;
    let name = name.to_owned();
    let at = ts(now);
    db.write_blocking(move |tx| {
        if let Some(t) = &town
            && !db::towns::exists(tx, t)?
        {
            return Err(db::Error::invalid("town", format!("no town '{t}'")));
        }
        for c in &canteens {
            db::canteens::get(tx, *c)
                .map_err(|_| db::Error::invalid("canteen", format!("no canteen {}", c.0)))?;
        }
        let id = db::users::insert(tx, &name, &hash, u.role, &canteens, town.as_deref(), &at)?;
        audit::append(
            tx,
            &at,
            actor,
            "user.create",
            &format!("user:{name}"),
            &json!({
                "role": u.role.as_str(),
                "canteens": canteens.iter().map(|c| c.0).collect::<Vec<_>>(),
                "town": town,
            }),
        )?;
        Ok(id)
    })
}

/// The answer to a login attempt.
#[derive(Debug)]
pub enum Login {
    /// The cookie value to set (only its hash is stored) and the user.
    Ok {
        token: String,
        user: User,
    },
    Refused,
    /// Locked until this time (UTC).
    Locked(DateTime<Utc>),
}

/// The longest user name the audit log keeps from a failed attempt.
const LOGGED_NAME_CHARS: usize = 64;

/// Checks a user name and password; on success opens a session. Every attempt is written to the
/// audit log (`login.success`, `login.failure`, `login.locked`) with the client address.
pub async fn login(
    db: &Db,
    name: String,
    password: String,
    client: Option<String>,
    now: DateTime<Utc>,
) -> db::Result<Login> {
    let at = ts(now);
    let shown: String = name.chars().take(LOGGED_NAME_CHARS).collect();
    let n2 = name.clone();
    let creds = db.read(move |c| db::users::credentials(c, &n2)).await?;
    let Some(creds) = creds else {
        // Spend the same time as a real check, so names cannot be probed by timing.
        let _ = tokio::task::spawn_blocking(move || hash_password(&password)).await;
        db.write(move |tx| {
            audit::append(
                tx,
                &at,
                &Actor::new(shown, "unknown"),
                "login.failure",
                "user:?",
                &json!({ "client": client, "reason": "unknown user" }),
            )
        })
        .await?;
        return Ok(Login::Refused);
    };
    let role = db
        .read({
            let id = creds.id;
            move |c| db::users::get(c, id)
        })
        .await?
        .role;
    let actor = Actor::new(shown, role.as_str());
    let target = format!("user:{name}");
    let id = creds.id;
    // the attempt is counted (and a lock set) before argon2 runs: parallel guesses each take a
    // place, so at most MAX_FAILURES of them are ever checked per lock period
    let attempt = {
        let (at, lock) = (at.clone(), ts(now + Duration::minutes(LOCK_MINUTES)));
        let (actor, target, client) = (actor.clone(), target.clone(), client.clone());
        db.write(move |tx| {
            let a = db::users::reserve_attempt(tx, id, &at, MAX_FAILURES, &lock)?;
            if let db::users::Attempt::Locked(until) = &a {
                audit::append(
                    tx,
                    &at,
                    &actor,
                    "login.locked",
                    &target,
                    &json!({ "client": client, "locked_until": until }),
                )?;
            }
            Ok(a)
        })
        .await?
    };
    let parse = |u: &str| {
        DateTime::parse_from_rfc3339(u)
            .map(|u| u.with_timezone(&Utc))
            .map_err(db::Error::other)
    };
    let (failed, locked) = match attempt {
        db::users::Attempt::Locked(until) => return Ok(Login::Locked(parse(&until)?)),
        db::users::Attempt::Admitted {
            failures,
            locked_until,
        } => (failures, locked_until),
    };
    let phc = creds.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&phc, &password))
        .await
        .map_err(db::Error::other)?;
    if !ok {
        let l = locked.clone();
        db.write(move |tx| {
            audit::append(
                tx,
                &at,
                &actor,
                "login.failure",
                &target,
                &json!({ "client": client, "reason": "wrong password", "failures": failed, "locked_until": l }),
            )?;
            Ok(())
        })
        .await?;
        return Ok(match locked {
            Some(until) => Login::Locked(parse(&until)?),
            None => Login::Refused,
        });
    }
    let token = new_token();
    let (hash, csrf) = (sha256_hex(token.as_bytes()), new_token());
    let exp = ts(now + Duration::hours(SESSION_HOURS));
    let user = db
        .write(move |tx| {
            db::users::set_failures(tx, id, 0, None)?;
            db::users::create_session(tx, &hash, id, &csrf, &at, &exp)?;
            audit::append(
                tx,
                &at,
                &actor,
                "login.success",
                &target,
                &json!({ "client": client }),
            )?;
            db::users::get(tx, id)
        })
        .await?;
    Ok(Login::Ok { token, user })
}

/// The user and CSRF token behind a session cookie value, if the session is live at `now`.
pub async fn session(
    db: &Db,
    token: &str,
    now: DateTime<Utc>,
) -> db::Result<Option<(User, String)>> {
    let hash = sha256_hex(token.as_bytes());
    let now = ts(now);
    db.read(move |c| db::users::session(c, &hash, &now)).await
}

/// Ends the session of a cookie value (audited as `logout` by `actor`).
pub async fn logout(db: &Db, token: &str, actor: Actor, now: DateTime<Utc>) -> db::Result<()> {
    let hash = sha256_hex(token.as_bytes());
    let now = ts(now);
    db.write(move |tx| {
        db::users::delete_session(tx, &hash, &now)?;
        audit::append(
            tx,
            &now,
            &actor,
            "logout",
            &format!("user:{}", actor.name),
            &json!({}),
        )?;
        Ok(())
    })
    .await
}
