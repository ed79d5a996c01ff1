//! Keeping a long-running node's resident memory to the code it still runs.
//!
//! Most of an idle node's resident set is not its data but the `mule` binary's code: on a page
//! fault in a file mapping, Linux maps up to 64 KiB around the faulting page ("fault-around"),
//! so start-up (argument parsing, identity, store recovery, building the swarm), which runs a
//! little of everything once, leaves most of the 14 MiB of code and 4 MiB of constants mapped.
//! Those pages are clean and shared, but they count in the node's RSS for as long as it runs,
//! which is what a phone's task manager shows.
//!
//! [`trim_code`], called once the node has started, drops those mappings; the pages the running
//! node uses are mapped again on their next use, from the page cache (no disk read). Measured
//! with `mule node` idle on the development VM: 18.5 MiB before, 8.7 MiB right after, 11.9 MiB
//! once the periodic work (collection, discovery) has run (see README, Performance).
//!
//! Only mappings of the executable that are not writable and were never written are touched:
//! the code and the read-only constants before it. Data the loader relocated (RELRO) is left
//! alone: dropping it would bring back the unrelocated file. A breakpoint a debugger wrote into
//! the code before the trim is dropped with its page.

use std::path::Path;

/// A clean read-only mapping of the executable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
}

/// Drops the binary's code pages from this process's page tables (they stay in the page cache).
/// Call once start-up is done. Returns the bytes of mappings trimmed: 0 where this is not
/// supported (not Linux, no `/proc`).
pub fn trim_code() -> usize {
    advise()
}

#[cfg(target_os = "linux")]
fn advise() -> usize {
    use nix::sys::mman::{madvise, MmapAdvise};
    let Some(mappings) = own_mappings() else {
        return 0;
    };
    let mut advised = 0;
    for m in mappings {
        let Some(addr) = std::ptr::NonNull::new(m.start as *mut std::ffi::c_void) else {
            continue;
        };
        // SAFETY: the range is a whole mapping of this executable's file that is not writable
        // and was never written (see `parse`): MADV_DONTNEED on a clean private file mapping
        // only unmaps its pages, and the next access maps them again with the same contents.
        match unsafe { madvise(addr, m.end - m.start, MmapAdvise::MADV_DONTNEED) } {
            Ok(()) => advised += m.end - m.start,
            Err(e) => tracing::debug!(error = %e, "madvise on the binary's code failed"),
        }
    }
    advised
}

#[cfg(not(target_os = "linux"))]
fn advise() -> usize {
    0
}

/// The executable's clean read-only mappings, from `/proc/self/maps`.
#[cfg(target_os = "linux")]
fn own_mappings() -> Option<Vec<Mapping>> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    Some(parse(&maps, &exe))
}

/// Picks the mappings of `exe` that are safe to advise in a `/proc/<pid>/maps` listing: the
/// executable code (`r-xp`) and the read-only mapping at file offset 0 (headers and constants).
/// A read-only mapping at any other offset may be RELRO, data the loader wrote (relocated)
/// before making it read-only: dropping those pages would bring back the unrelocated file.
fn parse(maps: &str, exe: &Path) -> Vec<Mapping> {
    let exe = exe.to_string_lossy();
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let offset = fields.next()?;
            let path = fields.nth(2)?;
            if path != exe || fields.next().is_some() {
                return None;
            }
            let clean = perms == "r-xp" || (perms == "r--p" && offset.bytes().all(|b| b == b'0'));
            if !clean {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (start < end).then_some(Mapping { start, end })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
56152073f000-561520b69000 r--p 00000000 fe:00 5309925                    /opt/mule
561520b69000-5615219af000 r-xp 00429000 fe:00 5309925                    /opt/mule
5615219af000-561521a33000 r--p 0126e000 fe:00 5309925                    /opt/mule
561521a33000-561521a39000 rw-p 012f1000 fe:00 5309925                    /opt/mule
561521a39000-561521a40000 rw-p 00000000 00:00 0
7f0e4c000000-7f0e4c021000 r-xp 00000000 fe:00 1234                       /usr/lib/libc.so.6
7f0e4d000000-7f0e4d001000 r--p 00000000 fe:00 5309926                    /opt/mule (deleted)
";

    #[test]
    fn picks_only_clean_read_only_mappings_of_the_executable() {
        let picked = parse(MAPS, Path::new("/opt/mule"));
        assert_eq!(
            picked,
            vec![
                Mapping {
                    start: 0x56152073f000,
                    end: 0x561520b69000
                },
                Mapping {
                    start: 0x561520b69000,
                    end: 0x5615219af000
                },
            ]
        );
    }

    #[test]
    fn another_path_or_garbage_picks_nothing() {
        assert!(parse(MAPS, Path::new("/opt/other")).is_empty());
        assert!(parse(
            "not a maps file\n\n-- r-xp 0 0 0 /opt/mule",
            Path::new("/opt/mule")
        )
        .is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_test_binary_has_code_to_advise_and_still_runs_after() {
        let mappings = own_mappings().unwrap_or_default();
        assert!(mappings.iter().any(|m| m.end > m.start), "{mappings:?}");
        assert!(trim_code() > 0);
        // Code and constants are mapped back on use: this still runs and formats.
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
