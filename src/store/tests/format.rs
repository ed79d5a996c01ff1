//! Pins the on-disk format described in `protocols/store.md`: a change here is a new schema
//! version, not a refactoring.

use super::*;
use crate::store::tables::{self, name, PartialRecord};

#[test]
fn table_names_are_version_two() {
    assert_eq!(
        [
            name::MESSAGES,
            name::BY_CREATED,
            name::INLINE,
            name::PARTIAL,
            name::DELIVERY,
            name::META
        ],
        [
            "messages-1",
            "by-created-1",
            "inline-content-2",
            "partial-1",
            "delivery-1",
            "meta"
        ]
    );
    assert_eq!(tables::SCHEMA_VERSION, 2);
    assert_eq!(name::INLINE_V1, "inline-content-1");
}

#[test]
fn delivery_states_encode_as_documented() -> TestResult {
    let cases = [
        (Delivery::Sent { at_ms: 5 }, "a16473656e74a16561745f6d7305"),
        (
            Delivery::Failed {
                reason: "x".into(),
                at_ms: 1,
            },
            "a1666661696c6564a266726561736f6e61786561745f6d7301",
        ),
        (
            Delivery::Retry {
                attempts: 2,
                next_attempt_ms: 3,
                last_error: "e".into(),
            },
            "a1657265747279a368617474656d70747302\
             6f6e6578745f617474656d70745f6d73036a6c6173745f6572726f726165",
        ),
    ];
    for (state, hex) in cases {
        assert_eq!(hex::encode(tables::encode(&state)?), hex, "{state:?}");
        assert_eq!(tables::decode::<Delivery>(&hex::decode(hex)?)?, state);
    }
    Ok(())
}

#[test]
fn records_are_maps_with_the_documented_keys() -> TestResult {
    let h = header(b"x", 60_000, NOW)?;
    let stored = Stored {
        header: h.clone(),
        received_ms: 7,
        inline: true,
    };
    let value: cbor4ii::core::Value = cbor4ii::serde::from_slice(&tables::encode(&stored)?)?;
    assert_eq!(map_keys(&value), ["header", "received_ms", "inline"]);
    let partial = PartialRecord {
        header: h,
        started_ms: 7,
    };
    let value: cbor4ii::core::Value = cbor4ii::serde::from_slice(&tables::encode(&partial)?)?;
    assert_eq!(map_keys(&value), ["header", "started_ms"]);
    Ok(())
}

fn map_keys(value: &cbor4ii::core::Value) -> Vec<String> {
    match value {
        cbor4ii::core::Value::Map(pairs) => pairs
            .iter()
            .filter_map(|(k, _)| match k {
                cbor4ii::core::Value::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn a_record_that_does_not_decode_names_its_table() {
    let err = tables::decode::<Stored>(&[0xff])
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.starts_with("corrupt store record in messages-1: ")),
        "{err:?}"
    );
}
