//! A 200 MiB file sent with the real `mule` binary (sealed for the node itself, stored with no
//! node running) and opened by `mule inbox`: identical bytes back, and neither process's peak
//! RSS comes near the file's size (encryption and decryption stream in bounded memory).
//! Alone in its own binary, so the children's peak RSS is these two processes'.

use std::process::Command;

use anyhow::Context;
use sha2::{Digest, Sha256};

const SIZE: u64 = 200 * 1024 * 1024;
/// Far below the file's size: what a streaming process may reach.
const RSS_LIMIT_KIB: i64 = 96 * 1024;

fn mule(data_dir: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_mule"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "mule {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn peak_rss_of_children_kib() -> i64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss
}

fn sha256_file(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    use std::io::Read;
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

#[test]
fn a_200_mib_file_round_trips_in_bounded_memory() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("node");
    let id: serde_json::Value = serde_json::from_str(&mule(&data_dir, &["id", "--json"])?)?;
    let me = id["peer_id"].as_str().context("no peer id")?.to_string();

    let file = dir.path().join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        let block: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 31 % 253) as u8).collect();
        for _ in 0..SIZE / block.len() as u64 {
            f.write_all(&block)?;
        }
        f.flush()?;
    }
    let want = sha256_file(&file)?;
    let file_arg = file.to_str().context("path")?;
    mule(&data_dir, &["send", "--to", &me, "--file", file_arg])?;
    let save = dir.path().join("saved");
    let save_arg = save.to_str().context("path")?;
    let inbox: serde_json::Value = serde_json::from_str(&mule(
        &data_dir,
        &["inbox", "--json", "--save-dir", save_arg],
    )?)?;
    let saved = inbox[0]["attachment"]["saved_to"]
        .as_str()
        .with_context(|| format!("not saved: {inbox}"))?;
    assert_eq!(inbox[0]["sealed"], "for-me");
    assert_eq!(sha256_file(std::path::Path::new(saved))?, want);
    let peak = peak_rss_of_children_kib();
    println!("{{\"file_mib\":200,\"peak_rss_mib\":{}}}", peak / 1024);
    assert!(
        peak < RSS_LIMIT_KIB,
        "peak RSS {} MiB for a 200 MiB file",
        peak / 1024
    );
    Ok(())
}
