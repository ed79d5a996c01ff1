use super::*;

#[tokio::test]
async fn put_read_and_manifest() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let small = b"small message".to_vec();
    let large = big(300_000, 1);
    let h1 = header(&small, 60_000, NOW + 1)?;
    let h2 = header(&large, 60_000, NOW)?;
    store.put(h1.clone(), small.clone()).await?;
    store.put(h2.clone(), large.clone()).await?;
    assert!(matches!(
        store.put(h1.clone(), small.clone()).await,
        Err(Error::AlreadyStored(_))
    ));

    let (stored, content) = store.read(h2.id).await?;
    assert!(!stored.inline);
    assert_eq!(read_all(content)?, large);
    let (stored, content) = store.read(h1.id).await?;
    assert!(stored.inline);
    assert_eq!(read_all(content)?, small);
    assert_eq!(
        store.read_range(h2.id, 1000, 10).await?,
        large[1000..1010].to_vec()
    );
    assert!(matches!(
        store.read_range(h2.id, 299_995, 10).await,
        Err(Error::OutOfRange { .. })
    ));

    // Creation order, paged.
    let page = store.manifest(None, 1, NOW).await?;
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].header.id, h2.id);
    let cursor = (page[0].header.created_ms, page[0].header.id);
    let page = store.manifest(Some(cursor), 10, NOW).await?;
    assert_eq!(
        page.iter().map(|s| s.header.id).collect::<Vec<_>>(),
        vec![h1.id]
    );
    // Expired ones are left out.
    assert!(store.manifest(None, 10, NOW + 120_000).await?.is_empty());
    assert_eq!(
        store.has(vec![h1.id, MessageId([9; 32])]).await?,
        vec![true, false]
    );
    Ok(())
}

#[tokio::test]
async fn put_refuses_wrong_content() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let h = header(b"the real content", 60_000, NOW)?;
    let err = store
        .put(h.clone(), b"the fake content".to_vec())
        .await
        .err();
    assert_eq!(
        err.map(|e| e.to_string()),
        Some(format!(
            "content mismatch: message {} does not hash to its header's sha256",
            h.id
        ))
    );
    assert!(!store.exists(h.id).await?);
    Ok(())
}

#[tokio::test]
async fn resumable_writes_check_offsets() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let content = big(200_000, 2);
    let h = header(&content, 60_000, NOW)?;
    let mut t = store.begin_write(h.clone()).await?;
    assert_eq!(t.append(0, content[..50_000].to_vec()).await?, 50_000);
    let err = t.append(10, content[10..20].to_vec()).await.err();
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("incorrect offset (got 10, have 50000)")
    );
    assert!(matches!(
        t.append(50_000, vec![0; 150_001]).await,
        Err(Error::TooLong {
            end: 200_001,
            length: 200_000
        })
    ));
    assert_eq!(store.offset(h.id).await?, Offset::Partial(50_000));
    // A second writer for the same message is refused while the first lives.
    assert!(matches!(
        store.begin_write(h.clone()).await,
        Err(Error::Busy(_))
    ));
    drop(t);

    // Resume where the file ends.
    let mut t = store.begin_write(h.clone()).await?;
    assert_eq!(t.offset(), 50_000);
    assert!(matches!(
        t.append(0, content[..10].to_vec()).await,
        Err(Error::IncorrectOffset {
            got: 0,
            have: 50_000
        })
    ));
    t.append(50_000, content[50_000..].to_vec()).await?;
    t.finish().await?;
    assert_eq!(store.offset(h.id).await?, Offset::Complete);
    assert_eq!(read_all(store.read(h.id).await?.1)?, content);
    assert!(matches!(
        store.begin_write(h).await,
        Err(Error::AlreadyStored(_))
    ));
    Ok(())
}

#[tokio::test]
async fn finish_checks_hash_and_length() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let content = big(100_000, 3);
    let h = header(&content, 60_000, NOW)?;
    let mut t = store.begin_write(h.clone()).await?;
    t.append(0, content[..99_999].to_vec()).await?;
    let mut t = match t.finish().await {
        Err(Error::Incomplete {
            held: 99_999,
            length: 100_000,
        }) => store.begin_write(h.clone()).await?,
        other => anyhow::bail!("expected incomplete, got {other:?}"),
    };
    t.append(99_999, vec![0xAA]).await?; // wrong last byte
    assert!(matches!(t.finish().await, Err(Error::ContentMismatch(_))));
    // The bad partial data is gone: a new transfer starts from zero.
    assert_eq!(store.offset(h.id).await?, Offset::Unknown);
    assert!(!store.exists(h.id).await?);
    Ok(())
}

#[tokio::test]
async fn concurrent_writers_get_busy() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let h = header(&big(10, 0), 60_000, NOW)?;
    let attempts = (0..8).map(|_| store.begin_write(h.clone()));
    let results = futures::future::join_all(attempts).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Busy(_))))
        .count();
    assert_eq!((winners, busy), (1, 7));
    Ok(())
}

/// Many writes at once, duplicates among them: whatever groups the writer forms, each duplicate
/// fails alone and every other write is stored.
#[tokio::test]
async fn a_failing_write_does_not_fail_its_group() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let mut writes = Vec::new();
    for i in 0..32u8 {
        let content = vec![i; 100];
        let h = header(&content, 60_000, NOW + u64::from(i))?;
        writes.push((h.clone(), content.clone()));
        writes.push((h, content));
    }
    let results =
        futures::future::join_all(writes.iter().map(|(h, c)| store.put(h.clone(), c.clone())))
            .await;
    let stored = results.iter().filter(|r| r.is_ok()).count();
    let duplicates = results
        .iter()
        .filter(|r| matches!(r, Err(Error::AlreadyStored(_))))
        .count();
    assert_eq!((stored, duplicates), (32, 32));
    assert_eq!(store.len().await?, 32);
    Ok(())
}
