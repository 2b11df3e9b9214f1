//! Arbitrary bytes given to the pgoutput decoder produce a message or an error, never
//! a panic, also across sequences of messages (the decoder keeps the streamed-block
//! state between them), and decoded tuples iterate safely.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_pgoutput::{OldTuple, PgOutputDecoder, PgOutputMessage, Tuple};

fn walk(tuple: &Tuple) -> usize {
    tuple.values().count()
}

fn exercise(message: &PgOutputMessage) -> usize {
    match message {
        PgOutputMessage::Insert(insert) => walk(&insert.new),
        PgOutputMessage::Update(update) => walk(&update.new) + update.old.as_ref().map_or(0, |old| walk(old.tuple())),
        PgOutputMessage::Delete(delete) => match &delete.old {
            OldTuple::Key(tuple) | OldTuple::Full(tuple) => walk(tuple),
        },
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    // The whole input as one message.
    if let Ok(message) = PgOutputDecoder::new().decode(Bytes::copy_from_slice(data)) {
        exercise(&message);
    }
    // The input as a sequence of messages, each behind a 2-byte big-endian length.
    let mut decoder = PgOutputDecoder::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let end = (2 + length).min(rest.len());
        if let Ok(message) = decoder.decode(Bytes::copy_from_slice(&rest[2..end])) {
            exercise(&message);
        }
        rest = &rest[end..];
    }
});
