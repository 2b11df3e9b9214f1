package dev.weir.judges;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.time.LocalTime;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.flink.util.Collector;
import org.apache.paimon.data.Decimal;
import org.apache.paimon.data.Timestamp;
import org.apache.paimon.flink.action.cdc.CdcSourceRecord;
import org.apache.paimon.flink.action.cdc.TypeMapping;
import org.apache.paimon.flink.action.cdc.format.AbstractRecordParser;
import org.apache.paimon.flink.action.cdc.format.canal.CanalRecordParser;
import org.apache.paimon.flink.action.cdc.format.maxwell.MaxwellRecordParser;
import org.apache.paimon.flink.sink.cdc.CdcRecord;
import org.apache.paimon.flink.sink.cdc.RichCdcMultiplexRecord;
import org.apache.paimon.shade.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.paimon.types.DataField;
import org.apache.paimon.types.DataTypeRoot;
import org.apache.paimon.types.RowKind;
import org.apache.paimon.utils.TypeUtils;

/**
 * Apache Paimon's CDC parsers for the format named by the first argument ({@code
 * CanalRecordParser} for {@code canal-json}, {@code MaxwellRecordParser} for {@code
 * maxwell-json}: what Paimon's {@code kafka_sync_table} action runs on them), and the cast
 * Paimon's CDC sink makes of each value to the column type the parser chose (from {@code
 * mysqlType} for Canal; Maxwell carries no types, so every column is a STRING) ({@code
 * TypeUtils.castFromCdcValueString}, as {@code CdcRecordUtils.toGenericRow} calls it), applied
 * to a primary-key table the way Paimon's table applies the rows: a {@code -D} removes the row
 * under its key, a {@code +I} puts it. Input: one message value per line (base64; an empty
 * line is skipped). Output, JSON lines: {@code {"types": {"column": "INT NOT NULL", …}}}, the
 * Paimon type of each column (from the last message); {@code {"refused": {"column", "type",
 * "value", "error"}}} for each value the cast refuses (where Paimon's sink would stop); then
 * the table, {@code {"row": {"column": value, …}}} ordered by key, each value as the cast
 * made it: text for strings and numbers, {@code YYYY-MM-DD} for a DATE, ISO local time for a
 * TIME and TIMESTAMP, an ISO instant for a TIMESTAMP_LTZ, lowercase hex for bytes. A message
 * the parser cannot read stops the program with exit code 1.
 */
public final class PaimonCdcReader {
    private PaimonCdcReader() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        AbstractRecordParser parser = parser(args.length > 0 ? args[0] : "");
        Map<String, Map<String, Object>> table = new TreeMap<>();
        Map<String, String> types = new LinkedHashMap<>();
        List<Map<String, String>> refused = new ArrayList<>();
        BufferedReader in =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        long number = 0;
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            number++;
            if (line.isEmpty()) {
                continue;
            }
            String json = new String(Base64.getDecoder().decode(line), StandardCharsets.UTF_8);
            List<RichCdcMultiplexRecord> records = new ArrayList<>();
            try {
                parser.flatMap(new CdcSourceRecord(JSON.readTree(json)), collector(records));
            } catch (Exception e) {
                System.err.println("message " + number + ": " + e + ": " + json);
                System.exit(1);
            }
            for (RichCdcMultiplexRecord record : records) {
                apply(record, table, types, refused);
            }
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        out.println(JSON.writeValueAsString(Map.of("types", types)));
        for (Map<String, String> refusal : refused) {
            out.println(JSON.writeValueAsString(Map.of("refused", refusal)));
        }
        for (Map<String, Object> row : table.values()) {
            out.println(JSON.writeValueAsString(Map.of("row", row)));
        }
    }

    private static AbstractRecordParser parser(String format) {
        TypeMapping types = TypeMapping.defaultMapping();
        return switch (format) {
            case "canal-json" -> new CanalRecordParser(types, Collections.emptyList());
            case "maxwell-json" -> new MaxwellRecordParser(types, Collections.emptyList());
            default -> throw new IllegalArgumentException(
                    "usage: PaimonCdcReader canal-json|maxwell-json, not " + format);
        };
    }

    private static Collector<RichCdcMultiplexRecord> collector(List<RichCdcMultiplexRecord> into) {
        return new Collector<>() {
            @Override
            public void collect(RichCdcMultiplexRecord record) {
                into.add(record);
            }

            @Override
            public void close() {}
        };
    }

    private static void apply(
            RichCdcMultiplexRecord record,
            Map<String, Map<String, Object>> table,
            Map<String, String> types,
            List<Map<String, String>> refused) {
        List<String> keys = record.cdcSchema().primaryKeys();
        if (keys.isEmpty()) {
            throw new IllegalStateException("no primary key (pkNames, primary_key_columns)");
        }
        CdcRecord change = record.toRichCdcRecord().toCdcRecord();
        Map<String, Object> row = new TreeMap<>();
        for (DataField field : record.cdcSchema().fields()) {
            types.put(field.name(), field.type().toString());
            String text = change.data().get(field.name());
            if (text == null) {
                row.put(field.name(), null);
                continue;
            }
            try {
                row.put(field.name(), shown(TypeUtils.castFromCdcValueString(text, field.type()), field));
            } catch (RuntimeException e) {
                refused.add(Map.of(
                        "column", field.name(),
                        "type", field.type().toString(),
                        "value", text,
                        "error", String.valueOf(e)));
                row.put(field.name(), text);
            }
        }
        StringBuilder key = new StringBuilder();
        for (String column : keys) {
            key.append(row.get(column)).append('\u0000');
        }
        if (change.kind() == RowKind.DELETE || change.kind() == RowKind.UPDATE_BEFORE) {
            table.remove(key.toString());
        } else {
            table.put(key.toString(), row);
        }
    }

    /** A value as the cast made it, in a form that does not depend on the JVM's zone. */
    private static Object shown(Object value, DataField field) {
        DataTypeRoot root = field.type().getTypeRoot();
        if (value instanceof Decimal decimal) {
            return decimal.toBigDecimal().toPlainString();
        }
        if (value instanceof byte[] bytes) {
            return HexFormat.of().formatHex(bytes);
        }
        if (value instanceof Timestamp timestamp) {
            return root == DataTypeRoot.TIMESTAMP_WITH_LOCAL_TIME_ZONE
                    ? timestamp.toInstant().toString()
                    : timestamp.toLocalDateTime().toString();
        }
        if (root == DataTypeRoot.DATE && value instanceof Integer days) {
            return LocalDate.ofEpochDay(days).toString();
        }
        if (root == DataTypeRoot.TIME_WITHOUT_TIME_ZONE && value instanceof Integer millis) {
            return LocalTime.ofNanoOfDay(millis * 1_000_000L).toString();
        }
        return value.toString();
    }
}
