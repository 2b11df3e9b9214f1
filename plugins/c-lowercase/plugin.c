/*
 * c-lowercase: lowercases the ASCII letters of chosen text columns (e-mail
 * addresses, codes), in the new and the old row image. A weir plugin written in C
 * against the `row-plugin` world of guest-sdk/wit/plugin.wit; the bindings come from
 * `wit-bindgen c` and scripts/build-plugins.sh builds it like the Rust plugins.
 *
 *   config: { columns: [email, country_code] }
 *
 * It reads only the named columns (the plan tells weir so), rewrites them in place
 * and hands the same rows back: weir carries every other column over.
 */
#include <stdlib.h>
#include <string.h>

#include "row_plugin.h"

#define MAX_COLUMNS 64
#define BEFORE_PREFIX "_before."

static char *columns[MAX_COLUMNS];
static size_t column_count;

static bool fail(exports_weir_plugin_row_plugin_error_t *err, uint8_t tag, const char *message) {
    err->tag = tag;
    /* Every variant carries a string: set through any member. */
    row_plugin_string_dup(&err->val.failed, message);
    return false;
}

static void log_info(const char *message) {
    row_plugin_string_t text;
    row_plugin_string_set(&text, message);
    weir_plugin_host_log(WEIR_PLUGIN_TYPES_LEVEL_INFO, &text);
}

/* Reads the names in `"columns": ["a", "b"]`. Names may not contain quotes or
 * backslashes (column names with those are rare enough to refuse). */
static bool parse_columns(const char *json, size_t len) {
    const char *end = json + len;
    const char *key = NULL;
    for (const char *p = json; p + 9 <= end; p++) {
        if (memcmp(p, "\"columns\"", 9) == 0) {
            key = p + 9;
            break;
        }
    }
    if (key == NULL) return false;
    const char *p = key;
    while (p < end && (*p == ' ' || *p == ':' || *p == '\n' || *p == '\t')) p++;
    if (p == end || *p != '[') return false;
    p++;
    for (;;) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t')) p++;
        if (p == end) return false;
        if (*p == ']') return column_count > 0;
        if (*p != '"' || column_count == MAX_COLUMNS) return false;
        const char *start = ++p;
        while (p < end && *p != '"' && *p != '\\') p++;
        if (p == end || *p != '"') return false;
        size_t n = (size_t)(p - start);
        char *name = malloc(n + 1);
        if (name == NULL) return false;
        memcpy(name, start, n);
        name[n] = '\0';
        columns[column_count++] = name;
        p++;
    }
}

bool exports_weir_plugin_row_init(row_plugin_string_t *config, exports_weir_plugin_row_plugin_error_t *err) {
    bool ok = parse_columns((const char *)config->ptr, config->len);
    row_plugin_string_free(config);
    if (!ok) {
        return fail(err, WEIR_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_CONFIG,
                    "c-lowercase: config needs {\"columns\": [\"name\", ...]}");
    }
    log_info("c-lowercase: ready");
    return true;
}

/* Whether a table column (maybe `_before.<name>`) is one of ours. */
static bool wanted(const row_plugin_string_t *name) {
    const char *text = (const char *)name->ptr;
    size_t len = name->len;
    size_t prefix = strlen(BEFORE_PREFIX);
    if (len > prefix && memcmp(text, BEFORE_PREFIX, prefix) == 0) {
        text += prefix;
        len -= prefix;
    }
    for (size_t i = 0; i < column_count; i++) {
        if (strlen(columns[i]) == len && memcmp(columns[i], text, len) == 0) return true;
    }
    return false;
}

bool exports_weir_plugin_row_prepare(exports_weir_plugin_row_table_id_t table,
                                     exports_weir_plugin_row_table_info_t *info,
                                     exports_weir_plugin_row_row_plan_t *ret,
                                     exports_weir_plugin_row_plugin_error_t *err) {
    (void)table;
    size_t count = 0;
    for (size_t i = 0; i < info->columns.len; i++) {
        if (wanted(&info->columns.ptr[i].name)) count++;
    }
    ret->columns.len = 0;
    ret->columns.ptr = count ? malloc(count * sizeof(row_plugin_string_t)) : NULL;
    if (count && ret->columns.ptr == NULL) {
        exports_weir_plugin_row_table_info_free(info);
        return fail(err, WEIR_PLUGIN_TYPES_PLUGIN_ERROR_FAILED, "c-lowercase: out of memory");
    }
    for (size_t i = 0; i < info->columns.len; i++) {
        row_plugin_string_t *name = &info->columns.ptr[i].name;
        if (wanted(name)) {
            row_plugin_string_dup_n(&ret->columns.ptr[ret->columns.len++], (const char *)name->ptr, name->len);
        }
    }
    ret->routing.ptr = NULL;
    ret->routing.len = 0;
    ret->wants_table = count > 0;
    exports_weir_plugin_row_table_info_free(info);
    return true;
}

bool exports_weir_plugin_row_process(exports_weir_plugin_row_table_id_t table,
                                     exports_weir_plugin_row_list_row_t *rows,
                                     exports_weir_plugin_row_row_output_t *ret,
                                     exports_weir_plugin_row_plugin_error_t *err) {
    (void)table;
    (void)err;
    for (size_t r = 0; r < rows->len; r++) {
        exports_weir_plugin_row_row_t *row = &rows->ptr[r];
        for (size_t c = 0; c < row->len; c++) {
            exports_weir_plugin_row_value_t *value = &row->ptr[c];
            if (value->tag != EXPORTS_WEIR_PLUGIN_ROW_VALUE_TEXT) continue;
            uint8_t *text = value->val.text.ptr;
            for (size_t i = 0; i < value->val.text.len; i++) {
                if (text[i] >= 'A' && text[i] <= 'Z') text[i] = (uint8_t)(text[i] + ('a' - 'A'));
            }
        }
    }
    /* The rows, changed in place, are the answer: ownership passes back to weir. */
    ret->tag = EXPORTS_WEIR_PLUGIN_ROW_ROW_OUTPUT_REPLACED;
    ret->val.replaced = *rows;
    return true;
}
