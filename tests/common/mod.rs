//! Shared helpers for multi-node tests: the library's harness (`mule::testing`, the same one
//! the benches use): real nodes in one process, on 127.0.0.1, bounded waits.

#![allow(unused_imports)]

pub use mule::testing::{
    init_test_tracing as init_tracing, start, wait_selected, wait_stored, TestNode, DEADLINE,
};
