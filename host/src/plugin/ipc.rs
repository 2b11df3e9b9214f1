//! Arrow IPC at the plugin boundary: the schema once per table, then record batch
//! messages only; answers decoded without copying their buffers.

use arrow::buffer::Buffer;
use arrow::datatypes::Schema;
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::{
    DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions, write_message,
};
use arrow::record_batch::RecordBatch;

/// Encodes one table's stream: [`IpcEncoder::schema`] for `prepare`, then
/// [`IpcEncoder::batch`] for each `process`.
pub(crate) struct IpcEncoder {
    generator: IpcDataGenerator,
    dictionaries: DictionaryTracker,
    options: IpcWriteOptions,
    context: IpcWriteContext,
}

impl IpcEncoder {
    pub(crate) fn new() -> Self {
        Self {
            generator: IpcDataGenerator::default(),
            dictionaries: DictionaryTracker::new(false),
            options: IpcWriteOptions::default(),
            context: IpcWriteContext::default(),
        }
    }

    /// The stream's schema message.
    pub(crate) fn schema(&mut self, schema: &Schema) -> Result<Vec<u8>, ArrowError> {
        let encoded = self.generator.schema_to_bytes_with_dictionary_tracker(
            schema,
            &mut self.dictionaries,
            &self.options,
        );
        let mut out = Vec::with_capacity(encoded.ipc_message.len() + 16);
        write_message(&mut out, encoded, &self.options)?;
        Ok(out)
    }

    /// One record batch message (after any dictionary messages it needs), written
    /// into `out`, which is cleared first so callers can reuse it.
    pub(crate) fn batch(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
    ) -> Result<(), ArrowError> {
        out.clear();
        let (dictionaries, encoded) = self.generator.encode(
            batch,
            &mut self.dictionaries,
            &self.options,
            &mut self.context,
        )?;
        for dictionary in dictionaries {
            write_message(&mut *out, dictionary, &self.options)?;
        }
        write_message(&mut *out, encoded, &self.options)?;
        Ok(())
    }
}

/// Decodes a complete stream (schema, then exactly one record batch) that a plugin
/// returned. The bytes become the batch's buffers without a copy.
pub(crate) fn decode_stream(bytes: Vec<u8>) -> Result<RecordBatch, String> {
    let mut buffer = Buffer::from_vec(bytes);
    let mut decoder = StreamDecoder::new();
    let mut batch = None;
    while !buffer.is_empty() {
        match decoder.decode(&mut buffer).map_err(|e| e.to_string())? {
            Some(decoded) if batch.is_none() => batch = Some(decoded),
            Some(_) => return Err("the stream holds more than one record batch".into()),
            None => {}
        }
    }
    batch.ok_or_else(|| "the stream holds no record batch".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    use super::*;

    #[test]
    fn schema_then_batches_decode_as_one_stream() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a"), None])),
            ],
        )
        .expect("valid batch");
        let mut encoder = IpcEncoder::new();
        let mut stream = encoder.schema(&schema).expect("schema encodes");
        let mut message = Vec::new();
        encoder.batch(&batch, &mut message).expect("batch encodes");
        stream.extend_from_slice(&message);
        assert_eq!(decode_stream(stream).expect("decodes"), batch);
    }
}
