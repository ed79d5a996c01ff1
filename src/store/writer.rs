//! The store's single writer: a thread that commits write jobs in groups.
//!
//! One durable redb commit (one fsync) costs about as much as a few hundred row updates, so the
//! thread takes every job that is waiting, runs them all in one transaction and commits once,
//! then answers each job. A job is answered only after its commit is durable: an acknowledged
//! write survives a crash. If one job fails, the group is rolled back and each job is re-run in
//! a transaction of its own, so one bad job cannot take others down with it.
//!
//! An I/O error makes redb refuse all later work until it is re-opened, so after one the thread
//! re-opens the database ([`Slot::reopen`]) before it answers: a full disk is answered
//! [`Error::StorageFull`] and the next write, once space is freed, succeeds
//! (`protocols/store.md`, "I/O errors").

use std::sync::Arc;

use redb::{Database, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::disk::{self, Failure};
use super::slot::Slot;
use super::Error;

/// Jobs waiting at most; producers wait (back-pressure) beyond this.
pub(crate) const QUEUE_CAPACITY: usize = 4096;
/// Most jobs committed together.
pub(crate) const MAX_GROUP: usize = 1024;

/// A write job as the writer thread sees it, whatever its result type.
trait Job: Send {
    /// Runs the job's work in `txn`. May run twice (in a group, then alone), so the work must
    /// have no side effects outside the transaction.
    fn run(&mut self, txn: &WriteTransaction) -> Result<(), Error>;
    /// Answers the caller once: `Ok` only after a transaction in which [`Job::run`] succeeded
    /// has committed durably.
    fn answer(self: Box<Self>, result: Result<(), Error>);
}

/// A job with its typed result, kept from the last successful run until the commit.
struct Typed<T, F> {
    op: F,
    output: Option<T>,
    reply: oneshot::Sender<Result<T, Error>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnMut(&WriteTransaction) -> Result<T, Error> + Send,
{
    fn run(&mut self, txn: &WriteTransaction) -> Result<(), Error> {
        self.output = Some((self.op)(txn)?);
        Ok(())
    }

    fn answer(self: Box<Self>, result: Result<(), Error>) {
        let answer = match (result, self.output) {
            (Ok(()), Some(output)) => Ok(output),
            (Err(e), _) => Err(e),
            // `answer(Ok)` always follows a successful `run`, which set the output; should that
            // ever break, the caller learns the write is not known to have happened.
            (Ok(()), None) => Err(Error::Shutdown),
        };
        // A caller that stopped waiting does not want the answer.
        let _ = self.reply.send(answer);
    }
}

/// The sending side, held by the store handle.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Box<dyn Job>>,
}

/// Joins the writer thread; see [`super::Store::close`].
pub(crate) type Joiner = std::thread::JoinHandle<()>;

impl WriterHandle {
    /// Starts the writer thread. It ends when every handle is dropped.
    pub(crate) fn spawn(db: Arc<Slot>) -> Result<(Self, Joiner), Error> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let joiner = std::thread::Builder::new()
            .name("mule-store-writer".into())
            .spawn(move || run(db, rx))
            .map_err(Error::io("mule-store-writer thread"))?;
        Ok((Self { tx }, joiner))
    }

    /// Runs `op` in the next group commit and returns its result once it is durable.
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, Error> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(Typed {
            op,
            output: None,
            reply,
        });
        self.tx.send(job).await.map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }
}

fn run(slot: Arc<Slot>, mut rx: mpsc::Receiver<Box<dyn Job>>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&slot, &mut group);
    }
}

fn commit_group(slot: &Slot, group: &mut Vec<Box<dyn Job>>) {
    if group.len() > 1 {
        match on_disk(slot, |db| run_jobs(db, group.iter_mut())) {
            Ok(()) => {
                for job in group.drain(..) {
                    job.answer(Ok(()));
                }
                return;
            }
            // The disk, not a job, is at fault: one by one would fail the same way.
            Err(Error::StorageFull { path }) => {
                return answer_all(group, || Error::StorageFull { path: path.clone() })
            }
            Err(Error::Unavailable { path, reason }) => {
                return answer_all(group, || Error::Unavailable {
                    path: path.clone(),
                    reason: reason.clone(),
                })
            }
            Err(e) => {
                tracing::debug!(error = %e, jobs = group.len(), "group commit failed; retrying jobs one by one")
            }
        }
    }
    for mut job in group.drain(..) {
        let result = on_disk(slot, |db| run_jobs(db, std::iter::once(&mut job)));
        job.answer(result);
    }
}

/// Answers every job with an error made by `error`.
fn answer_all(group: &mut Vec<Box<dyn Job>>, error: impl Fn() -> Error) {
    for job in group.drain(..) {
        job.answer(Err(error()));
    }
}

/// Runs `work` on the current database. After an I/O error it re-opens the database, so the next
/// write finds a working one; a full disk becomes [`Error::StorageFull`]. If redb refused because
/// of an earlier error (the work never reached the disk), the work is run once more on the
/// re-opened database.
fn on_disk(slot: &Slot, mut work: impl FnMut(&Database) -> Result<(), Error>) -> Result<(), Error> {
    let mut retried = false;
    loop {
        let db = slot.get()?;
        let result = work(&db);
        // The re-open below waits for every handle to the old database, this one included.
        drop(db);
        let Err(e) = result else {
            return Ok(());
        };
        let Some(failure) = disk::failure(&e) else {
            return Err(e);
        };
        tracing::warn!(error = %e, ?failure, "store write failed on disk; re-opening the index");
        slot.reopen();
        match failure {
            Failure::Latched if !retried => retried = true,
            Failure::Full => {
                return Err(match e {
                    Error::StorageFull { path } => Error::StorageFull { path },
                    _ => Error::StorageFull {
                        path: slot.path().to_owned(),
                    },
                })
            }
            Failure::Io | Failure::Latched => return Err(e),
        }
    }
}

/// Runs `jobs` in one transaction and commits it; on any failure nothing is committed.
fn run_jobs<'a>(
    db: &Database,
    jobs: impl Iterator<Item = &'a mut Box<dyn Job>>,
) -> Result<(), Error> {
    let txn = db.begin_write()?;
    for job in jobs {
        if let Err(e) = job.run(&txn) {
            let _ = txn.abort();
            return Err(e);
        }
    }
    txn.commit()?;
    Ok(())
}
