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

/// A store on a disk with a [`DiskFull`] switch (off), holding [`early`]'s messages.
async fn filled_store(dir: &Path) -> anyhow::Result<(Store, DiskFull, Vec<(Header, Vec<u8>)>)> {
    let disk = DiskFull::new();
    let config = Config {
        disk_full: Some(disk.clone()),
        ..Config::default()
    };
    let store = Store::open(dir, config).await?;
    let early = early()?;
    for (h, content) in &early {
        store.put(h.clone(), content.clone()).await?;
    }
    Ok((store, disk, early))
}

#[tokio::test]
async fn full_disk_refuses_writes_and_recovers_when_space_is_freed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, disk, early) = filled_store(dir.path()).await?;

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

/// A disk that refuses every write (a full copy-on-write file system): the index cannot even be
/// re-opened, so reads fail too, with [`Error::StorageFull`]; the first use after space is freed
/// re-opens it. A transfer finishing meanwhile is not stored and not half-visible, and is
/// received again afterwards.
#[tokio::test]
async fn disk_refusing_every_write_heals_on_first_use_after_freeing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, disk, early) = filled_store(dir.path()).await?;
    let content = big(500_000, 30);
    let h = header(&content, 60_000, NOW + 30)?;
    let mut t = store.begin_write(h.clone()).await?;
    t.append(0, content.clone()).await?;

    disk.fill_copy_on_write();
    let err = t.finish().await.err();
    assert!(matches!(err, Some(Error::StorageFull { .. })), "{err:?}");
    let err = store.get(early[0].0.id).await.err();
    assert!(matches!(err, Some(Error::StorageFull { .. })), "{err:?}");
    let small = b"while full".to_vec();
    let h_small = header(&small, 60_000, NOW + 31)?;
    let err = store.put(h_small.clone(), small.clone()).await.err();
    assert!(matches!(err, Some(Error::StorageFull { .. })), "{err:?}");

    disk.free();
    assert_readable(&store, &early).await?;
    assert!(!store.exists(h.id).await?);
    store.put(h_small.clone(), small.clone()).await?;
    // The bytes could not be kept (the index was unreadable when the finish failed): the
    // message is received again from the start.
    let mut t = store.begin_write(h.clone()).await?;
    let at = t.offset();
    t.append(at, content[at as usize..].to_vec()).await?;
    t.finish().await?;

    let mut all = early;
    all.push((h_small, small));
    all.push((h, content));
    assert_readable(&store, &all).await?;
    store.close().await?;
    let store = open(dir.path()).await?;
    assert_readable(&store, &all).await?;
    assert_eq!(store.len().await?, all.len() as u64);
    // The two file-backed messages' files, and no orphan.
    assert_eq!(std::fs::read_dir(dir.path().join("content"))?.count(), 2);
    assert_eq!(std::fs::read_dir(dir.path().join("partial"))?.count(), 0);
    Ok(())
}
