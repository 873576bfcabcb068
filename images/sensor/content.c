/*
 * content.c — the sample sensor's content tools on the host: YAML sources
 * to channel files and back to records, and the validator (content.h).
 *
 * A source reads like what a content engineer writes:
 *
 *   channel: 291
 *   version: 32
 *   released: 2024-07-18T22:00Z
 *   instances:
 *     - id: 291001
 *       template: InterProcessCommunication   # or its number
 *       severity: 3
 *       fields: 21                # default: what the template type declares
 *       criteria:                 # fields not listed are wildcards
 *         - {field: 1, prefix: '\Device\NamedPipe\'}
 *         - {field: 21, any: true}
 *
 * Compiling is a pure function of the source: the same bytes every time.
 * The compiler checks what the format can carry (field numbers within the
 * instance, value lengths); whether a sensor version can run the content is
 * the validator's question, asked per version against templates.h.
 */
#include "content.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "sim.h"
#include "templates.h"

static const char *const op_names[CHANNEL_OP_COUNT] = {
#define XX(name, value, text) [value] = text,
    CHANNEL_OP_MAP(XX)
#undef XX
};

void content_file_destroy(content_file *file)
{
    if (file == NULL)
        return;
    sim_free(file->instances);
    sim_free(file);
}

static content_file *file_new(uint32_t count)
{
    content_file *file = sim_calloc(1, sizeof *file);

    if (file == NULL)
        return NULL;
    if (count > 0) {
        file->instances = sim_calloc(count, sizeof *file->instances);
        if (file->instances == NULL) {
            sim_free(file);
            return NULL;
        }
    }
    return file;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- time ---------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

#define EPOCH_2024_DAYS 19723 /* days_from_civil(2024, 1, 1) */

int content_parse_time(const char *text, uint32_t *minutes)
{
    unsigned y, mo, d, h, mi;
    int n = 0;
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (sscanf(text, "%4u-%2u-%2uT%2u:%2u%n", &y, &mo, &d, &h, &mi, &n) != 5 || n != 16)
        return SIM_EFORMAT;
    if (strcmp(text + n, "Z") != 0 && strcmp(text + n, ":00Z") != 0)
        return SIM_EFORMAT;
    if (y < 2024 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) ||
        h > 23 || mi > 59)
        return SIM_ERANGE;
    int64_t days = days_from_civil(y, mo, d) - EPOCH_2024_DAYS;
    int64_t total = days * 1440 + h * 60 + mi;
    if (total > UINT32_MAX)
        return SIM_ERANGE;
    *minutes = (uint32_t)total;
    return 0;
}

void content_format_time(uint32_t minutes, char *out, size_t max)
{
    /* civil_from_days, after Howard Hinnant. */
    int64_t z = (int64_t)(minutes / 1440) + EPOCH_2024_DAYS + 719468;
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = (int64_t)yoe + era * 400 + (m <= 2);

    snprintf(out, max, "%04lld-%02u-%02uT%02u:%02uZ", (long long)y, m, d,
             (unsigned)(minutes % 1440 / 60), (unsigned)(minutes % 60));
}

/* ---- YAML sources ---------------------------------------------------------- */

typedef struct yaml_ctx {
    const char *path;
    yaml_document_t doc;
    char *err;
    size_t errlen;
} yaml_ctx;

static content_pos pos_of(const yaml_node_t *node)
{
    content_pos p = {(int)node->start_mark.line + 1, (int)node->start_mark.column + 1};
    return p;
}

static int yfail(yaml_ctx *y, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int yfail(yaml_ctx *y, const yaml_node_t *node, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return fail(y->err, y->errlen, SIM_EFORMAT, "%s:%d:%d: %s", y->path,
                (int)node->start_mark.line + 1, (int)node->start_mark.column + 1, what);
}

static const char *scalar(const yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

/* A whole number (decimal or 0x hex) in [0, max]. */
static int get_uint(yaml_ctx *y, const yaml_node_t *node, const char *key, uint64_t max,
                    uint64_t *out)
{
    const char *s = scalar(node);
    char *end;

    if (s == NULL || s[0] == '\0' || s[0] == '-' || s[0] == '+')
        return yfail(y, node, "%s: expected a whole number", key);
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0')
        return yfail(y, node, "%s: expected a whole number, got \"%s\"", key, s);
    if (v > max)
        return yfail(y, node, "%s: %llu is out of range (at most %llu)", key, v,
                     (unsigned long long)max);
    *out = v;
    return 0;
}

static int get_bool(yaml_ctx *y, const yaml_node_t *node, const char *key, bool *out)
{
    const char *s = scalar(node);

    if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0)) {
        *out = true;
        return 0;
    }
    if (s != NULL && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0)) {
        *out = false;
        return 0;
    }
    return yfail(y, node, "%s: expected true or false", key);
}

static yaml_node_t *node_at(yaml_ctx *y, int index)
{
    return yaml_document_get_node(&y->doc, index);
}

/* One criterion mapping: {field: N, <op>: "value"} or {field: N, any: true}. */
static int parse_criterion(yaml_ctx *y, yaml_node_t *node, content_instance *inst,
                           bool given[CHANNEL_MAX_FIELDS], uint64_t *field_out,
                           channel_criterion *crit_out)
{
    yaml_node_t *field_node = NULL, *op_node = NULL;
    int op = -1;
    uint64_t field = 0;

    if (node->type != YAML_MAPPING_NODE)
        return yfail(y, node, "a criterion is a mapping: {field: N, equals|prefix|contains: "
                              "\"value\"} or {field: N, any: true}");
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(y, p->key), *v = node_at(y, p->value);
        const char *key = scalar(k);
        int o;

        if (key == NULL)
            return yfail(y, k, "criterion keys are plain names");
        if (strcmp(key, "field") == 0) {
            field_node = v;
            continue;
        }
        for (o = 0; o < CHANNEL_OP_COUNT; o++)
            if (strcmp(key, op_names[o]) == 0)
                break;
        if (o == CHANNEL_OP_COUNT)
            return yfail(y, k, "unknown criterion key \"%s\"; known: field, any, equals, "
                               "prefix, contains", key);
        if (op_node != NULL)
            return yfail(y, k, "a criterion has one operator (%s given already)", op_names[op]);
        op = o;
        op_node = v;
    }
    if (field_node == NULL)
        return yfail(y, node, "criterion without \"field\"");
    if (op_node == NULL)
        return yfail(y, node, "criterion without an operator (any, equals, prefix, contains)");
    if (get_uint(y, field_node, "field", CHANNEL_MAX_FIELDS, &field) != 0)
        return SIM_EFORMAT;
    if (field < 1 || field > inst->fields)
        return yfail(y, field_node, "field %llu is outside this instance's %u fields",
                     (unsigned long long)field, (unsigned)inst->fields);
    if (given[field - 1])
        return yfail(y, field_node, "field %llu has a criterion already",
                     (unsigned long long)field);
    memset(crit_out, 0, sizeof *crit_out);
    crit_out->op = (uint8_t)op;
    if (op == CHANNEL_OP_WILDCARD) {
        bool any = false;
        if (get_bool(y, op_node, "any", &any) != 0)
            return SIM_EFORMAT;
        if (!any)
            return yfail(y, op_node, "any: false means nothing; give a concrete criterion");
    } else {
        const char *value = scalar(op_node);
        size_t n;

        if (value == NULL)
            return yfail(y, op_node, "%s: expected a string", op_names[op]);
        n = op_node->data.scalar.length;
        if (n == 0)
            return yfail(y, op_node, "%s: empty value (use any: true for a wildcard)",
                         op_names[op]);
        if (n > CHANNEL_VALUE_MAX)
            return yfail(y, op_node, "%s: value is %zu bytes, at most %u fit", op_names[op], n,
                         CHANNEL_VALUE_MAX);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] > 0x7e)
                return yfail(y, op_node, "%s: value must be printable ASCII", op_names[op]);
        crit_out->length = (uint8_t)n;
        memcpy(crit_out->value, value, n);
    }
    given[field - 1] = true;
    *field_out = field;
    return 0;
}

static const sensor_template_type *template_named(const char *name)
{
    for (unsigned i = 0; i < SENSOR_TEMPLATE_COUNT; i++)
        if (strcmp(sensor_template_types[i].name, name) == 0)
            return &sensor_template_types[i];
    return NULL;
}

static int parse_instance(yaml_ctx *y, yaml_node_t *node, content_instance *inst)
{
    yaml_node_t *criteria = NULL, *fields_node = NULL;
    bool have_id = false, have_template = false;
    bool given[CHANNEL_MAX_FIELDS] = {false};
    uint64_t v;

    memset(inst, 0, sizeof *inst);
    inst->pos = pos_of(node);
    if (node->type != YAML_MAPPING_NODE)
        return yfail(y, node, "an instance is a mapping with id, template, criteria");
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(y, p->key), *val = node_at(y, p->value);
        const char *key = scalar(k);

        if (key == NULL)
            return yfail(y, k, "instance keys are plain names");
        if (strcmp(key, "id") == 0) {
            if (get_uint(y, val, key, UINT32_MAX, &v) != 0)
                return SIM_EFORMAT;
            inst->id = (uint32_t)v;
            have_id = true;
        } else if (strcmp(key, "template") == 0) {
            const char *s = scalar(val);
            const sensor_template_type *type = s ? template_named(s) : NULL;
            if (type == NULL && s != NULL && s[0] >= '0' && s[0] <= '9') {
                if (get_uint(y, val, key, UINT16_MAX, &v) != 0)
                    return SIM_EFORMAT;
                inst->template_type = (uint16_t)v;
            } else if (type == NULL) {
                char known[256] = "";
                for (unsigned i = 0; i < SENSOR_TEMPLATE_COUNT; i++)
                    snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                             i ? ", " : "", sensor_template_types[i].name);
                return yfail(y, val, "unknown template type \"%s\"; known: %s",
                             s ? s : "?", known);
            } else {
                inst->template_type = type->id;
            }
            have_template = true;
        } else if (strcmp(key, "severity") == 0) {
            if (get_uint(y, val, key, CHANNEL_MAX_SEVERITY, &v) != 0)
                return SIM_EFORMAT;
            inst->severity = (uint8_t)v;
        } else if (strcmp(key, "fields") == 0) {
            fields_node = val;
        } else if (strcmp(key, "criteria") == 0) {
            criteria = val;
        } else if (strcmp(key, "name") == 0 || strcmp(key, "description") == 0) {
            if (scalar(val) == NULL)
                return yfail(y, val, "%s: expected text", key);
        } else {
            return yfail(y, k, "unknown instance key \"%s\"; known: id, name, description, "
                               "template, severity, fields, criteria", key);
        }
    }
    if (!have_id)
        return yfail(y, node, "instance without \"id\"");
    if (!have_template)
        return yfail(y, node, "instance without \"template\"");
    if (fields_node != NULL) {
        if (get_uint(y, fields_node, "fields", CHANNEL_MAX_FIELDS, &v) != 0)
            return SIM_EFORMAT;
        if (v == 0)
            return yfail(y, fields_node, "fields: an instance has at least one field");
        inst->fields = (uint8_t)v;
    } else {
        const sensor_template_type *type = sensor_template_any(inst->template_type);
        if (type == NULL)
            return yfail(y, node, "template %u is not in the table: give \"fields\"",
                         (unsigned)inst->template_type);
        inst->fields = type->fields;
    }
    if (criteria != NULL) {
        if (criteria->type != YAML_SEQUENCE_NODE)
            return yfail(y, criteria, "criteria: expected a list");
        for (yaml_node_item_t *it = criteria->data.sequence.items.start;
             it < criteria->data.sequence.items.top; it++) {
            yaml_node_t *c = node_at(y, *it);
            channel_criterion crit;
            uint64_t field = 0;

            if (parse_criterion(y, c, inst, given, &field, &crit) != 0)
                return SIM_EFORMAT;
            inst->criteria[field - 1] = crit;
            inst->field_pos[field - 1] = pos_of(c);
        }
    }
    return 0;
}

static int parse_document(yaml_ctx *y, content_file **out)
{
    yaml_node_t *root = yaml_document_get_root_node(&y->doc);
    yaml_node_t *instances = NULL;
    bool have_channel = false, have_version = false;
    content_file *file = NULL;
    uint64_t v;
    uint32_t channel = 0, version = 0, released = 0;

    if (root == NULL)
        return fail(y->err, y->errlen, SIM_EFORMAT, "%s:1:1: empty document", y->path);
    if (root->type != YAML_MAPPING_NODE)
        return yfail(y, root, "expected a mapping with channel, version, instances");
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(y, p->key), *val = node_at(y, p->value);
        const char *key = scalar(k);

        if (key == NULL)
            return yfail(y, k, "keys are plain names");
        if (strcmp(key, "channel") == 0) {
            if (get_uint(y, val, key, UINT32_MAX, &v) != 0)
                return SIM_EFORMAT;
            channel = (uint32_t)v;
            have_channel = true;
        } else if (strcmp(key, "version") == 0) {
            if (get_uint(y, val, key, UINT32_MAX, &v) != 0)
                return SIM_EFORMAT;
            version = (uint32_t)v;
            have_version = true;
        } else if (strcmp(key, "released") == 0) {
            const char *s = scalar(val);
            if (s == NULL || content_parse_time(s, &released) != 0)
                return yfail(y, val, "released: expected a UTC time from 2024 on, like "
                                     "2024-07-19T04:09Z");
        } else if (strcmp(key, "description") == 0) {
            if (scalar(val) == NULL)
                return yfail(y, val, "description: expected text");
        } else if (strcmp(key, "instances") == 0) {
            instances = val;
        } else {
            return yfail(y, k, "unknown key \"%s\"; known: channel, version, released, "
                               "description, instances", key);
        }
    }
    if (!have_channel)
        return yfail(y, root, "no \"channel\"");
    if (!have_version)
        return yfail(y, root, "no \"version\"");
    if (instances == NULL)
        return yfail(y, root, "no \"instances\"");
    if (instances->type != YAML_SEQUENCE_NODE)
        return yfail(y, instances, "instances: expected a list");
    size_t n = (size_t)(instances->data.sequence.items.top - instances->data.sequence.items.start);
    if (n > CHANNEL_MAX_INSTANCES)
        return yfail(y, instances, "%zu instances, at most %u fit in a channel file", n,
                     CHANNEL_MAX_INSTANCES);
    file = file_new((uint32_t)n);
    if (file == NULL)
        return fail(y->err, y->errlen, SIM_ENOMEM, "%s: out of memory", y->path);
    file->channel = channel;
    file->version = version;
    file->released = released;
    file->count = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        if (parse_instance(y, node_at(y, instances->data.sequence.items.start[i]),
                           &file->instances[i]) != 0) {
            content_file_destroy(file);
            return SIM_EFORMAT;
        }
    }
    if (channel_instance_size(CHANNEL_MAX_FIELDS) * n + CHANNEL_HEADER_SIZE > CHANNEL_MAX_SIZE) {
        size_t total = CHANNEL_HEADER_SIZE;
        for (size_t i = 0; i < n; i++)
            total += channel_instance_size(file->instances[i].fields);
        if (total > CHANNEL_MAX_SIZE) {
            content_file_destroy(file);
            return yfail(y, instances, "the instances need %zu bytes, a channel file holds %u",
                         total, CHANNEL_MAX_SIZE);
        }
    }
    *out = file;
    return 0;
}

int content_load_yaml(const char *path, content_file **out, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_ctx y = {.path = path, .err = err, .errlen = errlen};
    FILE *fp;
    int rc;

    if (path == NULL || out == NULL)
        return fail(err, errlen, SIM_EINVAL, "no path");
    *out = NULL;
    fp = fopen(path, "rb");
    if (fp == NULL)
        return fail(err, errlen, SIM_EIO, "%s: %s", path, strerror(errno));
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        return fail(err, errlen, SIM_ENOMEM, "%s: out of memory", path);
    }
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &y.doc)) {
        rc = fail(err, errlen, SIM_EFORMAT, "%s:%d:%d: %s%s%s", path,
                  (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
                  parser.problem ? parser.problem : "malformed YAML",
                  parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        fclose(fp);
        return rc;
    }
    rc = parse_document(&y, out);
    yaml_document_delete(&y.doc);
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

/* ---- the binary format ------------------------------------------------------ */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int content_decode(const uint8_t *data, size_t size, content_file **out, char *err,
                   size_t errlen)
{
    content_file *file;
    uint32_t count, offset;

    if (out == NULL || (data == NULL && size > 0))
        return fail(err, errlen, SIM_EINVAL, "no data");
    *out = NULL;
    if (size < CHANNEL_HEADER_SIZE)
        return fail(err, errlen, SIM_EFORMAT, "%zu bytes: shorter than the %u-byte header",
                    size, CHANNEL_HEADER_SIZE);
    if (get32(data) != CHANNEL_MAGIC)
        return fail(err, errlen, SIM_EFORMAT, "offset 0: magic %08x, want %08x: not a "
                    "channel file", get32(data), CHANNEL_MAGIC);
    if (get16(data + 4) != CHANNEL_FORMAT)
        return fail(err, errlen, SIM_EFORMAT, "offset 4: format %u, this tool reads %u",
                    get16(data + 4), CHANNEL_FORMAT);
    if (get16(data + 6) != CHANNEL_HEADER_SIZE)
        return fail(err, errlen, SIM_EFORMAT, "offset 6: header size %u, want %u",
                    get16(data + 6), CHANNEL_HEADER_SIZE);
    if (size > CHANNEL_MAX_SIZE)
        return fail(err, errlen, SIM_EFORMAT, "%zu bytes: a channel file holds at most %u",
                    size, CHANNEL_MAX_SIZE);
    if (get32(data + 20) != size)
        return fail(err, errlen, SIM_EFORMAT, "offset 20: header says %u bytes, the file "
                    "has %zu", get32(data + 20), size);
    uint32_t sum = channel_checksum(data + CHANNEL_HEADER_SIZE,
                                    (uint32_t)(size - CHANNEL_HEADER_SIZE));
    if (get32(data + 24) != sum)
        return fail(err, errlen, SIM_EFORMAT, "offset 24: checksum %08x, the content sums "
                    "to %08x", get32(data + 24), sum);
    count = get32(data + 16);
    if (count > CHANNEL_MAX_INSTANCES)
        return fail(err, errlen, SIM_EFORMAT, "offset 16: %u instances, at most %u",
                    count, CHANNEL_MAX_INSTANCES);
    file = file_new(count);
    if (file == NULL)
        return fail(err, errlen, SIM_ENOMEM, "out of memory");
    file->channel = get32(data + 8);
    file->version = get32(data + 12);
    file->count = count;
    file->released = get32(data + 28);
    offset = CHANNEL_HEADER_SIZE;
    for (uint32_t i = 0; i < count; i++) {
        content_instance *inst = &file->instances[i];
        const uint8_t *p = data + offset;
        uint32_t isize;

        if (size - offset < CHANNEL_INSTANCE_HEADER) {
            content_file_destroy(file);
            return fail(err, errlen, SIM_EFORMAT, "offset %u: instance %u is cut short",
                        offset, i + 1);
        }
        inst->offset = offset;
        inst->id = get32(p);
        inst->template_type = get16(p + 4);
        inst->fields = p[6];
        inst->severity = p[7];
        isize = get32(p + 8);
        if (inst->fields == 0 || inst->fields > CHANNEL_MAX_FIELDS) {
            content_file_destroy(file);
            return fail(err, errlen, SIM_EFORMAT, "offset %u: instance %u has %u fields "
                        "(1 to %u)", offset + 6, i + 1, p[6], CHANNEL_MAX_FIELDS);
        }
        if (isize != channel_instance_size(inst->fields)) {
            content_file_destroy(file);
            return fail(err, errlen, SIM_EFORMAT, "offset %u: instance %u says %u bytes; %u "
                        "fields take %u", offset + 8, i + 1, isize, p[6],
                        channel_instance_size(p[6]));
        }
        if (size - offset < isize) {
            content_file_destroy(file);
            return fail(err, errlen, SIM_EFORMAT, "offset %u: instance %u runs past the end "
                        "of the file", offset, i + 1);
        }
        if (get32(p + 12) != 0) {
            content_file_destroy(file);
            return fail(err, errlen, SIM_EFORMAT, "offset %u: instance %u: reserved is not 0",
                        offset + 12, i + 1);
        }
        for (unsigned f = 0; f < inst->fields; f++)
            memcpy(&inst->criteria[f], p + CHANNEL_INSTANCE_HEADER + CHANNEL_CRITERION_SIZE * f,
                   CHANNEL_CRITERION_SIZE);
        offset += isize;
    }
    if (offset != size) {
        content_file_destroy(file);
        return fail(err, errlen, SIM_EFORMAT, "offset %u: %zu bytes after the last instance",
                    offset, size - offset);
    }
    *out = file;
    return 0;
}

int content_encode(const content_file *file, uint8_t **out, size_t *size, char *err,
                   size_t errlen)
{
    size_t total = CHANNEL_HEADER_SIZE;
    uint8_t *buf;
    uint32_t offset;

    if (file == NULL || out == NULL || size == NULL || file->count > CHANNEL_MAX_INSTANCES)
        return fail(err, errlen, SIM_EINVAL, "nothing to encode");
    for (uint32_t i = 0; i < file->count; i++) {
        if (file->instances[i].fields == 0 || file->instances[i].fields > CHANNEL_MAX_FIELDS)
            return fail(err, errlen, SIM_ERANGE, "instance %u: %u fields", i + 1,
                        file->instances[i].fields);
        total += channel_instance_size(file->instances[i].fields);
    }
    if (total > CHANNEL_MAX_SIZE)
        return fail(err, errlen, SIM_ERANGE, "%zu bytes, a channel file holds %u", total,
                    CHANNEL_MAX_SIZE);
    buf = sim_calloc(1, total);
    if (buf == NULL)
        return fail(err, errlen, SIM_ENOMEM, "out of memory");
    offset = CHANNEL_HEADER_SIZE;
    for (uint32_t i = 0; i < file->count; i++) {
        const content_instance *inst = &file->instances[i];
        uint8_t *p = buf + offset;

        put32(p, inst->id);
        put16(p + 4, inst->template_type);
        p[6] = inst->fields;
        p[7] = inst->severity;
        put32(p + 8, channel_instance_size(inst->fields));
        for (unsigned f = 0; f < inst->fields; f++) {
            uint8_t *c = p + CHANNEL_INSTANCE_HEADER + CHANNEL_CRITERION_SIZE * f;
            /* The whole value field as recorded (zero past the length for
             * compiled sources), so a decoded file re-encodes to its bytes. */
            c[0] = inst->criteria[f].op;
            c[1] = inst->criteria[f].length;
            memcpy(c + 2, inst->criteria[f].value, CHANNEL_VALUE_MAX);
        }
        offset += channel_instance_size(inst->fields);
    }
    put32(buf, CHANNEL_MAGIC);
    put16(buf + 4, CHANNEL_FORMAT);
    put16(buf + 6, CHANNEL_HEADER_SIZE);
    put32(buf + 8, file->channel);
    put32(buf + 12, file->version);
    put32(buf + 16, file->count);
    put32(buf + 20, (uint32_t)total);
    put32(buf + 28, file->released);
    put32(buf + 24, channel_checksum(buf + CHANNEL_HEADER_SIZE,
                                     (uint32_t)(total - CHANNEL_HEADER_SIZE)));
    *out = buf;
    *size = total;
    return 0;
}

/* ---- the validator -------------------------------------------------------- */

int content_sensor_known(unsigned minor)
{
    return sensor_version_known(minor);
}

static void add_finding(content_report *r, content_severity sev, const content_file *file,
                        int instance, int field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void add_finding(content_report *r, content_severity sev, const content_file *file,
                        int instance, int field, const char *fmt, ...)
{
    va_list ap;

    if (sev == CONTENT_ERROR)
        r->errors++;
    else
        r->warnings++;
    if (r->nfindings == CONTENT_MAX_FINDINGS)
        return;
    content_finding *f = &r->findings[r->nfindings++];
    memset(f, 0, sizeof *f);
    f->severity = sev;
    f->instance = instance;
    f->field = field;
    if (instance > 0) {
        const content_instance *inst = &file->instances[instance - 1];
        f->offset = inst->offset;
        f->pos = inst->pos;
        if (field > 0) {
            if (inst->field_pos[field - 1].line > 0)
                f->pos = inst->field_pos[field - 1];
            if (inst->offset > 0)
                f->offset = inst->offset + CHANNEL_INSTANCE_HEADER +
                            CHANNEL_CRITERION_SIZE * (uint32_t)(field - 1);
        }
    }
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
}

/* "equals \"srvsvc\"" for messages. */
static void describe(const channel_criterion *c, char *out, size_t max)
{
    char value[CHANNEL_VALUE_MAX + 1];
    size_t n = c->length <= CHANNEL_VALUE_MAX ? c->length : CHANNEL_VALUE_MAX;

    for (size_t i = 0; i < n; i++)
        value[i] = c->value[i] >= 0x20 && c->value[i] < 0x7f ? (char)c->value[i] : '?';
    value[n] = '\0';
    snprintf(out, max, "%s \"%s\"", c->op < CHANNEL_OP_COUNT ? op_names[c->op] : "op?", value);
}

/* The criterion itself is well formed. */
static void check_criterion(content_report *r, const content_file *file, int k, int f)
{
    const channel_criterion *c = &file->instances[k - 1].criteria[f - 1];

    if (c->op >= CHANNEL_OP_COUNT) {
        add_finding(r, CONTENT_ERROR, file, k, f, "unknown criterion operator %u", c->op);
        return;
    }
    if (c->length > CHANNEL_VALUE_MAX) {
        add_finding(r, CONTENT_ERROR, file, k, f, "value length %u, at most %u", c->length,
                    CHANNEL_VALUE_MAX);
        return;
    }
    if (c->op == CHANNEL_OP_WILDCARD && c->length != 0)
        add_finding(r, CONTENT_ERROR, file, k, f, "a wildcard with a %u-byte value",
                    c->length);
    if (c->op != CHANNEL_OP_WILDCARD && c->length == 0)
        add_finding(r, CONTENT_ERROR, file, k, f, "%s with an empty value",
                    op_names[c->op]);
    for (unsigned i = c->length; i < CHANNEL_VALUE_MAX; i++)
        if (c->value[i] != 0) {
            add_finding(r, CONTENT_ERROR, file, k, f, "bytes past the value's length are "
                        "not zero");
            break;
        }
}

static void check_instance(content_report *r, const content_file *file, unsigned minor, int k)
{
    const content_instance *inst = &file->instances[k - 1];
    const sensor_template_type *type = sensor_template_find(minor, inst->template_type);
    const sensor_template_type *any = sensor_template_any(inst->template_type);

    for (int j = 1; j < k; j++)
        if (file->instances[j - 1].id == inst->id) {
            add_finding(r, CONTENT_ERROR, file, k, 0, "instance %d (id %u): the same id as "
                        "instance %d", k, inst->id, j);
            break;
        }
    if (inst->severity > CHANNEL_MAX_SEVERITY)
        add_finding(r, CONTENT_ERROR, file, k, 0, "instance %d (id %u): severity %u, at most "
                    "%u", k, inst->id, inst->severity, CHANNEL_MAX_SEVERITY);
    for (int f = 1; f <= inst->fields; f++)
        check_criterion(r, file, k, f);
    if (any == NULL) {
        add_finding(r, CONTENT_ERROR, file, k, 0, "instance %d (id %u): template type %u is "
                    "unknown to every sensor version", k, inst->id, inst->template_type);
        return;
    }
    if (type == NULL)
        return;   /* content_validate says so once per type */
    /* Side one: the instance against the template type's declaration. */
    if (inst->fields != type->fields) {
        add_finding(r, CONTENT_ERROR, file, k, 0, "instance %d (id %u): %u fields, but "
                    "template type %s declares %u", k, inst->id, inst->fields, type->name,
                    type->fields);
        return;
    }
    /* Side two: every concrete criterion against the inputs the sensor's
     * event integration supplies. */
    unsigned supplied = sensor_event_inputs(minor, type->event);
    for (unsigned f = supplied + 1; f <= inst->fields; f++) {
        const channel_criterion *c = &inst->criteria[f - 1];
        char what[96];

        if (c->op == CHANNEL_OP_WILDCARD)
            continue;
        describe(c, what, sizeof what);
        add_finding(r, CONTENT_ERROR, file, k, (int)f,
                    "instance %d (id %u) field %u (%s) is out of range: criterion %s, but "
                    "sensor 7.%u's %s event supplies %u inputs (template type %s declares %u); "
                    "%s",
                    k, inst->id, f, type->field_names[f - 1], what, minor,
                    sensor_event_name(type->event), supplied, type->name, type->fields,
                    minor >= 16 ? "the sensor refuses this instance"
                                : "the sensor's interpreter would read past its input array");
    }
}

int content_validate(const content_file *file, unsigned minor, content_report *report)
{
    bool warned[SENSOR_TEMPLATE_COUNT] = {false};

    if (file == NULL || report == NULL || !sensor_version_known(minor))
        return SIM_EINVAL;
    memset(report, 0, sizeof *report);
    for (uint32_t k = 1; k <= file->count; k++) {
        const sensor_template_type *type =
            sensor_template_find(minor, file->instances[k - 1].template_type);

        /* Once per type: the sensor's own two counts disagree. */
        if (type != NULL) {
            unsigned t = (unsigned)(type - sensor_template_types);
            unsigned supplied = sensor_event_inputs(minor, type->event);
            if (!warned[t] && supplied < type->fields) {
                warned[t] = true;
                add_finding(report, CONTENT_WARNING, file, 0, 0,
                            "sensor 7.%u: template type %s declares %u fields but the %s event "
                            "supplies %u inputs: only wildcards are safe past field %u",
                            minor, type->name, type->fields, sensor_event_name(type->event),
                            supplied, supplied);
            }
        }
        check_instance(report, file, minor, (int)k);
    }
    /* Once per type: instances this version ignores. */
    for (unsigned t = 0; t < SENSOR_TEMPLATE_COUNT; t++) {
        const sensor_template_type *type = &sensor_template_types[t];
        unsigned n = 0, first = 0;

        if (sensor_template_find(minor, type->id) != NULL)
            continue;
        for (uint32_t k = 1; k <= file->count; k++)
            if (file->instances[k - 1].template_type == type->id && n++ == 0)
                first = k;
        if (n > 0)
            add_finding(report, CONTENT_WARNING, file, (int)first, 0,
                        "%u instance%s of template type %s (the first: instance %u, id %u): "
                        "sensor 7.%u has no such type and ignores %s", n, n == 1 ? "" : "s",
                        type->name, first, file->instances[first - 1].id, minor,
                        n == 1 ? "it" : "them");
    }
    return 0;
}
