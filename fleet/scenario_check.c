/*
 * scenario_check.c — what is done to a parsed scenario with knowledge from
 * outside it: its names checked against the profiles and sensor versions the
 * caller loaded, its content files found on disk, and the command line's
 * overrides (--fleet-size, --seed, --duration) applied.
 *
 * The parser (scenario.c) knows only the file; these steps need the
 * catalog or the command line, so the caller runs them after loading, and
 * their messages still point at the scenario's line through the marks the
 * parser kept.
 */
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "scenario-internal.h"
#include "sim.h"
#include "yamldoc.h"

static int check_names(const scenario_names *names, const char *what,
                       const char *const *known, size_t nknown, char *err, size_t errlen)
{
    if (!known)
        return 0;
    for (size_t i = 0; i < names->count; i++) {
        size_t j = 0;
        while (j < nknown && strcmp(known[j], names->items[i].name) != 0)
            j++;
        if (j < nknown)
            continue;
        scenario__report(err, errlen, names->items[i].mark, "unknown %s \"%s\"; known: ", what,
                         names->items[i].name);
        if (nknown == 0)
            snprintf(err + strlen(err), errlen - strlen(err), "(none)");
        sim_yaml_append_list(err, errlen, known, nknown, true);
        return SIM_EFORMAT;
    }
    return 0;
}

int scenario_check(const scenario *s, const scenario_catalog *catalog, char *err,
                   size_t errlen)
{
    if (!s || !catalog || !err || errlen == 0)
        return SIM_EINVAL;
    err[0] = '\0';
    int rc = check_names(&s->attrs[SCENARIO_ATTR_PROFILE], "profile", catalog->profiles,
                         catalog->nprofiles, err, errlen);
    if (rc == 0)
        rc = check_names(&s->attrs[SCENARIO_ATTR_SENSOR], "sensor version", catalog->sensors,
                         catalog->nsensors, err, errlen);
    return rc;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The one file `pattern` names in `dir` (NULL dir: pattern as is); 0 found,
 * 1 not here, negative error. */
static int find_in(const char *dir, const scenario_content *c, char **found, char *err,
                   size_t errlen)
{
    size_t n = (dir ? strlen(dir) + 1 : 0) + strlen(c->file) + 1;
    char *path = sim_malloc(n);
    if (!path)
        return sim_yaml_nomem(err, errlen);
    snprintf(path, n, "%s%s%s", dir ? dir : "", dir ? "/" : "", c->file);
    if (!strpbrk(c->file, "*?[")) {
        if (is_file(path)) {
            *found = path;
            return 0;
        }
        sim_free(path);
        return 1;
    }
    glob_t g;
    int grc = glob(path, 0, NULL, &g);
    sim_free(path);
    if (grc == GLOB_NOMATCH)
        return 1;
    if (grc != 0)
        return grc == GLOB_NOSPACE ? sim_yaml_nomem(err, errlen)
                                   : scenario__report(err, errlen, c->mark,
                                                      "cannot search for \"%s\"", c->file);
    int rc;
    if (g.gl_pathc == 1) {
        rc = (*found = sim_strdup(g.gl_pathv[0])) ? 0 : sim_yaml_nomem(err, errlen);
    } else {
        scenario__report(err, errlen, c->mark, "content \"%s\" matches %zu files, not one: ",
                         c->file, (size_t)g.gl_pathc);
        sim_yaml_append_list(err, errlen, (const char *const *)g.gl_pathv, g.gl_pathc, true);
        rc = SIM_EFORMAT;
    }
    globfree(&g);
    return rc;
}

static int resolve_one(const scenario *s, const scenario_catalog *catalog, scenario_content *c,
                       char *err, size_t errlen)
{
    char *found = NULL;
    int rc = find_in(c->file[0] == '/' ? NULL : s->dir, c, &found, err, errlen);
    for (size_t i = 0; rc == 1 && c->file[0] != '/' && catalog && i < catalog->ncontent_dirs; i++)
        rc = find_in(catalog->content_dirs[i], c, &found, err, errlen);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        scenario__report(err, errlen, c->mark, "content \"%s\" not found in %s", c->file, s->dir);
        for (size_t i = 0; catalog && i < catalog->ncontent_dirs; i++)
            snprintf(err + strlen(err), errlen - strlen(err), ", %s", catalog->content_dirs[i]);
        return SIM_ENOENT;
    }
    sim_free(c->path);
    c->path = found;
    return 0;
}

int scenario_resolve_content(scenario *s, const scenario_catalog *catalog, char *err,
                             size_t errlen)
{
    if (!s || !err || errlen == 0)
        return SIM_EINVAL;
    err[0] = '\0';
    scenario_content_list *lists[] = {&s->on_disk, &s->update_content, &s->revert_content};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < lists[l]->count; i++) {
            int rc = resolve_one(s, catalog, &lists[l]->items[i], err, errlen);
            if (rc)
                return rc;
        }
    return 0;
}

int scenario_override(scenario *s, const char *key, const char *value, char *err,
                      size_t errlen)
{
    if (!s || !key || !value || !err || errlen == 0)
        return SIM_EINVAL;
    err[0] = '\0';
    uint64_t v;
    if (strcmp(key, "fleet-size") == 0) {
        if (s->inventory) {
            snprintf(err, errlen, "--fleet-size: the fleet is the inventory %s; its size "
                                  "cannot be changed", s->inventory);
            return SIM_EINVAL;
        }
        if (!sim_yaml_parse_u64(value, &v) || v < 1 || v > SCENARIO_MAX_FLEET) {
            snprintf(err, errlen, "--fleet-size: expected a whole number from 1 to %u, got "
                                  "\"%s\"", SCENARIO_MAX_FLEET, value);
            return SIM_EINVAL;
        }
        s->fleet_size = v;
        return 0;
    }
    if (strcmp(key, "seed") == 0) {
        if (!sim_yaml_parse_u64(value, &v)) {
            snprintf(err, errlen, "--seed: expected a whole number (decimal or 0x hex) that "
                                  "fits in 64 bits, got \"%s\"", value);
            return SIM_EINVAL;
        }
        s->seed = v;
        return 0;
    }
    if (strcmp(key, "duration") == 0) {
        if (!scenario_parse_duration(value, &v) || v == 0) {
            snprintf(err, errlen, "--duration: expected a duration (up to 100 years) such as "
                                  "\"12h\" or \"1h30m\", got \"%s\"", value);
            return SIM_EINVAL;
        }
        if ((uint64_t)s->release_ms >= v) {
            snprintf(err, errlen, "--duration: %s ends before the update is released (%lld "
                                  "ms after start)", value, (long long)s->release_ms);
            return SIM_EINVAL;
        }
        s->duration_ms = v;
        return 0;
    }
    snprintf(err, errlen, "unknown override \"%s\"; known: fleet-size, seed, duration", key);
    return SIM_EINVAL;
}
