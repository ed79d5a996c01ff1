//! A transfer written through its writer thread ([`Sink`]) and read back ahead ([`ReadAhead`]).

use super::*;

/// Bytes written through a sink, given back mid-way and resumed, store exactly like appends;
/// the reserved id stays reserved until the writer thread is done.
#[tokio::test]
async fn sink_writes_resumes_and_finishes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let content = big(3 * 1024 * 1024 + 7, 5);
    let h = header(&content, 3_600_000, crate::message::now_ms())?;
    let half = content.len() / 2;

    let mut sink = store.begin_write(h.clone()).await?.into_sink()?;
    for piece in content[..half].chunks(256 * 1024) {
        let mut buf = sink.buffer(piece.len());
        buf.copy_from_slice(piece);
        sink.write(buf).await?;
    }
    let transfer = sink.close().await?;
    assert_eq!(transfer.offset(), half as u64);
    assert!(matches!(
        store.begin_write(h.clone()).await,
        Err(Error::Busy(_))
    ));
    drop(transfer);

    let mut sink = store.begin_write(h.clone()).await?.into_sink()?;
    assert_eq!(sink.offset(), half as u64);
    let too_long = sink.write(vec![0; content.len()]).await;
    assert!(
        matches!(too_long, Err(Error::TooLong { .. })),
        "{too_long:?}"
    );
    sink.write(content[half..].to_vec()).await?;
    let stored = sink.finish().await?;
    assert_eq!(stored.header.id, h.id);

    let mut ahead = store.read_ahead(h.id, 1000, 64 * 1024);
    let mut back = Vec::new();
    while let Some(buf) = ahead.next().await {
        let buf = buf?;
        back.extend_from_slice(&buf);
        ahead.recycle(buf);
    }
    assert_eq!(back, content[1000..]);
    Ok(())
}

/// Content that does not hash to the header is refused through a sink too.
#[tokio::test]
async fn sink_checks_the_hash() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path()).await?;
    let content = big(512 * 1024, 9);
    let h = header(&content, 3_600_000, crate::message::now_ms())?;
    let mut sink = store.begin_write(h.clone()).await?.into_sink()?;
    sink.write(big(512 * 1024, 10)).await?;
    assert!(matches!(
        sink.finish().await,
        Err(Error::ContentMismatch(_))
    ));
    assert_eq!(store.offset(h.id).await?, Offset::Unknown);
    Ok(())
}
