//! The store's single writer: a thread that commits write jobs in groups.
//!
//! One durable redb commit (one fsync) costs about as much as a few hundred row updates, so the
//! thread takes every job that is waiting, runs them all in one transaction and commits once,
//! then answers each job. A job is answered only after its commit is durable: an acknowledged
//! write survives a crash. If one job fails, the group is rolled back and each job is re-run in
//! a transaction of its own, so one bad job cannot take others down with it.

use std::any::Any;
use std::sync::Arc;

use redb::{Database, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::Error;

/// Jobs waiting at most; producers wait (back-pressure) beyond this.
pub(crate) const QUEUE_CAPACITY: usize = 4096;
/// Most jobs committed together.
pub(crate) const MAX_GROUP: usize = 1024;

type Output = Box<dyn Any + Send>;
/// A write job: may run twice (group, then alone), so it is `FnMut` and must not have side
/// effects outside the transaction.
pub(crate) type Op = Box<dyn FnMut(&WriteTransaction) -> Result<Output, Error> + Send>;

pub(crate) struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Output, Error>>,
}

/// The sending side, held by the store handle.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Job>,
}

/// Joins the writer thread; see [`super::Store::close`].
pub(crate) type Joiner = std::thread::JoinHandle<()>;

impl WriterHandle {
    /// Starts the writer thread. It ends when every handle is dropped.
    pub(crate) fn spawn(db: Arc<Database>) -> Result<(Self, Joiner), Error> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let joiner = std::thread::Builder::new()
            .name("mule-store-writer".into())
            .spawn(move || run(db, rx))
            .map_err(Error::io("mule-store-writer thread"))?;
        Ok((Self { tx }, joiner))
    }

    /// Runs `op` in the next group commit and returns its result once it is durable.
    pub(crate) async fn write<T, F>(&self, mut op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, Error> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op: Op = Box::new(move |txn| op(txn).map(|t| Box::new(t) as Output));
        self.tx
            .send(Job { op, reply })
            .await
            .map_err(|_| Error::Shutdown)?;
        let out = rx.await.map_err(|_| Error::Shutdown)??;
        out.downcast::<T>().map(|b| *b).map_err(|_| Error::Corrupt {
            table: "writer",
            reason: "job returned an unexpected type".into(),
        })
    }
}

fn run(db: Arc<Database>, mut rx: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&db, &mut group);
    }
}

fn commit_group(db: &Database, group: &mut Vec<Job>) {
    if group.len() > 1 {
        match run_ops(db, group.iter_mut().map(|j| &mut j.op)) {
            Ok(outputs) => {
                for (job, out) in group.drain(..).zip(outputs) {
                    let _ = job.reply.send(Ok(out));
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, jobs = group.len(), "group commit failed; retrying jobs one by one")
            }
        }
    }
    for mut job in group.drain(..) {
        let result = run_ops(db, std::iter::once(&mut job.op))
            .map(|mut outs| outs.pop().unwrap_or_else(|| Box::new(())));
        let _ = job.reply.send(result);
    }
}

fn run_ops<'a>(db: &Database, ops: impl Iterator<Item = &'a mut Op>) -> Result<Vec<Output>, Error> {
    let txn = db.begin_write()?;
    let mut outputs = Vec::new();
    for op in ops {
        match op(&txn) {
            Ok(out) => outputs.push(out),
            Err(e) => {
                let _ = txn.abort();
                return Err(e);
            }
        }
    }
    txn.commit()?;
    Ok(outputs)
}
