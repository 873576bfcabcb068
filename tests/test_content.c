/*
 * test_content.c — the sensor's content tools on the host
 * (images/sensor/content.c): malformed sources are refused with
 * file:line:column and a message saying what is wrong, malformed binaries
 * with the offset, and the time and binary round trips hold.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "content.h"
#include "sim.h"

static char tmpdir[] = "/tmp/fleetsim-content-XXXXXX";

/* Write `text` to a temporary .yaml and load it; returns the rc, err filled. */
static int load_text(const char *text, char *path, size_t max, content_file **file, char *err,
                     size_t errlen)
{
    static int n;
    FILE *fp;

    snprintf(path, max, "%s/src%d.yaml", tmpdir, n++);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return content_load_yaml(path, file, err, errlen);
}

/* The source must be refused with "path:line:column: <needle>". */
static void expect_error(const char *text, int line, int column, const char *needle)
{
    char path[256], err[512] = "", want[320];
    content_file *file = NULL;

    assert_int_equal(load_text(text, path, sizeof path, &file, err, sizeof err), SIM_EFORMAT);
    assert_null(file);
    snprintf(want, sizeof want, "%s:%d:%d: ", path, line, column);
    if (strncmp(err, want, strlen(want)) != 0 || strstr(err, needle) == NULL)
        fail_msg("got \"%s\", want \"%s...%s...\"", err, want, needle);
}

#define HEAD "channel: 291\nversion: 1\ninstances:\n"

static void test_yaml_syntax_errors(void **state)
{
    (void)state;
    expect_error("channel: 291\nversion: [1, 2\n", 3, 1, "did not find expected");
    expect_error("channel: 291\n  version: 1\n", 2, 10, "mapping values are not allowed");
    expect_error(HEAD "  - id: 1\n    template: FileWrite\n   severity: 2\n", 6, 4, "");
}

static void test_yaml_schema_errors(void **state)
{
    (void)state;
    expect_error("version: 1\ninstances: []\n", 1, 1, "no \"channel\"");
    expect_error("channel: 291\nversion: 1\ninstances: []\ncolour: red\n", 4, 1,
                 "unknown key \"colour\"");
    expect_error("channel: -3\nversion: 1\ninstances: []\n", 1, 10, "expected a whole number");
    expect_error("channel: 291\nversion: 1\nreleased: yesterday\ninstances: []\n", 3, 11,
                 "released: expected a UTC time");
    expect_error(HEAD "  - id: 1\n    template: Telepathy\n", 5, 15,
                 "unknown template type \"Telepathy\"; known: ProcessCreation");
    expect_error(HEAD "  - template: FileWrite\n", 4, 5, "instance without \"id\"");
    expect_error(HEAD "  - id: 1\n    template: FileWrite\n    severity: 9\n", 6, 15,
                 "severity: 9 is out of range");
    expect_error(HEAD "  - id: 1\n    template: FileWrite\n    criteria:\n"
                      "      - {field: 5, equals: x}\n", 7, 17,
                 "field 5 is outside this instance's 4 fields");
    expect_error(HEAD "  - id: 1\n    template: FileWrite\n    criteria:\n"
                      "      - {field: 1, equals: x}\n      - {field: 1, prefix: y}\n", 8, 17,
                 "field 1 has a criterion already");
    expect_error(HEAD "  - id: 1\n    template: FileWrite\n    criteria:\n"
                      "      - {field: 1, matches: x}\n", 7, 20,
                 "unknown criterion key \"matches\"");
    expect_error(HEAD "  - id: 1\n    template: FileWrite\n    criteria:\n"
                      "      - {field: 1, equals: x, prefix: y}\n", 7, 31,
                 "a criterion has one operator");
    expect_error(HEAD "  - id: 1\n    template: FileWrite\n    criteria:\n"
                      "      - {field: 1, equals: \"\"}\n", 7, 28, "empty value");
    expect_error(HEAD "  - id: 1\n    template: FileWrite\n    criteria:\n"
                      "      - {field: 1, equals: "
                      "0123456789012345678901234567890123456789012345678}\n",
                 7, 28, "value is 49 bytes, at most 46 fit");
    expect_error(HEAD "  - id: 1\n    template: FileWrite\n    criteria:\n"
                      "      - {field: 1, any: false}\n", 7, 25, "any: false means nothing");
    expect_error(HEAD "  - id: 1\n    template: 77\n", 4, 5, "give \"fields\"");
}

static void test_unreadable_source(void **state)
{
    content_file *file = NULL;
    char err[256] = "";

    (void)state;
    assert_int_equal(content_load_yaml("/nonexistent/x.yaml", &file, err, sizeof err), SIM_EIO);
    assert_non_null(strstr(err, "/nonexistent/x.yaml: "));
}

/* A good source round-trips through the binary format. */
static void test_round_trip(void **state)
{
    char path[256], err[512] = "";
    content_file *a = NULL, *b = NULL;
    uint8_t *bytes = NULL;
    size_t size = 0;

    (void)state;
    assert_int_equal(load_text(HEAD "  - id: 7\n    template: InterProcessCommunication\n"
                                    "    severity: 2\n    criteria:\n"
                                    "      - {field: 2, prefix: msagent_}\n"
                                    "      - {field: 21, any: true}\n"
                                    "  - id: 8\n    template: FileWrite\n    fields: 3\n",
                               path, sizeof path, &a, err, sizeof err), 0);
    assert_int_equal(content_encode(a, &bytes, &size, err, sizeof err), 0);
    assert_int_equal(size, 32 + 16 + 48 * 21 + 16 + 48 * 3);
    assert_int_equal(content_decode(bytes, size, &b, err, sizeof err), 0);
    assert_int_equal(b->channel, 291);
    assert_int_equal(b->count, 2);
    assert_int_equal(b->instances[0].fields, 21);
    assert_int_equal(b->instances[0].criteria[1].op, CHANNEL_OP_PREFIX);
    assert_memory_equal(b->instances[0].criteria[1].value, "msagent_", 8);
    assert_int_equal(b->instances[1].fields, 3);

    /* 3 fields where FileWrite declares 4: the validator says so. */
    content_report report;
    assert_int_equal(content_validate(b, 11, &report), 0);
    assert_int_equal(report.errors, 1);
    assert_non_null(strstr(report.findings[report.nfindings - 1].message,
                           "3 fields, but template type FileWrite declares 4"));

    /* Corruptions of the binary are refused with their offset. */
    bytes[24] ^= 1;
    content_file_destroy(b);
    b = NULL;
    assert_int_equal(content_decode(bytes, size, &b, err, sizeof err), SIM_EFORMAT);
    assert_non_null(strstr(err, "offset 24: checksum"));
    assert_int_equal(content_decode(bytes, 31, &b, err, sizeof err), SIM_EFORMAT);
    memset(bytes, 0, size);   /* a zero-filled file, as found on crashed disks */
    assert_int_equal(content_decode(bytes, size, &b, err, sizeof err), SIM_EFORMAT);
    assert_non_null(strstr(err, "not a channel file"));
    sim_free(bytes);
    content_file_destroy(a);
}

static void test_time(void **state)
{
    uint32_t m = 0;
    char text[32];

    (void)state;
    assert_int_equal(content_parse_time("2024-01-01T00:00Z", &m), 0);
    assert_int_equal(m, 0);
    assert_int_equal(content_parse_time("2024-07-19T04:09Z", &m), 0);
    assert_int_equal(m, (31 + 29 + 31 + 30 + 31 + 30 + 18) * 1440 + 4 * 60 + 9);
    content_format_time(m, text, sizeof text);
    assert_string_equal(text, "2024-07-19T04:09Z");
    assert_int_not_equal(content_parse_time("2023-12-31T23:59Z", &m), 0);
    assert_int_not_equal(content_parse_time("2025-02-29T00:00Z", &m), 0);
    assert_int_not_equal(content_parse_time("2024-07-19 04:09", &m), 0);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_yaml_schema_errors),
        cmocka_unit_test(test_unreadable_source),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_time),
    };

    return cmocka_run_group_tests_name("content", tests, setup, teardown);
}
