//! One synchronous interface over both databases, for the db functions: [`Conn`] is an SQLite
//! connection (rusqlite) or a PostgreSQL transaction (tokio-postgres through the
//! `deadpool-postgres` pool), with the calls the db functions make: [`Conn::execute`],
//! [`Conn::query_row`], [`Conn::query_map`], [`Conn::execute_batch`]. One SQL text serves both
//! where the dialects agree; [`Conn::dialect`] picks a text where they do not
//! (ARCHITECTURE.md, "PostgreSQL").
//!
//! Hand-written because no crate offers this: `sqlx`'s `Any` driver is async only (the db layer
//! is synchronous, on the blocking pool, as SQLite needs), and rusqlite and tokio-postgres share
//! no traits. It stays small: values are SQLite's five kinds ([`Value`]), which both map to
//! (BIGINT, DOUBLE PRECISION, TEXT, BYTEA on PostgreSQL), and SQL is written with SQLite's `?N`
//! placeholders, rewritten to `$N` for PostgreSQL ([`postgres_placeholders`]).
//!
//! A PostgreSQL call blocks the calling thread on the async driver (`Handle::block_on`): callers
//! run on the blocking pool ([`super::Db`]), never on a runtime worker.

use std::borrow::Cow;

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, Type, to_sql_checked};

use super::{Error, Result};

/// Which SQL the connection speaks, for the few statements the dialects write differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection the db functions run their SQL on, and the server's keys when the database was
/// opened with them (the books MAC and masked national ID numbers are computed in Rust, the same
/// on both databases: [`super::books`], [`super::residents`]).
pub struct Conn<'a> {
    inner: Inner<'a>,
    keys: Option<&'a super::Keys>,
}

enum Inner<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(Pg<'a>),
}

/// A PostgreSQL transaction and the runtime its driver runs on.
pub struct Pg<'a> {
    pub tx: &'a deadpool_postgres::Transaction<'a>,
    pub rt: tokio::runtime::Handle,
}

impl std::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner {
            Inner::Sqlite(_) => "Conn::Sqlite",
            Inner::Postgres(_) => "Conn::Postgres",
        })
    }
}

/// A value as both databases store it: SQLite's five storage classes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A borrowed [`Value`], as read from a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl ValueRef<'_> {
    fn kind(&self) -> &'static str {
        match self {
            ValueRef::Null => "NULL",
            ValueRef::Integer(_) => "an integer",
            ValueRef::Real(_) => "a real",
            ValueRef::Text(_) => "text",
            ValueRef::Blob(_) => "a blob",
        }
    }
}

/// A Rust value that can be bound to a placeholder. (Not `u64` or `usize`: one above `i64::MAX`
/// has no column to go in; convert with `i64::try_from` where the value is checked.)
pub trait ToSql {
    fn to_value(&self) -> Value;
}

/// A Rust value that can be read from a column.
pub trait FromSql: Sized {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String>;
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Value {
                Value::Integer(i64::from(*self))
            }
        }
        impl FromSql for $t {
            fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
                match v {
                    ValueRef::Integer(i) => <$t>::try_from(i)
                        .map_err(|_| format!("{i} is out of range for {}", stringify!($t))),
                    other => Err(format!("expected an integer, found {}", other.kind())),
                }
            }
        }
    )*};
}
integer!(i64, i32, u32, u16, u8);

/// Booleans are 0/1 integers on both databases (a PostgreSQL `boolean`, as from a comparison in
/// a select list, reads too).
impl ToSql for bool {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl FromSql for bool {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Integer(i) => Ok(i != 0),
            other => Err(format!("expected 0 or 1, found {}", other.kind())),
        }
    }
}

impl ToSql for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl FromSql for f64 {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Integer(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {}", other.kind())),
        }
    }
}

impl ToSql for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl ToSql for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl FromSql for String {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Text(s) => Ok(s.to_owned()),
            other => Err(format!("expected text, found {}", other.kind())),
        }
    }
}

impl ToSql for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToSql for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl FromSql for Vec<u8> {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            other => Err(format!("expected a blob, found {}", other.kind())),
        }
    }
}

impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToSql::to_value)
    }
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Null => Ok(None),
            other => T::from_sql(other).map(Some),
        }
    }
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

/// The values bound to a statement's placeholders, in order.
pub trait Params {
    fn values(&self) -> Vec<Value>;
}

impl Params for () {
    fn values(&self) -> Vec<Value> {
        Vec::new()
    }
}

impl<T: ToSql, const N: usize> Params for [T; N] {
    fn values(&self) -> Vec<Value> {
        self.iter().map(ToSql::to_value).collect()
    }
}

impl Params for Vec<Value> {
    fn values(&self) -> Vec<Value> {
        self.clone()
    }
}

impl Params for &[&dyn ToSql] {
    fn values(&self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}

impl ToSql for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl ValueRef<'_> {
    /// The owned value.
    pub fn to_owned(&self) -> Value {
        match *self {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(t.to_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

impl Value {
    /// The borrowed value.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}

/// `params![a, b, c]`: values of different types for one statement.
#[macro_export]
macro_rules! sql_params {
    () => { () };
    ($($p:expr),+ $(,)?) => { [$(&$p as &dyn $crate::db::sql::ToSql),+] };
}
pub use crate::sql_params as params;

/// One row of a result.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `idx` (from 0) as a `T`; a column of another kind is an error naming it. (The
    /// index is generic as in rusqlite, so `r.get::<_, T>(i)` reads the same on both.)
    pub fn get<I: RowIndex, T: FromSql>(&self, idx: I) -> Result<T> {
        let idx = idx.index();
        let v = self.get_ref(idx)?;
        T::from_sql(v).map_err(|e| Error::other(format!("column {idx} ({}): {e}", self.name(idx))))
    }

    /// The name of column `idx`.
    pub fn name(&self, idx: usize) -> &str {
        match self {
            Row::Sqlite(r) => r.as_ref().column_name(idx).unwrap_or("?"),
            Row::Postgres(r) => r.columns().get(idx).map_or("?", |c| c.name()),
        }
    }

    /// How many columns the row has.
    pub fn len(&self) -> usize {
        match self {
            Row::Sqlite(r) => r.as_ref().column_count(),
            Row::Postgres(r) => r.len(),
        }
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Column `idx` (from 0) as the value it holds.
    pub fn get_ref(&self, idx: usize) -> Result<ValueRef<'_>> {
        let wrong =
            |name: &str, reason: String| Error::other(format!("column {idx} ({name}): {reason}"));
        match self {
            Row::Sqlite(r) => {
                let v = r.get_ref(idx)?;
                let v = match v {
                    rusqlite::types::ValueRef::Null => ValueRef::Null,
                    rusqlite::types::ValueRef::Integer(i) => ValueRef::Integer(i),
                    rusqlite::types::ValueRef::Real(f) => ValueRef::Real(f),
                    rusqlite::types::ValueRef::Text(t) => ValueRef::Text(
                        std::str::from_utf8(t).map_err(|e| wrong("?", e.to_string()))?,
                    ),
                    rusqlite::types::ValueRef::Blob(b) => ValueRef::Blob(b),
                };
                Ok(v)
            }
            Row::Postgres(r) => {
                let column = r
                    .columns()
                    .get(idx)
                    .ok_or_else(|| Error::other(format!("no column {idx}")))?;
                let name = column.name();
                let ty = column.type_();
                let pg = |e: tokio_postgres::Error| wrong(name, e.to_string());
                let v = if *ty == Type::INT8 {
                    r.try_get::<_, Option<i64>>(idx)
                        .map_err(pg)?
                        .map_or(ValueRef::Null, ValueRef::Integer)
                } else if *ty == Type::INT4 {
                    r.try_get::<_, Option<i32>>(idx)
                        .map_err(pg)?
                        .map_or(ValueRef::Null, |i| ValueRef::Integer(i.into()))
                } else if *ty == Type::INT2 {
                    r.try_get::<_, Option<i16>>(idx)
                        .map_err(pg)?
                        .map_or(ValueRef::Null, |i| ValueRef::Integer(i.into()))
                } else if *ty == Type::BOOL {
                    r.try_get::<_, Option<bool>>(idx)
                        .map_err(pg)?
                        .map_or(ValueRef::Null, |b| ValueRef::Integer(b.into()))
                } else if *ty == Type::FLOAT8 {
                    r.try_get::<_, Option<f64>>(idx)
                        .map_err(pg)?
                        .map_or(ValueRef::Null, ValueRef::Real)
                } else if *ty == Type::FLOAT4 {
                    r.try_get::<_, Option<f32>>(idx)
                        .map_err(pg)?
                        .map_or(ValueRef::Null, |f| ValueRef::Real(f.into()))
                } else if *ty == Type::BYTEA {
                    r.try_get::<_, Option<&[u8]>>(idx)
                        .map_err(pg)?
                        .map_or(ValueRef::Null, ValueRef::Blob)
                } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) {
                    r.try_get::<_, Option<&str>>(idx)
                        .map_err(pg)?
                        .map_or(ValueRef::Null, ValueRef::Text)
                } else {
                    // NUMERIC (what SUM of a BIGINT gives) and the rest: cast in the SQL.
                    return Err(wrong(
                        name,
                        format!("type {ty} is not read: CAST it in the SQL (e.g. AS BIGINT)"),
                    ));
                };
                Ok(v)
            }
        }
    }
}

/// A column index: a position from 0.
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// `Ok(None)` for a query that found no row.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<'a> Conn<'a> {
    /// An SQLite connection (or transaction), without keys.
    pub fn sqlite(c: &'a rusqlite::Connection) -> Conn<'a> {
        Conn {
            inner: Inner::Sqlite(c),
            keys: None,
        }
    }

    /// A PostgreSQL transaction, without keys.
    pub fn postgres(pg: Pg<'a>) -> Conn<'a> {
        Conn {
            inner: Inner::Postgres(pg),
            keys: None,
        }
    }

    /// The same connection with the server's keys (or none).
    pub fn with_keys(self, keys: Option<&'a super::Keys>) -> Conn<'a> {
        Conn { keys, ..self }
    }

    /// The server's keys, when the database was opened with them.
    pub fn keys(&self) -> Option<&'a super::Keys> {
        self.keys
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) => Dialect::Sqlite,
            Inner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// `pick.0` on SQLite, `pick.1` on PostgreSQL: for the few statements the dialects write
    /// differently.
    pub fn pick<T>(&self, sqlite: T, postgres: T) -> T {
        match self.dialect() {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params.values()))?),
            Inner::Postgres(pg) => {
                let statement = pg.prepare(sql)?;
                let values = params.values();
                let n = pg
                    .rt
                    .block_on(pg.tx.execute_raw(&statement, values.iter()))?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    /// Runs several statements separated by `;`, without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(pg) => Ok(pg.rt.block_on(pg.tx.batch_execute(sql))?),
        }
    }

    /// The first row of a query, through `f`; [`Error::NotFound`] when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        match &self.inner {
            Inner::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(params.values()))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(Error::NotFound),
                }
            }
            Inner::Postgres(pg) => {
                use futures_util::StreamExt;
                let statement = pg.prepare(sql)?;
                let values = params.values();
                let stream = pg.rt.block_on(pg.tx.query_raw(&statement, values.iter()))?;
                let mut stream = std::pin::pin!(stream);
                match pg.rt.block_on(stream.next()) {
                    Some(r) => f(&Row::Postgres(&r?)),
                    None => Err(Error::NotFound),
                }
            }
        }
    }

    /// Every row of a query, through `f`, in order.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: impl Params,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.for_each(sql, params, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Every row of a query, through `f`, in order, one at a time: rows are streamed, never all
    /// held at once (the books check reads a month of settlements this way).
    pub fn for_each(
        &self,
        sql: &str,
        params: impl Params,
        mut f: impl FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(params.values()))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Sqlite(r))?;
                }
                Ok(())
            }
            Inner::Postgres(pg) => {
                use futures_util::StreamExt;
                let statement = pg.prepare(sql)?;
                let values = params.values();
                let stream = pg.rt.block_on(pg.tx.query_raw(&statement, values.iter()))?;
                let mut stream = std::pin::pin!(stream);
                while let Some(r) = pg.rt.block_on(stream.next()) {
                    f(&Row::Postgres(&r?))?;
                }
                Ok(())
            }
        }
    }
}

impl Pg<'_> {
    fn prepare(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        let sql = postgres_placeholders(sql);
        Ok(self.rt.block_on(self.tx.prepare_cached(&sql))?)
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as R};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => R::Null,
            Value::Integer(i) => R::Integer(*i),
            Value::Real(f) => R::Real(*f),
            Value::Text(s) => R::Text(s.as_bytes()),
            Value::Blob(b) => R::Blob(b),
        }))
    }
}

/// Binds a [`Value`] to a PostgreSQL parameter of the type the server inferred for it. An
/// integer fits any integer or float column (range-checked) and a boolean; otherwise the kind
/// must match the type: no text for a number, nothing SQLite's loose typing would let pass.
impl tokio_postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) if *ty == Type::INT8 => i.to_sql(ty, out),
            Value::Integer(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Value::Integer(i) if *ty == Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
            Value::Integer(i) if *ty == Type::FLOAT8 => (*i as f64).to_sql(ty, out),
            Value::Integer(i) if *ty == Type::BOOL => (*i != 0).to_sql(ty, out),
            Value::Real(f) if *ty == Type::FLOAT8 => f.to_sql(ty, out),
            Value::Real(f) if *ty == Type::FLOAT4 => (*f as f32).to_sql(ty, out),
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Blob(b) if *ty == Type::BYTEA => b.as_slice().to_sql(ty, out),
            other => Err(format!("cannot bind {other:?} to a parameter of type {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// SQLite's `?N` (and bare `?`) placeholders as PostgreSQL's `$N`, outside string literals,
/// quoted identifiers and comments. A bare `?` is numbered as SQLite numbers it: one more than
/// the largest number given so far.
pub fn postgres_placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.char_indices().peekable();
    let mut largest: u32 = 0;
    while let Some((_, c)) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for (_, d) in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek().is_some_and(|&(_, d)| d == '-') => {
                out.push(c);
                for (_, d) in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    digits.push(d);
                    chars.next();
                }
                // as SQLite numbers them: a bare `?` is one more than the largest so far
                let n = if digits.is_empty() {
                    largest + 1
                } else {
                    digits.parse().unwrap_or(0)
                };
                largest = largest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollar_numbers_outside_literals_and_comments() {
        assert_eq!(
            postgres_placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?12 -- ?3\n AND d = '?4'"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 -- ?3\n AND d = '?4'"
        );
        assert_eq!(
            postgres_placeholders("INSERT INTO \"t?\" VALUES (?, ?)"),
            "INSERT INTO \"t?\" VALUES ($1, $2)"
        );
        assert_eq!(postgres_placeholders("SELECT 1"), "SELECT 1");
        assert_eq!(
            postgres_placeholders("WHERE p = ?1 AND (c = ? AND d = ?) OR e = ?2 OR f = ?"),
            "WHERE p = $1 AND (c = $2 AND d = $3) OR e = $2 OR f = $4"
        );
        assert_eq!(
            postgres_placeholders("SELECT 'it''s ?1'"),
            "SELECT 'it''s ?1'"
        );
    }

    #[test]
    fn values_read_back_as_their_rust_types_on_sqlite() {
        let c = rusqlite::Connection::open_in_memory().expect("open");
        let conn = Conn::sqlite(&c);
        conn.execute_batch("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n INTEGER)")
            .expect("create");
        let n = conn
            .execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
                params![42i64, 0.5f64, "稠城", vec![1u8, 2], None::<i64>],
            )
            .expect("insert");
        assert_eq!(n, 1);
        let row = conn
            .query_row("SELECT i, r, s, b, n FROM t", (), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })
            .expect("row");
        assert_eq!(row, (42, 0.5, "稠城".to_owned(), vec![1, 2], None));
        let err = conn
            .query_row("SELECT s FROM t", (), |r| r.get::<_, i64>(0))
            .expect_err("text is not an integer");
        assert!(
            err.to_string()
                .contains("column 0 (s): expected an integer"),
            "{err}"
        );
        let none = conn
            .query_row("SELECT i FROM t WHERE i = ?1", [7i64], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .expect("query");
        assert_eq!(none, None);
        assert_eq!(
            conn.query_map("SELECT i FROM t", (), |r| r.get::<_, u32>(0))
                .expect("map"),
            vec![42]
        );
    }
}
