/*
 * scenario_names.c — names of the fleet's cohorts, looked up and checked:
 * a sorted index over a list (a million tenants are allowed), the repeat
 * check every table gets, and the binding of online curves and ring
 * selectors to the fleet's names once the fleet is known
 * (scenario__finish, after the YAML and the inventory).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario-internal.h"
#include "sim.h"
#include "yamldoc.h"

/*
 * A list's names sorted (by name, then by place in the list): finding a
 * name, or a repeated one, in O(log n) rather than a scan per name, since
 * lists may hold up to a million tenants.
 */
typedef struct name_index {
    const scenario_name **by_name;
    size_t count;
} name_index;

static int cmp_name_ptr(const void *a, const void *b)
{
    const scenario_name *x = *(const scenario_name *const *)a;
    const scenario_name *y = *(const scenario_name *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x > y) - (x < y);
}

static bool name_index_build(const scenario_names *l, name_index *ix)
{
    ix->count = l->count;
    ix->by_name = sim_calloc(l->count ? l->count : 1, sizeof *ix->by_name);
    if (!ix->by_name)
        return false;
    for (size_t i = 0; i < l->count; i++)
        ix->by_name[i] = &l->items[i];
    qsort(ix->by_name, l->count, sizeof *ix->by_name, cmp_name_ptr);
    return true;
}

/* The position in the list of `name`'s first entry, or -1. */
static ptrdiff_t name_index_find(const name_index *ix, const scenario_names *l, const char *name)
{
    size_t lo = 0, hi = ix->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix->by_name[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < ix->count && strcmp(ix->by_name[lo]->name, name) == 0)
        return ix->by_name[lo] - l->items;
    return -1;
}

bool scenario__repeated_name(const scenario_names *l, const scenario_name **repeat)
{
    name_index ix;
    *repeat = NULL;
    if (!name_index_build(l, &ix))
        return false;
    for (size_t i = 1; i < ix.count; i++)
        if (strcmp(ix.by_name[i]->name, ix.by_name[i - 1]->name) == 0 &&
            (!*repeat || ix.by_name[i] < *repeat))
            *repeat = ix.by_name[i];
    sim_free(ix.by_name);
    return true;
}

/* Resolve each where ring's values to the fleet's attribute indices. */
static int bind_rings(scenario *s, char *err, size_t errlen)
{
    name_index ix[SCENARIO_ATTR_COUNT] = {{0}}; /* built for the attributes rings use */
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s->nplans; i++)
        for (size_t r = 0; rc == 0 && r < s->plans[i].nrings; r++) {
            scenario_ring *ring = &s->plans[i].rings[r];
            if (ring->where_attr < 0)
                continue;
            const scenario_names *names = &s->attrs[ring->where_attr];
            name_index *by_name = &ix[ring->where_attr];
            sim_free(ring->where_index);
            if (!(ring->where_index = sim_calloc(ring->where.count, sizeof *ring->where_index)) ||
                (!by_name->by_name && !name_index_build(names, by_name))) {
                rc = sim_yaml_nomem(err, errlen);
                break;
            }
            for (size_t w = 0; rc == 0 && w < ring->where.count; w++) {
                const scenario_name *want = &ring->where.items[w];
                ptrdiff_t k = name_index_find(by_name, names, want->name);
                if (k < 0)
                    rc = scenario__report(err, errlen, want->mark,
                                          "ring %s: no %s \"%s\" in the fleet", ring->name,
                                          scenario_attr_name((scenario_attr)ring->where_attr),
                                          want->name);
                else
                    ring->where_index[w] = (uint32_t)k;
            }
        }
    for (size_t a = 0; a < SCENARIO_ATTR_COUNT; a++)
        sim_free(ix[a].by_name);
    return rc;
}

/*
 * Bind the online curves to the fleet's regions: every curve names a region
 * of the fleet, and every region has a curve (its own or the default).
 */
static int bind_online(scenario *s, const name_index *by_region, const name_index *by_curve,
                       char *err, size_t errlen)
{
    const scenario_names *regions = &s->attrs[SCENARIO_ATTR_REGION];
    for (size_t i = 0; i < s->online_names.count; i++) {
        const scenario_name *o = &s->online_names.items[i];
        if (name_index_find(by_region, regions, o->name) < 0) {
            scenario__report(err, errlen, o->mark,
                             "connectivity.online: \"%s\" is not a region of the "
                             "fleet; regions: ", o->name);
            for (size_t j = 0; j < regions->count && strlen(err) + 1 < errlen; j++)
                snprintf(err + strlen(err), errlen - strlen(err), "%s%s", j ? ", " : "",
                         regions->items[j].name);
            return SIM_EFORMAT;
        }
    }
    sim_free(s->online);
    if (!(s->online = sim_calloc(regions->count, sizeof *s->online)))
        return sim_yaml_nomem(err, errlen);
    for (size_t r = 0; r < regions->count; r++) {
        const float *curve = NULL;
        ptrdiff_t given = name_index_find(by_curve, &s->online_names, regions->items[r].name);
        if (given >= 0)
            curve = s->online_given[given];
        if (!curve && s->has_online_default)
            curve = s->online_default;
        if (!curve && s->online_names.count > 0)
            return scenario__report(err, errlen, regions->items[r].mark,
                                    "region \"%s\" has no connectivity.online curve (and "
                                    "there is no \"default\")", regions->items[r].name);
        for (int h = 0; h < 24; h++)
            s->online[r][h] = curve ? curve[h] : 1.0f;
    }
    return 0;
}

int scenario__finish(scenario *s, char *err, size_t errlen)
{
    /* An endpoint holds the files on disk and, once it has it, the update
     * or the revert: all of them must fit in a run. */
    const scenario_content_list *later =
        s->revert_content.count > s->update_content.count ? &s->revert_content
                                                          : &s->update_content;
    if (s->on_disk.count + later->count > SCENARIO_MAX_FILES) {
        bool on_disk = s->on_disk.count > SCENARIO_MAX_FILES;
        const scenario_content *c = on_disk ? &s->on_disk.items[SCENARIO_MAX_FILES]
                                            : &later->items[SCENARIO_MAX_FILES -
                                                            s->on_disk.count];
        return scenario__report(err, errlen, c->mark,
                                "\"%s\": more than %u content files on an endpoint (%zu on "
                                "disk, %zu delivered with the %s)", c->file,
                                SCENARIO_MAX_FILES, s->on_disk.count, later->count,
                                later == &s->revert_content ? "revert" : "update");
    }
    const scenario_names *regions = &s->attrs[SCENARIO_ATTR_REGION];
    name_index by_region, by_curve;
    if (!name_index_build(regions, &by_region))
        return sim_yaml_nomem(err, errlen);
    if (!name_index_build(&s->online_names, &by_curve)) {
        sim_free(by_region.by_name);
        return sim_yaml_nomem(err, errlen);
    }
    int rc = bind_online(s, &by_region, &by_curve, err, errlen);
    sim_free(by_region.by_name);
    sim_free(by_curve.by_name);
    return rc ? rc : bind_rings(s, err, errlen);
}

