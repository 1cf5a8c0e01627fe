//! What the two backends' SQL does differently: how a batch's rows go in,
//! and how its rooms' offsets are read.
//!
//! SQLite gets a multi-row `VALUES` (it has no arrays, and preparing a
//! statement again costs it little: its parser took 0.06% of a saturated
//! run). PostgreSQL gets one array per column through `UNNEST`: the
//! statement's text is then the same whatever the batch's size, so sqlx's
//! statement cache and PostgreSQL's plan cache keep it, where a `VALUES`
//! of a new length was parsed, described and planned again each time
//! (about a quarter of PostgreSQL's CPU when saturated;
//! docs/performance.md). Arrays for inserts and a list of rooms only: a
//! join keeps `VALUES` (`read_known!`).
//!
//! The rooms' offsets come back from SQLite as one row, a JSON array:
//! sqlx hands each row of a SQLite result from its worker thread to the
//! task, waking it, and the hundred rows of a saturated commit's rooms
//! were half a `futex` and half a context switch per message sent.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Postgres, QueryBuilder, Row as _, Sqlite};

use super::StoreError;

/// One column of the rows of a statement, every column as long.
pub(crate) enum Column<'a> {
    Text(Vec<&'a str>),
    Owned(Vec<String>),
    MaybeText(Vec<Option<&'a str>>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

impl<'a> Column<'a> {
    /// The text `column` takes from each of `rows`.
    pub fn text<T>(rows: &'a [T], column: impl Fn(&'a T) -> &'a str) -> Self {
        Column::Text(rows.iter().map(column).collect())
    }

    fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::Owned(v) => v.len(),
            Column::MaybeText(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }
}

/// A backend's ways of passing many values to one statement.
pub(crate) trait Rows: sqlx::Database + Sized {
    /// Pushes the rows made of `columns` after `INSERT INTO t (...)`. Not
    /// for a join: PostgreSQL's cached plan for a join from arrays of
    /// unknown length may scan the other table (`read_known!`).
    fn push_rows<'a>(query: &mut QueryBuilder<'a, Self>, columns: Vec<Column<'a>>);

    /// Pushes the query for the latest offsets of `rooms` (each stored),
    /// locking them until the transaction ends; [`Rows::latest_of`] reads
    /// its answer.
    fn push_latest_of<'a>(query: &mut QueryBuilder<'a, Self>, rooms: Vec<&'a str>);

    /// Each room's latest offset in the answer to [`Rows::push_latest_of`].
    fn latest_of(rows: &[Self::Row]) -> Result<Vec<(String, i64)>, StoreError>;
}

impl Rows for Sqlite {
    fn push_rows<'a>(query: &mut QueryBuilder<'a, Self>, mut columns: Vec<Column<'a>>) {
        let rows = columns.first().map_or(0, Column::len);
        query.push_values(0..rows, |mut row, i| {
            for column in &mut columns {
                match column {
                    Column::Text(v) => row.push_bind(v[i]),
                    // Each text is bound once: moved out, not copied.
                    Column::Owned(v) => row.push_bind(std::mem::take(&mut v[i])),
                    Column::MaybeText(v) => row.push_bind(v[i]),
                    Column::Int(v) => row.push_bind(v[i]),
                    Column::Bool(v) => row.push_bind(v[i]),
                };
            }
        });
    }

    fn push_latest_of<'a>(query: &mut QueryBuilder<'a, Self>, rooms: Vec<&'a str>) {
        // Locked already: the committer's transaction began `IMMEDIATE`.
        query.push("SELECT json_group_array(json_array(room, latest)) FROM rooms WHERE room IN (");
        let mut list = query.separated(", ");
        for room in rooms {
            list.push_bind(room);
        }
        list.push_unseparated(")");
    }

    fn latest_of(rows: &[SqliteRow]) -> Result<Vec<(String, i64)>, StoreError> {
        let mut latest = Vec::new();
        for row in rows {
            latest.extend(serde_json::from_str::<Vec<(String, i64)>>(row.try_get(0)?)?);
        }
        Ok(latest)
    }
}

impl Rows for Postgres {
    fn push_rows<'a>(query: &mut QueryBuilder<'a, Self>, columns: Vec<Column<'a>>) {
        query.push(" SELECT * FROM UNNEST(");
        let mut list = query.separated(", ");
        for column in columns {
            match column {
                Column::Text(v) => list.push_bind(v),
                Column::Owned(v) => list.push_bind(v),
                Column::MaybeText(v) => list.push_bind(v),
                Column::Int(v) => list.push_bind(v),
                Column::Bool(v) => list.push_bind(v),
            };
        }
        list.push_unseparated(")");
    }

    fn push_latest_of<'a>(query: &mut QueryBuilder<'a, Self>, rooms: Vec<&'a str>) {
        // In name order, so that two batches cannot deadlock.
        query.push("SELECT room, latest FROM rooms WHERE room = ANY(");
        query.push_bind(rooms).push(") ORDER BY room FOR UPDATE");
    }

    fn latest_of(rows: &[PgRow]) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }
}
