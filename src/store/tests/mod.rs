//! Store tests, one file per part of the store; the helpers are here.

use std::io::Read;

use super::*;
use crate::identity::Identity;
use crate::message::{Draft, Header};

mod delivery;
mod expiry;
mod format;
mod full;
mod open;
mod quota;
mod staged;
mod stream;
mod write;

type TestResult = anyhow::Result<()>;

const NOW: u64 = 1_764_000_000_000;

fn header(content: &[u8], lifespan_ms: u64, created_ms: u64) -> anyhow::Result<Header> {
    let id = Identity::from_seed([3; 32]);
    Ok(Draft {
        recipient: "*".into(),
        created_ms,
        lifespan_ms,
        chains: Vec::new(),
    }
    .sign(&id, content)?)
}

fn big(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn open(dir: &Path) -> Result<Store, Error> {
    Store::open(dir, Config::default()).await
}

fn read_all(mut c: Content) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    c.read_to_end(&mut out)?;
    Ok(out)
}
