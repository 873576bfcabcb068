/*
 * bench.c — how fast fleetsim emulates an endpoint.
 *
 *   meson test -C build --benchmark -v        (argv[1]: the images dir)
 *
 * For bench-small.sys (a DriverEntry that does almost nothing: the cost of
 * a run itself) and bench-parse.sys (a few tens of thousands of instructions
 * of real parsing) it measures runs per second
 *   (a) on one engine reused for every run, as the fleet's workers do, and
 *   (b) with a fresh engine per run (sim_engine_create/destroy each time),
 *       to show what decision 1 of DESIGN.md saves;
 * and (c) the host running bench_parse.h natively, the same source the
 * driver was built from, so the table can say how far emulation is from
 * native speed.  Each measurement runs for a fixed wall-clock slice, so the
 * whole benchmark takes about 15 s on any machine.
 *
 * The driver prints its parse result; the benchmark checks it against the
 * native result, so a broken emulation cannot pass as a fast one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_parse.h"
#include "support.h"

#define SLICE_REUSED 3.0    /* seconds per measurement */
#define SLICE_FRESH 2.0
#define SLICE_NATIVE 1.0

typedef struct measure {
    uint64_t count;
    double seconds;
} measure;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static sim_outcome outcome;

static void run_once(sim_engine *engine, const sim_image *image, uint64_t seed)
{
    support_run(engine, image, NULL, seed, &outcome);
    if (outcome.kind != SIM_OUTCOME_OK || !outcome.status_valid ||
        outcome.status != SIM_STATUS_SUCCESS) {
        fprintf(stderr, "bench: %s did not run cleanly (seed %" PRIu64 ")\n",
                image->name, seed);
        support_dump(&outcome);
        exit(1);
    }
}

/* (a) one engine for every run; seeds vary so the KASLR slots all get used. */
static measure bench_reused(const sim_image *image, uint64_t *insns)
{
    sim_engine *engine = support_engine();
    measure m = {0, 0.0};
    double start;

    for (uint64_t seed = 1; seed <= 32; seed++)      /* warm: map every slot */
        run_once(engine, image, seed);
    *insns = outcome.instructions;
    start = now();
    do {
        for (int i = 0; i < 64; i++, m.count++)
            run_once(engine, image, 1 + m.count % 1024);
        m.seconds = now() - start;
    } while (m.seconds < SLICE_REUSED);
    sim_engine_destroy(engine);
    return m;
}

/* (b) an engine per run. */
static measure bench_fresh(const sim_image *image)
{
    measure m = {0, 0.0};
    double start = now();

    do {
        sim_engine *engine = support_engine();

        run_once(engine, image, 1 + m.count % 1024);
        sim_engine_destroy(engine);
        m.count++;
        m.seconds = now() - start;
    } while (m.seconds < SLICE_FRESH);
    return m;
}

static uint8_t native_content[BENCH_CONTENT_SIZE];
static volatile uint32_t native_sink;

/* (c) the same parse code on the host. */
static measure bench_native(bench_result *result)
{
    measure m = {0, 0.0};
    double start = now();

    do {
        for (int i = 0; i < 256; i++, m.count++) {
            bench_parse_run(native_content, BENCH_SEED, result);
            native_sink += result->checksum;
        }
        m.seconds = now() - start;
    } while (m.seconds < SLICE_NATIVE);
    return m;
}

static double rate(measure m)
{
    return m.seconds > 0 ? (double)m.count / m.seconds : 0.0;
}

static void row(const char *image, const char *mode, measure m, const char *unit)
{
    double r = rate(m);

    printf("%-12s %-22s %10" PRIu64 " %8.2f %14.0f %-7s %12.2f\n", image, mode, m.count,
           m.seconds, r, unit, r > 0 ? 1e6 / r : 0.0);
}

int main(int argc, char **argv)
{
    sim_image *small, *parse;
    measure small_reused, small_fresh, parse_reused, parse_fresh, native;
    uint64_t small_insns, parse_insns;
    bench_result expect;
    char line[128];

    if (argc > 1 && setenv("FLEETSIM_IMAGES", argv[1], 1) != 0) {
        perror("bench: setenv");
        return 2;
    }
    small = support_image("bench-small");
    parse = support_image("bench-parse");

    /* The emulated parse must compute what the host computes. */
    bench_parse_run(native_content, BENCH_SEED, &expect);
    {
        sim_engine *engine = support_engine();

        run_once(engine, parse, 1);
        sim_engine_destroy(engine);
    }
    snprintf(line, sizeof line, "bench-parse: %u records, %u matched, checksum %08x\n",
             (unsigned)expect.records, (unsigned)expect.matched,
             (unsigned)expect.checksum);
    if (strstr(outcome.log, line) == NULL) {
        fprintf(stderr, "bench: the emulated parse disagrees with the host's; want %s",
                line);
        support_dump(&outcome);
        return 1;
    }

    small_reused = bench_reused(small, &small_insns);
    small_fresh = bench_fresh(small);
    parse_reused = bench_reused(parse, &parse_insns);
    parse_fresh = bench_fresh(parse);
    native = bench_native(&expect);

    line[strcspn(line, "\n")] = '\0';
    printf("\nfleetsim emulation benchmark (the guest printed \"%s\")\n\n", line);
    printf("%-12s %-22s %10s %8s %14s %-7s %12s\n", "image", "mode", "count", "seconds",
           "rate", "", "us each");
    row("bench-small", "reused engine", small_reused, "runs/s");
    row("bench-small", "fresh engine per run", small_fresh, "runs/s");
    row("bench-parse", "reused engine", parse_reused, "runs/s");
    row("bench-parse", "fresh engine per run", parse_fresh, "runs/s");
    row("bench-parse", "native host", native, "calls/s");

    printf("\nguest instructions per run: bench-small %" PRIu64 ", bench-parse %" PRIu64 "\n",
           small_insns, parse_insns);
    if (rate(parse_reused) > 0)
        printf("emulated speed (bench-parse, reused): %.1f M guest instructions/s\n",
               rate(parse_reused) * (double)parse_insns / 1e6);
    if (rate(small_fresh) > 0)
        printf("reuse vs fresh engine: %.1fx (bench-small), %.1fx (bench-parse)\n",
               rate(small_reused) / rate(small_fresh),
               rate(parse_fresh) > 0 ? rate(parse_reused) / rate(parse_fresh) : 0.0);
    if (rate(parse_reused) > 0)
        printf("native vs emulated (bench-parse, reused engine): %.0fx slower emulated\n",
               rate(native) / rate(parse_reused));

    sim_image_destroy(small);
    sim_image_destroy(parse);
    return 0;
}
