use super::*;
use redb::{ReadableDatabase, ReadableTableMetadata};

/// A writer dropped mid-message (as a crash would leave it), then the store closed and reopened:
/// nothing half-written is visible, the partial bytes resume, orphans are swept.
#[tokio::test]
async fn reopen_after_interrupted_write_is_consistent() -> TestResult {
    let dir = tempfile::tempdir()?;
    let content = big(500_000, 6);
    let h = header(&content, 60_000, NOW)?;
    let done = header(b"done", 60_000, NOW)?;
    {
        let store = open(dir.path()).await?;
        store.put(done.clone(), b"done".to_vec()).await?;
        let mut t = store.begin_write(h.clone()).await?;
        t.append(0, content[..123_456].to_vec()).await?;
        drop(t);
        store.close().await?;
    }
    // Debris a crash could leave: a partial file with no row, a content file with no row.
    let stray = MessageId([7; 32]);
    std::fs::write(dir.path().join("partial").join(stray.to_string()), b"junk")?;
    std::fs::write(dir.path().join("content").join(stray.to_string()), b"junk")?;
    std::fs::write(dir.path().join("content").join("not-an-id"), b"junk")?;

    let store = open(dir.path()).await?;
    assert!(store.exists(done.id).await?);
    assert!(!store.exists(h.id).await?);
    assert_eq!(store.offset(h.id).await?, Offset::Partial(123_456));
    assert_eq!(store.manifest(None, 10, NOW).await?.len(), 1);
    assert!(!dir.path().join("partial").join(stray.to_string()).exists());
    assert!(!dir.path().join("content").join(stray.to_string()).exists());
    assert!(!dir.path().join("content").join("not-an-id").exists());

    let mut t = store.begin_write(h.clone()).await?;
    t.append(123_456, content[123_456..].to_vec()).await?;
    t.finish().await?;
    assert_eq!(read_all(store.read(h.id).await?.1)?, content);
    Ok(())
}

/// A crash between the rename into `content/` and the commit leaves the partial row, no
/// message row and the complete file under `content/`: reopening moves it back, so the
/// transfer resumes at its full length and only commits, rather than starting over.
#[tokio::test]
async fn content_renamed_but_not_committed_resumes_complete() -> TestResult {
    let dir = tempfile::tempdir()?;
    let content = big(300_000, 9);
    let h = header(&content, 60_000, NOW)?;
    {
        let store = open(dir.path()).await?;
        let mut t = store.begin_write(h.clone()).await?;
        t.append(0, content.clone()).await?;
        drop(t);
        store.close().await?;
    }
    let name = h.id.to_string();
    std::fs::rename(
        dir.path().join("partial").join(&name),
        dir.path().join("content").join(&name),
    )?;

    let store = open(dir.path()).await?;
    assert!(!store.exists(h.id).await?);
    assert_eq!(store.offset(h.id).await?, Offset::Partial(300_000));
    assert!(!dir.path().join("content").join(&name).exists());
    let t = store.begin_write(h.clone()).await?;
    assert_eq!(t.offset(), 300_000);
    t.finish().await?;
    assert_eq!(read_all(store.read(h.id).await?.1)?, content);
    Ok(())
}

/// The partial row without a file (crash after the row, before the file) is swept too.
#[tokio::test]
async fn partial_row_without_file_is_swept() -> TestResult {
    let dir = tempfile::tempdir()?;
    let h = header(&big(1000, 8), 60_000, NOW)?;
    {
        let store = open(dir.path()).await?;
        let t = store.begin_write(h.clone()).await?;
        drop(t);
        store.close().await?;
    }
    std::fs::remove_file(dir.path().join("partial").join(h.id.to_string()))?;
    let store = open(dir.path()).await?;
    assert_eq!(store.offset(h.id).await?, Offset::Unknown);
    Ok(())
}

#[tokio::test]
async fn second_open_is_refused_while_first_lives() -> TestResult {
    let dir = tempfile::tempdir()?;
    let _store = open(dir.path()).await?;
    assert!(matches!(open(dir.path()).await, Err(Error::Db(_))));
    Ok(())
}

/// A store written by a mule with another schema is refused, not misread.
#[tokio::test]
async fn another_schema_version_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    open(dir.path()).await?.close().await?;
    {
        let db = redb::Database::create(dir.path().join(INDEX_FILE))?;
        let txn = db.begin_write()?;
        txn.open_table(tables::META)?
            .insert(tables::SCHEMA_VERSION_KEY, tables::SCHEMA_VERSION + 1)?;
        txn.commit()?;
    }
    let err = open(dir.path()).await.err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("corrupt store record in meta: store schema version 3; this mule reads version 2")
    );
    Ok(())
}

/// A version-1 store (inline contents keyed by id) is migrated at open: every content readable,
/// the old table gone, the version bumped; messages keep their delivery state.
#[tokio::test]
async fn a_version_one_store_is_migrated() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let messages: Vec<(Header, Vec<u8>)> = (0..20u64)
        .map(|i| {
            let content = big(100 + i as usize * 50, i as u8);
            Ok((header(&content, 60_000, NOW + 1000 - i * 7)?, content))
        })
        .collect::<anyhow::Result<_>>()?;
    let large = big(200_000, 77);
    let large_header = header(&large, 60_000, NOW)?;
    for (h, content) in &messages {
        store
            .put_from(h.clone(), content.clone(), Some(PeerKey::from(vec![4, 2])))
            .await?;
    }
    store.put(large_header.clone(), large.clone()).await?;
    store.close().await?;
    // Rewrite the index as version 1 held it.
    {
        let db = redb::Database::create(dir.path().join(INDEX_FILE))?;
        let txn = db.begin_write()?;
        {
            let mut old = txn.open_table(tables::INLINE_V1)?;
            for (h, content) in &messages {
                old.insert(h.id.as_bytes().as_slice(), content.as_slice())?;
            }
            // A stray version-1 row with no message is dropped by the migration.
            old.insert([9u8; 32].as_slice(), b"stray".as_slice())?;
            txn.open_table(tables::META)?
                .insert(tables::SCHEMA_VERSION_KEY, 1)?;
        }
        txn.delete_table(tables::INLINE)?;
        txn.commit()?;
    }

    let store = open(dir.path()).await?;
    for (h, content) in &messages {
        let (stored, read) = store.read(h.id).await?;
        assert!(stored.inline);
        assert_eq!(&read_all(read)?, content);
        assert_eq!(
            store.delivery(h.id, PeerKey::from(vec![4, 2])).await?,
            Some(Delivery::Sent {
                at_ms: stored.received_ms
            })
        );
    }
    let (_, read) = store.read(large_header.id).await?;
    assert_eq!(read_all(read)?, large);
    let batch: Vec<(u64, MessageId)> = messages.iter().map(|(h, _)| (h.created_ms, h.id)).collect();
    let contents = store.inline_contents(batch).await?;
    assert!(contents
        .iter()
        .zip(&messages)
        .all(|(c, (_, m))| c.as_ref() == Some(m)));
    store.close().await?;

    let db = redb::Database::create(dir.path().join(INDEX_FILE))?;
    let read = db.begin_read()?;
    let version = read
        .open_table(tables::META)?
        .get(tables::SCHEMA_VERSION_KEY)?
        .map(|v| v.value());
    assert_eq!(version, Some(2));
    assert!(read.open_table(tables::INLINE_V1).is_err());
    assert_eq!(
        read.open_table(tables::INLINE)?.len()?,
        messages.len() as u64
    );
    Ok(())
}

/// A message row whose content file vanished (damage from outside) is removed with its rows,
/// so the message can be received again.
#[tokio::test]
async fn message_row_without_content_file_is_swept() -> TestResult {
    let dir = tempfile::tempdir()?;
    let content = big(100_000, 9);
    let h = header(&content, 60_000, NOW)?;
    {
        let store = open(dir.path()).await?;
        store.put(h.clone(), content.clone()).await?;
        store
            .set_delivery(
                h.id,
                PeerKey::from(vec![4; 38]),
                Delivery::Sent { at_ms: NOW },
            )
            .await?;
        store.close().await?;
    }
    std::fs::remove_file(dir.path().join(CONTENT_DIR).join(h.id.to_string()))?;
    let store = open(dir.path()).await?;
    assert!(!store.exists(h.id).await?);
    assert!(store.manifest(None, 10, NOW).await?.is_empty());
    assert_eq!(
        store.delivery(h.id, PeerKey::from(vec![4; 38])).await?,
        None
    );
    store.put(h.clone(), content.clone()).await?;
    assert_eq!(read_all(store.read(h.id).await?.1)?, content);
    Ok(())
}
