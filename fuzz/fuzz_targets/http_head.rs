//! The metrics endpoint's handling of a request's bytes (`mule::metrics::status_for`): reading
//! the head within its bound and routing it, on arbitrary bytes split into reads arbitrarily.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mule::metrics::{status_for, MAX_HEAD};

/// Where the first blank line (`\r\n\r\n` or `\n\n`) ends, if anywhere: the shortest prefix
/// that ends with one. Written differently from the server's search on purpose, so the two
/// check each other.
fn blank_line_end(bytes: &[u8]) -> Option<usize> {
    (1..=bytes.len()).find(|&end| {
        let head = &bytes[..end];
        head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    let whole = status_for(&[bytes]).expect("reading from memory cannot fail");

    // The same bytes in reads of 1 to 17 bytes, sizes drawn from `seed`.
    let (mut reads, mut rest, mut step) = (Vec::new(), bytes, usize::from(seed));
    while !rest.is_empty() {
        let n = (step % 17 + 1).min(rest.len());
        reads.push(&rest[..n]);
        rest = &rest[n..];
        step = step.wrapping_mul(31).wrapping_add(7);
    }
    let split = status_for(&reads).expect("reading from memory cannot fail");
    assert_eq!(whole, split, "the split into reads changed the answer");

    // A model of the answer: the first blank line within the bound decides.
    match blank_line_end(&bytes[..bytes.len().min(MAX_HEAD)]) {
        Some(_) => assert!(
            matches!(whole, Some(200 | 400 | 404 | 405)),
            "a complete head answered {whole:?}"
        ),
        None if bytes.len() >= MAX_HEAD => assert_eq!(whole, Some(431)),
        None => assert_eq!(whole, None, "an unfinished head was answered"),
    }
});
