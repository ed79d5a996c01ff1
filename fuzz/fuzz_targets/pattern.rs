//! Pattern text (access lists, message recipients): `Pattern::from_str` and `parse_deny`.
//!
//! Checks: a parsed pattern prints to text that parses to the same pattern; a deny-list
//! pattern is the allow-list pattern of the text without its `!`; each kind of pattern matches
//! the callers its syntax promises (`protocols/names.md`) and no nameless caller but `*` / a peer id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mule::trust::{addresses, Caller, Name, Pattern};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = text.parse::<Pattern>();
    if let Ok(p) = &parsed {
        let printed = p.to_string();
        assert_eq!(printed.parse::<Pattern>().as_ref(), Ok(p), "{printed:?}");
    }
    let deny = Pattern::parse_deny(text);
    let plain = text.strip_prefix('!').unwrap_or(text).parse::<Pattern>();
    assert_eq!(deny, plain);
    if !text.starts_with('!') {
        assert_eq!(deny, parsed);
    }

    if let Ok(p) = &parsed {
        check_meaning(p);
    }
});

/// What each kind of pattern means, on callers built for it.
fn check_meaning(p: &Pattern) {
    let nameless = Caller::nameless(mule_fuzz::peer_a());
    let named = |name: &Name| Caller {
        peer: nameless.peer,
        names: vec![name.clone()],
    };
    let child = |name: &Name| name.child(&"x".parse().expect("segment")).ok();
    match p {
        Pattern::Anyone => assert!(p.matches(&nameless)),
        Pattern::Peer(peer) => {
            assert!(p.matches(&Caller::nameless(*peer)));
            assert_eq!(p.matches(&nameless), nameless.peer == *peer);
        }
        Pattern::Under(name) => {
            assert!(!p.matches(&nameless));
            assert!(p.matches(&named(name)));
            if let Some(c) = child(name) {
                assert!(p.matches(&named(&c)));
            }
        }
        Pattern::Below(name) => {
            assert!(!p.matches(&nameless));
            assert!(!p.matches(&named(name)));
            if let Some(c) = child(name) {
                assert!(p.matches(&named(&c)));
            }
        }
        Pattern::Exactly(name) => {
            assert!(!p.matches(&nameless));
            assert!(p.matches(&named(name)));
            if let Some(c) = child(name) {
                assert!(!p.matches(&named(&c)));
            }
        }
    }
    // A recipient is addressed exactly when its pattern matches.
    assert_eq!(addresses(&p.to_string(), &nameless), p.matches(&nameless));
}
