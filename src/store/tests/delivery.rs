use super::*;

#[tokio::test]
async fn delivery_state_round_trips() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let h = header(b"x", 60_000, NOW)?;
    store.put(h.clone(), b"x".to_vec()).await?;
    let (a, b) = (PeerKey::from(vec![1u8; 38]), PeerKey::from(vec![2u8; 38]));
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
    let list = store
        .deliveries_for(PeerKey::from(vec![3u8; 38]), NOW)
        .await?;
    assert_eq!(list[0].1, None);
    Ok(())
}

/// A message received from a peer is recorded as sent to that peer in the commit that stores
/// it, whether it arrives whole (inline) or as a transfer (file).
#[tokio::test]
async fn the_source_peer_is_recorded_as_having_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let source = PeerKey::from(vec![5u8; 38]);
    let small = b"from a peer".to_vec();
    let large = big(200_000, 10);
    let hs = header(&small, 60_000, NOW)?;
    let hl = header(&large, 60_000, NOW)?;
    let stored = store
        .put_from(hs.clone(), small, Some(source.clone()))
        .await?;
    let mut t = store
        .begin_write_from(hl.clone(), Some(source.clone()))
        .await?;
    t.append(0, large).await?;
    t.finish().await?;
    assert_eq!(
        store.delivery(hs.id, source.clone()).await?,
        Some(Delivery::Sent {
            at_ms: stored.received_ms
        })
    );
    assert!(matches!(
        store.delivery(hl.id, source.clone()).await?,
        Some(Delivery::Sent { .. })
    ));
    assert_eq!(
        store.delivery(hs.id, PeerKey::from(vec![6u8; 38])).await?,
        None
    );
    Ok(())
}
