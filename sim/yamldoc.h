/*
 * yamldoc.h — the walk over a libyaml document that the profile loader
 * (sim/profile.c) and the scenario loader (fleet/scenario.c) share.
 *
 * Internal to fleetsim, not part of sim.h: fleet/ may include it because it
 * sits above sim/, but it may change with its two users.  Both loaders read
 * libyaml's node tree with a fixed schema and report a mistake as
 * "path:line:column: what is wrong"; these helpers do the mechanics (marks,
 * node kinds, key tables that refuse unknown and duplicate keys, whole
 * numbers), and each loader keeps its own wording (sim_yaml_wording), so the
 * messages its users and tests know stay what they were.
 */
#ifndef FLEETSIM_SIM_YAMLDOC_H
#define FLEETSIM_SIM_YAMLDOC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

/*
 * How a loader words the messages the shared walker writes.  Each is a
 * printf format with the arguments named; positional arguments ("%2$s")
 * may reorder them.
 */
typedef struct sim_yaml_wording {
    const char *not_scalar;    /* what, the node's kind ("a list") */
    const char *nul_in_scalar; /* what */
    const char *unknown_key;   /* key, section; the known keys follow */
    const char *duplicate_key; /* section, key */
    bool mark_cut;             /* end a list cut short by the buffer with "..." */
} sim_yaml_wording;

/* One loaded document and where its errors go. */
typedef struct sim_yaml_doc {
    const char *path; /* the file named in messages */
    yaml_document_t *doc;
    char *err;
    size_t errlen;
    const sim_yaml_wording *wording;
} sim_yaml_doc;

/* "out of memory" into err; returns SIM_ENOMEM. */
int sim_yaml_nomem(char *err, size_t errlen);

/*
 * "path:line:column: " then the message (1-based; "path:line: " without a
 * column, "path: " without a line).  Returns SIM_EFORMAT.
 */
int sim_yaml_vreport(char *err, size_t errlen, const char *path, size_t line, size_t column,
                     const char *fmt, va_list ap);
int sim_yaml_report(char *err, size_t errlen, const char *path, size_t line, size_t column,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * libyaml's own complaint about the text it was given (yp->error set), at
 * the line and column it points to: a reader error (bytes that are not
 * UTF-8, control characters) carries only a byte offset into `text`, which
 * is turned into a line and column here, and the byte is named.
 */
int sim_yaml_parser_error(const yaml_parser_t *yp, const char *path, const char *text,
                          size_t len, char *err, size_t errlen);

/* Append "a, b, c" to err, as much as fits; with mark_cut, "..." if not all did. */
void sim_yaml_append_list(char *err, size_t errlen, const char *const *names, size_t n,
                          bool mark_cut);

/* A message at node n's mark; returns SIM_EFORMAT. */
int sim_yaml_fail(const sim_yaml_doc *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "a scalar", "a list", "a mapping" or "nothing". */
const char *sim_yaml_kind_name(const yaml_node_t *n);

yaml_node_t *sim_yaml_node(const sim_yaml_doc *y, int id);

/* The scalar's text, or an error naming what was expected. */
int sim_yaml_scalar(const sim_yaml_doc *y, yaml_node_t *n, const char *what, const char **text);

/* An error unless n is of `type` (a mapping or a list). */
int sim_yaml_expect(const sim_yaml_doc *y, yaml_node_t *n, yaml_node_type_t type,
                    const char *what);

/*
 * Read mapping `n` against a key table: vals[i] receives the value of
 * keys[i] (NULL when absent), and keyn[i], unless keyn is NULL, its key
 * node.  Unknown keys are refused with the list of known ones; so are
 * duplicates.
 */
int sim_yaml_fields(const sim_yaml_doc *y, yaml_node_t *n, const char *section,
                    const char *const *keys, size_t nkeys, yaml_node_t **vals,
                    yaml_node_t **keyn);

/* "section: missing key "key"" at the mapping's mark. */
int sim_yaml_missing(const sim_yaml_doc *y, yaml_node_t *map, const char *section,
                     const char *key);

/* Decimal digits at *p (at least one, no overflow); *p moves past them. */
bool sim_yaml_parse_digits(const char **p, uint64_t *out);

/* A whole number: decimal digits only, or 0x and hex digits; nothing else. */
bool sim_yaml_parse_u64(const char *text, uint64_t *out);

#endif
