//! Pure decisions of a pull: is a manifest page well formed, which listed headers to take, and
//! how a pulled header is stored. No I/O and no clock.

use libp2p::PeerId;
use serde_bytes::ByteBuf;

use crate::identity;
use crate::message::{Header, MessageId};
use crate::node::relay::{self, Me};
use crate::protocol::repo;

/// A position in the manifest order: (creation time, id).
pub type Position = (u64, MessageId);

/// The position of a header in the manifest order.
pub fn position(header: &Header) -> Position {
    (header.created_ms, header.id)
}

/// Checks a manifest page against the request that asked for it (`after`, `limit`): at most
/// `limit` headers, strictly ascending and all after `after`, and a `next` cursor (if any) that
/// moves forward. A page that breaks these could keep a client paging forever.
pub fn check_page(
    after: Option<repo::Cursor>,
    limit: u32,
    headers: &[Header],
    next: Option<repo::Cursor>,
) -> Result<(), String> {
    if headers.len() > limit as usize {
        return Err(format!(
            "{} headers in a page of at most {limit}",
            headers.len()
        ));
    }
    let mut last = after.map(|c| (c.created_ms, c.id));
    for header in headers {
        let here = position(header);
        if last.is_some_and(|l| here <= l) {
            return Err(format!("header {} is out of manifest order", header.id));
        }
        last = Some(here);
    }
    if let Some(next) = next {
        let next = (next.created_ms, next.id);
        let start = after.map(|c| (c.created_ms, c.id));
        if start.is_some_and(|s| next <= s) {
            return Err("the next cursor does not move forward".into());
        }
    }
    Ok(())
}

/// Whether the options want `header`: addressed to this node when `for_me`, created at or after
/// `since_ms` when given. The repository is not trusted to have filtered anything.
pub fn wanted(header: &Header, me: &Me, for_me: bool, since_ms: Option<u64>, now_ms: u64) -> bool {
    if since_ms.is_some_and(|since| header.created_ms < since) {
        return false;
    }
    !for_me || relay::addresses(header, me, now_ms)
}

/// The header as a push from `from` would have carried it: the repository counts as a hop
/// (unless it is the original sender), so this node never offers the message back to it and
/// the hop limit holds as for pushed messages. `hops` is outside the signature.
pub fn arriving(header: &Header, from: &PeerId) -> Header {
    let mut header = header.clone();
    let from_bytes = from.to_bytes();
    let is_sender = identity::public_key_of(from) == Some(header.sender);
    let listed = header.hops.iter().any(|h| h.as_slice() == from_bytes);
    if !is_sender && !listed {
        header.hops.push(ByteBuf::from(from_bytes));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::message::Draft;

    fn header(from: &Identity, to: &str, created_ms: u64) -> anyhow::Result<Header> {
        Ok(Draft {
            recipient: to.into(),
            created_ms,
            lifespan_ms: 1_000,
            chains: vec![],
        }
        .sign(from, b"x")?)
    }

    fn cursor(h: &Header) -> repo::Cursor {
        repo::Cursor {
            created_ms: h.created_ms,
            id: h.id,
        }
    }

    #[test]
    fn pages_must_be_ordered_bounded_and_move_forward() -> anyhow::Result<()> {
        let a = Identity::from_seed([1; 32]);
        let (h1, h2) = (header(&a, "*", 10)?, header(&a, "*", 20)?);
        let page = [h1.clone(), h2.clone()];
        assert_eq!(check_page(None, 2, &page, Some(cursor(&h2))), Ok(()));
        assert_eq!(
            check_page(None, 1, &page, None),
            Err("2 headers in a page of at most 1".into())
        );
        let reversed = [h2.clone(), h1.clone()];
        assert_eq!(
            check_page(None, 2, &reversed, None),
            Err(format!("header {} is out of manifest order", h1.id))
        );
        assert_eq!(
            check_page(Some(cursor(&h2)), 2, &page, None),
            Err(format!("header {} is out of manifest order", h1.id))
        );
        assert_eq!(
            check_page(Some(cursor(&h2)), 2, &[], Some(cursor(&h1))),
            Err("the next cursor does not move forward".into())
        );
        assert_eq!(check_page(Some(cursor(&h1)), 2, &[h2], None), Ok(()));
        Ok(())
    }

    #[test]
    fn options_filter_by_recipient_and_time() -> anyhow::Result<()> {
        let (a, b, c) = (
            Identity::from_seed([1; 32]),
            Identity::from_seed([2; 32]),
            Identity::from_seed([3; 32]),
        );
        let me_b = Me::of(&b);
        let to_b = header(&a, &b.peer_id().to_string(), 100)?;
        let to_c = header(&a, &c.peer_id().to_string(), 100)?;
        let to_all = header(&a, "*", 100)?;
        assert!(wanted(&to_c, &me_b, false, None, 0));
        assert!(!wanted(&to_c, &me_b, true, None, 0));
        assert!(wanted(&to_b, &me_b, true, None, 0));
        assert!(wanted(&to_all, &me_b, true, None, 0));
        assert!(wanted(&to_b, &me_b, true, Some(100), 0));
        assert!(!wanted(&to_b, &me_b, true, Some(101), 0));
        Ok(())
    }

    #[test]
    fn the_repository_counts_as_a_hop_unless_it_sent_the_message() -> anyhow::Result<()> {
        let (a, mule) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let relayed = header(&a, "*", 1)?;
        let got = arriving(&relayed, &mule.peer_id());
        assert_eq!(got.hops.len(), 1);
        assert_eq!(got.hops[0].as_slice(), mule.peer_id().to_bytes());
        assert_eq!(arriving(&got, &mule.peer_id()).hops.len(), 1, "listed once");
        let own = header(&mule, "*", 1)?;
        assert!(arriving(&own, &mule.peer_id()).hops.is_empty());
        Ok(())
    }
}
