//! Versioned schema migrations, applied in order and recorded in `PRAGMA user_version`.
//!
//! Never remove or edit a shipped migration; append a new file to `schema/` and to [`MIGRATIONS`].

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

pub(crate) const MIGRATIONS: &[&str] = &[include_str!("../../schema/0001_init.sql")];

/// The schema version this build writes.
pub fn supported_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database up to [`supported_version`] in one exclusive transaction, or refuses a
/// database written by a newer kbatch without touching it.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let found = user_version(conn)?;
    if found > supported_version() {
        return Err(Error::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: supported_version(),
        });
    }
    if found == supported_version() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    // Re-read inside the lock: another process may have migrated meanwhile.
    let found = user_version(&tx)?;
    for sql in MIGRATIONS.iter().skip(found.max(0) as usize) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", supported_version())?;
    tx.commit()?;
    Ok(())
}

fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        assert_eq!(user_version(&conn).unwrap(), supported_version());
    }

    #[test]
    fn newer_schema_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", supported_version() + 1)
            .unwrap();
        let err = migrate(&mut conn, Path::new("x.sqlite")).unwrap_err();
        assert!(matches!(err, Error::SchemaTooNew { .. }), "{err}");
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }
}
