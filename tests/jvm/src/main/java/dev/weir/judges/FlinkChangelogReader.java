package dev.weir.judges;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.formats.common.TimestampFormat;
import org.apache.flink.formats.json.canal.CanalJsonDeserializationSchema;
import org.apache.flink.formats.json.debezium.DebeziumJsonDeserializationSchema;
import org.apache.flink.formats.json.maxwell.MaxwellJsonDeserializationSchema;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.utils.LogicalTypeParser;
import org.apache.flink.table.types.utils.TypeConversions;
import org.apache.flink.table.runtime.typeutils.InternalTypeInfo;
import org.apache.flink.util.Collector;
import org.apache.flink.util.SimpleUserCodeClassLoader;
import org.apache.flink.util.UserCodeClassLoader;

/**
 * One of Flink's changelog formats ({@code debezium-json}, {@code canal-json}, {@code
 * maxwell-json}, from {@code flink-json}, with their default options) reading Kafka messages the
 * way Flink's Kafka table source does: one message value per input line (base64, an empty line for
 * a tombstone), every row Flink yields written as a JSON line {@code {"kind":"+I","row":[…]}} with
 * each field as Flink prints it. A message Flink cannot read stops the program with its error and
 * exit code 1.
 *
 * <p>Usage: {@code FlinkChangelogReader <debezium-json|debezium-json-schema|canal-json|maxwell-json>
 * '<ROW<…> type>' [database-include table-include]}; {@code debezium-json-schema} sets {@code
 * debezium-json.schema-include}; the two regular expressions set {@code canal-json.database.include}
 * and {@code canal-json.table.include}.
 */
public final class FlinkChangelogReader {
    private FlinkChangelogReader() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2 && !(args.length == 4 && args[0].equals("canal-json"))) {
            System.err.println(
                    "usage: FlinkChangelogReader <debezium-json|debezium-json-schema|canal-json|maxwell-json> '<ROW<...>>'"
                            + " [canal-json database-include table-include]");
            System.exit(2);
        }
        RowType rowType = (RowType) LogicalTypeParser.parse(args[1], FlinkChangelogReader.class.getClassLoader());
        DataType dataType = TypeConversions.fromLogicalToDataType(rowType);
        DeserializationSchema<RowData> format = switch (args[0]) {
            case "debezium-json", "debezium-json-schema" -> new DebeziumJsonDeserializationSchema(
                    dataType,
                    Collections.emptyList(),
                    InternalTypeInfo.of(rowType),
                    args[0].equals("debezium-json-schema"),
                    false,
                    TimestampFormat.ISO_8601);
            case "canal-json" -> {
                CanalJsonDeserializationSchema.Builder builder = CanalJsonDeserializationSchema.builder(
                        dataType, Collections.emptyList(), InternalTypeInfo.of(rowType));
                if (args.length == 4) {
                    builder.setDatabase(args[2]).setTable(args[3]);
                }
                yield builder.build();
            }
            case "maxwell-json" -> new MaxwellJsonDeserializationSchema(
                    dataType, Collections.emptyList(), InternalTypeInfo.of(rowType), false, TimestampFormat.SQL);
            default -> {
                System.err.println("unknown format " + args[0]);
                System.exit(2);
                yield null;
            }
        };
        format.open(new DeserializationSchema.InitializationContext() {
            @Override
            public MetricGroup getMetricGroup() {
                return new UnregisteredMetricsGroup();
            }

            @Override
            public UserCodeClassLoader getUserCodeClassLoader() {
                return SimpleUserCodeClassLoader.create(FlinkChangelogReader.class.getClassLoader());
            }
        });

        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        List<RowData> rows = new ArrayList<>();
        Collector<RowData> collector = new Collector<>() {
            @Override
            public void collect(RowData row) {
                rows.add(row);
            }

            @Override
            public void close() {}
        };
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        long number = 0;
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            number++;
            byte[] message = line.isEmpty() ? null : Base64.getDecoder().decode(line);
            try {
                format.deserialize(message, collector);
            } catch (Exception e) {
                System.err.println("message " + number + ": " + e);
                for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) {
                    System.err.println("  caused by: " + cause);
                }
                System.exit(1);
            }
            for (RowData row : rows) {
                StringBuilder json = new StringBuilder("{\"kind\":");
                quote(row.getRowKind().shortString(), json);
                json.append(",\"row\":");
                writeRow(row, rowType, json);
                out.println(json.append('}'));
            }
            rows.clear();
        }
    }

    private static void writeRow(RowData row, RowType type, StringBuilder json) {
        json.append('[');
        for (int i = 0; i < type.getFieldCount(); i++) {
            if (i > 0) {
                json.append(',');
            }
            writeField(RowData.createFieldGetter(type.getTypeAt(i), i).getFieldOrNull(row), type.getTypeAt(i), json);
        }
        json.append(']');
    }

    /** A field as Flink prints it; arrays element by element, bytes as hex. */
    private static void writeField(Object value, LogicalType type, StringBuilder json) {
        if (value == null) {
            json.append("null");
        } else if (value instanceof byte[] bytes) {
            StringBuilder hex = new StringBuilder("\\x");
            for (byte b : bytes) {
                hex.append(String.format("%02x", b));
            }
            quote(hex.toString(), json);
        } else if (value instanceof ArrayData array && type instanceof ArrayType arrayType) {
            LogicalType element = arrayType.getElementType();
            ArrayData.ElementGetter getter = ArrayData.createElementGetter(element);
            json.append('[');
            for (int i = 0; i < array.size(); i++) {
                if (i > 0) {
                    json.append(',');
                }
                writeField(getter.getElementOrNull(array, i), element, json);
            }
            json.append(']');
        } else if (value instanceof RowData nested && type instanceof RowType rowType) {
            writeRow(nested, rowType, json);
        } else {
            quote(value.toString(), json);
        }
    }

    private static void quote(String text, StringBuilder json) {
        json.append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '"' -> json.append("\\\"");
                case '\\' -> json.append("\\\\");
                default -> {
                    if (c < 0x20) {
                        json.append(String.format("\\u%04x", (int) c));
                    } else {
                        json.append(c);
                    }
                }
            }
        }
        json.append('"');
    }
}
