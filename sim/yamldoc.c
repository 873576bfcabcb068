/*
 * yamldoc.c — the libyaml document walk shared by the profile and scenario
 * loaders (yamldoc.h says why it is shared and who may use it).
 *
 * Nothing here allocates or prints: every helper writes its message into
 * the caller's buffer and returns an error code, as all of sim/ does.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"
#include "yamldoc.h"

int sim_yaml_nomem(char *err, size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "out of memory");
    return SIM_ENOMEM;
}

int sim_yaml_parser_error(const yaml_parser_t *yp, const char *path, const char *text,
                          size_t len, char *err, size_t errlen)
{
    if (yp->error == YAML_MEMORY_ERROR)
        return sim_yaml_nomem(err, errlen);
    const char *problem = yp->problem ? yp->problem : "malformed YAML";
    if (yp->error == YAML_READER_ERROR) {
        size_t line = 1, column = 1;
        for (size_t i = 0; text && i < yp->problem_offset && i < len; i++) {
            if (text[i] == '\n') {
                line++;
                column = 1;
            } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
                column++; /* a character, not a UTF-8 continuation byte */
            }
        }
        if (yp->problem_value >= 0)
            return sim_yaml_report(err, errlen, path, line, column, "%s (byte 0x%02X)", problem,
                                   (unsigned)yp->problem_value & 0xFFu);
        return sim_yaml_report(err, errlen, path, line, column, "%s", problem);
    }
    const yaml_mark_t *m = yp->problem ? &yp->problem_mark : &yp->context_mark;
    return sim_yaml_report(err, errlen, path, m->line + 1, m->column + 1, "%s%s%s", problem,
                           yp->context ? " " : "", yp->context ? yp->context : "");
}

int sim_yaml_vreport(char *err, size_t errlen, const char *path, size_t line, size_t column,
                     const char *fmt, va_list ap)
{
    if (!err || errlen == 0)
        return SIM_EFORMAT;
    int n;
    if (column)
        n = snprintf(err, errlen, "%s:%zu:%zu: ", path, line, column);
    else if (line)
        n = snprintf(err, errlen, "%s:%zu: ", path, line);
    else
        n = snprintf(err, errlen, "%s: ", path ? path : "scenario");
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    return SIM_EFORMAT;
}

int sim_yaml_report(char *err, size_t errlen, const char *path, size_t line, size_t column,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sim_yaml_vreport(err, errlen, path, line, column, fmt, ap);
    va_end(ap);
    return SIM_EFORMAT;
}

void sim_yaml_append_list(char *err, size_t errlen, const char *const *names, size_t n,
                          bool mark_cut)
{
    size_t len = strlen(err);
    for (size_t i = 0; i < n && len + 1 < errlen; i++) {
        int w = snprintf(err + len, errlen - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (mark_cut && len >= errlen - 1 && errlen > 4)
        memcpy(err + errlen - 4, "...", 4);
}

static int vfail(const sim_yaml_doc *y, const yaml_node_t *n, const char *fmt, va_list ap)
{
    return sim_yaml_vreport(y->err, y->errlen, y->path, n->start_mark.line + 1,
                            n->start_mark.column + 1, fmt, ap);
}

int sim_yaml_fail(const sim_yaml_doc *y, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(y, n, fmt, ap);
    va_end(ap);
    return SIM_EFORMAT;
}

/* sim_yaml_fail with one of the loader's own formats (sim_yaml_wording). */
static int fail_worded(const sim_yaml_doc *y, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(y, n, fmt, ap);
    va_end(ap);
    return SIM_EFORMAT;
}

const char *sim_yaml_kind_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

yaml_node_t *sim_yaml_node(const sim_yaml_doc *y, int id)
{
    return yaml_document_get_node(y->doc, id);
}

int sim_yaml_scalar(const sim_yaml_doc *y, yaml_node_t *n, const char *what, const char **text)
{
    if (n->type != YAML_SCALAR_NODE)
        return fail_worded(y, n, y->wording->not_scalar, what, sim_yaml_kind_name(n));
    *text = (const char *)n->data.scalar.value;
    if (strlen(*text) != n->data.scalar.length)
        return fail_worded(y, n, y->wording->nul_in_scalar, what);
    return 0;
}

int sim_yaml_expect(const sim_yaml_doc *y, yaml_node_t *n, yaml_node_type_t type,
                    const char *what)
{
    if (n->type != type)
        return sim_yaml_fail(y, n, "%s: expected %s, got %s", what,
                             type == YAML_MAPPING_NODE ? "a mapping" : "a list",
                             sim_yaml_kind_name(n));
    return 0;
}

int sim_yaml_fields(const sim_yaml_doc *y, yaml_node_t *n, const char *section,
                    const char *const *keys, size_t nkeys, yaml_node_t **vals,
                    yaml_node_t **keyn)
{
    int rc = sim_yaml_expect(y, n, YAML_MAPPING_NODE, section);
    if (rc)
        return rc;
    for (size_t i = 0; i < nkeys; i++) {
        vals[i] = NULL;
        if (keyn)
            keyn[i] = NULL;
    }
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = sim_yaml_node(y, pair->key), *v = sim_yaml_node(y, pair->value);
        const char *name = NULL;
        if (!k || !v)
            return sim_yaml_fail(y, n, "%s: malformed mapping", section);
        if ((rc = sim_yaml_scalar(y, k, "a key", &name)))
            return rc;
        size_t i = 0;
        while (i < nkeys && strcmp(keys[i], name) != 0)
            i++;
        if (i == nkeys) {
            fail_worded(y, k, y->wording->unknown_key, name, section);
            sim_yaml_append_list(y->err, y->errlen, keys, nkeys, y->wording->mark_cut);
            return SIM_EFORMAT;
        }
        if (vals[i])
            return fail_worded(y, k, y->wording->duplicate_key, section, name);
        vals[i] = v;
        if (keyn)
            keyn[i] = k;
    }
    return 0;
}

int sim_yaml_missing(const sim_yaml_doc *y, yaml_node_t *map, const char *section,
                     const char *key)
{
    return sim_yaml_fail(y, map, "%s: missing key \"%s\"", section, key);
}

bool sim_yaml_parse_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return false;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

bool sim_yaml_parse_u64(const char *text, uint64_t *out)
{
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        const char *s = text + 2;
        uint64_t v = 0;
        if (!*s)
            return false;
        for (; *s; s++) {
            if (!isxdigit((unsigned char)*s) || v >> 60)
                return false;
            v = v << 4 | (uint64_t)(isdigit((unsigned char)*s)
                                        ? *s - '0'
                                        : tolower((unsigned char)*s) - 'a' + 10);
        }
        *out = v;
        return true;
    }
    const char *s = text;
    return sim_yaml_parse_digits(&s, out) && *s == '\0';
}
