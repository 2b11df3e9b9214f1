//! weir's Zig plugin SDK: a plugin is a function over a row.
//!
//! A plugin file (plugin.zig) declares `pub fn map(row: *weir.Row) weir.Error!void` or
//! `pub fn filter(row: *const weir.Row) weir.Error!bool`, and optionally
//! `pub fn init(config: std.json.Value) weir.Error!void` (the stage's config, parsed)
//! and `pub fn prepare(table: weir.Table) weir.Error!weir.Plan` (which columns a
//! table's rows carry). `component.zig` adapts it to the `row-plugin` world of
//! weir:plugin; nothing here touches the bindings, so `zig test` runs the plugin
//! natively with `weir.testing`.
//!
//! Text and bytes a row holds are borrowed for the call. Values a map sets are copied
//! by the SDK, so they may live in `row.arena` (freed after the call) or anywhere.

const std = @import("std");

/// Memory that lives as long as the instance (parsed config, per-table plans): the C
/// heap inside weir, the page allocator under `zig test`.
pub var allocator: std.mem.Allocator = std.heap.page_allocator;

/// One value of a row (the WIT `value` variant). numeric, json, uuid, arrays and the
/// other PostgreSQL types arrive as `.text` in PostgreSQL's text form.
pub const Value = union(enum) {
    null,
    boolean: bool,
    int: i64,
    uint: u64,
    float: f64,
    text: []const u8,
    bytes: []const u8,
    /// Microseconds since 1970-01-01 00:00:00 UTC.
    timestamp: i64,
    /// Days since 1970-01-01.
    date: i32,
};

pub const Column = struct {
    name: []const u8,
    /// PostgreSQL's type name (`int4`, `text`); empty for weir's metadata columns.
    pg_type: []const u8,
    nullable: bool,
};

pub const Table = struct {
    schema: []const u8,
    name: []const u8,
    columns: []const Column,

    pub fn column(self: Table, name: []const u8) ?Column {
        for (self.columns) |c| {
            if (std.mem.eql(u8, c.name, name)) return c;
        }
        return null;
    }
};

/// What a plugin asks of a table. `columns == null` reads every column.
pub const Plan = struct {
    columns: ?[]const []const u8 = null,
    /// False skips the table: its rows pass unchanged, uncalled.
    wants_table: bool = true,
};

/// A failed call: weir applies the stage's `on_error` policy. Say why with `fail`.
pub const Error = error{ InvalidConfig, InvalidInput, Failed, OutOfMemory };

var message_buffer: [512]u8 = undefined;
var message_len: usize = 0;

/// Records why the call fails and returns `err`, for `return weir.fail(...)`.
pub fn fail(err: Error, comptime format: []const u8, args: anytype) Error {
    const written = std.fmt.bufPrint(&message_buffer, format, args) catch message_buffer[0..];
    message_len = written.len;
    return err;
}

/// The message of the last `fail`, or the error's name.
pub fn failure(err: Error) []const u8 {
    if (message_len == 0) return @errorName(err);
    const text = message_buffer[0..message_len];
    message_len = 0;
    return text;
}

/// A row: the values of the columns the plan reads, by name.
pub const Row = struct {
    names: []const []const u8,
    values: []Value,
    /// Scratch memory for the call (freed after it): build new text here.
    arena: std.mem.Allocator,

    pub fn get(self: *const Row, name: []const u8) ?Value {
        const i = self.index(name) orelse return null;
        return self.values[i];
    }

    /// The text of column `name`, or null when it is absent, null or not text.
    pub fn text(self: *const Row, name: []const u8) ?[]const u8 {
        const value = self.get(name) orelse return null;
        return switch (value) {
            .text => |t| t,
            else => null,
        };
    }

    /// Sets column `name`; `InvalidInput` when the plan did not read it.
    pub fn set(self: *Row, name: []const u8, value: Value) Error!void {
        const i = self.index(name) orelse return fail(error.InvalidInput, "column {s} was not read", .{name});
        self.values[i] = value;
    }

    pub fn index(self: *const Row, name: []const u8) ?usize {
        for (self.names, 0..) |n, i| {
            if (std.mem.eql(u8, n, name)) return i;
        }
        return null;
    }
};

pub const Level = enum { trace, debug, info, warn, err };

/// Where log messages go: weir's log inside weir, standard error under `zig test`.
pub var log_sink: *const fn (Level, []const u8) void = stderrSink;

fn stderrSink(level: Level, message: []const u8) void {
    std.debug.print("[{s}] {s}\n", .{ @tagName(level), message });
}

/// Writes to weir's log (target `weir::plugin`, tagged with the stage).
pub fn log(level: Level, comptime format: []const u8, args: anytype) void {
    var buffer: [1024]u8 = undefined;
    const message = std.fmt.bufPrint(&buffer, format, args) catch buffer[0..];
    log_sink(level, message);
}

/// Runs a plugin's functions as weir would, for `zig test`.
pub const testing = struct {
    /// Calls `plugin.init` with `config` (JSON), `plugin.prepare` for a table of
    /// `columns`, then the map or filter on every row. Rows are edited in place; the
    /// answer says which pass. Everything (the answer, the text a map wrote) lives in
    /// `arena`: give it an `std.heap.ArenaAllocator` and free that after the checks.
    pub fn run(
        comptime plugin: type,
        arena: std.mem.Allocator,
        config: []const u8,
        columns: []const Column,
        rows: [][]Value,
    ) Error![]bool {
        if (@hasDecl(plugin, "init")) {
            const parsed = std.json.parseFromSliceLeaky(std.json.Value, arena, config, .{}) catch
                return fail(error.InvalidConfig, "config is not JSON", .{});
            try plugin.init(parsed);
        }
        const table: Table = .{ .schema = "public", .name = "sample", .columns = columns };
        const plan: Plan = if (@hasDecl(plugin, "prepare")) try plugin.prepare(table) else .{};
        const pass = try arena.alloc(bool, rows.len);
        @memset(pass, true);
        if (!plan.wants_table) return pass;
        var names: std.ArrayList([]const u8) = .empty;
        var positions: std.ArrayList(usize) = .empty;
        for (columns, 0..) |c, i| {
            const read = if (plan.columns) |chosen| contains(chosen, c.name) else true;
            if (read) {
                try names.append(arena, c.name);
                try positions.append(arena, i);
            }
        }
        for (rows, 0..) |full, r| {
            const values = try arena.alloc(Value, positions.items.len);
            for (positions.items, 0..) |p, i| values[i] = full[p];
            var row: Row = .{ .names = names.items, .values = values, .arena = arena };
            if (@hasDecl(plugin, "filter")) {
                pass[r] = try plugin.filter(&row);
            } else {
                try plugin.map(&row);
                for (positions.items, 0..) |p, i| full[p] = values[i];
            }
        }
        return pass;
    }
};

pub fn contains(names: []const []const u8, name: []const u8) bool {
    for (names) |n| {
        if (std.mem.eql(u8, n, name)) return true;
    }
    return false;
}
