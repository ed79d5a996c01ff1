//! The quota: what counts, what eviction removes (and in which order), what is refused, and
//! that the count agrees with the index after a reopen.

use super::*;
use crate::message::now_ms;

const HOUR: u64 = 3_600_000;
const OWN_SEED: [u8; 32] = [7; 32];
const OTHER_SEED: [u8; 32] = [8; 32];

/// A message of `len` bytes signed by `seed`, created `age_ms` ago, living `lifespan_ms`.
fn message(
    seed: [u8; 32],
    len: usize,
    age_ms: u64,
    lifespan_ms: u64,
) -> anyhow::Result<(Header, Vec<u8>)> {
    let content = big(
        len,
        seed[0]
            .wrapping_add(len as u8)
            .wrapping_add(lifespan_ms as u8),
    );
    let header = Draft {
        recipient: "*".into(),
        created_ms: now_ms() - age_ms,
        lifespan_ms,
        chains: Vec::new(),
    }
    .sign(&Identity::from_seed(seed), &content)?;
    Ok((header, content))
}

/// A store whose quota is `max_bytes`, that knows [`OWN_SEED`] as its own key, and that keeps
/// contents over 10 000 bytes in files.
async fn open_with_quota(dir: &Path, max_bytes: u64) -> Result<Store, Error> {
    let config = Config {
        max_bytes,
        own_key: Some(Identity::from_seed(OWN_SEED).public_key()),
        inline_max: 10_000,
        ..Config::default()
    };
    Store::open(dir, config).await
}

fn relay_peer() -> PeerKey {
    PeerKey::from(vec![1, 2, 3])
}

/// Stores a message relayed from a peer (which the store records as having it).
async fn relayed(store: &Store, m: &(Header, Vec<u8>)) -> Result<Stored, Error> {
    store
        .put_from(m.0.clone(), m.1.clone(), Some(relay_peer()))
        .await
}

fn content_file(dir: &Path, id: &MessageId) -> PathBuf {
    dir.join("content").join(id.to_string())
}

#[tokio::test]
async fn a_full_store_evicts_expired_then_the_soonest_expiring_relayed() -> TestResult {
    let dir = tempfile::tempdir()?;
    // Headroom: eviction frees up to 300 000 / 64 = 4 687 bytes beyond the need when it can.
    let store = open_with_quota(dir.path(), 300_000).await?;
    let expired = message(OTHER_SEED, 50_000, 10_000, 1_000)?;
    let late = message(OTHER_SEED, 50_000, 0, 2 * HOUR)?;
    let soon = message(OTHER_SEED, 50_000, 0, HOUR)?;
    let own = message(OWN_SEED, 50_000, 0, HOUR / 2)?;
    let latest = message(OTHER_SEED, 50_000, 0, 3 * HOUR)?;
    for m in [&expired, &late, &soon, &latest] {
        relayed(&store, m).await?;
    }
    store.put(own.0.clone(), own.1.clone()).await?;
    assert_eq!(store.usage().used, 250_000);

    // 60 000 more need 10 000: the expired message alone frees them.
    let first = message(OTHER_SEED, 60_000, 0, 4 * HOUR)?;
    relayed(&store, &first).await?;
    assert!(!store.exists(expired.0.id).await?);
    assert!(!content_file(dir.path(), &expired.0.id).exists());
    assert_eq!(store.delivery(expired.0.id, relay_peer()).await?, None);
    assert_eq!(store.usage().used, 260_000);

    // 80 000 more need 40 000: the relayed message expiring soonest goes; the own unsent one,
    // which expires sooner still, stays.
    let second = message(OTHER_SEED, 80_000, 0, 4 * HOUR)?;
    relayed(&store, &second).await?;
    assert!(!store.exists(soon.0.id).await?);
    assert!(!content_file(dir.path(), &soon.0.id).exists());
    for kept in [&late, &own, &latest, &first, &second] {
        assert!(store.exists(kept.0.id).await?, "{} was evicted", kept.0.id);
    }
    assert_eq!(store.usage().used, 290_000);
    assert!(store.usage().used <= store.usage().quota);
    Ok(())
}

#[tokio::test]
async fn own_unsent_messages_are_kept_and_what_cannot_fit_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open_with_quota(dir.path(), 100_000).await?;
    let own = message(OWN_SEED, 60_000, 0, HOUR)?;
    let other = message(OTHER_SEED, 30_000, 0, 2 * HOUR)?;
    store.put(own.0.clone(), own.1.clone()).await?;
    relayed(&store, &other).await?;

    // 50 000 more need 40 000; only the 30 000 relayed bytes may go: refused, nothing evicted.
    let newcomer = message(OTHER_SEED, 50_000, 0, HOUR)?;
    let refused = relayed(&store, &newcomer).await;
    let Err(Error::QuotaFull(full)) = refused else {
        anyhow::bail!("expected QuotaFull, got {refused:?}");
    };
    assert_eq!(
        full,
        Full {
            length: 50_000,
            used: 90_000,
            quota: 100_000,
            own_unsent: 60_000,
            reserved: 0
        }
    );
    assert!(Error::QuotaFull(full)
        .to_string()
        .contains("own unsent messages"));
    assert!(store.exists(other.0.id).await?);
    assert!(store.exists(own.0.id).await?);
    assert!(!store.exists(newcomer.0.id).await?);
    assert_eq!(store.usage().used, 90_000);

    // A local send is refused the same way (a file-backed one through a transfer), and leaves
    // no partial row holding quota.
    let own_too = message(OWN_SEED, 50_000, 0, HOUR)?;
    let refused = store.put(own_too.0.clone(), own_too.1.clone()).await;
    assert!(matches!(refused, Err(Error::QuotaFull(_))), "{refused:?}");
    assert_eq!(store.offset(own_too.0.id).await?, Offset::Unknown);
    assert_eq!(store.usage().used, 90_000);

    // Larger than the whole quota: refused whatever is held.
    let huge = message(OTHER_SEED, 100_001, 0, HOUR)?;
    let refused = relayed(&store, &huge).await;
    let Err(e @ Error::QuotaFull(_)) = refused else {
        anyhow::bail!("expected QuotaFull, got {refused:?}");
    };
    assert!(e.to_string().contains("larger than the whole"), "{e}");

    // Once a peer has the own message, it may make room like any relayed one.
    store
        .set_delivery(
            own.0.id,
            PeerKey::from(vec![9]),
            Delivery::Sent { at_ms: now_ms() },
        )
        .await?;
    relayed(&store, &newcomer).await?;
    assert!(
        !store.exists(own.0.id).await?,
        "the delivered own message expires first"
    );
    assert!(store.exists(other.0.id).await?);
    assert_eq!(store.usage().used, 80_000);
    Ok(())
}

#[tokio::test]
async fn open_transfers_hold_their_declared_length() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open_with_quota(dir.path(), 100_000).await?;
    let incoming = message(OTHER_SEED, 80_000, 0, HOUR)?;
    let mut transfer = store
        .begin_write_from(incoming.0.clone(), Some(relay_peer()))
        .await?;
    transfer.append(0, incoming.1[..10].to_vec()).await?;
    assert_eq!(store.usage().used, 80_000, "the whole declared length");

    // Nothing may go for a newcomer: the partial message is not evictable.
    let other = message(OTHER_SEED, 30_000, 0, HOUR)?;
    let refused = relayed(&store, &other).await;
    let Err(Error::QuotaFull(full)) = refused else {
        anyhow::bail!("expected QuotaFull, got {refused:?}");
    };
    assert_eq!(full.reserved, 80_000);
    // Nor may a second transfer open.
    let refused = store.begin_write(other.0.clone()).await;
    assert!(matches!(refused, Err(Error::QuotaFull(_))), "{refused:?}");

    // A dropped transfer keeps its reservation, also across a reopen, and finishing it
    // counts the message once.
    drop(transfer);
    store.close().await?;
    let store = open_with_quota(dir.path(), 100_000).await?;
    assert_eq!(store.usage().used, 80_000);
    let mut transfer = store
        .begin_write_from(incoming.0.clone(), Some(relay_peer()))
        .await?;
    assert_eq!(
        store.usage().used,
        80_000,
        "a resumed transfer reserves nothing more"
    );
    let at = transfer.offset();
    transfer
        .append(at, incoming.1[at as usize..].to_vec())
        .await?;
    transfer.finish().await?;
    assert_eq!(store.usage().used, 80_000);
    Ok(())
}

#[tokio::test]
async fn a_partial_transfer_nobody_writes_is_evicted_before_complete_messages() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open_with_quota(dir.path(), 100_000).await?;
    let kept = message(OTHER_SEED, 30_000, 0, HOUR)?;
    relayed(&store, &kept).await?;
    let stale = message(OTHER_SEED, 60_000, 0, 2 * HOUR)?;
    let mut transfer = store
        .begin_write_from(stale.0.clone(), Some(relay_peer()))
        .await?;
    transfer.append(0, stale.1[..20_000].to_vec()).await?;
    let partial_file = dir.path().join("partial").join(stale.0.id.to_string());
    assert!(partial_file.exists());

    // While it is being written it stays, and the newcomer cannot fit beside it.
    let newcomer = message(OTHER_SEED, 50_000, 0, HOUR)?;
    let refused = relayed(&store, &newcomer).await;
    assert!(matches!(refused, Err(Error::QuotaFull(_))), "{refused:?}");

    // Its sender went away: the partial transfer goes first, although it expires last, and
    // the complete message stays.
    drop(transfer);
    relayed(&store, &newcomer).await?;
    assert_eq!(store.offset(stale.0.id).await?, Offset::Unknown);
    assert!(!partial_file.exists(), "the partial file is left behind");
    assert!(store.exists(kept.0.id).await?);
    assert_eq!(store.usage().used, 80_000);

    // The quota agrees with the index after a reopen; the message would have to start over.
    store.close().await?;
    let store = open_with_quota(dir.path(), 100_000).await?;
    assert_eq!(store.usage().used, 80_000);
    let again = store.begin_write(stale.0.clone()).await?;
    assert_eq!(again.offset(), 0);
    Ok(())
}

#[tokio::test]
async fn a_refused_content_gives_its_reservation_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open_with_quota(dir.path(), 100_000).await?;
    let (header, content) = message(OTHER_SEED, 40_000, 0, HOUR)?;
    let mut transfer = store.begin_write(header.clone()).await?;
    let mut wrong = content.clone();
    wrong[0] ^= 1;
    transfer.append(0, wrong).await?;
    assert!(matches!(
        transfer.finish().await,
        Err(Error::ContentMismatch(_))
    ));
    assert_eq!(store.usage().used, 0);
    // A duplicate is refused as such, and a full store evicts nothing for it.
    let kept = message(OTHER_SEED, 90_000, 0, HOUR)?;
    relayed(&store, &kept).await?;
    assert!(matches!(
        relayed(&store, &kept).await,
        Err(Error::AlreadyStored(_))
    ));
    assert!(store.exists(kept.0.id).await?);
    assert_eq!(store.usage().used, 90_000);
    Ok(())
}

#[tokio::test]
async fn collection_gives_the_quota_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open_with_quota(dir.path(), 100_000).await?;
    let m = message(OTHER_SEED, 30_000, 0, 1_000)?;
    relayed(&store, &m).await?;
    assert_eq!(store.usage().used, 30_000);
    assert_eq!(store.collect_expired(now_ms() + 10_000).await?, 1);
    assert_eq!(store.usage().used, 0);
    Ok(())
}

#[tokio::test]
async fn the_count_agrees_with_the_index_after_a_crash_mid_eviction() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open_with_quota(dir.path(), 100_000).await?;
    let old = message(OTHER_SEED, 60_000, 0, HOUR)?;
    let young = message(OTHER_SEED, 30_000, 0, 2 * HOUR)?;
    relayed(&store, &old).await?;
    relayed(&store, &young).await?;
    let saved = std::fs::read(content_file(dir.path(), &old.0.id))?;
    let newcomer = message(OTHER_SEED, 50_000, 0, 3 * HOUR)?;
    relayed(&store, &newcomer).await?;
    assert!(!store.exists(old.0.id).await?);
    let before = store.usage();
    assert_eq!(before.used, 80_000);
    store.close().await?;

    // A crash after the eviction's commit but before its file removal leaves the content file
    // without rows: put it back, as such a crash would have left it.
    std::fs::write(content_file(dir.path(), &old.0.id), saved)?;
    let store = open_with_quota(dir.path(), 100_000).await?;
    assert!(
        !content_file(dir.path(), &old.0.id).exists(),
        "recovery sweeps it"
    );
    assert!(!store.exists(old.0.id).await?);
    assert_eq!(store.usage(), before);
    assert_eq!(store.len().await?, 2);
    Ok(())
}
