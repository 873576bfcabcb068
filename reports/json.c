/*
 * json.c — the streaming JSON writer of json.h.
 *
 * Output goes straight to the FILE*, so a report of any size costs no
 * buffer; write errors are sticky in the FILE and json_finish reports
 * them once at the end.  The only state is the nesting stack: for each open
 * container, whether it is an object and whether it has items yet (so the
 * next one needs a comma).
 */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "json.h"

void json_init(json_writer *w, FILE *out)
{
    w->out = out;
    w->depth = 0;
    w->after_key = false;
}

int json_finish(json_writer *w)
{
    assert(w->depth == 0 && !w->after_key);
    fputc('\n', w->out);
    return fflush(w->out) != 0 || ferror(w->out) ? -1 : 0;
}

/* Before any value: the comma, and whether a key had to come first. */
static void before_value(json_writer *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0) {
        assert(!w->in_object[w->depth - 1] && "a value in an object needs a key");
        if (w->has_items[w->depth - 1])
            fputc(',', w->out);
        w->has_items[w->depth - 1] = true;
    }
}

static void begin(json_writer *w, bool object)
{
    before_value(w);
    assert(w->depth < JSON_MAX_DEPTH);
    w->in_object[w->depth] = object;
    w->has_items[w->depth] = false;
    w->depth++;
    fputc(object ? '{' : '[', w->out);
}

static void end(json_writer *w, bool object)
{
    assert(w->depth > 0 && w->in_object[w->depth - 1] == object && !w->after_key);
    w->depth--;
    fputc(object ? '}' : ']', w->out);
}

void json_object_begin(json_writer *w) { begin(w, true); }
void json_object_end(json_writer *w) { end(w, true); }
void json_array_begin(json_writer *w) { begin(w, false); }
void json_array_end(json_writer *w) { end(w, false); }

/*
 * Length of the valid UTF-8 sequence at s (1–4), or 0 when the byte at s
 * does not start one: overlong forms, surrogates and code points past
 * U+10FFFF are invalid (Unicode 15, table 3-7).
 */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

static void write_escaped(FILE *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;

    fputc('"', out);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = utf8_length(s + i, n - i);

        if (len > 1) {
            fwrite(s + i, 1, len, out);
            i += len;
            continue;
        }
        i++;
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            /* Control characters, DEL, and bytes outside valid UTF-8
             * (len == 0), the latter read as Latin-1 code points. */
            if (c < 0x20 || c >= 0x7F)
                fprintf(out, "\\u%04x", c);
            else
                fputc(c, out);
        }
    }
    fputc('"', out);
}

void json_key(json_writer *w, const char *key)
{
    assert(w->depth > 0 && w->in_object[w->depth - 1] && !w->after_key);
    if (w->has_items[w->depth - 1])
        fputc(',', w->out);
    w->has_items[w->depth - 1] = true;
    write_escaped(w->out, key, strlen(key));
    fputc(':', w->out);
    w->after_key = true;
}

void json_string_n(json_writer *w, const char *s, size_t n)
{
    before_value(w);
    write_escaped(w->out, s, n);
}

void json_string(json_writer *w, const char *s)
{
    assert(s != NULL);
    json_string_n(w, s, strlen(s));
}

void json_string_or_null(json_writer *w, const char *s)
{
    if (s == NULL || s[0] == '\0')
        json_null(w);
    else
        json_string(w, s);
}

void json_u64(json_writer *w, uint64_t v)
{
    before_value(w);
    fprintf(w->out, "%" PRIu64, v);
}

void json_i64(json_writer *w, int64_t v)
{
    before_value(w);
    fprintf(w->out, "%" PRId64, v);
}

void json_double(json_writer *w, double v)
{
    before_value(w);
    if (isfinite(v))
        fprintf(w->out, "%.10g", v);
    else
        fputs("null", w->out); /* JSON has no infinities */
}

void json_hex(json_writer *w, uint64_t v)
{
    before_value(w);
    fprintf(w->out, "\"0x%" PRIx64 "\"", v);
}

void json_hex_bytes(json_writer *w, const uint8_t *bytes, size_t n)
{
    before_value(w);
    fputc('"', w->out);
    for (size_t i = 0; i < n; i++)
        fprintf(w->out, "%02x", bytes[i]);
    fputc('"', w->out);
}

void json_bool(json_writer *w, bool v)
{
    before_value(w);
    fputs(v ? "true" : "false", w->out);
}

void json_null(json_writer *w)
{
    before_value(w);
    fputs("null", w->out);
}
