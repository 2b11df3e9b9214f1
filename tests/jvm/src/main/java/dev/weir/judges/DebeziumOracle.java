package dev.weir.judges;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.apicurio.registry.utils.converter.avro.AvroData;
import io.debezium.embedded.Connect;
import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.storage.SimpleHeaderConverter;

/**
 * Debezium's PostgreSQL connector in the embedded engine, writing every record it emits as one
 * JSON line: what a Kafka consumer of a Debezium-on-Connect deployment would read, serialized by
 * Kafka Connect's own {@link JsonConverter} with schemas off ({@code key}, {@code value}) and on
 * ({@code key_schema}, {@code value_schema}), headers by Connect's default
 * {@link SimpleHeaderConverter}, and the Avro schemas an Avro converter would register
 * ({@code avro_key_schema}, {@code avro_value_schema}). weir's conformance tests read these lines as the expected events.
 *
 * <p>Usage: {@code DebeziumOracle <connector.properties> <events.jsonl>}. It runs until killed;
 * offsets are kept in memory, so each run starts from the slot's confirmed position (or a
 * snapshot, as {@code snapshot.mode} says).
 */
public final class DebeziumOracle {
    private static final ObjectMapper JSON = new ObjectMapper();

    private DebeziumOracle() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: DebeziumOracle <connector.properties> <events.jsonl>");
            System.exit(2);
        }
        Properties properties = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            properties.load(in);
        }
        properties.putIfAbsent("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        properties.putIfAbsent("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
        properties.putIfAbsent("offset.flush.interval.ms", "1000");

        Converters plain = new Converters(false);
        Converters schemas = new Converters(true);
        SimpleHeaderConverter headers = new SimpleHeaderConverter();
        headers.configure(Map.of());
        AvroData avro = new AvroData(1000);

        CountDownLatch stopped = new CountDownLatch(1);
        try (PrintStream out =
                new PrintStream(new FileOutputStream(args[1], true), true, StandardCharsets.UTF_8)) {
            DebeziumEngine<ChangeEvent<SourceRecord, SourceRecord>> engine = DebeziumEngine.create(Connect.class)
                    .using(properties)
                    .notifying(event -> {
                        SourceRecord record = event.value();
                        ObjectNode line = JSON.createObjectNode();
                        line.put("topic", record.topic());
                        line.set("key", plain.key(record));
                        line.set("value", plain.value(record));
                        line.set("key_schema", schemas.key(record));
                        line.set("value_schema", schemas.value(record));
                        line.put("avro_key_schema", avroSchema(avro, record.keySchema()));
                        line.put("avro_value_schema", avroSchema(avro, record.valueSchema()));
                        ObjectNode headerNode = line.putObject("headers");
                        for (Header header : record.headers()) {
                            byte[] bytes = headers.fromConnectHeader(
                                    record.topic(), header.key(), header.schema(), header.value());
                            headerNode.put(
                                    header.key(), bytes == null ? null : new String(bytes, StandardCharsets.UTF_8));
                        }
                        synchronized (out) {
                            out.println(line.toString());
                        }
                    })
                    .using((success, message, error) -> {
                        if (!success) {
                            System.err.println("debezium stopped: " + message);
                            if (error != null) {
                                error.printStackTrace();
                            }
                        }
                        stopped.countDown();
                    })
                    .build();
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    engine.close();
                } catch (Exception ignored) {
                    // Exiting anyway.
                }
            }));
            Thread runner = new Thread(engine, "debezium-engine");
            runner.start();
            stopped.await();
        }
        System.exit(1);
    }

    /**
     * The Avro schema an Avro converter registers for {@code schema} (Apicurio's {@link AvroData},
     * with Confluent's conventions: {@code connect.name}, {@code connect.version},
     * {@code connect.parameters}), or null for a record without one.
     */
    private static String avroSchema(AvroData avro, Schema schema) {
        if (schema == null) {
            return null;
        }
        synchronized (avro) {
            return avro.fromConnectSchema(schema).toString();
        }
    }

    /** Connect's JSON converter for keys and for values, with schemas on or off. */
    private static final class Converters {
        private final JsonConverter keys = new JsonConverter();
        private final JsonConverter values = new JsonConverter();

        Converters(boolean schemas) {
            Map<String, Object> config = Map.of("schemas.enable", schemas, "schemas.cache.size", 1000);
            keys.configure(config, true);
            values.configure(config, false);
        }

        JsonNode key(SourceRecord record) {
            return parse(keys.fromConnectData(record.topic(), record.keySchema(), record.key()));
        }

        JsonNode value(SourceRecord record) {
            return parse(values.fromConnectData(record.topic(), record.valueSchema(), record.value()));
        }

        private static JsonNode parse(byte[] bytes) {
            if (bytes == null) {
                return JSON.nullNode();
            }
            try {
                return JSON.readTree(bytes);
            } catch (java.io.IOException e) {
                throw new IllegalStateException("JsonConverter wrote invalid JSON", e);
            }
        }
    }
}
