//! Decoder tests on hand-built messages, byte for byte as the protocol documents them.

use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::Lsn;

/// Builds messages the way the server lays them out.
#[derive(Default)]
struct Msg(BytesMut);

impl Msg {
    fn tag(tag: u8) -> Self {
        let mut m = Msg::default();
        m.0.put_u8(tag);
        m
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.put_u8(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.put_u16(v);
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.put_u32(v);
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.put_i32(v);
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.put_u64(v);
        self
    }
    fn str(mut self, v: &str) -> Self {
        self.0.put_slice(v.as_bytes());
        self.0.put_u8(0);
        self
    }
    fn raw(mut self, v: &[u8]) -> Self {
        self.0.put_slice(v);
        self
    }
    /// TupleData with text values (`None` = null).
    fn tuple(self, values: &[Option<&str>]) -> Self {
        let mut m = self.u16(values.len() as u16);
        for value in values {
            m = match value {
                None => m.u8(b'n'),
                Some(text) => m.u8(b't').u32(text.len() as u32).raw(text.as_bytes()),
            };
        }
        m
    }
    fn bytes(self) -> Bytes {
        self.0.freeze()
    }
}

fn texts(tuple: &Tuple) -> Vec<Option<String>> {
    tuple
        .values()
        .map(|v| match v {
            TupleValue::Null => None,
            TupleValue::UnchangedToast => Some("<unchanged>".to_owned()),
            TupleValue::Text(t) | TupleValue::Binary(t) => {
                Some(String::from_utf8_lossy(t).into_owned())
            }
        })
        .collect()
}

const PG_TIME: i64 = 1_000_000; // 2000-01-01 00:00:01 UTC in PostgreSQL's epoch

fn decode(bytes: Bytes) -> PgOutputMessage {
    PgOutputDecoder::new().decode(bytes).expect("decodes")
}

#[test]
fn begin_and_commit() {
    let begin = decode(
        Msg::tag(b'B')
            .u64(0x100)
            .u64(PG_TIME as u64)
            .u32(731)
            .bytes(),
    );
    assert_eq!(
        begin,
        PgOutputMessage::Begin(Begin {
            final_lsn: Lsn(0x100),
            commit_time_micros: 946_684_801_000_000,
            xid: 731
        })
    );
    let commit = decode(
        Msg::tag(b'C')
            .u8(0)
            .u64(0x100)
            .u64(0x130)
            .u64(PG_TIME as u64)
            .bytes(),
    );
    assert_eq!(
        commit,
        PgOutputMessage::Commit(Commit {
            xid: None,
            flags: 0,
            commit_lsn: Lsn(0x100),
            end_lsn: Lsn(0x130),
            commit_time_micros: 946_684_801_000_000
        })
    );
}

fn relation_message() -> Msg {
    Msg::tag(b'R')
        .u32(16384)
        .str("public")
        .str("orders")
        .u8(b'd')
        .u16(2)
        .u8(1)
        .str("id")
        .u32(20)
        .i32(-1)
        .u8(0)
        .str("total")
        .u32(1700)
        .i32((12 << 16) + 2 + 4)
}

#[test]
fn relation() {
    let PgOutputMessage::Relation(relation) = decode(relation_message().bytes()) else {
        panic!("not a relation");
    };
    assert_eq!(relation.oid, 16384);
    assert_eq!(
        (relation.namespace.as_str(), relation.name.as_str()),
        ("public", "orders")
    );
    assert_eq!(relation.replica_identity, ReplicaIdentity::Default);
    assert_eq!(relation.columns.len(), 2);
    assert!(relation.columns[0].is_key && !relation.columns[1].is_key);
    assert_eq!(relation.columns[1].type_oid, 1700);
    assert_eq!(relation.columns[1].type_modifier, (12 << 16) + 6);
}

#[test]
fn insert_update_delete_tuples() {
    let insert = decode(
        Msg::tag(b'I')
            .u32(16384)
            .u8(b'N')
            .tuple(&[Some("1"), None, Some("héllo")])
            .bytes(),
    );
    let PgOutputMessage::Insert(insert) = insert else {
        panic!()
    };
    assert_eq!(insert.relation, 16384);
    assert_eq!(
        texts(&insert.new),
        [Some("1".into()), None, Some("héllo".into())]
    );
    assert_eq!(insert.new.values().len(), 3);

    // Update without old image, with old key, with full old row.
    let PgOutputMessage::Update(plain) =
        decode(Msg::tag(b'U').u32(1).u8(b'N').tuple(&[Some("2")]).bytes())
    else {
        panic!()
    };
    assert!(plain.old.is_none());
    let with_key = Msg::tag(b'U')
        .u32(1)
        .u8(b'K')
        .tuple(&[Some("1"), None])
        .u8(b'N')
        .tuple(&[Some("2"), Some("x")]);
    let PgOutputMessage::Update(with_key) = decode(with_key.bytes()) else {
        panic!()
    };
    assert!(
        matches!(&with_key.old, Some(OldTuple::Key(t)) if texts(t) == [Some("1".into()), None])
    );
    assert_eq!(texts(&with_key.new), [Some("2".into()), Some("x".into())]);

    let full = Msg::tag(b'U')
        .u32(1)
        .u8(b'O')
        .tuple(&[Some("1")])
        .u8(b'N')
        .tuple(&[Some("1")]);
    assert!(matches!(
        decode(full.bytes()),
        PgOutputMessage::Update(Update {
            old: Some(OldTuple::Full(_)),
            ..
        })
    ));

    let delete = decode(Msg::tag(b'D').u32(1).u8(b'K').tuple(&[Some("7")]).bytes());
    let PgOutputMessage::Delete(delete) = delete else {
        panic!()
    };
    assert_eq!(texts(delete.old.tuple()), [Some("7".into())]);
}

#[test]
fn unchanged_toast_and_binary_values() {
    let message = Msg::tag(b'I')
        .u32(1)
        .u8(b'N')
        .u16(3)
        .u8(b'u')
        .u8(b'b')
        .u32(4)
        .raw(&[0, 0, 0, 42])
        .u8(b'n')
        .bytes();
    let PgOutputMessage::Insert(insert) = decode(message) else {
        panic!()
    };
    let values: Vec<TupleValue<'_>> = insert.new.values().collect();
    assert_eq!(
        values,
        [
            TupleValue::UnchangedToast,
            TupleValue::Binary(&[0, 0, 0, 42]),
            TupleValue::Null
        ]
    );
    // Values can be kept as zero-copy handles into the message.
    let TupleValue::Binary(raw) = values[1] else {
        panic!()
    };
    assert_eq!(insert.new.slice_of(raw).as_ref(), &[0, 0, 0, 42]);
}

#[test]
fn truncate_type_origin_and_message() {
    let truncate = decode(Msg::tag(b'T').u32(2).u8(3).u32(10).u32(11).bytes());
    assert_eq!(
        truncate,
        PgOutputMessage::Truncate(Truncate {
            xid: None,
            cascade: true,
            restart_identity: true,
            relations: vec![10, 11]
        })
    );
    let ty = decode(Msg::tag(b'Y').u32(90000).str("public").str("mood").bytes());
    assert!(
        matches!(ty, PgOutputMessage::Type(TypeInfo { oid: 90000, ref name, .. }) if name == "mood")
    );
    let origin = decode(Msg::tag(b'O').u64(5).str("node_a").bytes());
    assert!(matches!(origin, PgOutputMessage::Origin(Origin { ref name, .. }) if name == "node_a"));
    let message = decode(
        Msg::tag(b'M')
            .u8(1)
            .u64(0x200)
            .str("weir")
            .u32(3)
            .raw(b"abc")
            .bytes(),
    );
    let PgOutputMessage::Message(message) = message else {
        panic!()
    };
    assert!(message.transactional);
    assert_eq!(
        (message.prefix.as_str(), message.content.as_ref()),
        ("weir", &b"abc"[..])
    );
}

#[test]
fn streamed_transactions_carry_their_xid() {
    let mut decoder = PgOutputDecoder::new();
    let start = decoder
        .decode(Msg::tag(b'S').u32(900).u8(1).bytes())
        .expect("start");
    assert_eq!(
        start,
        PgOutputMessage::StreamStart(StreamStart {
            xid: 900,
            first_segment: true
        })
    );
    assert!(decoder.in_stream());
    let insert = decoder
        .decode(
            Msg::tag(b'I')
                .u32(900)
                .u32(16384)
                .u8(b'N')
                .tuple(&[Some("1")])
                .bytes(),
        )
        .expect("insert");
    assert!(matches!(
        insert,
        PgOutputMessage::Insert(Insert {
            xid: Some(900),
            relation: 16384,
            ..
        })
    ));
    let relation = decoder
        .decode(
            Msg::tag(b'R')
                .u32(900)
                .raw(&relation_message().bytes()[1..])
                .bytes(),
        )
        .expect("relation");
    assert!(matches!(
        relation,
        PgOutputMessage::Relation(Relation { xid: Some(900), .. })
    ));
    assert_eq!(
        decoder.decode(Msg::tag(b'E').bytes()).expect("stop"),
        PgOutputMessage::StreamStop
    );
    assert!(!decoder.in_stream());

    let commit = decoder
        .decode(
            Msg::tag(b'c')
                .u32(900)
                .u8(0)
                .u64(0x300)
                .u64(0x330)
                .u64(0)
                .bytes(),
        )
        .expect("commit");
    assert!(matches!(
        commit,
        PgOutputMessage::StreamCommit(Commit {
            xid: Some(900),
            end_lsn: Lsn(0x330),
            ..
        })
    ));
    let abort = decoder
        .decode(Msg::tag(b'A').u32(900).u32(901).bytes())
        .expect("abort");
    assert_eq!(
        abort,
        PgOutputMessage::StreamAbort(StreamAbort {
            xid: 900,
            subxid: 901,
            abort_lsn: None,
            abort_time_micros: None
        })
    );
    let parallel_abort = decoder
        .decode(Msg::tag(b'A').u32(900).u32(900).u64(0x400).u64(0).bytes())
        .expect("abort with LSN");
    assert!(matches!(
        parallel_abort,
        PgOutputMessage::StreamAbort(StreamAbort {
            abort_lsn: Some(Lsn(0x400)),
            ..
        })
    ));
}

/// Every message of the tests above, complete.
fn valid_messages() -> Vec<Bytes> {
    vec![
        Msg::tag(b'B').u64(1).u64(2).u32(3).bytes(),
        Msg::tag(b'C').u8(0).u64(1).u64(2).u64(3).bytes(),
        relation_message().bytes(),
        Msg::tag(b'I')
            .u32(1)
            .u8(b'N')
            .tuple(&[Some("1"), None])
            .bytes(),
        Msg::tag(b'U')
            .u32(1)
            .u8(b'K')
            .tuple(&[Some("1")])
            .u8(b'N')
            .tuple(&[Some("2")])
            .bytes(),
        Msg::tag(b'D').u32(1).u8(b'O').tuple(&[Some("1")]).bytes(),
        Msg::tag(b'T').u32(1).u8(0).u32(10).bytes(),
        Msg::tag(b'M')
            .u8(0)
            .u64(1)
            .str("p")
            .u32(2)
            .raw(b"hi")
            .bytes(),
        Msg::tag(b'Y').u32(1).str("s").str("t").bytes(),
        Msg::tag(b'O').u64(1).str("o").bytes(),
    ]
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for message in valid_messages() {
        for end in 0..message.len() {
            let prefix = message.slice(..end);
            assert!(
                PgOutputDecoder::new().decode(prefix.clone()).is_err(),
                "prefix {prefix:?} of {message:?} decoded"
            );
        }
    }
}

#[test]
fn malformed_input_is_named() {
    let mut decoder = PgOutputDecoder::new();
    assert_eq!(decoder.decode(Bytes::new()), Err(DecodeError::Empty));
    assert_eq!(
        decoder.decode(Bytes::from_static(b"Z")),
        Err(DecodeError::UnknownMessage(b'Z'))
    );
    let trailing = Msg::tag(b'E').u8(0).bytes();
    assert_eq!(
        decoder.decode(trailing),
        Err(DecodeError::TrailingBytes {
            message: 'E',
            extra: 1
        })
    );
    let bad_kind = Msg::tag(b'I').u32(1).u8(b'N').u16(1).u8(b'x').bytes();
    assert!(matches!(
        decoder.decode(bad_kind),
        Err(DecodeError::UnexpectedMarker { found: b'x', .. })
    ));
    let bad_utf8 = Msg::tag(b'Y').u32(1).raw(&[0xff, 0]).str("t").bytes();
    assert!(matches!(
        decoder.decode(bad_utf8),
        Err(DecodeError::InvalidUtf8 { .. })
    ));
    // A huge claimed length must not allocate or read past the end.
    let huge = Msg::tag(b'T').u32(u32::MAX).u8(0).bytes();
    assert!(matches!(
        decoder.decode(huge),
        Err(DecodeError::Truncated { .. })
    ));
    let huge_column = Msg::tag(b'I')
        .u32(1)
        .u8(b'N')
        .u16(1)
        .u8(b't')
        .u32(u32::MAX)
        .bytes();
    assert!(matches!(
        decoder.decode(huge_column),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn written_tuples_read_back() {
    let mut writer = crate::TupleWriter::default();
    writer.text(b"42");
    writer.null();
    writer.text(b"");
    let tuple = writer.finish();
    let values: Vec<_> = tuple.values().collect();
    assert_eq!(
        values,
        [
            crate::TupleValue::Text(b"42"),
            crate::TupleValue::Null,
            crate::TupleValue::Text(b"")
        ]
    );
    writer.text(b"next");
    assert_eq!(
        writer.finish().len(),
        1,
        "each tuple holds only its own values"
    );
}
