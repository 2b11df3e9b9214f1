//! The component's root: adapts the plugin (module `plugin`) to weir's `row-plugin`
//! world through the C bindings of `wit-bindgen c` (module `c`, translated from
//! row_plugin.h by `zig translate-c`). Rows are changed in place and handed back, so
//! a value the plugin left alone is never copied.

const std = @import("std");
const c = @import("c");
const weir = @import("weir");
const plugin = @import("plugin");

comptime {
    if (@hasDecl(plugin, "map") == @hasDecl(plugin, "filter")) {
        @compileError("a plugin declares exactly one of `pub fn map` and `pub fn filter`");
    }
}

const gpa = std.heap.c_allocator;

const Prepared = struct {
    /// Read column names, owned.
    names: [][]const u8,
};

/// Prepared tables by id. Ids are small and dense (weir counts them up from 0).
var prepared: std.ArrayList(?Prepared) = .empty;

fn slice(s: c.row_plugin_string_t) []const u8 {
    if (s.len == 0) return "";
    return s.ptr[0..s.len];
}

fn hostLog(level: weir.Level, message: []const u8) void {
    var text: c.row_plugin_string_t = .{ .ptr = @constCast(message.ptr), .len = message.len };
    const wit_level: c.weir_plugin_host_level_t = switch (level) {
        .trace => c.WEIR_PLUGIN_TYPES_LEVEL_TRACE,
        .debug => c.WEIR_PLUGIN_TYPES_LEVEL_DEBUG,
        .info => c.WEIR_PLUGIN_TYPES_LEVEL_INFO,
        .warn => c.WEIR_PLUGIN_TYPES_LEVEL_WARN,
        .err => c.WEIR_PLUGIN_TYPES_LEVEL_ERROR,
    };
    c.weir_plugin_host_log(wit_level, &text);
}

fn report(err: weir.Error, out: *c.exports_weir_plugin_row_plugin_error_t) bool {
    out.tag = switch (err) {
        error.InvalidConfig => c.WEIR_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_CONFIG,
        error.InvalidInput => c.WEIR_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_INPUT,
        error.Failed, error.OutOfMemory => c.WEIR_PLUGIN_TYPES_PLUGIN_ERROR_FAILED,
    };
    const message = weir.failure(err);
    // Every variant carries a string: set it through any member.
    c.row_plugin_string_dup_n(&out.val.failed, message.ptr, message.len);
    return false;
}

export fn exports_weir_plugin_row_init(config: *c.row_plugin_string_t, err: *c.exports_weir_plugin_row_plugin_error_t) bool {
    defer c.row_plugin_string_free(config);
    weir.log_sink = hostLog;
    weir.allocator = gpa;
    if (!@hasDecl(plugin, "init")) return true;
    var arena = std.heap.ArenaAllocator.init(gpa);
    // The parsed config stays alive for the instance: plugins keep slices of it.
    const parsed = std.json.parseFromSliceLeaky(std.json.Value, arena.allocator(), slice(config.*), .{}) catch
        return report(weir.fail(error.InvalidConfig, "config is not JSON", .{}), err);
    plugin.init(parsed) catch |e| return report(e, err);
    return true;
}

fn prepareTable(table: u32, info: *c.exports_weir_plugin_row_table_info_t, plan_out: *c.exports_weir_plugin_row_row_plan_t) weir.Error!void {
    var arena = std.heap.ArenaAllocator.init(gpa);
    defer arena.deinit();
    const scratch = arena.allocator();
    const count = info.columns.len;
    const columns = try scratch.alloc(weir.Column, count);
    for (columns, 0..) |*column, i| {
        const raw = info.columns.ptr[i];
        column.* = .{ .name = slice(raw.name), .pg_type = slice(raw.pg_type), .nullable = raw.nullable };
    }
    const table_view: weir.Table = .{ .schema = slice(info.schema), .name = slice(info.name), .columns = columns };
    const plan: weir.Plan = if (@hasDecl(plugin, "prepare")) try plugin.prepare(table_view) else .{};
    var names: std.ArrayList([]const u8) = .empty;
    errdefer names.deinit(gpa);
    if (plan.wants_table) {
        for (columns) |column| {
            const read = if (plan.columns) |chosen| weir.contains(chosen, column.name) else true;
            if (read) try names.append(gpa, try gpa.dupe(u8, column.name));
        }
        if (plan.columns) |chosen| {
            for (chosen) |name| {
                if (table_view.column(name) == null) return weir.fail(error.InvalidInput, "table {s}.{s} has no column {s}", .{ table_view.schema, table_view.name, name });
            }
        }
    }
    const owned = try names.toOwnedSlice(gpa);
    while (prepared.items.len <= table) try prepared.append(gpa, null);
    prepared.items[table] = .{ .names = owned };

    plan_out.* = .{};
    plan_out.wants_table = plan.wants_table and owned.len > 0;
    if (plan_out.wants_table) {
        const list: [*]c.row_plugin_string_t = @ptrCast(@alignCast(std.c.malloc(owned.len * @sizeOf(c.row_plugin_string_t)) orelse return error.OutOfMemory));
        for (owned, 0..) |name, i| c.row_plugin_string_dup_n(&list[i], name.ptr, name.len);
        plan_out.columns = .{ .ptr = list, .len = owned.len };
    }
}

export fn exports_weir_plugin_row_prepare(
    table: u32,
    info: *c.exports_weir_plugin_row_table_info_t,
    plan_out: *c.exports_weir_plugin_row_row_plan_t,
    err: *c.exports_weir_plugin_row_plugin_error_t,
) bool {
    defer c.exports_weir_plugin_row_table_info_free(info);
    prepareTable(table, info, plan_out) catch |e| return report(e, err);
    return true;
}

fn toValue(raw: c.exports_weir_plugin_row_value_t) weir.Value {
    return switch (raw.tag) {
        c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_BOOLEAN => .{ .boolean = raw.val.boolean },
        c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_INT => .{ .int = raw.val.int_ },
        c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_UINT => .{ .uint = raw.val.uint },
        c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_FLOAT => .{ .float = raw.val.float_ },
        c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_TEXT => .{ .text = slice(raw.val.text) },
        c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_BYTES => .{ .bytes = if (raw.val.bytes.len == 0) "" else raw.val.bytes.ptr[0..raw.val.bytes.len] },
        c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_TIMESTAMP => .{ .timestamp = raw.val.timestamp },
        c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_DATE => .{ .date = raw.val.date },
        else => .null,
    };
}

fn sameBytes(a: []const u8, b: []const u8) bool {
    return a.len == b.len and (a.len == 0 or a.ptr == b.ptr);
}

/// Writes `value` over `raw` unless it is what `raw` already holds; new text and
/// bytes are copied to the C heap (the bindings free them after the call).
fn store(raw: [*c]c.exports_weir_plugin_row_value_t, before: weir.Value, value: weir.Value) weir.Error!void {
    switch (value) {
        .text => |t| if (before == .text and sameBytes(before.text, t)) return,
        .bytes => |b| if (before == .bytes and sameBytes(before.bytes, b)) return,
        else => {},
    }
    var next: c.exports_weir_plugin_row_value_t = .{};
    switch (value) {
        .null => next.tag = c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_NULL,
        .boolean => |v| {
            next.tag = c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_BOOLEAN;
            next.val.boolean = v;
        },
        .int => |v| {
            next.tag = c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_INT;
            next.val.int_ = v;
        },
        .uint => |v| {
            next.tag = c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_UINT;
            next.val.uint = v;
        },
        .float => |v| {
            next.tag = c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_FLOAT;
            next.val.float_ = v;
        },
        .timestamp => |v| {
            next.tag = c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_TIMESTAMP;
            next.val.timestamp = v;
        },
        .date => |v| {
            next.tag = c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_DATE;
            next.val.date = v;
        },
        .text => |t| {
            next.tag = c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_TEXT;
            c.row_plugin_string_dup_n(&next.val.text, t.ptr, t.len);
        },
        .bytes => |b| {
            next.tag = c.EXPORTS_WEIR_PLUGIN_ROW_VALUE_BYTES;
            const copy: [*]u8 = @ptrCast(std.c.malloc(@max(b.len, 1)) orelse return error.OutOfMemory);
            @memcpy(copy[0..b.len], b);
            next.val.bytes = .{ .ptr = copy, .len = b.len };
        },
    }
    c.exports_weir_plugin_row_value_free(raw);
    raw.* = next;
}

fn processRows(table: u32, rows: *c.exports_weir_plugin_row_list_row_t, out: *c.exports_weir_plugin_row_row_output_t) weir.Error!void {
    const plan = if (table < prepared.items.len) prepared.items[table] else null;
    const names = (plan orelse return weir.fail(error.Failed, "table {d} was never prepared", .{table})).names;
    var arena_state = std.heap.ArenaAllocator.init(gpa);
    defer arena_state.deinit();
    const arena = arena_state.allocator();
    const values = try arena.alloc(weir.Value, names.len);
    const originals = try arena.alloc(weir.Value, names.len);
    const count = rows.len;
    const is_filter = comptime @hasDecl(plugin, "filter");
    const flags: [*]bool = if (is_filter) @ptrCast(std.c.malloc(@max(count, 1)) orelse return error.OutOfMemory) else undefined;
    errdefer if (is_filter) std.c.free(flags);
    for (0..count) |r| {
        const raw_row = rows.ptr[r];
        if (raw_row.len != names.len) return weir.fail(error.InvalidInput, "a row holds {d} values, the plan reads {d}", .{ raw_row.len, names.len });
        for (0..names.len) |i| {
            originals[i] = toValue(raw_row.ptr[i]);
            values[i] = originals[i];
        }
        var row: weir.Row = .{ .names = names, .values = values, .arena = arena };
        if (is_filter) {
            flags[r] = try plugin.filter(&row);
        } else {
            try plugin.map(&row);
            for (0..names.len) |i| try store(&raw_row.ptr[i], originals[i], values[i]);
        }
    }
    if (is_filter) {
        c.exports_weir_plugin_row_list_row_free(rows);
        out.tag = c.EXPORTS_WEIR_PLUGIN_ROW_ROW_OUTPUT_SELECTION;
        out.val.selection = .{ .ptr = flags, .len = count };
    } else {
        // The rows, changed in place, are the answer: ownership passes back to weir.
        out.tag = c.EXPORTS_WEIR_PLUGIN_ROW_ROW_OUTPUT_REPLACED;
        out.val.replaced = rows.*;
    }
}

export fn exports_weir_plugin_row_process(
    table: u32,
    rows: *c.exports_weir_plugin_row_list_row_t,
    out: *c.exports_weir_plugin_row_row_output_t,
    err: *c.exports_weir_plugin_row_plugin_error_t,
) bool {
    processRows(table, rows, out) catch |e| {
        c.exports_weir_plugin_row_list_row_free(rows);
        return report(e, err);
    };
    return true;
}
