/*
 * expect.h — checks for integration tests that print the whole outcome
 * (support_dump) before failing, so a failing run shows its crash record,
 * stack and log.  Include after <cmocka.h> and "support.h".
 */
#ifndef FLEETSIM_TESTS_EXPECT_H
#define FLEETSIM_TESTS_EXPECT_H

#include <inttypes.h>
#include <string.h>

#define EXPECT(out, cond, ...)                                               \
    do {                                                                     \
        if (!(cond)) {                                                       \
            support_dump(out);                                               \
            fail_msg(__VA_ARGS__);                                           \
        }                                                                    \
    } while (0)

#define EXPECT_U64(out, got, want)                                           \
    do {                                                                     \
        uint64_t got_ = (uint64_t)(got), want_ = (uint64_t)(want);           \
        EXPECT(out, got_ == want_, "%s: got 0x%" PRIx64 ", want 0x%" PRIx64, \
               #got, got_, want_);                                           \
    } while (0)

#define EXPECT_STR(out, got, want)                                           \
    do {                                                                     \
        const char *got_ = (got), *want_ = (want);                           \
        EXPECT(out, strcmp(got_, want_) == 0, "%s: got \"%s\", want \"%s\"",  \
               #got, got_, want_);                                           \
    } while (0)

#define EXPECT_HAS(out, hay, needle)                                         \
    do {                                                                     \
        const char *hay_ = (hay), *needle_ = (needle);                       \
        EXPECT(out, strstr(hay_, needle_) != NULL,                           \
               "%s: \"%s\" does not contain \"%s\"", #hay, hay_, needle_);   \
    } while (0)

#endif
