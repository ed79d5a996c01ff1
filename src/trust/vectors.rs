//! `protocols/vectors/names-1.json` pins the certificate format and the verification outcomes:
//! the certificates are re-derived byte for byte from fixed seeds, and every case's expected
//! result (written here by hand, not computed) is checked against [`verify`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::*;

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/protocols/vectors/names-1.json"
);
const T0: u64 = 1_767_225_600_000;
const DAY: u64 = 86_400_000;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Vector {
    description: String,
    keys: BTreeMap<String, Key>,
    roots: BTreeMap<String, String>,
    certificates: BTreeMap<String, Cert>,
    cases: Vec<Case>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Key {
    seed_hex: String,
    public_key_hex: String,
    peer_id: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Cert {
    issuer: String,
    subject: String,
    name: String,
    not_before_ms: u64,
    not_after_ms: u64,
    max_message_size: Option<u64>,
    extra_caveat: Option<String>,
    signing_input_hex: String,
    signature_hex: String,
    cbor_hex: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Case {
    description: String,
    chain: Vec<String>,
    chain_cbor_hex: String,
    subject: String,
    now_ms: u64,
    expected: Outcome,
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone, Default)]
struct Outcome {
    result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_message_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

fn error(result: &str, index: Option<usize>) -> Outcome {
    Outcome {
        result: result.into(),
        index,
        ..Outcome::default()
    }
}

fn outcome(r: Result<VerifiedName, ChainError>) -> Outcome {
    match r {
        Ok(v) => Outcome {
            result: "ok".into(),
            name: Some(v.name.into()),
            not_after_ms: Some(v.not_after_ms),
            max_message_size: v.restrictions.max_message_size,
            index: None,
        },
        Err(e) => match e {
            ChainError::Expired { index, .. } => error("expired", Some(index)),
            ChainError::NotYetValid { index, .. } => error("not-yet-valid", Some(index)),
            ChainError::UntrustedRoot { .. } => error("untrusted-root", None),
            ChainError::BrokenLink { index, .. } => error("broken-link", Some(index)),
            ChainError::BadSignature { index } => error("bad-signature", Some(index)),
            ChainError::WrongSubject { .. } => error("wrong-subject", None),
            ChainError::TooLong { .. } => error("too-long", None),
            ChainError::UnknownCaveat { index, .. } => error("unknown-caveat", Some(index)),
            other => error(&format!("other: {other}"), None),
        },
    }
}

const SEEDS: [(&str, u8); 6] = [
    ("root", 0x43),
    ("alice", 0x41),
    ("phone", 0x50),
    ("bob", 0x42),
    ("stranger", 0x53),
    ("mallory", 0x4d),
];

fn ident(label: &str) -> anyhow::Result<Identity> {
    let seed = SEEDS
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, s)| *s)
        .ok_or_else(|| anyhow::anyhow!("no key {label}"))?;
    Ok(Identity::from_seed([seed; 32]))
}

/// (label, issuer, signer, subject, name, window, max size, extra caveat)
type CertSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    (u64, u64),
    Option<u64>,
    Option<&'static str>,
);

const CERTS: [CertSpec; 6] = [
    (
        "alice",
        "root",
        "root",
        "alice",
        "alice",
        (T0, T0 + 30 * DAY),
        Some(1 << 20),
        None,
    ),
    (
        "phone",
        "alice",
        "alice",
        "phone",
        "phone",
        (T0, T0 + 7 * DAY),
        None,
        None,
    ),
    (
        "bob",
        "root",
        "root",
        "bob",
        "bob",
        (T0, T0 + 30 * DAY),
        None,
        None,
    ),
    (
        "stranger-alice",
        "stranger",
        "stranger",
        "alice",
        "alice",
        (T0, T0 + 30 * DAY),
        None,
        None,
    ),
    (
        "forged-phone",
        "alice",
        "mallory",
        "phone",
        "phone",
        (T0, T0 + 7 * DAY),
        None,
        None,
    ),
    (
        "bob-max-hops",
        "root",
        "root",
        "bob",
        "bob",
        (T0, T0 + 30 * DAY),
        None,
        Some("max-hops"),
    ),
];

fn make_cert(spec: &CertSpec) -> anyhow::Result<(Certificate, Cert)> {
    let (_, issuer, signer, subject, name, (nb, na), size, extra) = *spec;
    let mut cert = Certificate {
        version: cert::VERSION,
        issuer: ident(issuer)?.public_key(),
        subject: ident(subject)?.public_key(),
        name: name.parse()?,
        not_before_ms: nb,
        not_after_ms: na,
        caveats: Restrictions {
            max_message_size: size,
        }
        .to_caveats(),
        signature: [0; 64],
    };
    if let Some(key) = extra {
        cert.caveats.insert(
            cert::CaveatKey(key.into()),
            cbor4ii::core::Value::Integer(3),
        );
    }
    let input = cert.signing_input()?;
    cert.signature = ident(signer)?.sign(&input);
    let json = Cert {
        issuer: issuer.into(),
        subject: subject.into(),
        name: name.into(),
        not_before_ms: nb,
        not_after_ms: na,
        max_message_size: size,
        extra_caveat: extra.map(|e| format!("{e} = 3")),
        signing_input_hex: hex::encode(&input),
        signature_hex: hex::encode(cert.signature),
        cbor_hex: hex::encode(cert.encode()?),
    };
    Ok((cert, json))
}

fn ok(name: &str, not_after_ms: u64, max_message_size: Option<u64>) -> Outcome {
    Outcome {
        result: "ok".into(),
        name: Some(name.into()),
        not_after_ms: Some(not_after_ms),
        max_message_size,
        index: None,
    }
}

/// (description, chain labels, subject, now, expected)
fn case_specs() -> Vec<(&'static str, Vec<&'static str>, &'static str, u64, Outcome)> {
    let now = T0 + DAY;
    vec![
        (
            "one link: the root names alice",
            vec!["alice"],
            "alice",
            now,
            ok("campfire/alice", T0 + 30 * DAY, Some(1 << 20)),
        ),
        (
            "two links: alice names her phone; the earliest end and the smallest size win",
            vec!["phone", "alice"],
            "phone",
            now,
            ok("campfire/alice/phone", T0 + 7 * DAY, Some(1 << 20)),
        ),
        (
            "not_before is inclusive",
            vec!["alice"],
            "alice",
            T0,
            ok("campfire/alice", T0 + 30 * DAY, Some(1 << 20)),
        ),
        (
            "not_after is exclusive: expired at that instant",
            vec!["phone", "alice"],
            "phone",
            T0 + 7 * DAY,
            error("expired", Some(0)),
        ),
        (
            "before not_before",
            vec!["alice"],
            "alice",
            T0 - 1,
            error("not-yet-valid", Some(0)),
        ),
        (
            "issued by a root the verifier does not trust",
            vec!["stranger-alice"],
            "alice",
            now,
            error("untrusted-root", None),
        ),
        (
            "phone was issued by alice, but the next certificate names bob",
            vec!["phone", "bob"],
            "phone",
            now,
            error("broken-link", Some(0)),
        ),
        (
            "claims alice as issuer but was signed by mallory",
            vec!["forged-phone", "alice"],
            "phone",
            now,
            error("bad-signature", Some(0)),
        ),
        (
            "the chain names alice, not bob",
            vec!["alice"],
            "bob",
            now,
            error("wrong-subject", None),
        ),
        (
            "nine certificates",
            vec!["alice"; 9],
            "alice",
            now,
            error("too-long", None),
        ),
        (
            "a caveat this version does not know",
            vec!["bob-max-hops"],
            "bob",
            now,
            error("unknown-caveat", Some(0)),
        ),
    ]
}

fn build() -> anyhow::Result<Vector> {
    let mut keys = BTreeMap::new();
    for (label, seed) in SEEDS {
        let id = Identity::from_seed([seed; 32]);
        keys.insert(
            label.to_owned(),
            Key {
                seed_hex: hex::encode([seed; 32]),
                public_key_hex: hex::encode(id.public_key()),
                peer_id: id.peer_id().to_string(),
            },
        );
    }
    let mut encoded = BTreeMap::new();
    let mut certificates = BTreeMap::new();
    for spec in &CERTS {
        let (cert, json) = make_cert(spec)?;
        encoded.insert(spec.0, ByteBuf::from(cert.encode()?));
        certificates.insert(spec.0.to_owned(), json);
    }
    let mut cases = Vec::new();
    for (description, labels, subject, now_ms, expected) in case_specs() {
        let chain: Vec<ByteBuf> = labels
            .iter()
            .filter_map(|l| encoded.get(l).cloned())
            .collect();
        cases.push(Case {
            description: description.into(),
            chain: labels.iter().map(|l| (*l).to_owned()).collect(),
            chain_cbor_hex: hex::encode(chain::encode_chain(&chain)?),
            subject: subject.into(),
            now_ms,
            expected,
        });
    }
    Ok(Vector {
        description: "Certificate chains (protocols/names.md). Keys from fixed seeds (32 times the byte); the verifier trusts root `campfire` = key `root`. Certificates give their signing input, signature and wire form as lowercase hex; each case's chain is the CBOR array of those certificates, leaf first.".into(),
        roots: BTreeMap::from([("campfire".to_owned(), ident("root")?.peer_id().to_string())]),
        keys,
        certificates,
        cases,
    })
}

#[test]
fn vector_matches() -> anyhow::Result<()> {
    let expected: Vector = serde_json::from_str(&std::fs::read_to_string(PATH)?)?;
    assert_eq!(build()?, expected);
    let mut roots = Roots::default();
    for (name, key) in &expected.roots {
        roots.insert(name.parse()?, roots::parse_key(key)?)?;
    }
    for case in &expected.cases {
        let chain = chain::decode_chain(&hex::decode(&case.chain_cbor_hex)?);
        let subject = roots::parse_key(&expected.keys[&case.subject].peer_id)?;
        let got = match chain {
            Ok(chain) => outcome(verify(&chain, &subject, &roots, case.now_ms)),
            Err(e) => outcome(Err(e)),
        };
        assert_eq!(got, case.expected, "{}", case.description);
    }
    Ok(())
}

/// Regenerates the vector: `cargo test write_names_vector -- --ignored`. Only after a
/// deliberate format change, together with `protocols/names.md`.
#[test]
#[ignore]
fn write_names_vector() -> anyhow::Result<()> {
    std::fs::write(PATH, serde_json::to_string_pretty(&build()?)? + "\n")?;
    Ok(())
}
