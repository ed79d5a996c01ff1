//! Trust end to end, with real nodes on loopback: a campfire whose members exchange messages
//! while a nameless stranger is refused and never selected; names as recipients; a relay that
//! takes messages only from trusted publishers (`news`).

mod common;

use std::time::Duration;

use common::{wait_selected, wait_stored, TestNode};
use libp2p::PeerId;
use mule::control::views;
use mule::identity::Identity;
use mule::message::{now_ms, Draft, Header};
use mule::node::{Content, Letter, Privacy, SealedFor};
use mule::protocol::{diff, push, repo, Code, Frame};
use mule::testing::start_as;
use mule::trust::{self, Grant, Restrictions, Trust};

const DAY_MS: u64 = 24 * 3600 * 1000;
/// A text only Bob may read.
const SECRET: &str = "psst: the spare key is under the third stone";

/// Whether any file under `dir` contains `needle`.
fn dir_contains(dir: &std::path::Path, needle: &[u8]) -> anyhow::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let found = if path.is_dir() {
            dir_contains(&path, needle)?
        } else {
            std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        };
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A data dir for `id` that trusts `root` as `root_name`, holds a chain naming it
/// `root_name/ext` (unless `ext` is `None`) and uses `acl` as its access lists.
fn prepare(
    id: &Identity,
    root_name: &str,
    root: &Identity,
    ext: Option<&str>,
    acl: &str,
) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let mut t = Trust::load(dir.path(), id)?;
    t.add_root(root_name.parse()?, root.public_key())?;
    if let Some(ext) = ext {
        let grant = Grant {
            subject: id.public_key(),
            name: ext.parse()?,
            not_before_ms: now_ms() - 60_000,
            not_after_ms: now_ms() + DAY_MS,
            restrictions: Restrictions::default(),
        };
        let chain = trust::issue(root, grant, &[])?;
        t.add_chain(&trust::chain::encode_chain(&chain)?, now_ms())?;
    }
    std::fs::write(dir.path().join(trust::acl::ACCESS_FILE), acl)?;
    Ok(dir)
}

const CAMPFIRE: &str = r#"
[[in]]
allow = ["campfire"]
[[out]]
allow = ["campfire"]
[[sender]]
allow = ["campfire"]
"#;

const OPEN: &str = "";

async fn member(
    root: &Identity,
    ext: Option<&str>,
    acl: &str,
    bootstrap: Option<&TestNode>,
) -> anyhow::Result<TestNode> {
    let id = Identity::generate();
    let dir = prepare(&id, "campfire", root, ext, acl)?;
    start_as(id, dir, bootstrap.map(|b| &b.node), |c| {
        c.net.max_active_peers = 0;
    })
    .await
}

fn signed(from: &Identity, to: &str, content: &[u8]) -> anyhow::Result<Header> {
    Ok(Draft {
        recipient: to.into(),
        created_ms: now_ms(),
        lifespan_ms: 3_600_000,
        chains: Vec::new(),
    }
    .sign(from, content)?)
}

fn push_code(r: &push::Response) -> Option<Code> {
    match r {
        push::Response::Error(e) => Some(e.code.clone()),
        _ => None,
    }
}

async fn selected(node: &TestNode) -> anyhow::Result<Vec<String>> {
    Ok(node.status().await?.selected_peers)
}

#[tokio::test]
async fn campfire_members_only() -> anyhow::Result<()> {
    common::init_tracing();
    let root = Identity::from_seed([77; 32]);
    let alice = member(&root, Some("alice"), CAMPFIRE, None).await?;
    let bob = member(&root, Some("bob"), CAMPFIRE, Some(&alice)).await?;
    let carol = member(&root, Some("carol"), CAMPFIRE, Some(&alice)).await?;
    // A stranger that knows the campfire root but holds no name, and lets everyone in.
    let stranger = member(&root, None, OPEN, Some(&alice)).await?;
    wait_selected(&alice, 2).await?;
    wait_selected(&bob, 1).await?;
    wait_selected(&carol, 1).await?;
    wait_selected(&stranger, 1).await?;
    let ap = alice.peer_id();

    // The stranger is refused on every protocol...
    let d = stranger
        .net()
        .diff(
            ap,
            diff::Request {
                ids: vec![],
                claim: false,
            },
        )
        .await?;
    assert!(
        matches!(&d, diff::Response::Error(e) if e.code == Code::NotAuthorized),
        "{d:?}"
    );
    let m = signed(&Identity::generate(), "*", b"let me in")?;
    let p = stranger
        .net()
        .push(
            ap,
            Frame::Ok(push::Request::Chunk {
                header: Box::new(m),
                offset: 0,
                data: b"let me in".to_vec(),
            }),
        )
        .await?;
    assert_eq!(push_code(&p), Some(Code::NotAuthorized), "{p:?}");
    let r = stranger
        .net()
        .repo(
            ap,
            Frame::Ok(repo::Request::Manifest {
                after: None,
                limit: 10,
            }),
        )
        .await?;
    assert!(
        matches!(&r, repo::Response::Error(e) if e.code == Code::NotAuthorized),
        "{r:?}"
    );

    // ... and never selected by a member, while members select each other.
    let stranger_id = stranger.peer_id().to_string();
    for m in [&alice, &bob, &carol] {
        let sel = selected(m).await?;
        assert!(
            !sel.contains(&stranger_id),
            "{} selected the stranger",
            m.peer_id()
        );
    }

    // A message from Alice reaches Bob and Carol, carrying the chain that names her.
    let mut bob_events = bob.subscribe();
    let mut carol_events = carol.subscribe();
    let id = alice
        .send(
            "*",
            Content::Bytes(b"around the fire".to_vec()),
            Duration::from_secs(600),
        )
        .await?;
    wait_stored(&bob, &mut bob_events, id).await?;
    wait_stored(&carol, &mut carol_events, id).await?;
    let at_bob = bob
        .store()
        .get(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("missing"))?;
    let sender = trust::names_of(
        &at_bob.header.sender,
        &at_bob.header.chains,
        &roots(&root)?,
        now_ms(),
    );
    let names: Vec<String> = sender.verified.iter().map(|v| v.name.to_string()).collect();
    assert_eq!(names, vec!["campfire/alice".to_string()]);
    assert!(
        !stranger.store().exists(id).await?,
        "the stranger got a member's message"
    );

    // A name as recipient: Bob's inbox shows it, Carol's does not (she still carries it).
    // Alice knows Bob's key from the names exchange: the message is sealed for it.
    let letter = Letter {
        text: Some(SECRET.into()),
        ..Letter::default()
    };
    let posted = alice
        .post(
            "campfire/bob",
            letter,
            &Privacy::ByRecipient,
            Duration::from_secs(600),
        )
        .await?;
    assert_eq!(
        posted.sealed_for,
        SealedFor::Keys(vec![bob.peer_id().to_string()])
    );
    let to_bob: mule::message::MessageId = posted.id.parse()?;
    wait_stored(&bob, &mut bob_events, to_bob).await?;
    wait_stored(&carol, &mut carol_events, to_bob).await?;
    let inbox = |n: &TestNode| {
        let (store, dir, me) = (
            n.store().clone(),
            n.config().data_dir.clone(),
            n.me().clone(),
        );
        let (roots, identity) = (n.roots().clone(), n.identity().clone());
        async move {
            let reader = views::Reader {
                data_dir: &dir,
                identity: &identity,
                me: &me,
                roots: &roots,
                save_dir: None,
            };
            views::inbox(&store, &reader).await
        }
    };
    let shown = |v: &[views::MessageView]| v.iter().any(|m| m.id == to_bob.to_string());
    let at_bob = inbox(&bob).await?;
    assert!(shown(&at_bob));
    let view = at_bob
        .iter()
        .find(|m| m.id == to_bob.to_string())
        .ok_or_else(|| anyhow::anyhow!("not in Bob's inbox"))?;
    assert_eq!(view.sender_names, vec!["campfire/alice".to_string()]);
    assert_eq!(view.text.as_deref(), Some(SECRET));
    // Carol carried it (she relays) but holds only ciphertext: no file of hers contains it.
    assert!(
        !dir_contains(&carol.config().data_dir, SECRET.as_bytes())?,
        "the relay's data dir holds the plaintext"
    );
    assert!(dir_contains(&bob.config().data_dir, b"campfire")?);
    assert_eq!(view.sealed, Some(views::Sealed::ForMe));
    assert!(!shown(&inbox(&carol).await?));
    assert!(
        !shown(&inbox(&alice).await?),
        "the sender is not campfire/bob"
    );
    Ok(())
}

fn roots(root: &Identity) -> anyhow::Result<trust::Roots> {
    let mut roots = trust::Roots::default();
    roots.insert("campfire".parse()?, root.public_key())?;
    Ok(roots)
}

/// Content distribution: a relay whose sender list admits only the `news` publishers takes a
/// publisher's message and refuses a nameless sender's, before any content is stored.
#[tokio::test]
async fn sender_list_admits_trusted_publishers_only() -> anyhow::Result<()> {
    common::init_tracing();
    let root = Identity::from_seed([78; 32]);
    let relay_acl = "[[sender]]\nallow = [\"news\"]\n";
    let relay_id = Identity::generate();
    let relay = start_as(
        relay_id.clone(),
        {
            let dir = tempfile::tempdir()?;
            let mut t = Trust::load(dir.path(), &relay_id)?;
            t.add_root("news".parse()?, root.public_key())?;
            std::fs::write(dir.path().join(trust::acl::ACCESS_FILE), relay_acl)?;
            dir
        },
        None,
        |_| {},
    )
    .await?;
    let publisher = member(&root, Some("daily"), OPEN, Some(&relay)).await?;
    wait_selected(&relay, 1).await?;
    let rp: PeerId = relay.peer_id();

    // The publisher's chain is issued by the `news` root (the member helper calls it campfire
    // locally, but the relay knows the key as `news`).
    let mut events = relay.subscribe();
    let id = publisher
        .send(
            "*",
            Content::Bytes(b"headline".to_vec()),
            Duration::from_secs(600),
        )
        .await?;
    wait_stored(&relay, &mut events, id).await?;

    let nameless = signed(&Identity::generate(), "*", b"spam")?;
    let r = publisher
        .net()
        .push(
            rp,
            Frame::Ok(push::Request::Chunk {
                header: Box::new(nameless.clone()),
                offset: 0,
                data: b"spam".to_vec(),
            }),
        )
        .await?;
    assert_eq!(push_code(&r), Some(Code::NotAuthorized), "{r:?}");
    assert!(!relay.store().exists(nameless.id).await?);
    Ok(())
}
