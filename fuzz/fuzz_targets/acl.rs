//! Access-policy files (`trust/access.toml`) and roots files (`trust/roots.toml`): the TOML
//! parsers of the trust module, on the same text.
//!
//! Checks for a policy that parses: every rate is 0 or finite and at least `MIN_RATE`; every
//! pattern prints to text that parses back to it; this node's own key is always admitted; a
//! fresh list admits a caller's first request exactly when `would_allow` says it would; an
//! open out list admits everyone. For roots that parse: printing and parsing again gives the
//! same roots.
#![no_main]

use std::path::Path;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use mule::trust::acl::MIN_RATE;
use mule::trust::{AccessPolicy, Caller, ListKind, Pattern, Roots};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(roots) = Roots::from_toml(Path::new("roots.toml"), text) {
        let again = Roots::from_toml(Path::new("roots.toml"), &roots.to_toml());
        assert_eq!(again.ok().as_ref(), Some(&roots));
    }

    let own = mule_fuzz::peer_own();
    let Ok(policy) = AccessPolicy::from_toml(Path::new("access.toml"), text, own) else {
        return;
    };
    for kind in [ListKind::In, ListKind::Out, ListKind::Sender] {
        for entry in policy.list(kind).entries() {
            if let Some(rate) = entry.rate {
                assert!(
                    rate == 0.0 || (rate.is_finite() && rate >= MIN_RATE),
                    "{rate}"
                );
            }
            for p in entry.allow.iter().chain(&entry.deny) {
                assert_eq!(p.to_string().parse::<Pattern>().as_ref(), Ok(p));
            }
        }
    }

    let now = Instant::now();
    let callers = [
        Caller::nameless(own),
        mule_fuzz::caller(&[]),
        mule_fuzz::caller(&["campfire/alice", "campfire/alice/phone"]),
        mule_fuzz::caller(&["lab"]),
    ];
    for caller in &callers {
        let mut fresh = policy.clone();
        let admitted = fresh.check_out(caller, now).is_ok();
        assert_eq!(admitted, policy.would_allow_out(caller), "{caller}");
        if policy.is_open_out() {
            assert!(admitted, "an open out list refused {caller}");
        }
        let mut fresh = policy.clone();
        if caller.peer == own {
            assert!(fresh.check_in(caller, now).is_ok());
            assert!(fresh.check_sender(caller, now).is_ok());
        }
    }
});
