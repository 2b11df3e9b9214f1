package dev.weir.judges;

import com.alibaba.fastjson2.JSON;
import com.alibaba.otter.canal.protocol.FlatMessage;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Canal's own {@code FlatMessage}, parsed the way Canal's Kafka clients parse flat messages
 * ({@code JSON.parseObject(value, FlatMessage.class)}), and applied to a table the way a Canal
 * consumer that replicates does: an INSERT puts each {@code data} row under its primary key
 * ({@code pkNames}); an UPDATE removes the row under the old key (the key with {@code old}'s
 * values laid over {@code data}'s) and puts the new row; a DELETE removes the row; a TRUNCATE (a
 * DDL message) empties the table, other DDL is skipped. Input: one
 * message value per line (base64; an empty line is skipped). Output: the table, one JSON line per
 * row ({@code {"column": "text", …}}, Canal's text values), ordered by key. A message that does
 * not parse, or lacks what a consumer needs (a row count of {@code old} differing from {@code
 * data}, no {@code pkNames}), stops the program with exit code 1.
 */
public final class CanalFlatMessageReader {
    private CanalFlatMessageReader() {}

    public static void main(String[] args) throws Exception {
        Map<String, Map<String, String>> table = new TreeMap<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        long number = 0;
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            number++;
            if (line.isEmpty()) {
                continue;
            }
            String json = new String(Base64.getDecoder().decode(line), StandardCharsets.UTF_8);
            try {
                apply(JSON.parseObject(json, FlatMessage.class), table);
            } catch (Exception e) {
                System.err.println("message " + number + ": " + e + ": " + json);
                System.exit(1);
            }
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        for (Map<String, String> row : table.values()) {
            out.println(JSON.toJSONString(row));
        }
    }

    private static void apply(FlatMessage message, Map<String, Map<String, String>> table) {
        if (Boolean.TRUE.equals(message.getIsDdl())) {
            if ("TRUNCATE".equals(message.getType())) {
                table.clear();
            }
            return;
        }
        List<String> keys = message.getPkNames();
        if (keys == null || keys.isEmpty()) {
            throw new IllegalStateException("no pkNames");
        }
        List<Map<String, String>> data = message.getData();
        List<Map<String, String>> old = message.getOld();
        switch (message.getType()) {
            case "INSERT" -> data.forEach(row -> table.put(key(row, keys), row));
            case "UPDATE" -> {
                if (old == null || old.size() != data.size()) {
                    throw new IllegalStateException("an UPDATE needs one old map per data row");
                }
                for (int i = 0; i < data.size(); i++) {
                    Map<String, String> before = new TreeMap<>(data.get(i));
                    before.putAll(old.get(i));
                    table.remove(key(before, keys));
                    table.put(key(data.get(i), keys), data.get(i));
                }
            }
            case "DELETE" -> data.forEach(row -> table.remove(key(row, keys)));
            default -> throw new IllegalStateException("unexpected type " + message.getType());
        }
    }

    /** The primary key's values, zero-padded when numeric so the table orders by them. */
    private static String key(Map<String, String> row, List<String> keys) {
        List<String> parts = new ArrayList<>();
        for (String name : keys) {
            String value = row.get(name);
            parts.add(value != null && value.matches("-?\\d+") ? String.format("%020d", Long.parseLong(value)) : value);
        }
        return String.join("\u0000", parts);
    }
}
