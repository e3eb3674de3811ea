//! The durable stores behind the state: PostgreSQL, or SQLite embedded. Both keep the same
//! tables (see `migrations/`); only the SQL dialect differs.

mod postgres;
mod sqlite;

use std::collections::HashMap;

use crate::error::StateError;
use crate::table::TableId;
use crate::txn::Mutation;

/// Everything stored, as loaded at start-up.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub current_index: u64,
    pub epoch: u64,
    pub table_indexes: HashMap<TableId, u64>,
    /// (key, JSON document) per table.
    pub rows: HashMap<TableId, Vec<(String, String)>>,
}

/// One batch of writes to persist atomically.
pub(crate) struct Commit<'a> {
    pub old_index: u64,
    pub new_index: u64,
    pub epoch: u64,
    pub muts: &'a [Mutation],
    pub table_indexes: &'a [(TableId, u64)],
}

/// How many change log entries are kept.
pub(crate) const CHANGELOG_WINDOW: u64 = 100_000;

pub(crate) enum Backend {
    Postgres(postgres::Pg),
    Sqlite(sqlite::Lite),
}

impl Backend {
    /// Connects, runs the migrations and takes the leadership (bumping the fencing epoch).
    pub(crate) async fn open(url: &str) -> Result<(Backend, Loaded), StateError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pg = postgres::Pg::open(url).await?;
            let loaded = pg.load().await?;
            Ok((Backend::Postgres(pg), loaded))
        } else if url.starts_with("sqlite:") {
            let lite = sqlite::Lite::open(url).await?;
            let loaded = lite.load().await?;
            Ok((Backend::Sqlite(lite), loaded))
        } else {
            Err(StateError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// Runs the migrations only (the `caravan migrate` command).
    pub(crate) async fn migrate(url: &str) -> Result<(), StateError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            postgres::migrate(url).await
        } else if url.starts_with("sqlite:") {
            sqlite::migrate(url).await
        } else {
            Err(StateError::UnsupportedUrl(url.to_owned()))
        }
    }

    pub(crate) async fn commit(&self, commit: Commit<'_>) -> Result<(), StateError> {
        match self {
            Backend::Postgres(pg) => pg.commit(commit).await,
            Backend::Sqlite(lite) => lite.commit(commit).await,
        }
    }

    pub(crate) async fn prune_changelog(&self, below: u64) -> Result<(), StateError> {
        match self {
            Backend::Postgres(pg) => pg.prune_changelog(below).await,
            Backend::Sqlite(lite) => lite.prune_changelog(below).await,
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Backend::Postgres(pg) => pg.close().await,
            Backend::Sqlite(lite) => lite.close().await,
        }
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn table_by_name(name: &str) -> Option<TableId> {
    TableId::ALL.into_iter().find(|t| t.name() == name)
}

/// The last mutation of each row in a batch: what the table must hold after it (the change log
/// keeps every step).
fn final_rows(muts: &[Mutation]) -> std::collections::BTreeMap<(TableId, &str), &Mutation> {
    let mut last = std::collections::BTreeMap::new();
    for m in muts {
        last.insert((m.table, m.key.as_str()), m);
    }
    last
}

/// A multi-row upsert for PostgreSQL: the rows passed as arrays, numbered from `$first`
/// (`key`, document, create and modify index, then one array per column); `filter` gates the
/// rows (e.g. on the leadership fence).
fn upsert_many_sql(table: TableId, first: usize, filter: &str) -> String {
    let cols = table.columns();
    let mut names = vec!["key", "doc", "create_index", "modify_index"];
    names.extend_from_slice(cols);
    let arrays: Vec<String> = (0..names.len())
        .map(|i| match i {
            2 | 3 => format!("${}::int8[]", first + 1 + i),
            _ => format!("${}::text[]", first + 1 + i),
        })
        .collect();
    let aliases: Vec<String> = (1..=names.len()).map(|i| format!("c{i}")).collect();
    let selected: Vec<String> = aliases
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 1 {
                format!("{a}::jsonb")
            } else {
                a.clone()
            }
        })
        .collect();
    let updates: Vec<String> = names[1..]
        .iter()
        .map(|n| format!("{n} = excluded.{n}"))
        .collect();
    format!(
        "INSERT INTO {t} ({names}) SELECT {sel} FROM UNNEST({arrays}) AS u({aliases}) {filter} \
         ON CONFLICT (key) DO UPDATE SET {upd}",
        t = table.name(),
        names = names.join(", "),
        sel = selected.join(", "),
        arrays = arrays.join(", "),
        aliases = aliases.join(", "),
        upd = updates.join(", "),
    )
}

/// `INSERT ... ON CONFLICT (key) DO UPDATE` of one row (SQLite, where a statement costs no
/// round trip); SQLite numbers `$n` parameters in order of appearance.
fn upsert_sql(table: TableId, doc_cast: &str) -> String {
    let cols = table.columns();
    let mut names = vec!["key", "doc", "create_index", "modify_index"];
    names.extend_from_slice(cols);
    let placeholders: Vec<String> = (1..=names.len())
        .map(|i| {
            if i == 2 {
                format!("${i}{doc_cast}")
            } else {
                format!("${i}")
            }
        })
        .collect();
    let updates: Vec<String> = names[1..]
        .iter()
        .map(|n| format!("{n} = excluded.{n}"))
        .collect();
    format!(
        "INSERT INTO {t} ({names}) VALUES ({ph}) ON CONFLICT (key) DO UPDATE SET {upd}",
        t = table.name(),
        names = names.join(", "),
        ph = placeholders.join(", "),
        upd = updates.join(", "),
    )
}
