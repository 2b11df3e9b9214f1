package dev.weir.judges;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.Incompatibility;
import org.apache.avro.SchemaCompatibility.SchemaPairCompatibility;

/**
 * Avro's {@link SchemaCompatibility}, under a Schema Registry's compatibility levels, for the
 * test registry (tests/registry/weir_dev_registry.py) to enforce them as Confluent's registry
 * does: BACKWARD checks that the new schema reads data written with the latest one, FORWARD
 * that the latest reads the new one's, FULL both; the {@code _TRANSITIVE} levels check against
 * every existing version, NONE nothing.
 *
 * <p>One request per input line, {@code {"level": "FULL", "new": "<schema>", "existing":
 * ["<oldest>", …, "<latest>"]}}; one answer per output line, {@code {"compatible": true|false,
 * "messages": [...]}}, each message naming the incompatibility, its location and the version.
 */
public final class AvroCompatibility {
    private AvroCompatibility() {}

    public static void main(String[] args) throws Exception {
        ObjectMapper json = new ObjectMapper();
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        BufferedReader in =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode request = json.readTree(line);
            ObjectNode answer = json.createObjectNode();
            ArrayNode messages = answer.putArray("messages");
            try {
                String level = request.path("level").asText("BACKWARD").toUpperCase();
                Schema candidate = new Schema.Parser().parse(request.path("new").asText());
                List<Schema> existing = new ArrayList<>();
                for (JsonNode schema : request.path("existing")) {
                    existing.add(new Schema.Parser().parse(schema.asText()));
                }
                boolean transitive = level.endsWith("_TRANSITIVE");
                String base = level.replace("_TRANSITIVE", "");
                boolean backward = base.equals("BACKWARD") || base.equals("FULL");
                boolean forward = base.equals("FORWARD") || base.equals("FULL");
                int first = transitive ? 0 : Math.max(0, existing.size() - 1);
                for (int i = first; i < existing.size(); i++) {
                    Schema old = existing.get(i);
                    String version = "version " + (i + 1);
                    if (backward) {
                        check(candidate, old, "BACKWARD (the new schema reads " + version + ")", messages);
                    }
                    if (forward) {
                        check(old, candidate, "FORWARD (" + version + " reads the new schema)", messages);
                    }
                }
            } catch (RuntimeException e) {
                messages.add("unparseable schema: " + e.getMessage());
            }
            answer.put("compatible", messages.isEmpty());
            out.println(json.writeValueAsString(answer));
        }
    }

    private static void check(Schema reader, Schema writer, String rule, ArrayNode messages) {
        SchemaPairCompatibility result =
                SchemaCompatibility.checkReaderWriterCompatibility(reader, writer);
        for (Incompatibility incompatibility : result.getResult().getIncompatibilities()) {
            messages.add(
                    rule
                            + ": "
                            + incompatibility.getType()
                            + " at "
                            + incompatibility.getLocation()
                            + ": "
                            + incompatibility.getMessage());
        }
    }
}
