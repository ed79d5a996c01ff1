//! Drives the real `mule` binary: two `mule node` processes on loopback, `mule send` on one,
//! the message shows up in `mule inbox --json` on the other; and the offline trust commands
//! (`mule trust`, `mule cert`, names in `mule id`).

mod process;

use std::path::Path;
use std::process::{Command, Output};

use anyhow::Context;
use process::{mule, ok_stdout, wait_inbox, NodeProcess, DEADLINE, MULE};

#[test]
fn send_on_one_node_appears_in_the_others_inbox() -> anyhow::Result<()> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let id: serde_json::Value =
        serde_json::from_str(&ok_stdout(mule(da.path(), &["id", "--json"])?)?)?;
    let a_peer = id["peer_id"].as_str().context("no peer_id")?.to_owned();

    // A message sent before any node runs is stored, and relayed once the node starts.
    let early = ok_stdout(mule(da.path(), &["send", "--text", "written offline"])?)?;
    let a = NodeProcess::start(da.path(), &[])?;
    let a_addr = a.listen_addr()?;
    assert!(a_addr.ends_with(&format!("/p2p/{a_peer}")), "{a_addr}");
    let b = NodeProcess::start(db.path(), &["--bootstrap", &a_addr])?;
    b.listen_addr()?;

    let msg = ok_stdout(mule(
        da.path(),
        &[
            "send",
            "--text",
            "hello from the other tent",
            "--lifespan",
            "2h",
        ],
    )?)?;
    let msg = msg.trim();
    assert_eq!(msg.len(), 64, "send prints the message id: {msg}");
    let inbox = wait_inbox(db.path(), |v| v.len() >= 2)?;
    let got = inbox
        .iter()
        .find(|m| m["id"] == msg)
        .context("message missing")?;
    assert_eq!(got["text"], "hello from the other tent");
    assert_eq!(got["sender"], a_peer.as_str());
    assert_eq!(got["hops"].as_array().map(Vec::len), Some(0));
    assert!(inbox
        .iter()
        .any(|m| m["id"] == early.trim() && m["text"] == "written offline"));

    // Status reports the peer and the counters.
    let status: serde_json::Value =
        serde_json::from_str(&ok_stdout(mule(db.path(), &["status", "--json"])?)?)?;
    assert_eq!(status["counters"]["messages_received"], 2);
    assert!(status["connected_peers"]
        .as_array()
        .is_some_and(|p| p.iter().any(|x| x == a_peer.as_str())));

    // Clean shutdown on SIGTERM; the control socket is gone, so inbox reads the store directly.
    assert!(b.stop()?.success());
    assert!(a.stop()?.success());
    assert!(!db.path().join("control.sock").exists());
    let offline: Vec<serde_json::Value> =
        serde_json::from_str(&ok_stdout(mule(db.path(), &["inbox", "--json"])?)?)?;
    assert_eq!(offline.len(), 2);
    Ok(())
}

#[test]
fn bad_input_gets_clear_errors() -> anyhow::Result<()> {
    let d = tempfile::tempdir()?;
    let out = mule(d.path(), &["node", "--bootstrap", "/ip4/127.0.0.1/tcp/1"])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must end in /p2p/<peer id>"), "{err}");

    let out = mule(d.path(), &["status"])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no node is running"));

    let out = mule(d.path(), &["send"])?;
    assert!(!out.status.success(), "send without content must fail");

    std::fs::create_dir_all(d.path())?;
    std::fs::write(d.path().join("identity.key"), [0u8; 32])?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        d.path().join("identity.key"),
        std::fs::Permissions::from_mode(0o644),
    )?;
    let out = mule(d.path(), &["id"])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by its owner only"));
    Ok(())
}

fn json(dir: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(&ok_stdout(mule(dir, args)?)?)?)
}

fn peer_id(dir: &Path) -> anyhow::Result<String> {
    let id = json(dir, &["id", "--json"])?;
    Ok(id["peer_id"].as_str().context("no peer_id")?.to_owned())
}

fn failure(out: Output) -> anyhow::Result<String> {
    anyhow::ensure!(!out.status.success(), "mule should have failed");
    Ok(String::from_utf8(out.stderr)?)
}

#[test]
fn a_root_names_a_node_offline() -> anyhow::Result<()> {
    let (root, bob, work) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );
    let (root_peer, bob_peer) = (peer_id(root.path())?, peer_id(bob.path())?);
    let chain = work.path().join("bob.chain");
    let chain_arg = chain.to_str().context("path")?;
    let issued = ok_stdout(mule(
        root.path(),
        &[
            "cert",
            "issue",
            "--subject",
            &bob_peer,
            "--name",
            "bob",
            "--valid",
            "2d",
            "--out",
            chain_arg,
        ],
    )?)?;
    assert!(issued.contains("bob.chain"), "{issued}");

    // Bob does not trust the root yet: refused, with the reason.
    let err = failure(mule(bob.path(), &["cert", "add", chain_arg])?)?;
    assert!(err.contains("not a trusted root"), "{err}");
    ok_stdout(mule(bob.path(), &["trust", "add", "campfire", &root_peer])?)?;
    let added = ok_stdout(mule(bob.path(), &["cert", "add", chain_arg])?)?;
    assert!(added.contains("campfire/bob"), "{added}");

    let id = json(bob.path(), &["id", "--json"])?;
    assert_eq!(id["names"], serde_json::json!(["campfire/bob"]));
    let text = ok_stdout(mule(bob.path(), &["id"])?)?;
    assert!(text.contains("peer id:    "), "{text}");
    assert!(text.contains("names:      campfire/bob"), "{text}");
    let certs = json(bob.path(), &["cert", "list", "--json"])?;
    assert_eq!(certs[0]["name"], "campfire/bob");
    assert_eq!(certs[0]["status"], "valid");
    assert_eq!(certs[0]["issuer"], root_peer.as_str());

    // Bob issues under the name he holds; a name he does not hold is refused.
    let phone = work.path().join("phone.chain");
    let out = ok_stdout(mule(
        bob.path(),
        &[
            "cert",
            "issue",
            "--subject",
            &root_peer,
            "--name",
            "phone",
            "--under",
            "campfire/bob",
            "--out",
            phone.to_str().context("path")?,
        ],
    )?)?;
    assert!(out.contains("campfire/bob/phone"), "{out}");
    let err = failure(mule(
        bob.path(),
        &[
            "cert",
            "issue",
            "--subject",
            &root_peer,
            "--name",
            "x",
            "--under",
            "campfire/carol",
        ],
    )?)?;
    assert!(
        err.contains("holds no valid chain for campfire/carol"),
        "{err}"
    );

    // Someone else's chain is refused by the root's node.
    ok_stdout(mule(
        root.path(),
        &["trust", "add", "campfire", &root_peer],
    )?)?;
    let err = failure(mule(root.path(), &["cert", "add", chain_arg])?)?;
    assert!(
        err.contains(&format!("the chain names {bob_peer}, not this node")),
        "{err}"
    );
    Ok(())
}

#[test]
fn trust_add_list_remove_round_trip() -> anyhow::Result<()> {
    let (a, root) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let root_id = json(root.path(), &["id", "--json"])?;
    let key = root_id["public_key"].as_str().context("key")?;
    assert_eq!(
        json(a.path(), &["trust", "list", "--json"])?,
        serde_json::json!([])
    );
    ok_stdout(mule(a.path(), &["trust", "add", "campfire", key])?)?;
    let list = json(a.path(), &["trust", "list", "--json"])?;
    assert_eq!(list[0]["name"], "campfire");
    assert_eq!(list[0]["public_key"], key);
    assert_eq!(list[0]["peer_id"], root_id["peer_id"]);
    let err = failure(mule(a.path(), &["trust", "add", "Camp", key])?)?;
    assert!(err.contains("segments use only a-z"), "{err}");
    let err = failure(mule(a.path(), &["trust", "add", "other", "nonsense"])?)?;
    assert!(err.contains("neither a peer id"), "{err}");
    ok_stdout(mule(a.path(), &["trust", "remove", "campfire"])?)?;
    assert_eq!(
        json(a.path(), &["trust", "list", "--json"])?,
        serde_json::json!([])
    );
    let err = failure(mule(a.path(), &["trust", "remove", "campfire"])?)?;
    assert!(err.contains("no root is named"), "{err}");
    Ok(())
}

/// A reader that stops early (`mule list | head -0`) ends the command quietly with success,
/// never with a panic; `--log-format json` logs JSON lines.
#[test]
fn closed_stdout_and_json_logs() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for i in 0..3 {
        ok_stdout(mule(dir.path(), &["send", "--text", &format!("m{i}")])?)?;
    }
    let mut child = std::process::Command::new(MULE)
        .args(["--data-dir"])
        .arg(dir.path())
        .args(["list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A node logs "node started" (info) before it prints its peer id on stdout.
    let mut node = std::process::Command::new(MULE)
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--log-format",
            "json",
            "node",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stdout = node
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first)?;
    assert!(first.starts_with("peer id:"), "{first}");
    node.kill()?;
    let out = node.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let started = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|v| v["fields"]["message"] == "node started");
    assert!(started, "no JSON `node started` line in: {stderr}");
    Ok(())
}

/// Node settings come from the config file, under `MULE_*` variables and flags; a malformed
/// file is refused with its line.
#[test]
fn config_file_under_env_and_flags() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("config.toml"),
        "max-active-peers = 4\nno-mdns = true\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nmax-hops = 9\n",
    )?;
    let out = std::process::Command::new(MULE)
        .env("MULE_MAX_HOPS", "7")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["config", "show", "--json", "--max-active-peers", "6"])
        .output()?;
    let shown: serde_json::Value = serde_json::from_str(&ok_stdout(out)?)?;
    let setting = |k: &str| (shown[k]["value"].clone(), shown[k]["source"].clone());
    assert_eq!(
        setting("listen"),
        (serde_json::json!(["/ip4/127.0.0.1/tcp/0"]), "file".into())
    );
    assert_eq!(
        setting("no-mdns"),
        (serde_json::json!(["true"]), "file".into())
    );
    assert_eq!(
        setting("max-hops"),
        (serde_json::json!(["7"]), "env".into())
    );
    assert_eq!(
        setting("max-active-peers"),
        (serde_json::json!(["6"]), "flag".into())
    );
    assert_eq!(setting("rate-limit").1, "default");

    std::fs::write(
        dir.path().join("config.toml"),
        "max-hops = 9\nchunk-size = \n",
    )?;
    let err = failure(mule(dir.path(), &["config", "show"])?)?;
    assert!(err.contains("line 2"), "{err}");
    std::fs::write(dir.path().join("config.toml"), "max-hopz = 9\n")?;
    let err = failure(mule(dir.path(), &["node"])?)?;
    assert!(err.contains("unknown setting `max-hopz`"), "{err}");
    Ok(())
}

#[test]
fn an_islander_pulls_from_a_mule_with_and_without_its_own_node() -> anyhow::Result<()> {
    let (mule_dir, island_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let island = peer_id(island_dir.path())?;
    // The mule never pushes to the island: its `out` list denies it.
    let acl = mule_dir.path().join("access.toml");
    std::fs::write(
        &acl,
        format!("[[out]]\nallow = [\"*\"]\ndeny = [\"{island}\"]\n"),
    )?;
    let acl = acl.to_str().context("temp path is not UTF-8")?;
    let mule_node = NodeProcess::start(mule_dir.path(), &["--acl", acl])?;
    let addr = mule_node.listen_addr()?;
    let first = ok_stdout(mule(
        mule_dir.path(),
        &["send", "--to", &island, "--text", "first"],
    )?)?;

    // No node runs on the island: `pull` starts one for itself.
    let report = json(island_dir.path(), &["pull", "--from", &addr, "--json"])?;
    assert_eq!(report["listed"], 1, "{report}");
    assert_eq!(report["pulled"], 1, "{report}");
    // Sealed for the island: the mule carried ciphertext, longer than the 5-byte text.
    assert!(report["bytes"].as_u64().is_some_and(|b| b > 5), "{report}");
    let inbox = json(island_dir.path(), &["inbox", "--json"])?;
    assert_eq!(inbox[0]["id"], first.trim());
    assert_eq!(inbox[0]["text"], "first");
    assert_eq!(inbox[0]["sealed"], "for-me");

    // With the island's node running, `pull` goes through it; --for-me leaves the rest out.
    let island_node = NodeProcess::start(island_dir.path(), &[])?;
    island_node.listen_addr()?;
    ok_stdout(mule(
        mule_dir.path(),
        &["send", "--to", &island, "--text", "second"],
    )?)?;
    let stranger = peer_id(tempfile::tempdir()?.path())?;
    ok_stdout(mule(
        mule_dir.path(),
        &["send", "--to", &stranger, "--text", "other"],
    )?)?;
    let out = ok_stdout(mule(
        island_dir.path(),
        &["pull", "--from", &addr, "--for-me"],
    )?)?;
    assert!(
        out.starts_with("pulled 1 of 1 messages (") && out.contains(" bytes) from "),
        "{out}"
    );
    let inbox = json(island_dir.path(), &["inbox", "--json"])?;
    assert_eq!(inbox.as_array().map(Vec::len), Some(2), "{inbox}");

    // A peer id alone needs a running node that knows the peer.
    island_node.stop()?;
    let mule_peer = addr.rsplit('/').next().context("no peer id")?;
    let err = failure(mule(island_dir.path(), &["pull", "--from", mule_peer])?)?;
    assert!(err.contains("give --from as an address"), "{err}");
    assert!(mule_node.stop()?.success());
    Ok(())
}

/// `metrics = 0` in the config file: a bare port, on loopback, chosen by the OS and printed;
/// the endpoint answers a raw HTTP request; a taken port stops a second node with a clear error.
#[test]
fn node_serves_metrics_on_a_bare_port() -> anyhow::Result<()> {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("config.toml"), "metrics = 0\n")?;
    let node = NodeProcess::start(dir.path(), &[])?;
    let url = node.printed("metrics on ")?;
    let addr = url
        .strip_prefix("http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .with_context(|| format!("not a metrics url: {url}"))?;
    anyhow::ensure!(addr.starts_with("127.0.0.1:"), "{addr}");
    anyhow::ensure!(!addr.ends_with(":0"), "the real port is printed: {addr}");

    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: mule\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    anyhow::ensure!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    anyhow::ensure!(
        answer.contains("mule_messages_received_total 0"),
        "{answer}"
    );

    let other = tempfile::tempdir()?;
    let out = mule(
        other.path(),
        &[
            "node",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--metrics",
            addr,
        ],
    )?;
    let err = failure(out)?;
    anyhow::ensure!(
        err.contains(&format!("cannot serve metrics on {addr}: ")),
        "{err}"
    );
    node.stop()?;

    let out = Command::new(MULE)
        .env("MULE_METRICS", "9464")
        .arg("--data-dir")
        .arg(other.path())
        .args(["config", "show", "--json"])
        .output()?;
    let shown: serde_json::Value = serde_json::from_str(&ok_stdout(out)?)?;
    assert_eq!(shown["metrics"]["value"], serde_json::json!(["9464"]));
    assert_eq!(shown["metrics"]["source"], "env");
    let err = failure(mule(other.path(), &["node", "--metrics", "localhost"])?)?;
    anyhow::ensure!(
        err.contains("`localhost` is not a metrics address"),
        "{err}"
    );
    Ok(())
}
