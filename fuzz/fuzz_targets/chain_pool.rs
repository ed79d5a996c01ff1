//! Chains assembled from a fixed pool of signed certificates (valid ones, a forged one, one
//! from an untrusted root, one with an unknown caveat, windows that open and close at
//! different instants), optionally with one byte changed, verified at one of a few instants.
//!
//! `verify` is compared with a small model of the rules in `protocols/names.md` section 4:
//! both must agree on whether the chain names the subject, and on the name. Since the fuzzer
//! cannot sign, a chain that verifies must consist of unchanged pool certificates: anything
//! else is a forgery that got through.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mule::identity::Identity;
use mule::trust::cert::{CaveatKey, Certificate, Grant, Restrictions};
use mule::trust::{verify, ChainError, Roots};
use serde_bytes::ByteBuf;

const T0: u64 = 1_000_000;
const T1: u64 = 2_000_000;
const T2: u64 = 3_000_000;
/// The instants a chain is verified at: around each window edge.
const NOWS: [u64; 7] = [T0 - 1, T0, T0 + 1, T1 - 1, T1, T2 - 1, T2];

const ROOT: u8 = 0x43;
const ALICE: u8 = 0x41;
const BOB: u8 = 0x42;
const PHONE: u8 = 0x50;
const STRANGER: u8 = 0x53;
const MALLORY: u8 = 0x4d;
const KEYS: [u8; 6] = [ROOT, ALICE, BOB, PHONE, STRANGER, MALLORY];

struct Pooled {
    bytes: ByteBuf,
    cert: Certificate,
    /// Whether the signature is the issuer's own.
    genuine: bool,
    /// Whether every caveat is known and well typed.
    caveats_ok: bool,
}

fn id(seed: u8) -> Identity {
    Identity::from_seed([seed; 32])
}

fn grant(issuer: u8, subject: u8, name: &str, from: u64, to: u64, max: Option<u64>) -> Certificate {
    Grant {
        subject: id(subject).public_key(),
        name: name.parse().expect("valid segment"),
        not_before_ms: from,
        not_after_ms: to,
        restrictions: Restrictions {
            max_message_size: max,
        },
    }
    .sign(&id(issuer))
    .expect("signs")
}

/// Signs `cert`'s fields again with `signer`, whoever its `issuer` field names.
fn resign(mut cert: Certificate, signer: u8) -> Certificate {
    cert.signature = id(signer).sign(&cert.signing_input().expect("encodes"));
    cert
}

fn pool() -> &'static [Pooled] {
    static POOL: OnceLock<Vec<Pooled>> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut unknown = grant(ROOT, ALICE, "hops", T0, T2, None);
        let mut caveats = BTreeMap::new();
        caveats.insert(
            CaveatKey("max-hops".into()),
            cbor4ii::core::Value::Integer(3),
        );
        unknown.caveats = caveats;
        let unknown = resign(unknown, ROOT);
        let mut ill_typed = grant(ROOT, BOB, "typed", T0, T2, Some(1));
        ill_typed.caveats.insert(
            CaveatKey("max-message-size".into()),
            cbor4ii::core::Value::Text("big".into()),
        );
        let ill_typed = resign(ill_typed, ROOT);
        let forged = resign(grant(ALICE, PHONE, "forged", T0, T2, None), MALLORY);
        let certs = vec![
            (grant(ROOT, ALICE, "alice", T0, T2, None), true, true),
            (grant(ROOT, BOB, "bob", T0, T2, Some(1000)), true, true),
            (grant(ALICE, PHONE, "phone", T0, T1, Some(500)), true, true),
            (grant(BOB, PHONE, "p2", T0 + 1, T2, None), true, true),
            (grant(STRANGER, ALICE, "alice", T0, T2, None), true, true),
            (grant(ALICE, ALICE, "self", T0, T2, None), true, true),
            (grant(PHONE, BOB, "back", T0, T2, Some(7)), true, true),
            (grant(ROOT, ALICE, "later", T1, T2, None), true, true),
            (grant(ROOT, ROOT, "again", T0, T2, None), true, true),
            (forged, false, true),
            (unknown, true, false),
            (ill_typed, true, false),
        ];
        certs
            .into_iter()
            .map(|(cert, genuine, caveats_ok)| Pooled {
                bytes: ByteBuf::from(cert.encode().expect("encodes")),
                cert,
                genuine,
                caveats_ok,
            })
            .collect()
    })
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Pool indices, leaf first.
    picks: Vec<u8>,
    /// Change one byte: (which certificate, which byte, xor with what).
    flip: Option<(u8, u16, u8)>,
    subject: u8,
    now: u8,
}

/// The rules, from the pool's metadata: `Some(name)` if the chain names `subject` at `now`.
fn model(chain: &[&Pooled], subject: &[u8; 32], now: u64) -> Option<String> {
    if chain.is_empty() || chain.len() > 8 || &chain[0].cert.subject != subject {
        return None;
    }
    if chain
        .windows(2)
        .any(|p| p[0].cert.issuer != p[1].cert.subject)
    {
        return None;
    }
    let last = chain.last()?;
    if last.cert.issuer != id(ROOT).public_key() {
        return None;
    }
    if chain.iter().any(|p| {
        !p.genuine || !p.caveats_ok || now < p.cert.not_before_ms || now >= p.cert.not_after_ms
    }) {
        return None;
    }
    let mut name = "campfire".to_owned();
    for p in chain.iter().rev() {
        name.push('/');
        name.push_str(p.cert.name.as_str());
    }
    Some(name)
}

fuzz_target!(|input: Input| {
    let pool = pool();
    let picked: Vec<&Pooled> = input
        .picks
        .iter()
        .take(12)
        .map(|&i| &pool[usize::from(i) % pool.len()])
        .collect();
    let mut chain: Vec<ByteBuf> = picked.iter().map(|p| p.bytes.clone()).collect();
    let mut changed = false;
    if let Some((which, at, xor)) = input.flip {
        if !chain.is_empty() && xor != 0 {
            let n = chain.len();
            let cert = &mut chain[usize::from(which) % n];
            let len = cert.len();
            cert[usize::from(at) % len] ^= xor;
            changed = true;
        }
    }
    let subject = id(KEYS[usize::from(input.subject) % KEYS.len()]).public_key();
    let now = NOWS[usize::from(input.now) % NOWS.len()];
    let mut roots = Roots::default();
    roots
        .insert("campfire".parse().expect("segment"), id(ROOT).public_key())
        .expect("one root");

    let result = verify(&chain, &subject, &roots, now);
    if let Ok(verified) = &result {
        for cert in &chain {
            assert!(
                pool.iter().any(|p| p.genuine && &p.bytes == cert),
                "a certificate that was not signed by its issuer verified"
            );
        }
        let certs: Vec<Certificate> = picked.iter().map(|p| p.cert.clone()).collect();
        mule_fuzz::check_verified(&certs, &roots, now, verified);
    }
    if changed {
        // A changed byte either breaks decoding or the signature; nothing else may pass.
        assert!(result.is_err(), "a changed certificate verified");
    } else {
        let expected = model(&picked, &subject, now);
        assert_eq!(
            result.as_ref().ok().map(|v| v.name.to_string()),
            expected,
            "verify and the model disagree: {result:?}"
        );
        if chain.len() > 8 {
            assert!(matches!(result, Err(ChainError::TooLong { .. })));
        }
    }
});
