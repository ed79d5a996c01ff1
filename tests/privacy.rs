//! End-to-end encryption with real nodes on loopback: a group invite installed on arrival, then a
//! group message read by the member and not by the non-member who carries it; an attachment
//! sealed for one peer and saved under its sanitised name.

mod common;

use std::time::Duration;

use common::{start, wait_selected, wait_stored, TestNode, DEADLINE};
use mule::content::groups::Groups;
use mule::control::views::{self, MessageView, Sealed};
use mule::node::relay::Me;
use mule::node::{Letter, NodeEvent, Privacy, SealedFor};

const DAY: Duration = Duration::from_secs(86_400);

async fn inbox(
    n: &TestNode,
    save_dir: Option<std::path::PathBuf>,
) -> anyhow::Result<Vec<MessageView>> {
    let me = Me::of(n.identity());
    let reader = views::Reader {
        data_dir: &n.config().data_dir,
        identity: n.identity(),
        me: &me,
        roots: n.roots(),
        save_dir,
    };
    Ok(views::inbox(n.store(), &reader).await?)
}

fn find<'a>(views: &'a [MessageView], id: &str) -> anyhow::Result<&'a MessageView> {
    views
        .iter()
        .find(|v| v.id == id)
        .ok_or_else(|| anyhow::anyhow!("{id} not in the inbox"))
}

#[tokio::test]
async fn a_group_invite_then_a_group_message_only_members_read() -> anyhow::Result<()> {
    common::init_tracing();
    let alice = start(None, |c| c.net.max_active_peers = 4).await?;
    let bob = start(Some(&alice), |c| c.net.max_active_peers = 4).await?;
    let carol = start(Some(&alice), |c| c.net.max_active_peers = 4).await?;
    wait_selected(&alice, 2).await?;
    let (mut bob_events, mut carol_events) = (bob.subscribe(), carol.subscribe());

    Groups::at(&alice.config().data_dir).create(&"campfire".parse()?)?;
    let invite = Letter::from_parts(&alice.config().data_dir, None, None, Some("campfire"))?;
    let posted = alice
        .post(
            bob.peer_id().to_string(),
            invite,
            &Privacy::ByRecipient,
            DAY,
        )
        .await?;
    assert_eq!(
        posted.sealed_for,
        SealedFor::Keys(vec![bob.peer_id().to_string()])
    );
    // Bob's node installs the key as the invite arrives.
    tokio::time::timeout(DEADLINE, async {
        loop {
            match bob_events.recv().await {
                Ok(NodeEvent::Joined { group }) if group == "campfire" => return Ok(()),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(anyhow::anyhow!("{e}")),
            }
        }
    })
    .await??;
    assert_eq!(Groups::at(&bob.config().data_dir).list()?.len(), 1);

    // An invite to '*' would hand the key to every relay: refused.
    let open_invite = Letter::from_parts(&alice.config().data_dir, None, None, Some("campfire"))?;
    assert!(alice
        .post("*", open_invite, &Privacy::ByRecipient, DAY)
        .await
        .is_err());

    let letter = Letter {
        text: Some("around the fire at nine".into()),
        ..Letter::default()
    };
    let privacy = Privacy::Group("campfire".parse()?);
    let posted = alice.post("*", letter, &privacy, DAY).await?;
    assert_eq!(posted.sealed_for, SealedFor::Group("campfire".into()));
    let id = posted.id.parse()?;
    wait_stored(&bob, &mut bob_events, id).await?;
    wait_stored(&carol, &mut carol_events, id).await?;

    let at_bob = inbox(&bob, None).await?;
    let seen = find(&at_bob, &posted.id)?;
    assert_eq!(seen.sealed, Some(Sealed::ForGroup("campfire".into())));
    assert_eq!(seen.text.as_deref(), Some("around the fire at nine"));
    let at_carol = inbox(&carol, None).await?;
    let carried = find(&at_carol, &posted.id)?;
    assert_eq!(carried.sealed, Some(Sealed::ForSomeoneElse));
    assert_eq!(carried.text, None);

    mule::testing::shutdown_all(vec![alice.node, bob.node, carol.node]).await;
    Ok(())
}

#[tokio::test]
async fn an_attachment_is_sealed_for_one_peer_and_saved_inside_the_save_dir() -> anyhow::Result<()>
{
    common::init_tracing();
    let alice = start(None, |_| {}).await?;
    let bob = start(Some(&alice), |_| {}).await?;
    wait_selected(&alice, 1).await?;
    let mut bob_events = bob.subscribe();
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let file = alice.dir.path().join("notes.bin");
    std::fs::write(&file, &data)?;
    let letter = Letter {
        text: Some("the notes".into()),
        file: Some(file),
        ..Letter::default()
    };
    let posted = alice
        .post(
            bob.peer_id().to_string(),
            letter,
            &Privacy::ByRecipient,
            DAY,
        )
        .await?;
    let id = posted.id.parse()?;
    wait_stored(&bob, &mut bob_events, id).await?;
    let save = bob.dir.path().join("saved");
    std::fs::create_dir_all(&save)?;
    std::fs::write(save.join("notes.bin"), b"already here")?;
    let views = inbox(&bob, Some(save.clone())).await?;
    let view = find(&views, &posted.id)?;
    assert_eq!(view.sealed, Some(Sealed::ForMe));
    let attachment = view
        .attachment
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no attachment"))?;
    assert_eq!(attachment.name, "notes.bin");
    assert_eq!(attachment.length, data.len() as u64);
    let saved = attachment
        .saved_to
        .ok_or_else(|| anyhow::anyhow!("not saved"))?;
    assert_eq!(std::path::PathBuf::from(&saved), save.join("notes (1).bin"));
    assert_eq!(std::fs::read(&saved)?, data);
    assert_eq!(std::fs::read(save.join("notes.bin"))?, b"already here");
    // Reading the inbox again saves nothing twice.
    inbox(&bob, Some(save.clone())).await?;
    assert!(!save.join("notes (2).bin").exists());
    mule::testing::shutdown_all(vec![alice.node, bob.node]).await;
    Ok(())
}
