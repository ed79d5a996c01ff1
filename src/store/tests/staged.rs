//! This node's own content: staged (written and hashed once), then adopted by renaming.

use std::io::Write;

use super::*;

/// Stages `content` in `store` the way a sender does (on a blocking thread).
async fn stage(store: &Store, content: &[u8]) -> anyhow::Result<Staged> {
    let (store, content) = (store.clone(), content.to_vec());
    tokio::task::spawn_blocking(move || {
        let mut staged = store.stage()?;
        for piece in content.chunks(100_000) {
            staged.write_all(piece)?;
        }
        anyhow::Ok(staged)
    })
    .await?
}

/// The names in `partial/`.
fn partial_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = std::fs::read_dir(dir.join(PARTIAL_DIR))?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

#[tokio::test]
async fn staged_content_is_adopted_without_a_copy_and_reads_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let content = big(1_000_000, 5);
    let staged = stage(&store, &content).await?;
    assert_eq!(staged.length(), content.len() as u64);
    let h = header(&content, 60_000, NOW)?;
    assert_eq!(staged.sha256(), h.sha256);
    let staged_at = staged.path().to_owned();
    assert!(staged_at.starts_with(dir.path().join(PARTIAL_DIR)));

    let stored = store.adopt(h.clone(), staged).await?;
    assert!(!stored.inline);
    // The staged file itself became the content: renamed, not copied.
    assert!(!staged_at.exists());
    assert!(partial_files(dir.path())?.is_empty());
    let (_, read) = store.read(h.id).await?;
    assert_eq!(read_all(read)?, content);
    assert_eq!(store.usage().used, content.len() as u64);

    // The same message again is refused, and the stored one stays intact.
    let again = stage(&store, &content).await?;
    assert!(matches!(
        store.adopt(h.clone(), again).await,
        Err(Error::AlreadyStored(_))
    ));
    assert!(partial_files(dir.path())?.is_empty());
    let (_, read) = store.read(h.id).await?;
    assert_eq!(read_all(read)?, content);
    assert_eq!(store.usage().used, content.len() as u64);
    Ok(())
}

#[tokio::test]
async fn small_staged_content_is_stored_inline() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let content = b"a short sealed text".to_vec();
    let h = header(&content, 60_000, NOW)?;
    let stored = store
        .adopt(h.clone(), stage(&store, &content).await?)
        .await?;
    assert!(stored.inline);
    assert!(partial_files(dir.path())?.is_empty());
    let (_, read) = store.read(h.id).await?;
    assert_eq!(read_all(read)?, content);
    Ok(())
}

#[tokio::test]
async fn a_header_that_does_not_match_the_staged_bytes_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let content = big(200_000, 1);
    let mut other = content.clone();
    other[100] ^= 1;
    let wrong_hash = header(&other, 60_000, NOW)?;
    let err = store
        .adopt(wrong_hash.clone(), stage(&store, &content).await?)
        .await;
    assert!(matches!(err, Err(Error::ContentMismatch(_))), "{err:?}");
    let wrong_length = header(&content[..199_999], 60_000, NOW)?;
    let err = store
        .adopt(wrong_length, stage(&store, &content).await?)
        .await;
    assert!(matches!(err, Err(Error::Incomplete { .. })), "{err:?}");
    // Nothing stored, nothing left behind, nothing reserved.
    assert!(partial_files(dir.path())?.is_empty());
    assert_eq!(store.get(wrong_hash.id).await?, None);
    assert_eq!(store.usage().used, 0);
    Ok(())
}

#[tokio::test]
async fn staged_content_over_the_quota_is_refused_and_removed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let config = Config {
        max_bytes: 100_000,
        ..Config::default()
    };
    let store = Store::open(dir.path(), config).await?;
    let content = big(150_000, 2);
    let h = header(&content, 60_000, NOW)?;
    let err = store.adopt(h.clone(), stage(&store, &content).await?).await;
    assert!(matches!(err, Err(Error::QuotaFull(_))), "{err:?}");
    assert!(partial_files(dir.path())?.is_empty());
    assert_eq!(store.usage().used, 0);
    assert_eq!(store.get(h.id).await?, None);
    Ok(())
}

#[tokio::test]
async fn a_staging_file_left_by_a_crash_is_removed_at_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let staged = stage(&store, &big(300_000, 3)).await?;
    // A crash before the adoption: the file stays (nothing removes it).
    let path = staged.path().to_owned();
    std::mem::forget(staged);
    assert!(path.exists());
    store.close().await?;

    let store = Store::open(dir.path(), Config::default()).await?;
    assert!(!path.exists());
    assert!(partial_files(dir.path())?.is_empty());
    assert_eq!(store.len().await?, 0);
    Ok(())
}
