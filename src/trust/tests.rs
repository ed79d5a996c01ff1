//! Chain verification, access lists and the `Trust` bundle, with fixed keys and injected time.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_bytes::ByteBuf;

use super::*;
use crate::message::CertificateChain;

const NOW: u64 = 1_767_225_600_000;
const DAY: u64 = 86_400_000;

fn key(seed: u8) -> Identity {
    Identity::from_seed([seed; 32])
}

fn grant(subject: &Identity, name: &str) -> Grant {
    Grant {
        subject: subject.public_key(),
        name: name.parse().unwrap_or_else(|e| panic!("{e}")),
        not_before_ms: NOW - DAY,
        not_after_ms: NOW + DAY,
        restrictions: Restrictions::default(),
    }
}

fn roots() -> Roots {
    let mut roots = Roots::default();
    roots
        .insert(
            "campfire".parse().unwrap_or_else(|e| panic!("{e}")),
            key(1).public_key(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    roots
}

/// campfire (1) -> alice (2) -> phone (3).
fn phone_chain() -> anyhow::Result<CertificateChain> {
    let alice = issue(&key(1), grant(&key(2), "alice"), &[])?;
    Ok(issue(&key(2), grant(&key(3), "phone"), &alice)?)
}

#[test]
fn one_and_two_link_chains_grant_names() -> anyhow::Result<()> {
    let alice = issue(&key(1), grant(&key(2), "alice"), &[])?;
    let v = verify(&alice, &key(2).public_key(), &roots(), NOW)?;
    assert_eq!(v.name.as_str(), "campfire/alice");
    assert_eq!(v.not_after_ms, NOW + DAY);
    let v = verify(&phone_chain()?, &key(3).public_key(), &roots(), NOW)?;
    assert_eq!(v.name.as_str(), "campfire/alice/phone");
    Ok(())
}

#[test]
fn each_failure_has_its_error() -> anyhow::Result<()> {
    let chain = phone_chain()?;
    let phone = key(3).public_key();
    let r = roots();
    assert!(matches!(
        verify(&chain, &phone, &r, NOW + DAY),
        Err(ChainError::Expired { index: 0, not_after_ms, .. }) if not_after_ms == NOW + DAY
    ));
    assert!(matches!(
        verify(&chain, &phone, &r, NOW - 2 * DAY),
        Err(ChainError::NotYetValid { index: 0, .. })
    ));
    assert!(matches!(
        verify(&chain, &key(2).public_key(), &r, NOW),
        Err(ChainError::WrongSubject { .. })
    ));
    assert!(matches!(
        verify(&chain, &phone, &Roots::default(), NOW),
        Err(ChainError::UntrustedRoot { .. })
    ));
    let broken = vec![
        chain[0].clone(),
        issue(&key(1), grant(&key(4), "bob"), &[])?[0].clone(),
    ];
    assert!(matches!(
        verify(&broken, &phone, &r, NOW),
        Err(ChainError::BrokenLink { index: 0, .. })
    ));
    let mut long_names = Roots::default();
    long_names.insert("r".repeat(64).parse()?, key(1).public_key())?;
    let mut chain: CertificateChain = Vec::new();
    for seed in 2..=5 {
        chain = issue(&key(seed - 1), grant(&key(seed), &"n".repeat(64)), &chain)?;
    }
    assert_eq!(
        verify(&chain, &key(5).public_key(), &long_names, NOW),
        Err(ChainError::NameTooLong {
            len: 64 + 4 * 65,
            max: 256
        })
    );
    let empty: Vec<ByteBuf> = Vec::new();
    assert_eq!(verify(&empty, &phone, &r, NOW), Err(ChainError::Empty));
    let long = vec![chain[0].clone(); 9];
    assert!(matches!(
        verify(&long, &phone, &r, NOW),
        Err(ChainError::TooLong { len: 9, max: 8 })
    ));
    Ok(())
}

#[test]
fn forged_signatures_and_altered_bytes_fail() -> anyhow::Result<()> {
    let chain = phone_chain()?;
    // Re-sign the leaf with the wrong key but keep the claimed issuer.
    let mut cert = Certificate::decode(&chain[0])?;
    cert.signature = key(9).sign(&cert.signing_input()?);
    let forged = vec![ByteBuf::from(cert.encode()?), chain[1].clone()];
    assert_eq!(
        verify(&forged, &key(3).public_key(), &roots(), NOW),
        Err(ChainError::BadSignature { index: 0 })
    );
    // A longer validity than signed.
    let mut cert = Certificate::decode(&chain[1])?;
    cert.not_after_ms += 1;
    let altered = vec![chain[0].clone(), ByteBuf::from(cert.encode()?)];
    assert_eq!(
        verify(&altered, &key(3).public_key(), &roots(), NOW),
        Err(ChainError::BadSignature { index: 1 })
    );
    Ok(())
}

#[test]
fn caveats_are_known_or_refused() -> anyhow::Result<()> {
    let mut g = grant(&key(2), "alice");
    g.restrictions.max_message_size = Some(1_000);
    let alice = issue(&key(1), g, &[])?;
    let mut g = grant(&key(3), "phone");
    g.restrictions.max_message_size = Some(5_000);
    let phone = issue(&key(2), g, &alice)?;
    let v = verify(&phone, &key(3).public_key(), &roots(), NOW)?;
    assert_eq!(v.restrictions.max_message_size, Some(1_000));

    let mut cert = Certificate::decode(&alice[0])?;
    cert.caveats.insert(
        cert::CaveatKey("max-hops".into()),
        cbor4ii::core::Value::Integer(3),
    );
    cert.signature = key(1).sign(&cert.signing_input()?);
    let unknown = vec![ByteBuf::from(cert.encode()?)];
    let err = verify(&unknown, &key(2).public_key(), &roots(), NOW).err();
    assert!(
        matches!(&err, Some(ChainError::UnknownCaveat { index: 0, caveat }) if caveat == "max-hops"),
        "{err:?}"
    );
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("unknown restriction is invalid"), "{text}");
    Ok(())
}

#[test]
fn decoding_is_bounded_and_canonical() -> anyhow::Result<()> {
    let chain = phone_chain()?;
    assert_eq!(chain::decode_chain(&chain::encode_chain(&chain)?)?, chain);
    let mut bytes = chain[0].to_vec();
    bytes.push(0);
    assert_eq!(
        Certificate::decode(&bytes),
        Err(cert::CertError::NotCanonical)
    );
    let big = vec![0u8; 1025];
    assert!(matches!(
        Certificate::decode(&big),
        Err(cert::CertError::TooLarge {
            len: 1025,
            max: 1024
        })
    ));
    let huge = vec![0u8; chain::MAX_ENCODED_CHAIN_LEN + 1];
    assert!(matches!(
        chain::decode_chain(&huge),
        Err(ChainError::EncodedTooLarge { .. })
    ));
    let mut cert = Certificate::decode(&chain[0])?;
    cert.version = 2;
    assert_eq!(
        Certificate::decode(&cert.encode()?),
        Err(cert::CertError::UnsupportedVersion(2))
    );
    Ok(())
}

#[test]
fn names_of_reports_root_names_and_failures() -> anyhow::Result<()> {
    let r = roots();
    let good = issue(&key(1), grant(&key(2), "alice"), &[])?;
    let other = issue(&key(7), grant(&key(2), "alice"), &[])?;
    let names = names_of(&key(2).public_key(), &[good, other], &r, NOW);
    assert_eq!(names.verified.len(), 1);
    assert!(matches!(
        names.failed.as_slice(),
        [(1, ChainError::UntrustedRoot { .. })]
    ));
    let root: Vec<CertificateChain> = Vec::new();
    let names = names_of(&key(1).public_key(), &root, &r, NOW);
    assert_eq!(
        names.verified.first().map(|v| v.name.as_str()),
        Some("campfire")
    );
    Ok(())
}

#[test]
fn trust_keeps_own_chains_and_refuses_others() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bob = key(2);
    let mut trust = Trust::load(dir.path(), &bob)?;
    trust.add_root("campfire".parse()?, key(1).public_key())?;
    let chain = issue(&key(1), grant(&bob, "bob"), &[])?;
    let bytes = chain::encode_chain(&chain)?;
    assert_eq!(trust.add_chain(&bytes, NOW)?.name.as_str(), "campfire/bob");
    let carol = issue(&key(1), grant(&key(3), "carol"), &[])?;
    let err = trust.add_chain(&chain::encode_chain(&carol)?, NOW).err();
    assert!(
        matches!(err, Some(Error::Own(OwnError::NotForThisNode { .. }))),
        "{err:?}"
    );
    let err = trust.add_chain(&bytes, NOW + 2 * DAY).err();
    assert!(
        matches!(
            err,
            Some(Error::Own(OwnError::DoesNotVerify(
                ChainError::Expired { .. }
            )))
        ),
        "{err:?}"
    );

    let reloaded = Trust::load(dir.path(), &bob)?;
    let names: Vec<String> = reloaded
        .names(NOW)
        .into_iter()
        .map(|v| v.name.into())
        .collect();
    assert_eq!(names, ["campfire/bob"]);
    assert_eq!(reloaded.header_chains(NOW), vec![chain.clone()]);
    assert!(reloaded.header_chains(NOW + 2 * DAY).is_empty());
    assert!(addresses("campfire/bob/$", &reloaded.me(NOW)));
    assert_eq!(
        reloaded.chain_for(&"campfire/bob".parse()?, NOW),
        Some(&chain)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn issued_chains_verify_and_any_flipped_byte_breaks_them(
        seeds in proptest::collection::vec(2u8..=255, 1..=8),
        names in proptest::collection::vec("[a-z0-9._-]{1,24}", 8),
        size in proptest::option::of(any::<u64>()),
        flip in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        // seeds[0] is named by root 1 (as seeds[0]'s name), seeds[1] by seeds[0], ...
        let mut chain: CertificateChain = Vec::new();
        let mut issuer = key(1);
        for (seed, name) in seeds.iter().zip(&names) {
            let mut g = grant(&key(*seed), name);
            g.restrictions.max_message_size = size;
            chain = issue(&issuer, g, &chain).map_err(|e| TestCaseError::fail(e.to_string()))?;
            issuer = key(*seed);
        }
        let leaf = issuer.public_key();
        let verified = verify(&chain, &leaf, &roots(), NOW);
        prop_assert!(verified.is_ok(), "{verified:?}");
        let expected: Vec<&str> = std::iter::once("campfire")
            .chain(names.iter().take(seeds.len()).map(String::as_str))
            .collect();
        prop_assert_eq!(verified.map(|v| v.name.to_string()).ok(), Some(expected.join("/")));

        let total: usize = chain.iter().map(|c| c.len()).sum();
        let mut at = flip.index(total);
        let mut tampered = chain.clone();
        for cert in &mut tampered {
            if at < cert.len() {
                cert[at] ^= 1 << bit;
                break;
            }
            at -= cert.len();
        }
        prop_assert!(verify(&tampered, &leaf, &roots(), NOW).is_err());
    }
}

mod acl_tests {
    use super::*;

    fn caller(seed: u8, names: &[&str]) -> Caller {
        Caller {
            peer: key(seed).peer_id(),
            names: names.iter().filter_map(|n| n.parse().ok()).collect(),
        }
    }

    fn policy(text: &str) -> Result<AccessPolicy, acl::PolicyError> {
        AccessPolicy::from_toml(
            std::path::Path::new("access.toml"),
            text,
            key(100).peer_id(),
        )
    }

    const CAMPFIRE: &str = r#"
[[in]]
allow = ["campfire"]
deny = ["!campfire/mallory"]
rate = 100

[[in]]
allow = ["lab"]
rate = 1

[[in]]
allow = ["guests/$"]
rate = 0

[[out]]
allow = ["campfire"]
"#;

    #[test]
    fn first_match_and_deny() -> anyhow::Result<()> {
        let mut p = policy(CAMPFIRE)?;
        let now = Instant::now();
        assert_eq!(p.check_in(&caller(2, &["campfire/alice"]), now), Ok(()));
        let mallory = caller(3, &["campfire/mallory/phone"]);
        let err = p.check_in(&mallory, now).err();
        assert!(
            matches!(
                &err,
                Some(Denied::NotAuthorized {
                    list: ListKind::In,
                    ..
                })
            ),
            "{err:?}"
        );
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.starts_with("campfire/mallory/phone (12D3KooW"),
            "{text}"
        );
        assert!(
            text.contains("not authorized by the 'in' access list"),
            "{text}"
        );
        // Nameless callers match no entry; rate 0 refuses; the node itself always passes.
        assert!(p.check_in(&caller(4, &[]), now).is_err());
        assert!(matches!(
            p.check_in(&caller(5, &["guests"]), now),
            Err(Denied::NotAuthorized { .. })
        ));
        assert_eq!(p.check_in(&caller(100, &[]), now), Ok(()));
        // Sender list was left out: everyone.
        assert_eq!(p.check_sender(&caller(4, &[]), now), Ok(()));
        assert!(p.list(ListKind::Sender).is_open());
        Ok(())
    }

    #[test]
    fn rate_is_per_entry() -> anyhow::Result<()> {
        let mut p = policy(CAMPFIRE)?;
        let start = Instant::now();
        // The lab entry allows 1/s, i.e. 10 per 10-second window, shared by all lab callers.
        let (a, b) = (caller(6, &["lab/a"]), caller(7, &["lab/b"]));
        for i in 0..10 {
            let who = if i % 2 == 0 { &a } else { &b };
            assert_eq!(p.check_in(who, start), Ok(()), "request {i}");
        }
        let err = p.check_in(&b, start).err();
        assert!(
            matches!(err, Some(Denied::RateLimited { rate, .. }) if rate == 1.0),
            "{err:?}"
        );
        // Campfire callers have their own entry and pass meanwhile.
        let alice = caller(2, &["campfire/alice"]);
        for _ in 0..500 {
            assert_eq!(p.check_in(&alice, start), Ok(()));
        }
        // Ten seconds later the lab window has room again.
        assert_eq!(p.check_in(&a, start + Duration::from_secs(10)), Ok(()));
        Ok(())
    }

    #[test]
    fn memory_does_not_grow_with_callers() -> anyhow::Result<()> {
        let mut list = AccessList::new(
            ListKind::In,
            vec![Entry {
                allow: vec![Pattern::Anyone],
                deny: Vec::new(),
                rate: Some(1_000.0),
            }],
        );
        let now = Instant::now();
        assert_eq!(list.check(&Caller::nameless(key(2).peer_id()), now), Ok(()));
        let before = format!("{list:?}").len();
        for i in 0..20_000u32 {
            let peer = libp2p::PeerId::random();
            let _ = list.check(
                &Caller::nameless(peer),
                now + Duration::from_millis(u64::from(i)),
            );
        }
        // The state is one fixed-size window per entry: its debug form stays the same size
        // (give or take digits of the counters).
        assert!(format!("{list:?}").len() < before + 64);
        Ok(())
    }

    #[test]
    fn out_list_and_openness() -> anyhow::Result<()> {
        let p = policy(CAMPFIRE)?;
        assert!(!p.is_open_out());
        assert!(p.would_allow_out(&caller(2, &["campfire/alice"])));
        assert!(!p.would_allow_out(&caller(4, &[])));
        assert!(p.would_allow_out(&caller(100, &[])));
        assert!(policy("")?.is_open_out());
        assert!(!policy("[[out]]\nallow = [\"*\"]\nrate = 0\n")?.is_open_out());
        assert!(!policy("[[out]]\nallow = [\"*\"]\ndeny = [\"x\"]\n")?.is_open_out());
        assert!(policy("[[out]]\nallow = [\"x\"]\n[[out]]\nallow = [\"*\"]\n")?.is_open_out());
        Ok(())
    }

    #[test]
    fn malformed_files_name_line_and_reason() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "[[in]]\nallow = [\"campfire\"]\nrat = 3\n",
                3,
                "unknown field `rat`, expected one of `allow`, `deny`, `rate`",
            ),
            (
                "[[in]]\nallow = [\"ok\", \"Bad\"]\n",
                2,
                "neither '*', a peer id nor a name",
            ),
            (
                "[[in]]\nallow = [\"!x\"]\n",
                2,
                "only allowed in a deny list",
            ),
            (
                "[[in]]\nallow = [\"x\"]\nrate = -1\n",
                3,
                "must be 0 (refuse) or at least 0.1",
            ),
            ("\n[[inn]]\nallow = []\n", 2, "unknown field `inn`"),
            ("[[in]]\nallow = [\"x\"\n", 2, ""),
            ("[[in]]\ndeny = [\"x\"]\n", 1, "missing field `allow`"),
        ];
        for (text, line, reason) in cases {
            let err = policy(text).err();
            let Some(acl::PolicyError::File(e)) = &err else {
                panic!("{text:?}: {err:?}");
            };
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.to_string().contains(reason), "{text:?}: {e}");
            assert!(
                e.to_string().starts_with(&format!("access.toml:{line}:")),
                "{e}"
            );
        }
    }

    #[test]
    fn example_files_load() -> anyhow::Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acl");
        let mut loaded = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            AccessPolicy::load(&path, key(100).peer_id())?;
            loaded.push(path.file_stem().map(|s| s.to_string_lossy().into_owned()));
        }
        loaded.sort();
        let expected = ["campfire", "collector", "content-distribution", "data-mule"];
        assert_eq!(loaded, expected.map(|s| Some(s.to_owned())));
        let collector = AccessPolicy::load(&dir.join("collector.toml"), key(100).peer_id())?;
        let sender = collector.list(ListKind::Sender);
        assert!(sender.would_allow(&caller(2, &["sensors/t1"])));
        assert!(!sender.would_allow(&caller(2, &["campfire/alice"])));
        Ok(())
    }
}

#[test]
fn names_matter_unless_everyone_comes_first() -> anyhow::Result<()> {
    use crate::trust::acl::{AccessList, Entry, ListKind};
    let open = AccessList::open(ListKind::Sender);
    assert!(!open.names_matter());
    let news = Entry {
        allow: vec!["news".parse()?],
        deny: vec![],
        rate: Some(10.0),
    };
    let named_first = AccessList::new(ListKind::Sender, vec![news, Entry::everyone()]);
    assert!(
        named_first.names_matter(),
        "a named entry before `*` looks at names"
    );
    let everyone_first = AccessList::new(
        ListKind::Sender,
        vec![
            Entry::everyone(),
            Entry {
                allow: vec!["news".parse()?],
                deny: vec![],
                rate: None,
            },
        ],
    );
    assert!(!everyone_first.names_matter());
    let with_deny = AccessList::new(
        ListKind::Sender,
        vec![Entry {
            allow: vec!["*".parse()?],
            deny: vec![crate::trust::Pattern::parse_deny("!spam")?],
            rate: None,
        }],
    );
    assert!(with_deny.names_matter(), "a deny list looks at names");
    Ok(())
}
