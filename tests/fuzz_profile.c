/*
 * fuzz_profile.c — fuzz target of the profile parser.
 *
 * An input is profile YAML.  Whatever the bytes, sim__profile_parse must
 * return (no crash, no hang, no leak) with a message when it refuses; when
 * it accepts, what the emulator relies on must hold: strings terminated
 * within their buffers, counts within their caps, ranges canonical and
 * ordered, and an event stream drawn from it sorted and within bounds.
 *
 * Without libFuzzer, fuzz_main.c replays the *.yaml files and directories
 * named on the command line (the test passes sim/profiles/), then runs a
 * deterministic mutation pass over them with YAML-minded mutations: text
 * edits and tokens that steer YAML and the profile schema into corners.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "profile-internal.h"
#include "sim.h"

static void check(const sim_profile *p)
{
    if (!memchr(p->name, 0, sizeof p->name) || !memchr(p->display, 0, sizeof p->display) ||
        !memchr(p->csd, 0, sizeof p->csd) || !memchr(p->source, 0, sizeof p->source) ||
        p->nabsent > SIM_PROFILE_MAX_ABSENT || p->noffsets > SIM_PROFILE_MAX_OFFSETS ||
        p->nevents > SIM__PROFILE_MAX_EVENTS || p->image_lo >= p->image_hi ||
        p->pool_lo >= p->pool_hi || p->image_lo < 0xFFFF800000000000ull ||
        p->kaslr_slots < 1 || p->kaslr_slots > 64 || (p->nevents && !p->events))
        abort();
    for (size_t i = 0; i < p->nabsent; i++)
        if (!p->absent[i] || sim_profile_has_export(p, p->absent[i]))
            abort();
    static sim_event out[SIM__PROFILE_MAX_EVENTS];
    size_t n = sim_profile_events(p, 7, out, SIM__PROFILE_MAX_EVENTS);
    if (n != p->nevents)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned)out[i].kind >= SIM_EVENT_COUNT || (i && out[i - 1].at_ms > out[i].at_ms))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sim_profile *p = NULL;
    char err[512];
    err[0] = 'x';
    int rc = sim__profile_parse((const char *)data, size, "fuzz.yaml", &p, err, sizeof err);
    if (rc != 0) {
        if (p != NULL || memchr(err, 0, sizeof err) == NULL || err[0] == '\0')
            abort();
        return 0;
    }
    check(p);
    sim_profile_destroy(p);
    return 0;
}

#ifndef FLEETSIM_LIBFUZZER

/* Tokens that steer YAML and the profile schema into their corners. */
static const char *const tokens[] = {
    ":", ": ", "- ", "\n", "\n  ", "{", "}", "[", "]", ",", "\"", "'", "#", "&a ", "*a",
    "!!str ", "? ", "|\n  ", "---\n", "...\n", "\t", "0x", "-", "0xFFFFFFFFFFFFFFFF",
    "99999999999999999999", "4.2s", "1.5ms", "2m", "0", "65", "true", "no", "~",
    "kind: ", "at: ", "pid: ", "name: ", "events:\n  - ", "offsets: {", "absent_exports: [",
    "layout: ", "segment-heap", "process-exit", "\r\n", "\xEF\xBB\xBF", "\xC3\x28", "\\",
};

static size_t mutate(uint8_t *buf, size_t size, size_t cap)
{
    return fuzz_mutate_text(buf, size, cap, tokens, sizeof tokens / sizeof tokens[0]);
}

static const char *const extensions[] = {".yaml", NULL};

const fuzz_target fuzz_this = {
    .name = "fuzz-profile",
    .extensions = extensions,
    .mutations = 1500,
    .rng_seed = 0x6a09e667f3bcc909ull,
    .grows = true,
    .mutate = mutate,
    .needs_files = true,
};

#endif
