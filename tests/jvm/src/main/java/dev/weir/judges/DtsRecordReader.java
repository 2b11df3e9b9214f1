package dev.weir.judges;

import com.alibaba.fastjson2.JSON;
import com.alibaba.fastjson2.JSONWriter;
import com.aliyun.dts.subscribe.clients.formats.avro.Operation;
import com.aliyun.dts.subscribe.clients.formats.avro.Record;
import com.aliyun.dts.subscribe.clients.record.AvroRecordParser;
import com.aliyun.dts.subscribe.clients.record.RecordField;
import com.aliyun.dts.subscribe.clients.record.RecordSchema;
import com.aliyun.dts.subscribe.clients.record.RowImage;
import com.aliyun.dts.subscribe.clients.record.value.Value;
import com.aliyun.dts.subscribe.clients.record.value.ValueType;
import com.aliyun.dts.subscribe.clients.recordgenerator.AvroDeserializer;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Alibaba Cloud DTS's subscribe SDK ({@code com.aliyun.dts:dts-new-subscribe-sdk}) reading Kafka
 * messages as its consumers do: {@code AvroDeserializer} turns the raw Avro into a {@code Record},
 * {@code AvroRecordParser} gives its schema (names from {@code objectName}, the key from {@code
 * pk_uk_info}) and row images of the SDK's {@code Value}s. The records are applied to a table the
 * way a replicating consumer does: an INSERT puts the after image under its primary key; an UPDATE
 * removes the row under the before image's key and puts the after image, a value the image does not
 * have ({@code NONE}) kept from the old row; a DELETE removes the row; a DDL record whose statement
 * is a TRUNCATE empties the table. Input: one message value per line (base64). Output: the table,
 * one JSON line per row, {@code {"column": "text" | null, …}} with each value as the SDK prints it
 * ({@code Value.toString()}), ordered by key, each line prefixed by the table the records named
 * ({@code {"table": "<objectName>", "row": {…}}}). A record the SDK cannot read, or an image
 * without what a consumer needs, stops the program with exit code 1.
 */
public final class DtsRecordReader {
    private DtsRecordReader() {}

    public static void main(String[] args) throws Exception {
        AvroDeserializer deserializer = new AvroDeserializer();
        Map<String, Map<String, String>> table = new TreeMap<>();
        String name = null;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        long number = 0;
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            number++;
            if (line.isEmpty()) {
                continue;
            }
            try {
                Record record = deserializer.deserialize(Base64.getDecoder().decode(line));
                RecordSchema schema = AvroRecordParser.getRecordSchema(record);
                // The SDK's schema keeps the database and table names of a three-part
                // name only: the schema is in the record's objectName.
                name = record.getObjectName();
                apply(record, schema, table);
            } catch (Exception e) {
                System.err.println("message " + number + ": " + e);
                for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) {
                    System.err.println("  caused by: " + cause);
                }
                System.exit(1);
            }
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        for (Map<String, String> row : table.values()) {
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("table", name);
            line.put("row", row);
            out.println(JSON.toJSONString(line, JSONWriter.Feature.WriteNulls));
        }
    }

    private static void apply(Record record, RecordSchema schema, Map<String, Map<String, String>> table) {
        Operation operation = record.getOperation();
        if (operation == Operation.DDL) {
            RowImage ddl = AvroRecordParser.getRowImage(schema, record, false);
            if (ddl != null && ddl.getValue(0).toString().startsWith("TRUNCATE")) {
                table.clear();
            }
            return;
        }
        List<RecordField> keys = schema.getPrimaryIndexInfo() == null
                ? List.of()
                : schema.getPrimaryIndexInfo().getIndexFields();
        if (keys.isEmpty()) {
            throw new IllegalStateException("no primary key in pk_uk_info");
        }
        switch (operation) {
            case INSERT -> {
                Map<String, String> row = image(schema, AvroRecordParser.getRowImage(schema, record, false), null);
                table.put(key(row, keys), row);
            }
            case UPDATE -> {
                Map<String, String> before = image(schema, AvroRecordParser.getRowImage(schema, record, true), null);
                Map<String, String> old = table.remove(key(before, keys));
                if (old == null) {
                    throw new IllegalStateException("an UPDATE of a row never inserted: " + before);
                }
                Map<String, String> after = image(schema, AvroRecordParser.getRowImage(schema, record, false), old);
                table.put(key(after, keys), after);
            }
            case DELETE -> {
                Map<String, String> before = image(schema, AvroRecordParser.getRowImage(schema, record, true), null);
                if (table.remove(key(before, keys)) == null) {
                    throw new IllegalStateException("a DELETE of a row never inserted: " + before);
                }
            }
            default -> throw new IllegalStateException("unexpected operation " + operation);
        }
    }

    /** An image's values by column; a value it does not have comes from {@code old} (or is absent). */
    private static Map<String, String> image(RecordSchema schema, RowImage image, Map<String, String> old) {
        if (image == null) {
            throw new IllegalStateException("a record without the image it needs");
        }
        Map<String, String> row = new LinkedHashMap<>();
        List<String> names = schema.getFieldNames();
        for (int i = 0; i < names.size(); i++) {
            Value value = image.getValue(i);
            if (value != null && value.getType() == ValueType.NONE) {
                if (old != null) {
                    row.put(names.get(i), old.get(names.get(i)));
                }
                continue;
            }
            row.put(names.get(i), value == null ? null : value.toString());
        }
        return row;
    }

    /** The primary key's values, zero-padded when numeric so the table orders by them. */
    private static String key(Map<String, String> row, List<RecordField> keys) {
        List<String> parts = new ArrayList<>();
        for (RecordField field : keys) {
            String value = row.get(field.getFieldName());
            if (value == null) {
                throw new IllegalStateException("no value for key column " + field.getFieldName() + " in " + row);
            }
            parts.add(value.matches("-?\\d+") ? String.format("%020d", Long.parseLong(value)) : value);
        }
        return String.join("\u0000", parts);
    }
}
