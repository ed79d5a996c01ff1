use super::*;
use crate::identity::Identity;
use crate::message::{Draft, Header};

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

#[tokio::test]
async fn expired_messages_are_collected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let short = big(100_000, 4);
    let long = b"long lived".to_vec();
    let hs = header(&short, 1_000, NOW)?;
    let hl = header(&long, 1_000_000, NOW)?;
    store.put(hs.clone(), short).await?;
    store.put(hl.clone(), long).await?;
    let peer = vec![1, 2, 3];
    store
        .set_delivery(hs.id, peer.clone(), Delivery::Sent { at_ms: NOW })
        .await?;
    // An expired partial transfer nobody is writing goes too.
    let partial = big(1000, 5);
    let hp = header(&partial, 1_000, NOW)?;
    let mut t = store.begin_write(hp.clone()).await?;
    t.append(0, partial[..10].to_vec()).await?;
    drop(t);

    assert_eq!(store.collect_expired(NOW + 500).await?, 0);
    assert_eq!(store.collect_expired(NOW + 2_000).await?, 1);
    assert!(!store.exists(hs.id).await?);
    assert!(store.exists(hl.id).await?);
    assert_eq!(store.delivery(hs.id, peer).await?, None);
    assert_eq!(store.offset(hp.id).await?, Offset::Unknown);
    assert!(!dir.path().join("content").join(hs.id.to_string()).exists());
    assert!(!dir.path().join("partial").join(hp.id.to_string()).exists());
    Ok(())
}

#[tokio::test]
async fn delivery_state_round_trips() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let h = header(b"x", 60_000, NOW)?;
    store.put(h.clone(), b"x".to_vec()).await?;
    let (a, b) = (vec![1u8; 38], vec![2u8; 38]);
    let retry = Delivery::Retry {
        attempts: 2,
        next_attempt_ms: NOW + 5,
        last_error: "busy".into(),
    };
    store.set_delivery(h.id, a.clone(), retry.clone()).await?;
    store
        .set_delivery(h.id, b.clone(), Delivery::Sent { at_ms: NOW })
        .await?;
    assert_eq!(store.delivery(h.id, a.clone()).await?, Some(retry.clone()));
    let list = store.deliveries_for(a, NOW).await?;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].1, Some(retry));
    let list = store.deliveries_for(vec![3u8; 38], NOW).await?;
    assert_eq!(list[0].1, None);
    Ok(())
}

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
