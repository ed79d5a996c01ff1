//! Opening content (`content::open`): the age-header pre-scan (bounded before age parses it),
//! then age itself and the envelope inside, on bytes any sender controls.
//!
//! The first input byte picks the mode: arbitrary content as it arrives, or a real sealed text
//! for the fuzzer's key whose bytes are then overwritten at fuzzer-chosen places (so age's
//! stanza parsing, MAC and payload checks see near-valid input, not only noise).
//!
//! Checks: content starting with age's magic whose header does not end within
//! `MAX_AGE_HEADER` is refused as too large, and more stanzas than `MAX_STANZAS` are refused
//! before age parses them; content is read as raw exactly when it starts with neither magic;
//! an untouched sealed text opens for this key with the same head; reading any opened body
//! ends (with bytes or an error), never panics.
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use mule::content::envelope::{Head, MAGIC_FAMILY};
use mule::content::keys::{Keyring, Recipient};
use mule::content::open::{open, OpenError, Outcome, Sealing, AGE_MAGIC, MAX_AGE_HEADER};
use mule::content::seal::{seal_bytes, Seal};
use mule::identity::Identity;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let me = Identity::from_seed([7; 32]);
    let keys = Keyring::new(&me, Vec::new()).expect("a keyring of a fixed key");
    if mode % 2 == 0 {
        check(rest, &keys, None);
        return;
    }
    // A real sealed text, then up to 8 overwrites: (offset u16, byte).
    let head = Head {
        text: Some(String::from_utf8_lossy(rest.get(..rest.len().min(64)).unwrap_or(&[])).into()),
        ..Head::default()
    };
    let recipient = Recipient::of_peer(&me.peer_id()).expect("a recipient of a fixed key");
    let mut sealed = seal_bytes(&head, &Seal::For(vec![recipient])).expect("a short text seals");
    let edits = rest.get(rest.len().min(64)..).unwrap_or(&[]);
    let mut edited = false;
    for e in edits.chunks_exact(3).take(8) {
        let at = usize::from(u16::from_le_bytes([e[0], e[1]])) % (sealed.len() + 1);
        if let Some(b) = sealed.get_mut(at) {
            edited |= *b != e[2];
            *b = e[2];
        }
    }
    check(&sealed, &keys, (!edited).then_some(&head));
});

fn check(content: &[u8], keys: &Keyring, sealed_head: Option<&Head>) {
    let is_age = content.starts_with(AGE_MAGIC);
    let header_window = &content[..content.len().min(MAX_AGE_HEADER)];
    let mac_found = header_window
        .windows(4)
        .position(|w| w == b"\n---")
        .is_some_and(|at| header_window[at + 1..].contains(&b'\n'));
    match open(Cursor::new(content.to_vec()), keys) {
        Ok(Outcome::Opened(mut opened)) => {
            if let Some(head) = sealed_head {
                assert_eq!(opened.sealing, Sealing::ForMe);
                assert_eq!(opened.head.as_ref(), Some(head));
            }
            match opened.sealing {
                Sealing::Raw => {
                    assert!(!is_age && !content.starts_with(MAGIC_FAMILY));
                    assert!(opened.head.is_none());
                }
                Sealing::Open => assert!(content.starts_with(MAGIC_FAMILY)),
                Sealing::ForMe | Sealing::ForGroup(_) => assert!(is_age && mac_found),
            }
            if let Some(head) = &opened.head {
                head.validate().expect("an opened head validates");
            }
            // The body streams (and may fail authentication); it must simply end.
            let mut body = Vec::new();
            let _ = opened.body.read_to_end(&mut body);
            if matches!(opened.sealing, Sealing::Raw) {
                assert_eq!(body, content);
            }
        }
        Ok(Outcome::ForSomeoneElse) => {
            assert!(
                sealed_head.is_none(),
                "untouched content sealed for this key"
            );
            assert!(is_age && mac_found);
        }
        Err(OpenError::HeaderTooLarge) => {
            assert!(
                is_age && !mac_found,
                "a header that ends was refused as too large"
            );
        }
        Err(OpenError::TooManyStanzas(n)) => {
            assert!(is_age && n > mule::content::open::MAX_STANZAS);
        }
        Err(OpenError::Damaged(_) | OpenError::Envelope(_)) => {
            assert!(
                sealed_head.is_none(),
                "untouched content sealed for this key refused"
            );
        }
        Err(e) => panic!("opening from memory failed unexpectedly: {e}"),
    }
}
