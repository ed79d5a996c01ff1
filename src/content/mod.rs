//! What is inside a message: the content envelope (text and/or one attachment, or a group
//! invite), its end-to-end encryption with age, and the keys that open it.
//!
//! Relays carry and verify ciphertext only: the header's `length` and `sha256` cover the bytes
//! produced here. A node's X25519 key is derived from its ed25519 identity ([`keys`]), so a peer
//! id is all a sender needs; groups share an age identity of their own ([`groups`]).
//!
//! - [`envelope`]: the versioned plaintext format (`protocols/envelope.md`).
//! - [`seal`]: envelope + optional file -> (age ciphertext | open envelope), streaming.
//! - [`open`](mod@open): the reverse, with the header bounded before age parses it.
//! - [`save`]: attachments written under a directory with sanitised, never-clobbering names.
//!
//! Everything here is blocking I/O in bounded memory; callers run it on blocking threads.

pub mod envelope;
pub mod groups;
pub mod keys;
pub mod open;
pub mod save;
pub mod seal;
#[cfg(test)]
mod tests;

pub use envelope::{Attachment, Head, Invite};
pub use groups::{Group, GroupName, Groups};
pub use keys::{Keyring, Recipient};
pub use open::{open, Opened, Sealing};
pub use seal::{seal_bytes, seal_file, Seal};
