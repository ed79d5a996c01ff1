//! A full disk, simulated with [`DiskFull`]: refused writes are [`Error::StorageFull`], nothing
//! stored before is lost, and the store takes writes again by itself once space is freed.

use super::*;

/// The messages stored before the disk fills: small (inline) ones and one in a content file.
fn early() -> anyhow::Result<Vec<(Header, Vec<u8>)>> {
    let mut out = Vec::new();
    for i in 0..4u8 {
        let content = big(100 + usize::from(i), i);
        out.push((header(&content, 60_000, NOW + u64::from(i))?, content));
    }
    let content = big(300_000, 9);
    out.push((header(&content, 60_000, NOW + 10)?, content));
    Ok(out)
}

async fn assert_readable(store: &Store, messages: &[(Header, Vec<u8>)]) -> TestResult {
    for (h, content) in messages {
        let (_, c) = store.read(h.id).await?;
        assert_eq!(&read_all(c)?, content, "message {}", h.id);
    }
    Ok(())
}

#[tokio::test]
async fn full_disk_refuses_writes_and_recovers_when_space_is_freed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let disk = DiskFull::new();
    let config = Config {
        disk_full: Some(disk.clone()),
        ..Config::default()
    };
    let store = Store::open(dir.path(), config).await?;
    let early = early()?;
    for (h, content) in &early {
        store.put(h.clone(), content.clone()).await?;
    }

    disk.fill();
    // An inline message: the index must grow to hold it.
    let inline = big(60_000, 20);
    let h_inline = header(&inline, 60_000, NOW + 20)?;
    let err = store.put(h_inline.clone(), inline.clone()).await.err();
    assert!(matches!(err, Some(Error::StorageFull { .. })), "{err:?}");
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("no space left"), "{text}");
    // A large message: its content file cannot grow.
    let large = big(200_000, 21);
    let h_large = header(&large, 60_000, NOW + 21)?;
    let err = store.put(h_large.clone(), large.clone()).await.err();
    assert!(matches!(err, Some(Error::StorageFull { .. })), "{err:?}");
    // Everything stored before is still there, and reads work while the disk is full.
    assert_readable(&store, &early).await?;
    assert!(!store.exists(h_inline.id).await?);
    assert_eq!(store.len().await?, early.len() as u64);

    disk.free();
    // The same store handle takes writes again: nobody re-opened it from outside.
    store.put(h_inline.clone(), inline.clone()).await?;
    store.put(h_large.clone(), large.clone()).await?;
    let mut all = early;
    all.push((h_inline, inline));
    all.push((h_large, large));
    assert_readable(&store, &all).await?;

    // A clean close and open: everything committed is there, nothing else.
    store.close().await?;
    let store = open(dir.path()).await?;
    assert_readable(&store, &all).await?;
    assert_eq!(store.len().await?, all.len() as u64);
    Ok(())
}
