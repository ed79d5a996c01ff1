//! Content: envelopes, sealing and opening, groups, saving.

use std::io::{Read, Write};

use super::envelope::{self, Attachment, EnvelopeError, Head, Invite, MAX_HEAD, MAX_TEXT};
use super::groups::{GroupName, Groups, Installed};
use super::keys::{Keyring, Recipient};
use super::open::{open, OpenError, Outcome, Sealing, MAX_AGE_HEADER};
use super::save::{sanitize, save};
use super::seal::{seal_bytes, seal_file, Seal, SealError};
use crate::identity::Identity;

fn text(t: &str) -> Head {
    Head {
        text: Some(t.into()),
        ..Head::default()
    }
}

fn keyring(id: &Identity) -> Keyring {
    Keyring::new(id, Vec::new()).unwrap()
}

fn for_peer(id: &Identity) -> Seal {
    Seal::For(vec![Recipient::of_peer(&id.peer_id()).unwrap()])
}

fn opened(outcome: Outcome) -> super::Opened {
    match outcome {
        Outcome::Opened(o) => *o,
        Outcome::ForSomeoneElse => panic!("expected it to open"),
    }
}

#[test]
fn text_round_trip_for_a_peer() {
    let bob = Identity::generate();
    let sealed = seal_bytes(&text("hello bob"), &for_peer(&bob)).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
    assert!(!sealed.windows(9).any(|w| w == b"hello bob"));
    let o = opened(open(std::io::Cursor::new(sealed), &keyring(&bob)).unwrap());
    assert_eq!(o.sealing, Sealing::ForMe);
    assert_eq!(o.head.unwrap().text.as_deref(), Some("hello bob"));
}

#[test]
fn the_wrong_key_is_someone_else_not_an_error() {
    let bob = Identity::generate();
    let eve = Identity::generate();
    let sealed = seal_bytes(&text("for bob"), &for_peer(&bob)).unwrap();
    let outcome = open(std::io::Cursor::new(sealed), &keyring(&eve)).unwrap();
    assert!(matches!(outcome, Outcome::ForSomeoneElse));
}

#[test]
fn tampered_ciphertext_fails_with_a_typed_error() {
    let bob = Identity::generate();
    let sealed = seal_bytes(&text("tamper with me"), &for_peer(&bob)).unwrap();
    // Flip one bit in the payload (the last byte is inside the last chunk's tag).
    let mut payload = sealed.clone();
    let last = payload.len() - 1;
    payload[last] ^= 1;
    let err = open(std::io::Cursor::new(payload), &keyring(&bob)).unwrap_err();
    assert!(matches!(err, OpenError::Damaged(_)), "{err}");
    // Change the header's MAC: the header no longer authenticates. (A damaged recipient stanza
    // reads as "not for this key": age cannot tell the two apart.)
    let mut header = sealed.clone();
    let mac = header.windows(4).position(|w| w == b"--- ").unwrap() + 5;
    header[mac] = if header[mac] == b'A' { b'B' } else { b'A' };
    let err = open(std::io::Cursor::new(header), &keyring(&bob)).unwrap_err();
    assert!(
        matches!(err, OpenError::Damaged(_)),
        "header tamper gave {err:?}"
    );
    // Truncated: the last chunk is missing.
    let short = sealed[..sealed.len() - 20].to_vec();
    assert!(open(std::io::Cursor::new(short), &keyring(&bob)).is_err());
}

#[test]
fn an_endless_age_header_is_refused_before_age_parses_it() {
    let bob = Identity::generate();
    let mut hostile = b"age-encryption.org/v1\n".to_vec();
    hostile.extend(std::iter::repeat_n(b'a', MAX_AGE_HEADER * 4));
    let err = open(std::io::Cursor::new(hostile), &keyring(&bob)).unwrap_err();
    assert!(matches!(err, OpenError::HeaderTooLarge), "{err}");
    let mut many = b"age-encryption.org/v1\n".to_vec();
    for _ in 0..200 {
        many.extend_from_slice(b"-> X25519 AAAA\nAAAA\n");
    }
    many.extend_from_slice(b"--- AAAA\n0123456789abcdef");
    let err = open(std::io::Cursor::new(many), &keyring(&bob)).unwrap_err();
    assert!(matches!(err, OpenError::TooManyStanzas(_)), "{err}");
}

#[test]
fn open_envelopes_and_raw_bytes_are_told_apart() {
    let me = Identity::generate();
    let open_env = seal_bytes(&text("everyone"), &Seal::Open).unwrap();
    assert!(open_env.starts_with(envelope::MAGIC));
    let o = opened(open(std::io::Cursor::new(open_env), &keyring(&me)).unwrap());
    assert_eq!(o.sealing, Sealing::Open);
    let mut o = opened(open(std::io::Cursor::new(b"legacy".to_vec()), &keyring(&me)).unwrap());
    assert_eq!(o.sealing, Sealing::Raw);
    let mut raw = Vec::new();
    o.body.read_to_end(&mut raw).unwrap();
    assert_eq!(raw, b"legacy");
}

#[test]
fn a_file_round_trips_streaming_through_a_temp_file() {
    let bob = Identity::generate();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let head = Head {
        text: Some("caption".into()),
        attachment: Some(Attachment {
            name: "in.bin".into(),
            media_type: "application/octet-stream".into(),
            length: data.len() as u64,
        }),
        ..Head::default()
    };
    let bytes = seal_file(&head, &src, &for_peer(&bob), Vec::new()).unwrap();
    let mut o = opened(open(std::io::Cursor::new(bytes), &keyring(&bob)).unwrap());
    let h = o.head.clone().unwrap();
    assert_eq!(h, head);
    let mut out = Vec::new();
    envelope::copy_body(&h, &mut o.body, &mut out).unwrap();
    assert_eq!(out, data);
}

#[test]
fn a_file_that_changes_while_sealed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("grows");
    std::fs::write(&src, b"12345").unwrap();
    let head = Head {
        attachment: Some(Attachment {
            name: "grows".into(),
            media_type: "text/plain".into(),
            length: 3,
        }),
        ..Head::default()
    };
    let err = seal_file(&head, &src, &Seal::Open, Vec::new()).unwrap_err();
    assert!(matches!(err, SealError::FileChanged { .. }), "{err}");
}

#[test]
fn envelope_limits_are_enforced_both_ways() {
    let long = text(&"x".repeat(MAX_TEXT + 1));
    assert!(matches!(
        long.to_bytes().unwrap_err(),
        EnvelopeError::Invalid { .. }
    ));
    assert!(
        Head::default().to_bytes().is_err(),
        "an empty head says nothing"
    );
    let mut huge = envelope::MAGIC.to_vec();
    huge.extend_from_slice(&(MAX_HEAD + 1).to_be_bytes());
    assert!(matches!(
        Head::read_from(&mut &huge[..]).unwrap_err(),
        EnvelopeError::HeadSize(_)
    ));
    let mut newer = b"mule/envelope/2\n".to_vec();
    newer.extend_from_slice(&[0, 0, 0, 1, 0xa0]);
    assert!(matches!(
        Head::read_from(&mut &newer[..]).unwrap_err(),
        EnvelopeError::NewerVersion(_)
    ));
    // A body longer than announced.
    let mut bytes = text("t").to_bytes().unwrap();
    bytes.push(0);
    let mut r = &bytes[..];
    let head = Head::read_from(&mut r).unwrap();
    assert!(envelope::copy_body(&head, &mut r, &mut Vec::new()).is_err());
    // A bad attachment name.
    let bad = Head {
        attachment: Some(Attachment {
            name: "a\nb".into(),
            media_type: "x/y".into(),
            length: 0,
        }),
        ..Head::default()
    };
    assert!(bad.to_bytes().is_err());
}

#[test]
fn unknown_head_keys_are_ignored() {
    #[derive(serde::Serialize)]
    struct Later {
        text: &'static str,
        reactions: Vec<u32>,
    }
    let head = cbor4ii::serde::to_vec(
        Vec::new(),
        &Later {
            text: "hi",
            reactions: vec![1, 2],
        },
    )
    .unwrap();
    let mut bytes = envelope::MAGIC.to_vec();
    bytes.extend_from_slice(&(head.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&head);
    assert_eq!(
        Head::read_from(&mut &bytes[..]).unwrap().text.as_deref(),
        Some("hi")
    );
}

#[test]
fn group_keys_open_group_messages_and_invites_never_replace_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let groups = Groups::at(dir.path());
    let name: GroupName = "campfire".parse().unwrap();
    let group = groups.create(&name).unwrap();
    assert!(groups.create(&name).is_err(), "created twice");
    let member = Identity::generate();
    let ring = Keyring::new(&member, groups.list().unwrap()).unwrap();
    let seal = Seal::For(vec![Recipient {
        label: "group campfire".into(),
        key: group.recipient(),
    }]);
    let sealed = seal_bytes(&text("to the group"), &seal).unwrap();
    let o = opened(open(std::io::Cursor::new(sealed.clone()), &ring).unwrap());
    assert_eq!(o.sealing, Sealing::ForGroup(name.clone()));
    // A non-member cannot read it.
    let outsider = Keyring::new(&Identity::generate(), Vec::new()).unwrap();
    assert!(matches!(
        open(std::io::Cursor::new(sealed), &outsider).unwrap(),
        Outcome::ForSomeoneElse
    ));
    // Installing: the same key again is a no-op; another key under the name is refused.
    let other_dir = tempfile::tempdir().unwrap();
    let theirs = Groups::at(other_dir.path());
    assert_eq!(theirs.install(&group, "alice").unwrap(), Installed::New);
    assert_eq!(
        theirs.install(&group, "alice").unwrap(),
        Installed::AlreadyHeld
    );
    let impostor = super::Group {
        name: name.clone(),
        identity: age::x25519::Identity::generate(),
    };
    assert_eq!(
        theirs.install(&impostor, "eve").unwrap(),
        Installed::Conflict
    );
    assert_eq!(
        theirs.get(&name).unwrap().recipient().to_string(),
        group.recipient().to_string()
    );
    // The key file is age's identity format, private to its owner.
    let file = other_dir.path().join("groups/campfire.key");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("AGE-SECRET-KEY-1"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    // Invites carry the key as text and validate it.
    let invite = Head {
        invite: Some(Invite {
            group: "campfire".into(),
            key: group.secret_text(),
        }),
        ..Head::default()
    };
    assert!(invite.to_bytes().is_ok());
    let bad = Head {
        invite: Some(Invite {
            group: "Camp Fire".into(),
            key: group.secret_text(),
        }),
        ..Head::default()
    };
    assert!(bad.to_bytes().is_err());
}

#[test]
fn group_names_are_file_names() {
    for ok in ["campfire", "a", "x-1_y.z", "0day"] {
        assert!(ok.parse::<GroupName>().is_ok(), "{ok}");
    }
    for bad in ["", "Camp", ".hidden", "a/b", "../x", "-x", &"a".repeat(65)] {
        assert!(bad.parse::<GroupName>().is_err(), "{bad}");
    }
}

#[test]
fn attachment_names_are_sanitised() {
    let long = format!("{}.pdf", "x".repeat(300));
    let table: &[(&str, &str)] = &[
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("a/../../b", "b"),
        ("/etc/shadow", "shadow"),
        ("..\\..\\windows\\system32", "system32"),
        ("..", "attachment"),
        (".", "attachment"),
        ("", "attachment"),
        ("dir/", "attachment"),
        (".bashrc", "bashrc"),
        ("a\u{0}b\u{7}c.txt", "abc.txt"),
        ("what?.txt", "what_.txt"),
        ("trailing. ", "trailing"),
        ("日本語.txt", "日本語.txt"),
    ];
    for (input, want) in table {
        assert_eq!(&sanitize(input), want, "sanitize({input:?})");
    }
    let s = sanitize(&long);
    assert!(s.len() <= 200 && s.ends_with(".pdf"), "{s}");
    let multibyte = "é".repeat(150);
    assert!(sanitize(&multibyte).len() <= 200);
}

#[test]
fn saving_stays_inside_never_overwrites_and_happens_once() {
    let dir = tempfile::tempdir().unwrap();
    let write = |bytes: &'static [u8]| {
        move |out: &mut dyn Write| -> Result<(), OpenError> {
            out.write_all(bytes)?;
            Ok(())
        }
    };
    std::fs::write(dir.path().join("passwd"), b"mine").unwrap();
    let a = save(dir.path(), "id1", "../../etc/passwd", write(b"theirs")).unwrap();
    assert_eq!(a, dir.path().join("passwd (1)"));
    assert_eq!(std::fs::read(dir.path().join("passwd")).unwrap(), b"mine");
    let b = save(dir.path(), "id2", "a/../../passwd", write(b"again")).unwrap();
    assert_eq!(b, dir.path().join("passwd (2)"));
    // The same message again: the same file, no third copy.
    let again = save(dir.path(), "id1", "../../etc/passwd", write(b"theirs")).unwrap();
    assert_eq!(again, a);
    assert!(!dir.path().join("passwd (3)").exists());
    // A failed write leaves nothing behind.
    let failed = save(dir.path(), "id3", "x.txt", |out: &mut dyn Write| {
        out.write_all(b"partial")?;
        Err(OpenError::Damaged("test".into()))
    });
    assert!(failed.is_err());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("x") || n.starts_with(".receiving"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Pins the key derivation (`protocols/encryption.md`): seed 0x07 x 32.
#[test]
fn derivation_vector() {
    use age::secrecy::ExposeSecret;
    let id = Identity::from_seed([7; 32]);
    let recipient = Recipient::of_peer(&id.peer_id()).unwrap().key.to_string();
    let secret = super::keys::own_identity(&id).unwrap();
    // The secret derived from the seed matches the public key derived from the peer id.
    assert_eq!(secret.to_public().to_string(), recipient);
    assert_eq!(
        id.peer_id().to_string(),
        "12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7"
    );
    assert_eq!(
        hex::encode(id.x25519_public()),
        "761d88ec830413919dfe9d4d1d56f17e653c8c994082df5b137b90a0ae6edf74"
    );
    assert_eq!(
        recipient,
        "age1wcwc3myrqsfer807n4x364h30ejneryegzpd7kcn0wg2ptnwma6qfgnx5h"
    );
    assert_eq!(
        secret.to_string().expose_secret(),
        "AGE-SECRET-KEY-197KNNLHA0737YQ9FCCNWAAVEUCDZ6P2UFZ5Z3ZJW0EXYHJ3E9RUQHFTSZD"
    );
}

/// Pins the envelope example of `protocols/envelope.md`.
#[test]
fn envelope_vector() {
    assert_eq!(
        hex::encode(text("hi").to_bytes().unwrap()),
        "6d756c652f656e76656c6f70652f310a00000009a16474657874626869"
    );
}

#[test]
fn ping_and_pong_vectors() {
    let ping = Head {
        text: Some("ping".into()),
        ping: Some(super::envelope::Ping {}),
        ..Head::default()
    };
    // {"text": "ping", "ping": {}}
    assert_eq!(
        hex::encode(ping.to_bytes().unwrap()),
        "6d756c652f656e76656c6f70652f310a00000011a264746578746470696e676470696e67a0"
    );
    let id = "ab".repeat(32);
    let pong = Head {
        text: Some("pong".into()),
        pong: Some(super::envelope::Pong {
            ping: id.clone(),
            hops: 2,
        }),
        ..Head::default()
    };
    let bytes = pong.to_bytes().unwrap();
    assert_eq!(Head::read_from(&mut bytes.as_slice()).unwrap(), pong);
    let bad = Head {
        pong: Some(super::envelope::Pong {
            ping: "not an id".into(),
            hops: 0,
        }),
        ..pong
    };
    assert_eq!(
        bad.validate().unwrap_err().to_string(),
        "envelope pong ping is invalid: expected 64 hex digits"
    );
}

#[test]
fn an_invite_over_a_damaged_key_file_is_an_error_not_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let groups = Groups::at(dir.path());
    std::fs::create_dir_all(dir.path().join("groups")).unwrap();
    std::fs::write(dir.path().join("groups/campfire.key"), "not a key\n").unwrap();
    let invited = super::Group {
        name: "campfire".parse().unwrap(),
        identity: age::x25519::Identity::generate(),
    };
    let err = groups.install(&invited, "alice").unwrap_err();
    assert!(
        matches!(err, super::groups::GroupError::Damaged { .. }),
        "{err}"
    );
    assert!(groups.list().is_err(), "list names the damaged file");
    assert!(groups.usable().is_empty(), "usable skips it");
}
