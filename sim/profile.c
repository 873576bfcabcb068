/*
 * profile.c — OS-version profiles as the emulated kernel presents them.
 *
 * Profiles are data: a later change loads them from sim/profiles/, one file
 * each.  What lives here is the one profile an image run on its own needs
 * (Windows 10 22H2 as patched in July 2024) and the export check the loader
 * applies to every import.
 */
#include <string.h>

#include "sim.h"

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
