/*
 * alloc.c — the one allocation wrapper of fleetsim.
 *
 * Everything allocates through sim_malloc and friends so that a test can make
 * the n-th allocation fail (sim_alloc_fail_after) and check that the code
 * under test reports SIM_ENOMEM, leaks nothing and corrupts nothing.  The
 * counters are atomic: worker threads allocate too.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static atomic_uint_fast64_t alloc_count;
static atomic_uint_fast64_t fail_at; /* alloc_count value that fails; 0: none */

static bool should_fail(void)
{
    uint64_t n = atomic_fetch_add(&alloc_count, 1) + 1;
    uint64_t at = atomic_load(&fail_at);
    return at != 0 && n >= at;
}

void sim_alloc_fail_after(uint64_t n)
{
    atomic_store(&fail_at, n == 0 ? 0 : atomic_load(&alloc_count) + n);
}

uint64_t sim_alloc_count(void)
{
    return atomic_load(&alloc_count);
}

void *sim_malloc(size_t size)
{
    return should_fail() ? NULL : malloc(size ? size : 1);
}

void *sim_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *sim_realloc(void *ptr, size_t size)
{
    return should_fail() ? NULL : realloc(ptr, size ? size : 1);
}

char *sim_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = sim_malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

void sim_free(void *ptr)
{
    free(ptr);
}
