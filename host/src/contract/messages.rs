//! Encoded messages: what the encoders write and the router and producer read.
//!
//! An encoder writes every key and value of a batch into one growing buffer;
//! [`Messages`] keeps each message as ranges of it, so encoding allocates nothing
//! per row.

use std::ops::Range;

/// The messages of one batch, in row order.
#[derive(Debug, Default, Clone)]
pub struct Messages {
    buffer: Vec<u8>,
    messages: Vec<Message>,
}

/// One message: which row it came from and where its key and value are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The batch row.
    pub row: usize,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    /// A header the format sets on this message (Debezium's `__debezium.oldkey` on
    /// the create after a primary key change, say), beside weir's own.
    header: Option<(&'static str, Range<usize>)>,
}

impl Messages {
    /// Bytes of all keys and values.
    pub fn byte_len(&self) -> usize {
        self.buffer.len()
    }

    /// Empties the messages, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.buffer.clear();
        self.messages.clear();
    }

    /// The messages.
    pub fn iter(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// A message's key; `None` for a null key.
    pub fn key(&self, message: &Message) -> Option<&[u8]> {
        message.key.clone().map(|range| &self.buffer[range])
    }

    /// A message's value; `None` for a tombstone.
    pub fn value(&self, message: &Message) -> Option<&[u8]> {
        message.value.clone().map(|range| &self.buffer[range])
    }

    /// A message's format header, name and value.
    pub fn header(&self, message: &Message) -> Option<(&'static str, &[u8])> {
        message
            .header
            .clone()
            .map(|(name, range)| (name, &self.buffer[range]))
    }

    /// Appends a message whose key and value the closures write.
    pub(crate) fn push(
        &mut self,
        row: usize,
        key: Option<WriteBytes<'_>>,
        value: Option<WriteBytes<'_>>,
    ) {
        self.push_with_header(row, key, value, None);
    }

    /// [`Messages::push`] with a header whose value the closure writes.
    pub(crate) fn push_with_header(
        &mut self,
        row: usize,
        key: Option<WriteBytes<'_>>,
        value: Option<WriteBytes<'_>>,
        header: Option<(&'static str, WriteBytes<'_>)>,
    ) {
        let key = key.map(|write| self.write(write));
        let value = value.map(|write| self.write(write));
        let header = header.map(|(name, write)| (name, self.write(write)));
        self.messages.push(Message {
            row,
            key,
            value,
            header,
        });
    }

    fn write(&mut self, write: WriteBytes<'_>) -> Range<usize> {
        let start = self.buffer.len();
        write(&mut self.buffer);
        start..self.buffer.len()
    }
}

/// Writes one key or value into the message buffer.
pub(crate) type WriteBytes<'a> = &'a dyn Fn(&mut Vec<u8>);
