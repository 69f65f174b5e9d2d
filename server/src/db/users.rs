//! Dashboard users (role and scope), their failed-login counters, and server-side sessions.
//! Passwords are stored only as argon2 PHC strings; session cookies only as their sha256.

use zhucan_domain::CanteenId;

use super::sql::{Conn, OptionalExtension, Row, params};
use super::{Error, Result, Tx};

/// What a user may do. Scope (canteens, town) is on [`User`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Their own canteens: tally, meals, voids, staff check-in.
    Operator,
    /// Every canteen, read; closes months; exports.
    Finance,
    /// Read-only: residents and alerts of their own town.
    Community,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Finance => "finance",
            Role::Community => "community",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "finance" => Some(Role::Finance),
            "community" => Some(Role::Community),
            _ => None,
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Admin => "系统管理员",
            Role::Operator => "食堂运营",
            Role::Finance => "财务",
            Role::Community => "社区工作者",
        }
    }
}

/// A dashboard user with their scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The canteens of an operator (empty for the other roles).
    pub canteens: Vec<CanteenId>,
    /// The town of a community worker.
    pub town: Option<String>,
}

/// What the login check needs.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: i64,
    pub password_hash: String,
    pub failed_logins: i64,
    /// UTC RFC 3339.
    pub locked_until: Option<String>,
}

/// Stores a new user; returns the id. A taken name is a conflict.
pub fn insert(
    tx: &Tx<'_>,
    name: &str,
    password_hash: &str,
    role: Role,
    canteens: &[CanteenId],
    town: Option<&str>,
    at: &str,
) -> Result<i64> {
    let taken = tx
        .query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(()))
        .optional()?
        .is_some();
    if taken {
        return Err(Error::Conflict(format!("user name '{name}' is taken")));
    }
    let id: i64 = tx.query_row(
        "INSERT INTO users (name, password_hash, role, town, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         RETURNING id",
        params![name, password_hash, role.as_str(), town, at],
        |r| r.get(0),
    )?;
    for c in canteens {
        tx.execute(
            "INSERT INTO user_canteens (user_id, canteen_id) VALUES (?1, ?2)",
            [id, c.0],
        )?;
    }
    Ok(id)
}

pub fn credentials(conn: &Conn<'_>, name: &str) -> Result<Option<Credentials>> {
    conn.query_row(
        "SELECT id, password_hash, failed_logins, locked_until FROM users WHERE name = ?1",
        [name],
        |r| {
            Ok(Credentials {
                id: r.get(0)?,
                password_hash: r.get(1)?,
                failed_logins: r.get(2)?,
                locked_until: r.get(3)?,
            })
        },
    )
    .optional()
}

/// What [`reserve_attempt`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Locked until this RFC 3339 time: the password is not checked.
    Locked(String),
    /// The password may be checked; this is failure number `failures` if it is wrong, and
    /// `locked_until` is already set when it is the last one allowed.
    Admitted {
        failures: i64,
        locked_until: Option<String>,
    },
}

/// Counts a login attempt BEFORE its password is checked, in one statement, so that parallel
/// guesses cannot all read the same counter: the attempt that brings the count to `max` locks
/// the account until `lock_until` (a right password then unlocks it), and any attempt while
/// locked is refused unchecked. `now` and `lock_until` are RFC 3339 UTC (they compare as text).
pub fn reserve_attempt(
    tx: &Tx<'_>,
    id: i64,
    now: &str,
    max: i64,
    lock_until: &str,
) -> Result<Attempt> {
    let locked: Option<String> = tx
        .query_row(
            "SELECT locked_until FROM users WHERE id = ?1 AND locked_until IS NOT NULL
               AND locked_until > ?2",
            params![id, now],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(until) = locked {
        return Ok(Attempt::Locked(until));
    }
    let (failures, locked_until): (i64, Option<String>) = tx.query_row(
        "UPDATE users SET
           failed_logins = CASE WHEN failed_logins + 1 >= ?2 THEN 0 ELSE failed_logins + 1 END,
           locked_until = CASE WHEN failed_logins + 1 >= ?2 THEN CAST(?3 AS TEXT) ELSE NULL END
         WHERE id = ?1
         RETURNING CASE WHEN locked_until IS NULL THEN failed_logins ELSE ?2 END, locked_until",
        params![id, max, lock_until],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(Attempt::Admitted {
        failures,
        locked_until,
    })
}

/// Sets the failure counter and lock of a user.
pub fn set_failures(tx: &Tx<'_>, id: i64, failed: i64, locked_until: Option<&str>) -> Result<()> {
    tx.execute(
        "UPDATE users SET failed_logins = ?2, locked_until = ?3 WHERE id = ?1",
        params![id, failed, locked_until],
    )?;
    Ok(())
}

fn canteens_of(conn: &Conn<'_>, id: i64) -> Result<Vec<CanteenId>> {
    conn.query_map(
        "SELECT canteen_id FROM user_canteens WHERE user_id = ?1 ORDER BY canteen_id",
        [id],
        |r| Ok(CanteenId(r.get(0)?)),
    )
}

fn from_row(r: &Row<'_>) -> Result<(i64, String, String, Option<String>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn build(conn: &Conn<'_>, row: (i64, String, String, Option<String>)) -> Result<User> {
    let (id, name, role, town) = row;
    Ok(User {
        id,
        name,
        role: Role::parse(&role).ok_or_else(|| Error::other("bad role in database"))?,
        canteens: canteens_of(conn, id)?,
        town,
    })
}

pub fn get(conn: &Conn<'_>, id: i64) -> Result<User> {
    let row = conn
        .query_row(
            "SELECT id, name, role, town FROM users WHERE id = ?1",
            [id],
            from_row,
        )
        .optional()?
        .ok_or(Error::NotFound)?;
    build(conn, row)
}

pub fn list(conn: &Conn<'_>) -> Result<Vec<User>> {
    let rows = conn.query_map(
        "SELECT id, name, role, town FROM users ORDER BY name",
        (),
        from_row,
    )?;
    rows.into_iter().map(|r| build(conn, r)).collect()
}

pub fn create_session(
    tx: &Tx<'_>,
    id_hash: &str,
    user: i64,
    csrf: &str,
    created_at: &str,
    expires_at: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id_hash, user, csrf, created_at, expires_at],
    )?;
    Ok(())
}

/// The user and CSRF token of a live session (`expires_at` after `now`).
pub fn session(conn: &Conn<'_>, id_hash: &str, now: &str) -> Result<Option<(User, String)>> {
    let found: Option<(i64, String)> = conn
        .query_row(
            "SELECT user_id, csrf FROM sessions WHERE id_hash = ?1 AND expires_at > ?2",
            [id_hash, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match found {
        Some((uid, csrf)) => Ok(Some((get(conn, uid)?, csrf))),
        None => Ok(None),
    }
}

/// Ends a session, and drops every expired one.
pub fn delete_session(tx: &Tx<'_>, id_hash: &str, now: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM sessions WHERE id_hash = ?1 OR expires_at <= ?2",
        [id_hash, now],
    )?;
    Ok(())
}
