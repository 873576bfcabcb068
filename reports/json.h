/*
 * json.h — a small streaming JSON writer for --json output and JSON reports.
 *
 * The writer emits compact JSON straight to a FILE*, one value at a time;
 * it tracks where commas go with a small nesting stack, so callers write
 * keys and values in order and never think about separators:
 *
 *     json_writer w;
 *     json_init(&w, stdout);
 *     json_object_begin(&w);
 *     json_key(&w, "seed");
 *     json_u64(&w, 1);
 *     json_object_end(&w);
 *     if (json_finish(&w) != 0) ... the output could not be written
 *
 * Strings are escaped fully: quotes, backslashes, every control character,
 * and each byte that is not part of valid UTF-8 (as \u00XX, so any C string
 * a guest produced still yields valid JSON).  Misuse (a value where a key is
 * due, unbalanced ends, nesting past JSON_MAX_DEPTH) is a programming
 * error and asserts.
 */
#ifndef FLEETSIM_REPORTS_JSON_H
#define FLEETSIM_REPORTS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

typedef struct json_writer {
    FILE *out;
    int depth;                          /* open containers */
    bool in_object[JSON_MAX_DEPTH];
    bool has_items[JSON_MAX_DEPTH]; /* a comma precedes the next item */
    bool after_key;                     /* a key was written, its value is due */
} json_writer;

void json_init(json_writer *w, FILE *out);
/* Ends the document with a newline; 0, or -1 when the output failed. */
int json_finish(json_writer *w);

void json_object_begin(json_writer *w);
void json_object_end(json_writer *w);
void json_array_begin(json_writer *w);
void json_array_end(json_writer *w);
void json_key(json_writer *w, const char *key);

void json_string(json_writer *w, const char *s);
void json_string_n(json_writer *w, const char *s, size_t n);
/* A string, or null when `s` is NULL or empty. */
void json_string_or_null(json_writer *w, const char *s);
void json_u64(json_writer *w, uint64_t v);
void json_i64(json_writer *w, int64_t v);
/* A number to 10 significant digits; null when not finite. */
void json_double(json_writer *w, double v);
/* "0x…" in lowercase hex, no padding: addresses, codes, flags. */
void json_hex(json_writer *w, uint64_t v);
/* Lowercase hex digits of `n` bytes: digests. */
void json_hex_bytes(json_writer *w, const uint8_t *bytes, size_t n);
void json_bool(json_writer *w, bool v);
void json_null(json_writer *w);

#endif
