//! The metrics endpoint's handling of a request's bytes (`mule::metrics::status_for`): reading
//! the head within its bound and routing it, on arbitrary bytes split into reads arbitrarily.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mule::metrics::{status_for, MAX_HEAD};

/// Where the first blank line (`\r\n\r\n` or `\n\n`) ends, if anywhere.
fn blank_line_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
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
