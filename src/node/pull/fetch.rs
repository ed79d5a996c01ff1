//! The work of one pull: page through the manifest, admit each wanted header, pull its content
//! into the store and announce it.

use std::sync::Arc;

use libp2p::PeerId;

use super::choose::{self, arriving};
use super::{
    first_cursor, PullError, PullOptions, PullProgress, PullReport, Skipped, MAX_PAGES,
    MAX_SKIPS_LISTED,
};
use crate::message::{now_ms, Header};
use crate::node::counters::Counters;
use crate::node::ctx::{peer_key, Ctx};
use crate::node::relay;
use crate::protocol::{repo, Frame};
use crate::store;

/// One pull from one peer.
pub(super) struct Puller {
    ctx: Arc<Ctx>,
    from: PeerId,
    options: PullOptions,
    report: PullReport,
    progress: PullProgress,
}

impl Puller {
    pub(super) fn new(ctx: Arc<Ctx>, from: PeerId, options: PullOptions) -> Self {
        Self {
            ctx,
            from,
            options,
            report: PullReport {
                peer: from.to_string(),
                ..PullReport::default()
            },
            progress: PullProgress::default(),
        }
    }

    /// Pages through the manifest, taking each page's wanted messages before asking for the
    /// next, so the work is in manifest order and memory holds one page at most.
    pub(super) async fn run(mut self) -> Result<PullReport, PullError> {
        let mut after = first_cursor(self.options.since_ms);
        for _ in 0..MAX_PAGES {
            let (headers, next) = self.page(after).await?;
            let wanted = self.lacking(headers).await?;
            for header in wanted {
                self.take(header).await?;
            }
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        tracing::debug!(
            peer = %self.from,
            listed = self.report.listed,
            pulled = self.report.pulled,
            skipped = self.report.skipped,
            "pull done"
        );
        Ok(self.report)
    }

    /// One manifest page, checked.
    async fn page(
        &mut self,
        after: Option<repo::Cursor>,
    ) -> Result<(Vec<Header>, Option<repo::Cursor>), PullError> {
        let limit = repo::MAX_PAGE;
        let request = repo::Request::Manifest { after, limit };
        match self.request(request).await? {
            repo::Response::Manifest { headers, next } => {
                choose::check_page(after, limit, &headers, next).map_err(|reason| {
                    PullError::BadResponse {
                        peer: self.from,
                        reason,
                    }
                })?;
                self.report.listed += headers.len() as u64;
                Ok((headers, next))
            }
            repo::Response::Chunk(_) => Err(self.bad("a chunk answering a manifest request")),
            repo::Response::Error(error) => Err(PullError::Refused {
                peer: self.from,
                error,
            }),
        }
    }

    /// The headers of a page this node lacks and the options want.
    async fn lacking(&mut self, headers: Vec<Header>) -> Result<Vec<Header>, PullError> {
        let ids = headers.iter().map(|h| h.id).collect();
        let held = self.ctx.store.has(ids).await?;
        let now = now_ms();
        let mut wanted = Vec::new();
        for (header, held) in headers.into_iter().zip(held) {
            if held {
                continue;
            }
            self.report.lacking += 1;
            let me = &self.ctx.me;
            if !choose::wanted(&header, me, self.options.for_me, self.options.since_ms, now) {
                self.report.filtered += 1;
                continue;
            }
            self.progress.messages_total += 1;
            self.progress.bytes_total = self.progress.bytes_total.saturating_add(header.length);
            wanted.push(header);
        }
        self.publish();
        Ok(wanted)
    }

    /// Admits, pulls and stores one message. Failures that concern only this message become a
    /// skip; those that concern the peer or the store end the pull.
    async fn take(&mut self, listed: Header) -> Result<(), PullError> {
        let header = arriving(&listed, &self.from);
        let id = header.id;
        let outcome = match self.admit(&header) {
            Ok(()) => self.fetch(header).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(bytes) => {
                self.report.pulled += 1;
                self.progress.messages_done += 1;
                Counters::add(&self.ctx.counters.messages_received, 1);
                tracing::debug!(id = %id.short(), bytes, "pulled message");
                self.ctx.announce(id, Some(self.from));
            }
            Err(e) if skips_only_the_message(&e) => {
                tracing::debug!(id = %id.short(), error = %e, "message skipped");
                self.report.skipped += 1;
                if self.report.skips.len() < MAX_SKIPS_LISTED {
                    self.report.skips.push(Skipped {
                        id: id.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
            Err(e) => return Err(e),
        }
        self.publish();
        Ok(())
    }

    /// The checks a pushed header passes before any of its content is accepted.
    fn admit(&self, header: &Header) -> Result<(), PullError> {
        let id = header.id;
        header
            .validate(now_ms(), &self.ctx.config.limits)
            .map_err(|source| PullError::InvalidHeader { id, source })?;
        self.ctx
            .auth
            .sender(header)
            .map_err(|source| PullError::Denied {
                id,
                source: Box::new(source),
            })?;
        relay::accepts(header, &self.ctx.me, self.ctx.config.relay, now_ms())
            .map_err(|source| PullError::NotTaken { id, source })
    }

    /// Pulls the content and stores the message; returns the content bytes received.
    async fn fetch(&mut self, header: Header) -> Result<u64, PullError> {
        let from = Some(peer_key(&self.from));
        let length = header.length;
        if length <= repo::MAX_PULL && length <= self.ctx.config.store.inline_max {
            // A small message in one request and one commit, as a small push is stored.
            let data = self.range(&header, 0, length).await?;
            self.ctx.store.put_from(header, data, from).await?;
            self.received(length);
            Counters::add(&self.ctx.counters.content_transfers, 1);
            return Ok(length);
        }
        let mut transfer = self
            .ctx
            .store
            .begin_write_from(header.clone(), from)
            .await?;
        Counters::add(&self.ctx.counters.content_transfers, 1);
        let resumed = transfer.offset();
        if resumed > 0 {
            tracing::debug!(id = %header.id.short(), resumed, "resuming pull");
        }
        while !transfer.is_complete() {
            let offset = transfer.offset();
            let want = (length - offset).min(repo::MAX_PULL);
            let data = self.range(&header, offset, want).await?;
            transfer.append(offset, data).await?;
            self.received(want);
        }
        transfer.finish().await?;
        Ok(length - resumed)
    }

    /// Content bytes `[offset, offset + length)` of `header`'s message, exactly.
    async fn range(
        &mut self,
        header: &Header,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, PullError> {
        let request = repo::Request::Pull {
            id: header.id,
            offset,
            length,
        };
        match self.request(request).await? {
            repo::Response::Chunk(data) if data.len() as u64 == length => Ok(data),
            repo::Response::Chunk(data) => Err(self.bad(&format!(
                "{} bytes answering a pull of {length}",
                data.len()
            ))),
            repo::Response::Manifest { .. } => Err(self.bad("a manifest answering a pull")),
            repo::Response::Error(error) => Err(PullError::Refused {
                peer: self.from,
                error,
            }),
        }
    }

    async fn request(&self, request: repo::Request) -> Result<repo::Response, PullError> {
        self.ctx
            .net
            .repo(self.from, Frame::Ok(request))
            .await
            .map_err(|source| PullError::Network {
                peer: self.from,
                source,
            })
    }

    fn received(&mut self, bytes: u64) {
        self.report.bytes += bytes;
        self.progress.bytes_done += bytes;
        Counters::add(&self.ctx.counters.bytes_received, bytes);
        self.publish();
    }

    fn bad(&self, reason: &str) -> PullError {
        PullError::BadResponse {
            peer: self.from,
            reason: reason.into(),
        }
    }

    fn publish(&self) {
        if let Some(progress) = &self.options.progress {
            progress.send_replace(self.progress);
        }
    }
}

/// Whether an error concerns one message only (skip it, go on) rather than the peer or the
/// local store (stop). A refusal of one pull (`not-found`: the message expired meanwhile;
/// `busy`; a rate limit) skips the message; a later pull takes it. So does a message too large
/// for what the quota has left: a smaller one may still fit.
fn skips_only_the_message(e: &PullError) -> bool {
    matches!(
        e,
        PullError::InvalidHeader { .. }
            | PullError::Denied { .. }
            | PullError::NotTaken { .. }
            | PullError::Refused { .. }
            | PullError::Store(
                store::Error::ContentMismatch(_)
                    | store::Error::AlreadyStored(_)
                    | store::Error::Busy(_)
                    | store::Error::QuotaFull(_),
            )
    )
}
