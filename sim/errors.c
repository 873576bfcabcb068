/*
 * errors.c — names for the X-macro vocabularies of sim.h: error codes,
 * outcomes, bugchecks, events, accesses and address classes.  Each table is
 * generated from its one map, so names never drift from the enums.
 */
#include <stddef.h>

#include "sim.h"

const char *sim_strerror(int err)
{
    switch (err) {
    case SIM_OK:
        return "success";
#define XX(name, value, msg) \
    case SIM_##name:         \
        return msg;
        SIM_ERRNO_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *sim_outcome_name(sim_outcome_kind kind)
{
    static const char *const names[] = {
#define XX(name, str) str,
        SIM_OUTCOME_MAP(XX)
#undef XX
    };
    return (unsigned)kind < SIM_OUTCOME_COUNT ? names[kind] : "unknown";
}

const char *sim_bugcheck_name(uint32_t code)
{
    switch (code) {
#define XX(c, name) \
    case c:         \
        return #name;
        SIM_BUGCHECK_MAP(XX)
#undef XX
    }
    return NULL;
}

const char *sim_event_name(sim_event_kind kind)
{
    static const char *const names[] = {
#define XX(name, str) str,
        SIM_EVENT_MAP(XX)
#undef XX
    };
    return (unsigned)kind < SIM_EVENT_COUNT ? names[kind] : "unknown";
}

const char *sim_access_name(sim_access access)
{
    switch (access) {
    case SIM_ACCESS_NONE:
        return "none";
    case SIM_ACCESS_READ:
        return "read";
    case SIM_ACCESS_WRITE:
        return "write";
    case SIM_ACCESS_EXECUTE:
        return "execute";
    }
    return "unknown";
}

sim_addr_class sim_addr_classify(uint64_t address)
{
    if (address < 0x10000)
        return SIM_ADDR_NULL;
    if (address <= 0x00007FFFFFFFFFFFull)
        return SIM_ADDR_USER;
    if (address < 0xFFFF800000000000ull)
        return SIM_ADDR_NONCANONICAL;
    return SIM_ADDR_KERNEL;
}

const char *sim_addr_class_name(sim_addr_class cls)
{
    switch (cls) {
    case SIM_ADDR_NULL:
        return "null";
    case SIM_ADDR_USER:
        return "user";
    case SIM_ADDR_NONCANONICAL:
        return "non-canonical";
    case SIM_ADDR_KERNEL:
        return "kernel";
    }
    return "unknown";
}
