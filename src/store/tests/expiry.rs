use super::*;

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
    let peer = PeerKey::from(vec![1, 2, 3]);
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
