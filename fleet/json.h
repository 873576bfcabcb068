/*
 * json.h — a small streaming JSON writer for the commands' --json output.
 *
 * The writer emits compact JSON straight to a FILE*, one value at a time;
 * it tracks where commas go with a small nesting stack, so callers write
 * keys and values in order and never think about separators:
 *
 *     fleet_json w;
 *     fleet_json_init(&w, stdout);
 *     fleet_json_object_begin(&w);
 *     fleet_json_key(&w, "seed");
 *     fleet_json_u64(&w, 1);
 *     fleet_json_object_end(&w);
 *     if (fleet_json_finish(&w) != 0) ... the output could not be written
 *
 * Strings are escaped fully: quotes, backslashes, every control character,
 * and each byte that is not part of valid UTF-8 (as \u00XX, so any C string
 * a guest produced still yields valid JSON).  Misuse (a value where a key is
 * due, unbalanced ends, nesting past FLEET_JSON_MAX_DEPTH) is a programming
 * error and asserts.
 */
#ifndef FLEETSIM_FLEET_JSON_H
#define FLEETSIM_FLEET_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FLEET_JSON_MAX_DEPTH 32

typedef struct fleet_json {
    FILE *out;
    int depth;                          /* open containers */
    bool in_object[FLEET_JSON_MAX_DEPTH];
    bool has_items[FLEET_JSON_MAX_DEPTH]; /* a comma precedes the next item */
    bool after_key;                     /* a key was written, its value is due */
} fleet_json;

void fleet_json_init(fleet_json *w, FILE *out);
/* Ends the document with a newline; 0, or -1 when the output failed. */
int fleet_json_finish(fleet_json *w);

void fleet_json_object_begin(fleet_json *w);
void fleet_json_object_end(fleet_json *w);
void fleet_json_array_begin(fleet_json *w);
void fleet_json_array_end(fleet_json *w);
void fleet_json_key(fleet_json *w, const char *key);

void fleet_json_string(fleet_json *w, const char *s);
void fleet_json_string_n(fleet_json *w, const char *s, size_t n);
/* A string, or null when `s` is NULL or empty. */
void fleet_json_string_or_null(fleet_json *w, const char *s);
void fleet_json_u64(fleet_json *w, uint64_t v);
void fleet_json_i64(fleet_json *w, int64_t v);
/* "0x…" in lowercase hex, no padding: addresses, codes, flags. */
void fleet_json_hex(fleet_json *w, uint64_t v);
/* Lowercase hex digits of `n` bytes: digests. */
void fleet_json_hex_bytes(fleet_json *w, const uint8_t *bytes, size_t n);
void fleet_json_bool(fleet_json *w, bool v);
void fleet_json_null(fleet_json *w);

#endif
