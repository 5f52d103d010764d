//! Group commit: the API's spec writes are made durable by shared flushes it awaits, each covering every write finished before it began, instead of one blocking flush per request.
//!
//! A write deep inside the store ends with [`super::Collection::make_durable`]. Called plainly,
//! that flushes at once (blocking), as every caller outside the API expects. The API runs a
//! request's handler inside [`deferring`]: there `make_durable` only notes that the request
//! wrote, and the endpoint awaits [`GroupCommit::durable`] before it answers. Concurrent
//! requests so share flushes (32 writers, a handful of fsyncs) and none holds a thread while
//! the disk works. Nothing is skipped: an answered write is on disk.

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::StoreError;

thread_local! {
    /// `Some(wrote)` while a handler runs inside [`deferring`] on this thread.
    static DEFERRED: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Runs `write` with its flushes deferred to the caller, who must await
/// [`GroupCommit::durable`] before acknowledging anything when the second value is `true`
/// (something was written). `write` runs on this thread to the end (it is not async), so the
/// thread-local scope is exactly its extent; a panic inside restores the outer scope.
pub fn deferring<T>(write: impl FnOnce() -> T) -> (T, bool) {
    struct Restore(Option<bool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEFERRED.with(|d| d.set(self.0));
        }
    }
    let outer = DEFERRED.with(|d| d.replace(Some(false)));
    let _restore = Restore(outer);
    let result = write();
    let wrote = DEFERRED.with(|d| d.get()) == Some(true);
    (result, wrote)
}

/// Inside [`deferring`]: notes that this request wrote and returns `true` (its flush is the
/// caller's to await). Outside: `false`, and the caller flushes itself.
pub(super) fn defer_flush() -> bool {
    DEFERRED.with(|d| match d.get() {
        Some(_) => {
            d.set(Some(true));
            true
        }
        None => false,
    })
}

/// Shared flushes of one database (cheap to clone).
#[derive(Clone)]
pub struct GroupCommit {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    state: Mutex<State>,
    finished: Notify,
}

/// Flushes are numbered from 1 as they begin; at most one runs at a time.
struct State {
    /// The number of the last flush begun.
    begun: u64,
    /// The number of the last flush finished, and what it came to.
    finished: u64,
    outcome: Result<(), String>,
    running: bool,
}

impl GroupCommit {
    pub(super) fn new(db: sled::Db) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                state: Mutex::new(State {
                    begun: 0,
                    finished: 0,
                    outcome: Ok(()),
                    running: false,
                }),
                finished: Notify::new(),
            }),
        }
    }

    /// Returns once a flush that began after this call has finished: every write finished
    /// before the call is then on disk. The first waiter to find no flush running begins one;
    /// those arriving meanwhile wait for the next, which covers them all. The flush runs on
    /// the blocking pool to its end even if every waiter goes away.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        // A flush running now may have begun before this caller's write: wait for the next.
        let needed = inner.lock().begun + 1;
        loop {
            // Registered before the state is read, so a flush finishing in between wakes us.
            let finished = inner.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            {
                let mut state = inner.lock();
                if state.finished >= needed {
                    // A later flush than the one needed covers this write as well.
                    return state.outcome.clone().map_err(StoreError::Backend);
                }
                if !state.running {
                    state.running = true;
                    state.begun += 1;
                    let number = state.begun;
                    let job = Arc::clone(inner);
                    tokio::task::spawn_blocking(move || job.flush(number));
                }
            }
            finished.await;
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn flush(&self, number: u64) {
        let outcome = self
            .db
            .flush()
            .map(drop)
            .map_err(|e| format!("flushing the store: {e}"));
        {
            let mut state = self.lock();
            state.running = false;
            state.finished = number;
            state.outcome = outcome;
        }
        self.finished.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferring_notes_writes_and_restores_the_outer_scope() {
        assert!(!defer_flush(), "outside a scope the caller flushes");
        let ((), wrote) = deferring(|| {});
        assert!(!wrote);
        let (inner, wrote) = deferring(|| {
            let ((), inner) = deferring(|| assert!(defer_flush()));
            inner
        });
        assert!(inner);
        assert!(!wrote, "an inner scope's write is the inner caller's");
        assert!(!defer_flush());
        let caught = std::panic::catch_unwind(|| deferring(|| panic!("boom")));
        assert!(caught.is_err());
        assert!(!defer_flush(), "a panic leaves no scope behind");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_share_flushes_and_each_sees_one_begun_after_it() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let commit = GroupCommit::new(db.clone());
        let waiters: Vec<_> = (0..64u32)
            .map(|n| {
                let commit = commit.clone();
                let db = db.clone();
                tokio::spawn(async move {
                    db.insert(n.to_be_bytes(), &b"x"[..]).unwrap();
                    let needed = commit.inner.lock().begun + 1;
                    commit.durable().await.unwrap();
                    assert!(commit.inner.lock().finished >= needed);
                })
            })
            .collect();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        let flushes = commit.inner.lock().finished;
        assert!((1..=64).contains(&flushes), "{flushes} flushes");
        commit.durable().await.unwrap();
        assert_eq!(commit.inner.lock().finished, flushes + 1);
    }
}
