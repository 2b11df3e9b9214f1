//! {{name}}: a weir plugin in Zig. As generated it lowercases the text columns named
//! in its config (and their old images), e.g. {"columns": ["customer_email"]}.
//! Change `init`, `prepare` and `map` to make it yours.

const std = @import("std");
const weir = @import("weir");

var columns: []const []const u8 = &.{};

pub fn init(config: std.json.Value) weir.Error!void {
    const names = if (config == .object) config.object.get("columns") else null;
    const list = names orelse return weir.fail(error.InvalidConfig, "config needs {{\"columns\": [\"name\", ...]}}", .{});
    if (list != .array or list.array.items.len == 0) return weir.fail(error.InvalidConfig, "columns must be a non-empty list", .{});
    const owned = try weir.allocator.alloc([]const u8, list.array.items.len);
    for (list.array.items, owned) |item, *name| {
        if (item != .string) return weir.fail(error.InvalidConfig, "columns must hold column names", .{});
        name.* = item.string;
    }
    columns = owned;
    weir.log(.info, "{{name}}: lowercasing {d} column(s)", .{columns.len});
}

/// Reads only the named columns and their old images (weir sends nothing else).
pub fn prepare(table: weir.Table) weir.Error!weir.Plan {
    var wanted: std.ArrayList([]const u8) = .empty;
    for (table.columns) |column| {
        const plain = if (std.mem.startsWith(u8, column.name, "_before.")) column.name["_before.".len..] else column.name;
        if (weir.contains(columns, plain)) try wanted.append(weir.allocator, column.name);
    }
    return .{ .columns = wanted.items, .wants_table = wanted.items.len > 0 };
}

pub fn map(row: *weir.Row) weir.Error!void {
    for (row.values) |*value| {
        switch (value.*) {
            .text => |text| {
                const lower = try row.arena.alloc(u8, text.len);
                value.* = .{ .text = std.ascii.lowerString(lower, text) };
            },
            else => {},
        }
    }
}

test "lowercases the named columns only" {
    var arena = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena.deinit();
    const table = [_]weir.Column{
        .{ .name = "id", .pg_type = "int8", .nullable = false },
        .{ .name = "customer_email", .pg_type = "text", .nullable = true },
        .{ .name = "status", .pg_type = "text", .nullable = true },
    };
    var row = [_]weir.Value{ .{ .int = 1 }, .{ .text = "Ann@Example.org" }, .{ .text = "PAID" } };
    var rows = [_][]weir.Value{&row};
    _ = try weir.testing.run(@This(), arena.allocator(), "{\"columns\": [\"customer_email\"]}", &table, &rows);
    try std.testing.expectEqualStrings("ann@example.org", row[1].text);
    try std.testing.expectEqualStrings("PAID", row[2].text);
}

test "config without columns is refused" {
    var arena = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena.deinit();
    var rows = [_][]weir.Value{};
    try std.testing.expectError(error.InvalidConfig, weir.testing.run(@This(), arena.allocator(), "{}", &.{}, &rows));
}
