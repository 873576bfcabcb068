/*
 * profile.c — OS-version profiles as the emulated kernel presents them.
 *
 * Profiles are data (STYLE.md: "data lives in files users can read and
 * extend"): sim/profiles/ holds one YAML file per Windows build, and a user
 * adds a build by adding a file.  This file reads them — libyaml loads a
 * node tree with line and column marks, and a fixed schema walks it, each
 * mapping through one helper (sim_yaml_fields, in yamldoc.c, which the
 * scenario loader shares) that refuses unknown and duplicate keys, so a
 * mistake is reported as "path:line:column: what is wrong" —
 * and draws each endpoint's own OS event stream from a profile's events
 * (sim_profile_events: jittered by the endpoint's seed, allocation-free,
 * because it runs on the hot path).
 *
 * One profile stays built in (Windows 10 22H2 as patched in July 2024) so
 * an image run on its own needs no files; tests/test_profile.c checks that
 * it agrees with sim/profiles/win10-22h2-2024-07.yaml.  The export check the
 * loader applies to every import lives here too.
 *
 * Everything a file can say is bounded: string lengths by sim_profile's
 * fixed buffers, counts by SIM_PROFILE_MAX_* and SIM__PROFILE_MAX_*, numbers
 * by their field's range.  The schema is walked to a fixed depth, so YAML
 * aliases (even cyclic ones) cannot make the walk recurse or repeat without
 * bound.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "profile-internal.h"
#include "sim-internal.h"
#include "sim.h"
#include "yamldoc.h"

#define MIB (1024ull * 1024ull)
#define KERNEL_HALF 0xFFFF800000000000ull
#define LAYOUT_ALIGN 0x10000ull       /* Windows' allocation granularity */
#define MIN_IMAGE_RANGE (16 * MIB)
#define MIN_POOL_RANGE (64 * MIB)     /* sim maps its first SIM__POOL_WINDOW */
#define STALE_PAGES                                                                        \
    "a page at 0xffff84xx00000000 (xx from 01 to ff), where stale pool words point; "      \
    "fleetsim keeps those unmapped"
#define MAX_KASLR_SLOTS 64
#define MAX_BOOT_MS 600000u           /* ten minutes from power-on */
#define MAX_JITTER_MS 600000u
#define MAX_EVENT_MS 86400000ull      /* a day of events is plenty */
#define MAX_OFFSET_VALUE 0xFFFFu

static const sim_profile default_profile = {
    .name = "win10-22h2-2024-07",
    .display = "Windows 10 22H2 (July 2024)",
    .major = 10,
    .minor = 0,
    .build = 19045,
    .ubr = 4651,
    .product_type = 1,
    .pool = SIM_POOL_SEGMENT_HEAP,
    .pool_zeroed = false,
    .image_lo = 0xFFFFF80170000000ull,
    .image_hi = 0xFFFFF80600000000ull,
    .pool_lo = 0xFFFF840000000000ull,
    .pool_hi = 0xFFFF850000000000ull,
    .kaslr_slots = 8,
    /* EPROCESS of builds 19041-19045 (the same layout for 2004 to 22H2). */
    .offsets = {
        {"EPROCESS.UniqueProcessId", 0x440},
        {"EPROCESS.ActiveProcessLinks", 0x448},
        {"EPROCESS.Token", 0x4B8},
        {"EPROCESS.InheritedFromUniqueProcessId", 0x540},
        {"EPROCESS.Peb", 0x550},
        {"EPROCESS.ImageFileName", 0x5A8},
        {"EPROCESS.SeAuditProcessCreationInfo", 0x5C0},
    },
    .noffsets = 7,
    /* No events: an image run alone sees only what the user gives it. */
    .event_jitter_ms = 250,
    .boot_ms = 12000,
};

const sim_profile *sim_profile_default(void)
{
    return &default_profile;
}

bool sim_profile_has_export(const sim_profile *profile, const char *name)
{
    if (!profile || !name)
        return false;
    for (size_t i = 0; i < profile->nabsent && i < SIM_PROFILE_MAX_ABSENT; i++)
        if (profile->absent[i] && strcmp(profile->absent[i], name) == 0)
            return false;
    return true;
}

bool sim_profile_offset(const sim_profile *profile, const char *name,
                        uint32_t *value)
{
    if (!profile || !name)
        return false;
    for (size_t i = 0; i < profile->noffsets && i < SIM_PROFILE_MAX_OFFSETS; i++)
        if (strcmp(profile->offsets[i].name, name) == 0) {
            if (value)
                *value = profile->offsets[i].value;
            return true;
        }
    return false;
}

/* ---- the node walker (sim/yamldoc.c) ------------------------------------ */

/* Every message names the field first: "version.build: ...". */
static const sim_yaml_wording wording = {
    .not_scalar = "%s: expected a scalar, got %s",
    .nul_in_scalar = "%s: NUL character in the value",
    .unknown_key = "unknown key \"%.64s\" in %s; known: ",
    .duplicate_key = "%s: key \"%s\" is given twice",
    .mark_cut = false,
};

typedef struct parser {
    sim_yaml_doc y;
    sim_profile *pr;
} parser;

/* ---- the strict value syntaxes --------------------------------------------- */

/*
 * A time in milliseconds: a whole number (ms), or a decimal with a unit —
 * "1500ms", "4.2s", "2m".  A value that is not a whole number of
 * milliseconds ("1.5ms") is refused rather than rounded.
 */
static bool parse_ms(const char *text, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}};
    const char *s = text;
    uint64_t whole = 0, frac = 0, scale = 1;

    if (!isdigit((unsigned char)*s))
        return false;
    for (; isdigit((unsigned char)*s); s++) {
        if (whole > 1000000000000ull)
            return false;
        whole = whole * 10 + (uint64_t)(*s - '0');
    }
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return false;
        for (; isdigit((unsigned char)*s); s++) {
            if (scale >= 1000000)
                return false;
            frac = frac * 10 + (uint64_t)(*s - '0');
            scale *= 10;
        }
    }
    if (*s == '\0')
        return scale == 1 && (*out = whole, true);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(s, units[i].unit) == 0) {
            if ((frac * units[i].ms) % scale != 0)
                return false;
            *out = whole * units[i].ms + frac * units[i].ms / scale;
            return true;
        }
    return false;
}

static int get_u64(parser *p, yaml_node_t *n, const char *what, uint64_t lo, uint64_t hi,
                   uint64_t *out)
{
    const char *text;
    int rc = sim_yaml_scalar(&p->y, n, what, &text);
    if (rc)
        return rc;
    if (!sim_yaml_parse_u64(text, out))
        return sim_yaml_fail(&p->y, n, "%s: \"%.40s\" is not a whole number (decimal or 0x hex)",
                             what, text);
    if (*out < lo || *out > hi)
        return sim_yaml_fail(&p->y, n, "%s: %s is out of range (%llu to %llu)", what, text,
                             (unsigned long long)lo, (unsigned long long)hi);
    return 0;
}

static int get_u32(parser *p, yaml_node_t *n, const char *what, uint32_t lo, uint32_t hi,
                   uint32_t *out)
{
    uint64_t v;
    int rc = get_u64(p, n, what, lo, hi, &v);
    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

static int get_ms(parser *p, yaml_node_t *n, const char *what, uint64_t max, uint64_t *out)
{
    const char *text;
    int rc = sim_yaml_scalar(&p->y, n, what, &text);
    if (rc)
        return rc;
    if (!parse_ms(text, out))
        return sim_yaml_fail(
            &p->y, n, "%s: \"%.40s\" is not a time (a number of ms, or e.g. 1500ms, 4.2s, 2m)",
            what, text);
    if (*out > max)
        return sim_yaml_fail(&p->y, n, "%s: %s is more than %llu ms", what, text,
                             (unsigned long long)max);
    return 0;
}

static int get_bool(parser *p, yaml_node_t *n, const char *what, bool *out)
{
    const char *text;
    int rc = sim_yaml_scalar(&p->y, n, what, &text);
    if (rc)
        return rc;
    if (strcmp(text, "true") == 0)
        *out = true;
    else if (strcmp(text, "false") == 0)
        *out = false;
    else
        return sim_yaml_fail(&p->y, n, "%s: expected true or false, got \"%.40s\"", what, text);
    return 0;
}

/* One of `names` (n of them); its index in *out. */
static int get_enum(parser *p, yaml_node_t *n, const char *what, const char *const *names,
                    size_t count, size_t *out)
{
    const char *text;
    int rc = sim_yaml_scalar(&p->y, n, what, &text);
    if (rc)
        return rc;
    for (size_t i = 0; i < count; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = i;
            return 0;
        }
    sim_yaml_fail(&p->y, n, "%s: unknown value \"%.40s\"; known: ", what, text);
    sim_yaml_append_list(p->y.err, p->y.errlen, names, count, false);
    return SIM_EFORMAT;
}

/* Text without control characters, shorter than `size`. */
static int get_text(parser *p, yaml_node_t *n, const char *what, size_t size,
                    const char **out)
{
    int rc = sim_yaml_scalar(&p->y, n, what, out);
    if (rc)
        return rc;
    size_t len = strlen(*out);
    if (len == 0)
        return sim_yaml_fail(&p->y, n, "%s: must not be empty", what);
    if (len >= size)
        return sim_yaml_fail(&p->y, n, "%s: %zu bytes long, at most %zu allowed", what, len,
                             size - 1);
    for (const unsigned char *s = (const unsigned char *)*out; *s; s++)
        if (*s < 0x20 || *s == 0x7F)
            return sim_yaml_fail(&p->y, n, "%s: control character in the value", what);
    return 0;
}

/* Text made only of letters, digits and the characters of `allowed`. */
static int get_word(parser *p, yaml_node_t *n, const char *what, size_t size,
                    const char *allowed, const char **out)
{
    int rc = get_text(p, n, what, size, out);
    if (rc)
        return rc;
    for (const char *s = *out; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(allowed, *s))
            return sim_yaml_fail(&p->y, n, "%s: \"%.64s\" may hold only letters, digits and \"%s\"",
                                 what, *out, allowed);
    return 0;
}

/* ---- sections ------------------------------------------------------------ */

static int parse_version(parser *p, yaml_node_t *n)
{
    static const char *const keys[] = {"major", "minor", "build", "ubr"};
    yaml_node_t *v[4];
    sim_profile *pr = p->pr;
    int rc = sim_yaml_fields(&p->y, n, "version", keys, 4, v, NULL);
    for (size_t i = 0; rc == 0 && i < 4; i++)
        if (!v[i])
            rc = sim_yaml_missing(&p->y, n, "version", keys[i]);
    if (rc == 0)
        rc = get_u32(p, v[0], "version.major", 5, 255, &pr->major);
    if (rc == 0)
        rc = get_u32(p, v[1], "version.minor", 0, 255, &pr->minor);
    if (rc == 0)
        rc = get_u32(p, v[2], "version.build", 1, 65535, &pr->build);
    if (rc == 0)
        rc = get_u32(p, v[3], "version.ubr", 0, UINT32_MAX, &pr->ubr);
    return rc;
}

static int parse_service_pack(parser *p, yaml_node_t *n)
{
    static const char *const keys[] = {"major", "minor"};
    yaml_node_t *v[2];
    uint32_t x;
    int rc = sim_yaml_fields(&p->y, n, "service_pack", keys, 2, v, NULL);
    if (rc == 0 && v[0] && (rc = get_u32(p, v[0], "service_pack.major", 0, 255, &x)) == 0)
        p->pr->sp_major = (uint16_t)x;
    if (rc == 0 && v[1] && (rc = get_u32(p, v[1], "service_pack.minor", 0, 255, &x)) == 0)
        p->pr->sp_minor = (uint16_t)x;
    return rc;
}

static int parse_pool(parser *p, yaml_node_t *n)
{
    static const char *const keys[] = {"kind", "zeroed"};
    static const char *const kinds[] = {"legacy", "segment-heap"};
    yaml_node_t *v[2];
    size_t kind;
    int rc = sim_yaml_fields(&p->y, n, "pool", keys, 2, v, NULL);
    for (size_t i = 0; rc == 0 && i < 2; i++)
        if (!v[i])
            rc = sim_yaml_missing(&p->y, n, "pool", keys[i]);
    if (rc == 0 && (rc = get_enum(p, v[0], "pool.kind", kinds, 2, &kind)) == 0)
        p->pr->pool = kind == 0 ? SIM_POOL_LEGACY : SIM_POOL_SEGMENT_HEAP;
    if (rc == 0)
        rc = get_bool(p, v[1], "pool.zeroed", &p->pr->pool_zeroed);
    return rc;
}

/* [lo, hi]: a canonical kernel-half range, aligned, at least `min` long. */
static int get_range(parser *p, yaml_node_t *n, const char *what, uint64_t min,
                     uint64_t *lo, uint64_t *hi)
{
    int rc = sim_yaml_expect(&p->y, n, YAML_SEQUENCE_NODE, what);
    if (rc)
        return rc;
    if (n->data.sequence.items.top - n->data.sequence.items.start != 2)
        return sim_yaml_fail(&p->y, n, "%s: expected two addresses [lo, hi]", what);
    yaml_node_t *a = sim_yaml_node(&p->y, n->data.sequence.items.start[0]);
    yaml_node_t *b = sim_yaml_node(&p->y, n->data.sequence.items.start[1]);
    if (!a || !b)
        return sim_yaml_fail(&p->y, n, "%s: malformed list", what);
    if ((rc = get_u64(p, a, what, 0, UINT64_MAX, lo)) ||
        (rc = get_u64(p, b, what, 0, UINT64_MAX, hi)))
        return rc;
    if (*lo < KERNEL_HALF)
        return sim_yaml_fail(&p->y, a,
                             "%s: 0x%llx is not a canonical kernel address "
                             "(0xffff800000000000 and up)", what, (unsigned long long)*lo);
    if (*lo % LAYOUT_ALIGN || *hi % LAYOUT_ALIGN)
        return sim_yaml_fail(&p->y, *lo % LAYOUT_ALIGN ? a : b,
                             "%s: addresses must be 64 KiB aligned", what);
    if (*hi <= *lo)
        return sim_yaml_fail(&p->y, b, "%s: the end 0x%llx is not above the start 0x%llx", what,
                             (unsigned long long)*hi, (unsigned long long)*lo);
    if (*hi - *lo < min)
        return sim_yaml_fail(&p->y, n, "%s: the range is %llu MiB, at least %llu MiB needed", what,
                             (unsigned long long)((*hi - *lo) / MIB),
                             (unsigned long long)(min / MIB));
    return 0;
}

static bool overlaps(uint64_t a, uint64_t asize, uint64_t b, uint64_t bsize)
{
    return a < b + bsize && b < a + asize;
}

/* The pool window sim maps must not land on fleetsim's own kernel regions. */
static const char *pool_collision(uint64_t lo)
{
    static const struct {
        uint64_t base, size;
        const char *name;
    } fixed[] = {
        {SIM__NT_BASE, SIM__NT_SIZE, "nt"},
        {SIM__NTDATA_BASE, SIM__NTDATA_SIZE, "nt data"},
        {SIM__KUSD_BASE, 0x1000, "KUSER_SHARED_DATA"},
        {SIM__STACK_GUARD, SIM__STACK_TOP - SIM__STACK_GUARD, "the kernel stack"},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (overlaps(lo, SIM__POOL_WINDOW, fixed[i].base, fixed[i].size))
            return fixed[i].name;
    return NULL;
}

static int parse_layout(parser *p, yaml_node_t *n)
{
    static const char *const keys[] = {"image", "pool", "kaslr_slots"};
    yaml_node_t *v[3];
    sim_profile *pr = p->pr;
    const char *clash;
    int rc = sim_yaml_fields(&p->y, n, "layout", keys, 3, v, NULL);
    for (size_t i = 0; rc == 0 && i < 3; i++)
        if (!v[i])
            rc = sim_yaml_missing(&p->y, n, "layout", keys[i]);
    if (rc == 0)
        rc = get_range(p, v[0], "layout.image", MIN_IMAGE_RANGE, &pr->image_lo, &pr->image_hi);
    if (rc == 0)
        rc = get_range(p, v[1], "layout.pool", MIN_POOL_RANGE, &pr->pool_lo, &pr->pool_hi);
    if (rc == 0 && overlaps(pr->image_lo, pr->image_hi - pr->image_lo, pr->pool_lo,
                            pr->pool_hi - pr->pool_lo))
        rc = sim_yaml_fail(&p->y, v[1], "layout.pool: overlaps layout.image");
    if (rc == 0 && (clash = pool_collision(pr->pool_lo)) != NULL)
        rc = sim_yaml_fail(&p->y, v[1], "layout.pool: its first %llu MiB overlap fleetsim's %s",
                           (unsigned long long)(SIM__POOL_WINDOW / MIB), clash);
    /* Stale pool words point at these pages; mapped, they would make a
     * read through one succeed or fault by what the engine ran before. */
    if (rc == 0 && sim__holds_stale_page(pr->image_lo, pr->image_hi - pr->image_lo))
        rc = sim_yaml_fail(&p->y, v[0], "layout.image: the range holds " STALE_PAGES);
    if (rc == 0 && sim__holds_stale_page(pr->pool_lo, SIM__POOL_WINDOW))
        rc = sim_yaml_fail(&p->y, v[1], "layout.pool: its first %llu MiB (the window fleetsim "
                           "maps) hold " STALE_PAGES, (unsigned long long)(SIM__POOL_WINDOW / MIB));
    if (rc == 0)
        rc = get_u32(p, v[2], "layout.kaslr_slots", 1, MAX_KASLR_SLOTS, &pr->kaslr_slots);
    return rc;
}

static int parse_absent(parser *p, yaml_node_t *n)
{
    sim_profile *pr = p->pr;
    int rc = sim_yaml_expect(&p->y, n, YAML_SEQUENCE_NODE, "absent_exports");
    if (rc)
        return rc;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = sim_yaml_node(&p->y, *it);
        const char *name;
        if (!e)
            return sim_yaml_fail(&p->y, n, "absent_exports: malformed list");
        if (pr->nabsent == SIM_PROFILE_MAX_ABSENT)
            return sim_yaml_fail(&p->y, e, "absent_exports: more than %d names",
                                 SIM_PROFILE_MAX_ABSENT);
        if ((rc = get_word(p, e, "absent_exports", sizeof ((sim_import *)0)->name, "_",
                           &name)))
            return rc;
        if (!sim_profile_has_export(pr, name))
            return sim_yaml_fail(&p->y, e, "absent_exports: \"%s\" is listed twice", name);
        if (!(pr->absent[pr->nabsent] = sim_strdup(name)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
        pr->nabsent++;
    }
    return 0;
}

static int parse_offsets(parser *p, yaml_node_t *n)
{
    sim_profile *pr = p->pr;
    int rc = sim_yaml_expect(&p->y, n, YAML_MAPPING_NODE, "offsets");
    if (rc)
        return rc;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = sim_yaml_node(&p->y, pair->key), *v = sim_yaml_node(&p->y, pair->value);
        const char *name;
        uint32_t value;
        if (!k || !v)
            return sim_yaml_fail(&p->y, n, "offsets: malformed mapping");
        if (pr->noffsets == SIM_PROFILE_MAX_OFFSETS)
            return sim_yaml_fail(&p->y, k, "offsets: more than %d offsets",
                                 SIM_PROFILE_MAX_OFFSETS);
        if ((rc = get_word(p, k, "offsets", sizeof pr->offsets[0].name, "_.", &name)))
            return rc;
        if (sim_profile_offset(pr, name, NULL))
            return sim_yaml_fail(&p->y, k, "offsets: \"%s\" is given twice", name);
        if ((rc = get_u32(p, v, "offsets", 0, MAX_OFFSET_VALUE, &value)))
            return rc;
        memcpy(pr->offsets[pr->noffsets].name, name, strlen(name) + 1);
        pr->offsets[pr->noffsets].value = value;
        pr->noffsets++;
    }
    return 0;
}

static const char *const event_kinds[] = {
#define XX(name, str) str,
    SIM_EVENT_MAP(XX)
#undef XX
};

static int parse_event(parser *p, yaml_node_t *n, sim_event *ev)
{
    static const char *const keys[] = {"kind", "at", "name", "pid", "parent_pid"};
    yaml_node_t *v[5];
    const char *name;
    size_t kind;
    int rc = sim_yaml_fields(&p->y, n, "events[]", keys, 5, v, NULL);
    if (rc)
        return rc;
    if (!v[0])
        return sim_yaml_missing(&p->y, n, "events[]", "kind");
    if (!v[1])
        return sim_yaml_missing(&p->y, n, "events[]", "at");
    if ((rc = get_enum(p, v[0], "events[].kind", event_kinds, SIM_EVENT_COUNT, &kind)))
        return rc;
    ev->kind = (sim_event_kind)kind;
    if ((rc = get_ms(p, v[1], "events[].at", MAX_EVENT_MS, &ev->at_ms)))
        return rc;
    /* What each kind needs: a process has an id, everything but an exit a path. */
    bool process = ev->kind == SIM_EVENT_PROCESS_CREATE || ev->kind == SIM_EVENT_PROCESS_EXIT;
    if (!v[2] && ev->kind != SIM_EVENT_PROCESS_EXIT)
        return sim_yaml_missing(&p->y, n, "events[]", "name");
    if (!v[3] && process)
        return sim_yaml_missing(&p->y, n, "events[]", "pid");
    if (v[2]) {
        if ((rc = get_text(p, v[2], "events[].name", SIM__PROFILE_MAX_EVENT_NAME, &name)))
            return rc;
        if (!(ev->name = sim_strdup(name)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
    }
    if (v[3] && (rc = get_u32(p, v[3], "events[].pid", 0, UINT32_MAX, &ev->pid)))
        return rc;
    if (v[4] && (rc = get_u32(p, v[4], "events[].parent_pid", 0, UINT32_MAX, &ev->parent_pid)))
        return rc;
    return 0;
}

static int parse_events(parser *p, yaml_node_t *n)
{
    sim_profile *pr = p->pr;
    int rc = sim_yaml_expect(&p->y, n, YAML_SEQUENCE_NODE, "events");
    if (rc)
        return rc;
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count > SIM__PROFILE_MAX_EVENTS)
        return sim_yaml_fail(&p->y, n, "events: %zu events, at most %d allowed", count,
                             SIM__PROFILE_MAX_EVENTS);
    if (count == 0)
        return 0;
    sim_event *events = sim_calloc(count, sizeof *events);
    if (!events)
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    /* Owned by the profile from here: destroy frees what was filled in. */
    pr->events = events;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *e = sim_yaml_node(&p->y, n->data.sequence.items.start[i]);
        if (!e)
            return sim_yaml_fail(&p->y, n, "events: malformed list");
        pr->nevents = i + 1;
        if ((rc = parse_event(p, e, &events[i])))
            return rc;
    }
    return 0;
}

static int parse_root(parser *p, yaml_node_t *root)
{
    enum {
        NAME, DISPLAY, VERSION, SERVICE_PACK, CSD, PRODUCT_TYPE, POOL, LAYOUT, BOOT_MS,
        EVENT_JITTER, ABSENT, OFFSETS, EVENTS, NKEYS
    };
    static const char *const keys[NKEYS] = {
        "name", "display", "version", "service_pack", "csd", "product_type", "pool",
        "layout", "boot_ms", "event_jitter", "absent_exports", "offsets", "events",
    };
    static const char *const products[] = {"workstation", "domain-controller", "server"};
    yaml_node_t *v[NKEYS];
    sim_profile *pr = p->pr;
    const char *text;
    uint64_t ms;
    size_t product;
    int rc = sim_yaml_fields(&p->y, root, "the profile", keys, NKEYS, v, NULL);
    if (rc)
        return rc;
    static const int required[] = {NAME, DISPLAY, VERSION, POOL, LAYOUT};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!v[required[i]])
            return sim_yaml_missing(&p->y, root, "the profile", keys[required[i]]);

    if ((rc = get_word(p, v[NAME], "name", sizeof pr->name, "-_.", &text)))
        return rc;
    memcpy(pr->name, text, strlen(text) + 1);
    if ((rc = get_text(p, v[DISPLAY], "display", sizeof pr->display, &text)))
        return rc;
    memcpy(pr->display, text, strlen(text) + 1);
    if ((rc = parse_version(p, v[VERSION])))
        return rc;
    if (v[SERVICE_PACK] && (rc = parse_service_pack(p, v[SERVICE_PACK])))
        return rc;
    if (v[CSD]) {
        /* An empty CSD version is what a build without a service pack has. */
        if ((rc = sim_yaml_scalar(&p->y, v[CSD], "csd", &text)))
            return rc;
        if (text[0] && (rc = get_text(p, v[CSD], "csd", sizeof pr->csd, &text)))
            return rc;
        memcpy(pr->csd, text, strlen(text) + 1);
    }
    pr->product_type = 1;
    if (v[PRODUCT_TYPE]) {
        if ((rc = get_enum(p, v[PRODUCT_TYPE], "product_type", products, 3, &product)))
            return rc;
        pr->product_type = (uint16_t)(product + 1); /* VER_NT_WORKSTATION = 1, ... */
    }
    if ((rc = parse_pool(p, v[POOL])) || (rc = parse_layout(p, v[LAYOUT])))
        return rc;
    if (v[BOOT_MS]) {
        if ((rc = get_ms(p, v[BOOT_MS], "boot_ms", MAX_BOOT_MS, &ms)))
            return rc;
        pr->boot_ms = (uint32_t)ms;
    }
    if (v[EVENT_JITTER]) {
        if ((rc = get_ms(p, v[EVENT_JITTER], "event_jitter", MAX_JITTER_MS, &ms)))
            return rc;
        pr->event_jitter_ms = (uint32_t)ms;
    }
    if (v[ABSENT] && (rc = parse_absent(p, v[ABSENT])))
        return rc;
    if (v[OFFSETS] && (rc = parse_offsets(p, v[OFFSETS])))
        return rc;
    if (v[EVENTS] && (rc = parse_events(p, v[EVENTS])))
        return rc;
    return 0;
}

/* ---- loading ------------------------------------------------------------- */

void sim_profile_destroy(sim_profile *profile)
{
    /* The built-in profile is not ours to free; accepting it keeps callers simple. */
    if (!profile || profile == &default_profile)
        return;
    for (size_t i = 0; i < profile->nabsent && i < SIM_PROFILE_MAX_ABSENT; i++)
        sim_free((void *)(uintptr_t)profile->absent[i]);
    for (size_t i = 0; profile->events && i < profile->nevents; i++)
        sim_free((void *)(uintptr_t)profile->events[i].name);
    sim_free((void *)(uintptr_t)profile->events);
    sim_free(profile);
}

void sim_profile_list_destroy(sim_profile **list, size_t count)
{
    for (size_t i = 0; list && i < count; i++)
        sim_profile_destroy(list[i]);
    sim_free(list);
}

int sim__profile_parse(const char *text, size_t len, const char *path, sim_profile **out,
                       char *err, size_t errlen)
{
    if (!out || (!text && len) || !path || !err || errlen == 0)
        return SIM_EINVAL;
    *out = NULL;
    err[0] = '\0';
    if (strlen(path) >= sizeof ((sim_profile *)0)->source) {
        snprintf(err, errlen, "%.200s...: path longer than %zu bytes", path,
                 sizeof ((sim_profile *)0)->source - 1);
        return SIM_EINVAL;
    }
    if (len > SIM__PROFILE_MAX_BYTES)
        return sim_yaml_report(err, errlen, path, 1, 1, "%zu bytes; a profile may have at most %u",
                               len, SIM__PROFILE_MAX_BYTES);

    sim_profile *pr = sim_calloc(1, sizeof *pr);
    if (!pr)
        return sim_yaml_nomem(err, errlen);
    memcpy(pr->source, path, strlen(path) + 1);

    yaml_parser_t yp;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&yp)) {
        sim_free(pr);
        return sim_yaml_nomem(err, errlen);
    }
    yaml_parser_set_input_string(&yp, (const unsigned char *)(text ? text : ""), len);
    int rc;
    if (!yaml_parser_load(&yp, &doc)) {
        rc = sim_yaml_parser_error(&yp, path, text, len, err, errlen);
        yaml_parser_delete(&yp);
        sim_profile_destroy(pr);
        return rc;
    }
    parser p = {{path, &doc, err, errlen, &wording}, pr};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        rc = sim_yaml_report(err, errlen, path, 1, 1, "empty profile");
    else if (root->type != YAML_MAPPING_NODE)
        rc = sim_yaml_fail(&p.y, root, "the profile: expected a mapping of keys, got %s",
                           sim_yaml_kind_name(root));
    else
        rc = parse_root(&p, root);
    yaml_document_delete(&doc);
    if (rc == 0) {
        /* One document per file: a second one is most likely a mistake. */
        if (!yaml_parser_load(&yp, &doc)) {
            rc = sim_yaml_parser_error(&yp, path, text, len, err, errlen);
        } else {
            yaml_node_t *second = yaml_document_get_root_node(&doc);
            if (second)
                rc = sim_yaml_fail(&p.y, second, "only one YAML document is allowed in a profile");
            yaml_document_delete(&doc);
        }
    }
    yaml_parser_delete(&yp);
    if (rc != 0) {
        sim_profile_destroy(pr);
        return rc;
    }
    *out = pr;
    return 0;
}

/* Read all of `path`, up to the profile size limit (one byte more tells). */
static int read_file(const char *path, char **data, size_t *size, char *err, size_t errlen)
{
    int rc = sim_read_file(path, SIM__PROFILE_MAX_BYTES, (uint8_t **)data, size);
    if (rc == SIM_ENOMEM)
        return sim_yaml_nomem(err, errlen);
    if (rc == SIM_ERANGE)
        return sim_yaml_report(err, errlen, path, 1, 1, "more than %u bytes; a profile may have at most %u",
                               SIM__PROFILE_MAX_BYTES, SIM__PROFILE_MAX_BYTES);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
        return SIM_EIO;
    }
    return 0;
}

int sim_profile_load(const char *path, sim_profile **out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (!path || !out || !err || errlen == 0)
        return SIM_EINVAL;
    *out = NULL;
    err[0] = '\0';
    if ((rc = read_file(path, &text, &len, err, errlen)))
        return rc;
    rc = sim__profile_parse(text, len, path, out, err, errlen);
    sim_free(text);
    return rc;
}

static int cmp_profile(const void *a, const void *b)
{
    return strcmp((*(sim_profile *const *)a)->name, (*(sim_profile *const *)b)->name);
}

int sim_profile_load_dir(const char *dir, sim_profile ***out, size_t *count, char *err,
                         size_t errlen)
{
    char **names = NULL;
    size_t nnames = 0, n = 0;
    sim_profile **list = NULL;
    int rc;

    if (!dir || !out || !count || !err || errlen == 0)
        return SIM_EINVAL;
    *out = NULL;
    *count = 0;
    err[0] = '\0';
    /* Sorted, so loading (and its errors) is reproducible. */
    if ((rc = sim_list_dir(dir, "", ".yaml", SIM__PROFILE_MAX_FILES, &names, &nnames, err,
                           errlen)))
        return rc;
    if (nnames && !(list = sim_calloc(nnames, sizeof *list)))
        rc = sim_yaml_nomem(err, errlen);
    for (size_t i = 0; rc == 0 && i < nnames; i++) {
        char path[sizeof list[0]->source];
        int w = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (w < 0 || (size_t)w >= sizeof path) {
            snprintf(err, errlen, "%.200s/%.40s: path longer than %zu bytes", dir, names[i],
                     sizeof path - 1);
            rc = SIM_EINVAL;
            break;
        }
        if ((rc = sim_profile_load(path, &list[n], err, errlen)))
            break;
        /* Names are how scenarios and --profile find a profile: one file each. */
        for (size_t j = 0; j < n; j++)
            if (strcmp(list[j]->name, list[n]->name) == 0) {
                snprintf(err, errlen, "%s: profile name \"%s\" is already used by %s", path,
                         list[n]->name, list[j]->source);
                rc = SIM_EFORMAT;
            }
        n++;
    }
    sim_list_free(names, nnames);
    if (rc) {
        sim_profile_list_destroy(list, n);
        return rc;
    }
    if (n)
        qsort(list, n, sizeof *list, cmp_profile);
    *out = list;
    *count = n;
    return 0;
}

/* ---- an endpoint's event stream --------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/*
 * Each event's time moves by a uniform draw in [-jitter, +jitter] (never
 * before 0), one draw per event in file order, so an endpoint's stream
 * depends only on (profile, seed).  The result is the first `max` events by
 * (time, file index): an insertion into a bounded sorted array, which keeps
 * equal times in file order and needs no memory of its own — this runs once
 * per endpoint run.  Streams are nearly sorted already, so insertion is
 * close to linear.
 */
size_t sim_profile_events(const sim_profile *profile, uint64_t seed, sim_event *out,
                          size_t max)
{
    if (!profile || !out || max == 0 || !profile->events)
        return 0;
    /* A constant apart from the engine's own draws from the same seed. */
    uint64_t state = seed ^ 0xE7E175EED0C0FFEEull;
    uint64_t jitter = profile->event_jitter_ms;
    size_t n = 0;

    for (size_t i = 0; i < profile->nevents; i++) {
        sim_event ev = profile->events[i];
        uint64_t r = splitmix64(&state);
        if (jitter) {
            uint64_t d = r % (2 * jitter + 1);
            ev.at_ms = d >= jitter ? ev.at_ms + (d - jitter)
                       : ev.at_ms > jitter - d ? ev.at_ms - (jitter - d)
                                               : 0;
        }
        if (n == max && out[n - 1].at_ms <= ev.at_ms)
            continue; /* later than everything kept, or a tie after it */
        size_t at = n < max ? n++ : max - 1;
        while (at > 0 && out[at - 1].at_ms > ev.at_ms) {
            out[at] = out[at - 1];
            at--;
        }
        out[at] = ev;
    }
    return n;
}
