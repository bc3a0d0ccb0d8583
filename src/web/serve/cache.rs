//! The status answers, shared: a live page polls its project every second, and a few hundred
//! of them at once must not each open the database and read the run again. An answer is
//! reused while the database files are unchanged (size and modification time of the database
//! and its `-wal`: every commit, and every job's start and end, changes them) and for at most
//! [`FRESH`], which bounds how old its clock-derived fields (elapsed time, ETA, a stalled
//! writer) can be. While one request computes the new answer, the requests that arrive meanwhile
//! take the previous one, if it is younger than [`STALE`], rather than wait: under a burst of
//! polls only the one request that reads the database pays for it. A request that finds no
//! recent answer waits for the one being computed rather than compute it again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, TryLockError};
use std::time::{Duration, Instant, SystemTime};

use super::ApiError;

/// The longest an answer is reused.
pub const FRESH: Duration = Duration::from_millis(250);

/// The oldest previous answer a request takes while another request computes the new one: a
/// live page polls every second.
pub const STALE: Duration = Duration::from_secs(1);

/// Answers kept at most; past it the cache starts again (names come from requests).
const MAX_ENTRIES: usize = 1024;

/// What the database files look like: (size, modification time) of the database and its log.
type Stamp = [Option<(u64, SystemTime)>; 2];

fn stamp(db: &Path) -> Stamp {
    let look = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
    };
    let mut wal = db.as_os_str().to_os_string();
    wal.push("-wal");
    [look(db), look(Path::new(&wal))]
}

struct Entry {
    stamp: Stamp,
    at: Instant,
    body: Arc<Vec<u8>>,
}

/// One key's answer: read by every request, replaced by the one that computes it again
/// (computing is done under `computing`, so requests that find the answer stale wait for the
/// one new answer rather than each compute it).
#[derive(Default)]
struct Slot {
    kept: RwLock<Option<Entry>>,
    computing: Mutex<()>,
}

pub struct Cache {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    fresh: Duration,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Slot {
    /// The kept answer, if it is current.
    fn current(&self, now: &Stamp, fresh: Duration) -> Option<Arc<Vec<u8>>> {
        let kept = self.kept.read().unwrap_or_else(|p| p.into_inner());
        kept.as_ref()
            .filter(|e| e.stamp == *now && e.at.elapsed() < fresh)
            .map(|e| Arc::clone(&e.body))
    }

    /// The kept answer, current or not, if it is younger than `limit`.
    fn recent(&self, limit: Duration) -> Option<Arc<Vec<u8>>> {
        let kept = self.kept.read().unwrap_or_else(|p| p.into_inner());
        kept.as_ref()
            .filter(|e| e.at.elapsed() < limit)
            .map(|e| Arc::clone(&e.body))
    }
}

impl Cache {
    /// A cache whose answers are reused for at most `fresh` ([`FRESH`] in the server).
    pub fn new(fresh: Duration) -> Cache {
        Cache {
            slots: Mutex::new(HashMap::new()),
            fresh,
        }
    }

    /// The answer for `key` over database `db`: the kept one while it is current; else, while
    /// another request computes the new one, the previous one if it is younger than [`STALE`];
    /// else `compute`'s (kept if it succeeds).
    pub fn answer(
        &self,
        db: &Path,
        key: &str,
        compute: impl FnOnce() -> Result<Vec<u8>, ApiError>,
    ) -> Result<Arc<Vec<u8>>, ApiError> {
        let slot = {
            let mut slots = lock(&self.slots);
            if slots.len() >= MAX_ENTRIES && !slots.contains_key(key) {
                slots.clear();
            }
            Arc::clone(slots.entry(key.to_string()).or_default())
        };
        // Taken before computing: a commit while it runs makes the next request compute again.
        let now = stamp(db);
        if let Some(body) = slot.current(&now, self.fresh) {
            return Ok(body);
        }
        let _computing = match slot.computing.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => match slot.recent(STALE) {
                Some(body) => return Ok(body),
                None => lock(&slot.computing),
            },
        };
        // Another request may have computed it while this one waited.
        if let Some(body) = slot.current(&now, self.fresh) {
            return Ok(body);
        }
        let body = Arc::new(compute()?);
        *slot.kept.write().unwrap_or_else(|p| p.into_inner()) = Some(Entry {
            stamp: now,
            at: Instant::now(),
            body: Arc::clone(&body),
        });
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_reused_until_the_database_changes() {
        let dir = std::env::temp_dir().join(format!("kbatch-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("db.sqlite");
        std::fs::write(&db, b"one").unwrap();
        let cache = Cache::new(Duration::from_secs(3600));
        let mut computed = 0;
        let mut ask = |cache: &Cache| {
            cache
                .answer(&db, "p", || {
                    computed += 1;
                    Ok(computed.to_string().into_bytes())
                })
                .unwrap()
        };
        assert_eq!(*ask(&cache), b"1");
        assert_eq!(*ask(&cache), b"1", "reused");
        let wal = dir.join("db.sqlite-wal");
        std::fs::write(&wal, b"a commit").unwrap();
        assert_eq!(*ask(&cache), b"2", "the log changed");
        let failed = cache.answer(&db, "q", || Err(ApiError::new(404, "no")));
        assert_eq!(failed.unwrap_err().status, 404);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn while_one_request_computes_the_others_take_the_previous_answer() {
        use std::sync::mpsc;
        let dir = std::env::temp_dir().join(format!("kbatch-cache-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("db.sqlite");
        std::fs::write(&db, b"one").unwrap();
        let cache = Arc::new(Cache::new(Duration::from_secs(3600)));
        cache.answer(&db, "p", || Ok(b"old".to_vec())).unwrap();
        std::fs::write(dir.join("db.sqlite-wal"), b"a commit").unwrap();
        let (started, has_started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let computing = {
            let (cache, db) = (Arc::clone(&cache), db.clone());
            std::thread::spawn(move || {
                let answer = cache.answer(&db, "p", || {
                    started.send(()).unwrap();
                    released.recv().unwrap();
                    Ok(b"new".to_vec())
                });
                answer.unwrap()
            })
        };
        has_started.recv().unwrap();
        let meanwhile = cache.answer(&db, "p", || panic!("computed while another computes"));
        assert_eq!(
            *meanwhile.unwrap(),
            b"old",
            "the previous answer, without waiting"
        );
        release.send(()).unwrap();
        assert_eq!(*computing.join().unwrap(), b"new");
        let after = cache.answer(&db, "p", || panic!("computed again"));
        assert_eq!(*after.unwrap(), b"new", "the new answer, once computed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
