//! Kills a process that is writing to the store with SIGKILL at arbitrary points, then reopens
//! the store and checks that every acknowledged message is intact and nothing half-written is
//! visible. The writer is this same test binary, re-run with `MULE_CRASH_DIR` set.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mule::identity::Identity;
use mule::message::{Draft, MessageId};
use mule::store::{Config, Store};
use sha2::{Digest, Sha256};

const DEADLINE: Duration = Duration::from_secs(60);

fn content(i: u64) -> Vec<u8> {
    // Mix small (inline) and large (file) contents.
    let len = if i.is_multiple_of(3) {
        300_000 + i as usize * 7
    } else {
        100 + i as usize
    };
    (0..len).map(|b| (b as u64 * 31 + i) as u8).collect()
}

/// The writer child: stores messages forever, printing `acked <id>` after each durable store.
#[tokio::test]
#[ignore = "entry point of the child process of kill_at_random_points_leaves_store_consistent"]
async fn crash_child() -> anyhow::Result<()> {
    let Ok(dir) = std::env::var("MULE_CRASH_DIR") else {
        return Ok(());
    };
    let start: u64 = std::env::var("MULE_CRASH_START")?.parse()?;
    let store = Store::open(dir, Config::default()).await?;
    let id = Identity::from_seed([5; 32]);
    for i in start.. {
        let body = content(i);
        let header = Draft {
            recipient: "*".into(),
            created_ms: mule::message::now_ms(),
            lifespan_ms: 3_600_000,
            chains: Vec::new(),
        }
        .sign(&id, &body)?;
        if i.is_multiple_of(3) {
            // Large: several appends, the way a push arrives.
            let mut t = store.begin_write(header.clone()).await?;
            for chunk in body.chunks(65_536) {
                let at = t.offset();
                t.append(at, chunk.to_vec()).await?;
            }
            t.finish().await?;
        } else {
            store.put(header.clone(), body).await?;
        }
        println!("acked {} {}", header.id, i);
    }
    Ok(())
}

#[tokio::test]
async fn kill_at_random_points_leaves_store_consistent() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let mut acked: Vec<(MessageId, u64)> = Vec::new();
    let mut next = 0u64;
    for round in 0..6u64 {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("MULE_CRASH_DIR", dir.path())
            .env("MULE_CRASH_START", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        // Kill after a varying number of acks, so the kill lands at different points.
        let want = 3 + round * 5;
        let started = Instant::now();
        let mut got = 0;
        while got < want {
            anyhow::ensure!(
                started.elapsed() < DEADLINE,
                "writer child made no progress"
            );
            let Some(line) = lines.next() else {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    e.read_to_string(&mut err)?;
                }
                anyhow::bail!("writer child ended early: {err}");
            };
            let line = line?;
            if let Some(rest) = line.strip_prefix("acked ") {
                let mut parts = rest.split(' ');
                let id: MessageId = parts.next().unwrap_or_default().parse()?;
                let i: u64 = parts.next().unwrap_or_default().parse()?;
                acked.push((id, i));
                next = i + 1;
                got += 1;
            }
        }
        child.kill()?;
        child.wait()?;
        // Also skip the index the child may have been writing, so ids never repeat.
        next += 1;

        let store = Store::open(dir.path(), Config::default()).await?;
        for (id, i) in &acked {
            let (stored, mut reader) = store.read(*id).await?;
            let mut body = Vec::new();
            reader.read_to_end(&mut body)?;
            assert_eq!(
                body,
                content(*i),
                "acked message {id} damaged after kill in round {round}"
            );
            assert_eq!(
                <[u8; 32]>::from(Sha256::digest(&body)),
                stored.header.sha256
            );
        }
        // Everything visible is complete and verified, acked or not.
        for stored in store.manifest(None, usize::MAX, 0).await? {
            let (_, mut reader) = store.read(stored.header.id).await?;
            let mut body = Vec::new();
            reader.read_to_end(&mut body)?;
            assert_eq!(
                <[u8; 32]>::from(Sha256::digest(&body)),
                stored.header.sha256
            );
        }
        // No file without a row survives recovery.
        let visible = store.len().await?;
        let files = std::fs::read_dir(dir.path().join("content"))?.count() as u64;
        assert!(
            files <= visible,
            "{files} content files for {visible} messages"
        );
        store.close().await?;
    }
    assert!(acked.len() >= 60);
    Ok(())
}
