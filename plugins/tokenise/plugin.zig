//! tokenise: replaces sensitive text (card numbers, account numbers, phone numbers,
//! names) with format-preserving tokens: each digit becomes a digit, each letter a
//! letter of the same case, everything else stays, so downstream schemas, validators
//! and test data keep working. Tokens are keyed (HMAC-SHA256 of the value): the same
//! value always gets the same token, so joins and deduplication still work, and
//! without the key a token cannot be traced back.
//!
//!   config: { columns: [card_number, phone], key: "${TOKEN_KEY}", keep_last: 4 }
//!
//! `keep_last` keeps the value's last characters readable (the last four digits of a
//! card). Old row images (`_before.<column>`) are tokenised the same way. Columns a
//! table lacks are skipped; a tokenised column that is not text is an invalid-input
//! error.

const std = @import("std");
const weir = @import("weir");

const HmacSha256 = std.crypto.auth.hmac.sha2.HmacSha256;

var columns: []const []const u8 = &.{};
var key: []const u8 = "";
var keep_last: usize = 0;

pub fn init(config: std.json.Value) weir.Error!void {
    if (config != .object) return weir.fail(error.InvalidConfig, "config must be an object", .{});
    const object = config.object;
    const names = object.get("columns") orelse return weir.fail(error.InvalidConfig, "config needs columns", .{});
    if (names != .array or names.array.items.len == 0) return weir.fail(error.InvalidConfig, "columns must be a non-empty list", .{});
    const list = try weir.allocator.alloc([]const u8, names.array.items.len);
    for (names.array.items, 0..) |item, i| {
        if (item != .string) return weir.fail(error.InvalidConfig, "columns must hold column names", .{});
        list[i] = item.string;
    }
    const secret = object.get("key") orelse return weir.fail(error.InvalidConfig, "config needs key (a secret; use ${{ENV}})", .{});
    if (secret != .string or secret.string.len < 16) return weir.fail(error.InvalidConfig, "key must be a string of at least 16 characters", .{});
    keep_last = 0;
    if (object.get("keep_last")) |keep| {
        if (keep != .integer or keep.integer < 0 or keep.integer > 64) return weir.fail(error.InvalidConfig, "keep_last must be an integer from 0 to 64", .{});
        keep_last = @intCast(keep.integer);
    }
    columns = list;
    key = secret.string;
    weir.log(.info, "tokenise: {d} column(s), keeping the last {d} characters", .{ columns.len, keep_last });
}

fn ours(name: []const u8) bool {
    const plain = if (std.mem.startsWith(u8, name, "_before.")) name["_before.".len..] else name;
    return weir.contains(columns, plain);
}

pub fn prepare(table: weir.Table) weir.Error!weir.Plan {
    var wanted: std.ArrayList([]const u8) = .empty;
    for (table.columns) |column| {
        if (ours(column.name)) try wanted.append(weir.allocator, column.name);
    }
    if (wanted.items.len == 0) return .{ .wants_table = false };
    return .{ .columns = wanted.items };
}

/// The token of `value`, written to `out` (same length).
pub fn token(value: []const u8, out: []u8) void {
    var digest: [HmacSha256.mac_length]u8 = undefined;
    HmacSha256.create(&digest, value, key);
    var stream = std.Random.DefaultPrng.init(std.mem.readInt(u64, digest[0..8], .little) ^ std.mem.readInt(u64, digest[8..16], .little));
    const random = stream.random();
    // A value no longer than keep_last is tokenised whole: keeping it would keep it all.
    const tokenised = if (value.len > keep_last) value.len - keep_last else value.len;
    for (value, 0..) |char, i| {
        out[i] = if (i >= tokenised) char else switch (char) {
            '0'...'9' => '0' + random.uintLessThan(u8, 10),
            'a'...'z' => 'a' + random.uintLessThan(u8, 26),
            'A'...'Z' => 'A' + random.uintLessThan(u8, 26),
            else => char,
        };
    }
}

pub fn map(row: *weir.Row) weir.Error!void {
    for (row.names, row.values) |name, *value| {
        switch (value.*) {
            .null => {},
            .text => |text| {
                const out = try row.arena.alloc(u8, text.len);
                token(text, out);
                value.* = .{ .text = out };
            },
            else => return weir.fail(error.InvalidInput, "column {s} is not text; tokenise only rewrites text", .{name}),
        }
    }
}

test "tokens keep the format, the last characters and equality" {
    var arena = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena.deinit();
    const cols = [_]weir.Column{
        .{ .name = "id", .pg_type = "int8", .nullable = false },
        .{ .name = "card", .pg_type = "text", .nullable = true },
        .{ .name = "_before.card", .pg_type = "text", .nullable = true },
    };
    var r1 = [_]weir.Value{ .{ .int = 1 }, .{ .text = "4111-1111-1111-1234" }, .{ .text = "4111-1111-1111-1234" } };
    var r2 = [_]weir.Value{ .{ .int = 2 }, .{ .text = "Ann Lee" }, .null };
    var rows = [_][]weir.Value{ &r1, &r2 };
    const pass = try weir.testing.run(@This(), arena.allocator(), "{\"columns\": [\"card\"], \"key\": \"0123456789abcdef\", \"keep_last\": 4}", &cols, &rows);
    try std.testing.expect(pass[0] and pass[1]);
    const card = r1[1].text;
    try std.testing.expectEqual(@as(usize, 19), card.len);
    try std.testing.expect(!std.mem.eql(u8, card[0..14], "4111-1111-1111"));
    try std.testing.expectEqualStrings("1234", card[15..]);
    for (card, 0..) |char, i| {
        if (i == 4 or i == 9 or i == 14) try std.testing.expectEqual(@as(u8, '-'), char) else try std.testing.expect(std.ascii.isDigit(char));
    }
    try std.testing.expectEqualStrings(card, r1[2].text);
    try std.testing.expectEqual(@as(i64, 1), r1[0].int);
    const name = r2[1].text;
    try std.testing.expect(std.ascii.isUpper(name[0]) and std.ascii.isLower(name[1]) and std.ascii.isLower(name[2]));
    try std.testing.expectEqualStrings(" Lee", name[3..]);
    try std.testing.expect(r2[2] == .null);
}

test "a short key and a non-text column are refused" {
    var arena = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena.deinit();
    const alloc = arena.allocator();
    const cols = [_]weir.Column{.{ .name = "card", .pg_type = "int8", .nullable = false }};
    var r1 = [_]weir.Value{.{ .int = 1 }};
    var rows = [_][]weir.Value{&r1};
    try std.testing.expectError(error.InvalidConfig, weir.testing.run(@This(), alloc, "{\"columns\": [\"card\"], \"key\": \"short\"}", &cols, &rows));
    try std.testing.expectError(error.InvalidInput, weir.testing.run(@This(), alloc, "{\"columns\": [\"card\"], \"key\": \"0123456789abcdef\"}", &cols, &rows));
}
