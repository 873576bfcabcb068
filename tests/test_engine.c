/*
 * test_engine.c — the engine as a whole: reuse leaves nothing behind,
 * relocation at the slid base the seed draws, determinism for a seed, the
 * virtual clock, OS events, and images that cannot load on a profile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pe_forge.h"
#include "support.h"

static sim_outcome a, b;

/* Everything a run reports, field by field (the record has padding). */
static void assert_same_outcome(const sim_outcome *x, const sim_outcome *y)
{
    assert_int_equal(x->kind, y->kind);
    assert_int_equal(x->status_valid, y->status_valid);
    assert_int_equal(x->status, y->status);
    assert_int_equal(x->image_base, y->image_base);
    assert_int_equal(x->pool_base, y->pool_base);
    assert_int_equal(x->bugcheck, y->bugcheck);
    for (int i = 0; i < 4; i++)
        assert_int_equal(x->params[i], y->params[i]);
    assert_int_equal(x->has_fault, y->has_fault);
    if (x->has_fault) {
        assert_memory_equal(&x->regs, &y->regs, sizeof x->regs);
        assert_int_equal(x->fault.rip, y->fault.rip);
        assert_string_equal(x->fault.instruction, y->fault.instruction);
        assert_int_equal(x->nframes, y->nframes);
        for (int i = 0; i < x->nframes; i++)
            assert_int_equal(x->stack[i].rip, y->stack[i].rip);
    }
    assert_string_equal(x->api, y->api);
    assert_string_equal(x->log, y->log);
    assert_int_equal(x->instructions, y->instructions);
    assert_int_equal(x->events_delivered, y->events_delivered);
}

static void run_state(sim_engine *engine, const sim_image *image, uint64_t seed,
                      sim_outcome *out)
{
    static const sim_event events[] = {
        {SIM_EVENT_PROCESS_CREATE, 1500, 4242, 4, "\\Device\\HarddiskVolume3\\Windows\\notepad.exe"},
        {SIM_EVENT_PIPE_CREATE, 1600, 4242, 4, "\\Device\\NamedPipe\\demo"},
        {SIM_EVENT_PROCESS_EXIT, 2500, 4242, 4, NULL},
    };
    sim_run run = {
        .image = image,
        .seed = seed,
        .events = events,
        .nevents = 3,
        .boot_time = 133658208000000000ull,
    };
    support_run_full(engine, &run, out);
}

static void state_driver_runs_and_sees_its_events(void **state)
{
    (void)state;
    sim_image *image = support_image("state");
    sim_engine *engine = support_engine();

    run_state(engine, image, 7, &a);
    if (a.kind != SIM_OUTCOME_OK)
        support_dump(&a);
    assert_int_equal(a.kind, SIM_OUTCOME_OK);
    assert_true(a.status_valid);
    assert_int_equal(a.status, 0);
    assert_non_null(strstr(a.log, "state: boots=1\n"));
    assert_non_null(strstr(a.log, "state: words=alpha,beta,gamma twice(21)=42\n"));
    assert_non_null(strstr(a.log, "state: registry=\\REGISTRY\\MACHINE\\SYSTEM\\"
                                  "CurrentControlSet\\Services\\state\n"));
    assert_non_null(strstr(a.log, "state: driver start matches=1\n"));
    assert_non_null(strstr(a.log, "state: irql=0\n"));
    assert_non_null(strstr(a.log, "state: process 4242 created: "
                                  "\\Device\\HarddiskVolume3\\Windows\\notepad.exe\n"));
    assert_non_null(strstr(a.log, "state: process 4242 exited\n"));
    assert_int_equal(a.events_delivered, 3);

    /* The clock: boot time plus what ran, never before boot. */
    long long t = 0;
    const char *p = strstr(a.log, "state: time=");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "state: time=%lld", &t), 1);
    assert_true(t >= 133658208000000000ll);
    assert_true(t < 133658208000000000ll + 10000000ll);

    sim_engine_destroy(engine);
    sim_image_destroy(image);
}

static void reuse_after_faults_matches_a_fresh_engine(void **state)
{
    (void)state;
    static const char *const faulting[] = {
        "fault-unmapped-write", "fault-pool-overrun", "fault-stack-overflow",
        "fault-hang-dispatch", "fault-double-free", "fault-missing-import",
    };
    sim_image *image = support_image("state");
    sim_engine *reused = support_engine();

    for (size_t i = 0; i < sizeof faulting / sizeof *faulting; i++) {
        sim_image *bad = support_image(faulting[i]);
        sim_run run = {.image = bad, .seed = 99, .budget = 2000000};
        support_run_full(reused, &run, &b);
        assert_int_not_equal(b.kind, SIM_OUTCOME_OK);
        run_state(reused, image, 11 + i, &a);
        sim_engine *fresh = support_engine();
        run_state(fresh, image, 11 + i, &b);
        assert_same_outcome(&a, &b);
        sim_engine_destroy(fresh);
        sim_image_destroy(bad);
    }
    sim_engine_destroy(reused);
    sim_image_destroy(image);
}

static void the_seed_draws_the_base_and_relocations_follow(void **state)
{
    (void)state;
    sim_image *image = support_image("state");
    sim_engine *engine = support_engine();
    const sim_profile *pr = sim_profile_default();
    uint64_t bases[32];
    size_t distinct = 0;

    assert_true(image->reloc_size > 0);
    for (uint64_t seed = 1; seed <= 32; seed++) {
        run_state(engine, image, seed, &a);
        assert_int_equal(a.kind, SIM_OUTCOME_OK);
        assert_non_null(strstr(a.log, "twice(21)=42"));
        assert_non_null(strstr(a.log, "driver start matches=1"));
        assert_int_not_equal(a.image_base, image->preferred_base);
        assert_true(a.image_base >= pr->image_lo && a.image_base < pr->image_hi);
        assert_int_equal(a.image_base & 0xFFFF, 0);
        assert_true(a.pool_base >= pr->pool_lo && a.pool_base < pr->pool_hi);
        size_t j;
        for (j = 0; j < distinct; j++)
            if (bases[j] == a.image_base)
                break;
        if (j == distinct)
            bases[distinct++] = a.image_base;
    }
    /* At most kaslr_slots bases, and the seeds use more than one of them. */
    assert_true(distinct >= 2);
    assert_true(distinct <= pr->kaslr_slots);
    sim_engine_destroy(engine);
    sim_image_destroy(image);
}

static void a_seed_gives_the_same_outcome_on_any_engine(void **state)
{
    (void)state;
    sim_image *image = support_image("parser");
    sim_engine *one = support_engine(), *two = support_engine();

    /* Warm `two` with other seeds first: order must not matter. */
    for (uint64_t seed = 100; seed < 105; seed++)
        support_run(two, image, NULL, seed, &b);
    support_run(one, image, NULL, 5, &a);
    support_run(two, image, NULL, 5, &b);
    assert_same_outcome(&a, &b);
    support_run(one, image, NULL, 6, &b);
    assert_true(a.image_base != b.image_base || a.pool_base != b.pool_base);
    sim_engine_destroy(one);
    sim_engine_destroy(two);
    sim_image_destroy(image);
}

static void an_import_the_build_lacks_stops_the_load(void **state)
{
    (void)state;
    sim_image *image = support_image("state");
    sim_engine *engine = support_engine();
    sim_profile old = *sim_profile_default();

    snprintf(old.name, sizeof old.name, "no-notify-ex");
    old.absent[0] = "PsSetCreateProcessNotifyRoutineEx";
    old.nabsent = 1;
    support_run(engine, image, &old, 1, &a);
    assert_int_equal(a.kind, SIM_OUTCOME_OK);
    assert_true(a.status_valid);
    assert_int_equal(a.status, SIM_STATUS_DRIVER_ENTRYPOINT_NOT_FOUND);
    assert_string_equal(a.phase, "load");
    assert_non_null(strstr(a.detail, "PsSetCreateProcessNotifyRoutineEx"));
    assert_int_equal(a.loglen, 0);
    sim_engine_destroy(engine);
    sim_image_destroy(image);
}

/* A driver of one section holding `code`, entered at its start. */
static sim_image *forge_code(const char *name, const uint8_t *code, uint32_t size,
                             uint32_t characteristics, uint8_t **file)
{
    pf_image img;
    pf_layout l;
    pf_init(&img);
    pf_add_section(&img, ".text", characteristics, code, size, 0);
    img.entry = pf_section_rva(&img, 0);
    *file = pf_build(&img, &l);
    sim_image *image = NULL;
    char err[256] = "";
    if (sim_image_parse(*file, l.size, name, &image, err, sizeof err) != 0)
        fail_msg("parse: %s", err);
    return image;
}

/* A driver whose entry calls `name`, an export fleetsim lacks, through its IAT. */
static sim_image *forge_caller(const char *name, uint8_t **file)
{
    static const uint8_t text[16] = {0x48, 0x83, 0xEC, 0x28,             /* sub rsp, 0x28 */
                                     0xFF, 0x15, 0, 0, 0, 0,             /* call [rip+iat] */
                                     0x48, 0x83, 0xC4, 0x28, 0xC3};      /* add rsp; ret */
    pf_image img;
    pf_layout l;
    pf_init(&img);
    pf_add_section(&img, ".text", PF_SCN_TEXT, text, sizeof text, 0);
    pf_add_import(&img, "ntoskrnl.exe", name, 0);
    uint32_t rva = pf_section_rva(&img, 0);
    img.entry = rva;
    *file = pf_build(&img, &l);
    int32_t disp = (int32_t)(l.iat[0] - (rva + 10));
    memcpy(*file + pf_offset(&l, rva) + 6, &disp, 4);
    sim_image *image = NULL;
    char err[256] = "";
    if (sim_image_parse(*file, l.size, name, &image, err, sizeof err) != 0)
        fail_msg("parse: %s", err);
    return image;
}

/*
 * The stub an unsupported import resolves to depends on its image alone:
 * the same address in the IAT, and in the crash record, on an engine that
 * loaded other drivers with other missing imports first.
 */
static void missing_import_stubs_do_not_depend_on_history(void **state)
{
    (void)state;
    uint8_t *fa, *fb;
    sim_image *first = forge_caller("NoSuchRoutineA", &fa);
    sim_image *second = forge_caller("NoSuchRoutineB", &fb);
    sim_engine *fresh = support_engine(), *used = support_engine();
    support_run(used, first, NULL, 1, &b);
    assert_string_equal(b.api, "ntoskrnl.exe!NoSuchRoutineA");
    support_run(used, second, NULL, 1, &b);
    support_run(fresh, second, NULL, 1, &a);
    assert_int_equal(a.kind, SIM_OUTCOME_UNSUPPORTED_API);
    assert_string_equal(a.api, "ntoskrnl.exe!NoSuchRoutineB");
    assert_string_equal(b.api, a.api);
    assert_int_equal(b.regs.rip, a.regs.rip);
    sim_engine_destroy(fresh);
    sim_engine_destroy(used);
    sim_image_destroy(first);
    sim_image_destroy(second);
    free(fa);
    free(fb);
}

/*
 * A driver that rewrites its own code (a writable and executable section):
 * the next run on the engine starts from the image's bytes, and runs them,
 * not the translation of the last run's rewrite.  DriverEntry calls f
 * (mov eax, 1), patches f's immediate to 2, calls it again, and returns
 * 16 * first + second: 0x12 on every run.
 */
static void code_a_run_rewrote_is_not_run_again(void **state)
{
    (void)state;
    static const uint8_t text[48] = {
        0x48, 0x83, 0xEC, 0x28,             /* 0: sub rsp, 0x28 */
        0xE8, 0x1F, 0, 0, 0,                /* 4: call f */
        0x89, 0xC1,                         /* 9: mov ecx, eax */
        0xC1, 0xE1, 0x04,                   /* 11: shl ecx, 4 */
        0xC6, 0x05, 0x14, 0, 0, 0, 0x02,    /* 14: mov byte [f + 1], 2 */
        0xE8, 0x0E, 0, 0, 0,                /* 21: call f */
        0x01, 0xC8,                         /* 26: add eax, ecx */
        0x48, 0x83, 0xC4, 0x28,             /* 28: add rsp, 0x28 */
        0xC3,                               /* 32: ret */
        [40] = 0xB8, 0x01, 0, 0, 0, 0xC3,   /* 40: f: mov eax, 1; ret */
    };
    uint8_t *file;
    sim_image *image = forge_code("smc.sys", text, sizeof text, PF_SCN_TEXT | 0x80000000u, &file);
    sim_engine *engine = support_engine();
    for (int i = 0; i < 3; i++) {
        support_run(engine, image, NULL, 1, &a);
        assert_int_equal(a.kind, SIM_OUTCOME_OK);
        assert_true(a.status_valid);
        assert_int_equal(a.status, 0x12);
    }
    sim_engine_destroy(engine);
    sim_image_destroy(image);
    free(file);
}

/*
 * A driver that writes into its pool window outside anything it allocated
 * and then faults leaves nothing there for the next run: a reader of that
 * address returns the same on a fresh engine as after the writer.
 */
static void a_faulted_run_leaves_nothing_in_the_pool_window(void **state)
{
    (void)state;
    static const uint8_t writer[] = {
        0x48, 0xB8, 0x08, 0, 0, 0, 0, 0x84, 0xFF, 0xFF,  /* mov rax, 0xFFFF840000000008 */
        0x48, 0xC7, 0x00, 0x34, 0x12, 0, 0,              /* mov qword [rax], 0x1234 */
        0x0F, 0x0B,                                      /* ud2 */
    };
    static const uint8_t reader[] = {
        0x48, 0xB8, 0x08, 0, 0, 0, 0, 0x84, 0xFF, 0xFF,  /* mov rax, 0xFFFF840000000008 */
        0x8B, 0x00,                                      /* mov eax, [rax] */
        0xC3,
    };
    uint8_t *fw, *fr;
    sim_image *w = forge_code("writer.sys", writer, sizeof writer, PF_SCN_TEXT, &fw);
    sim_image *r = forge_code("reader.sys", reader, sizeof reader, PF_SCN_TEXT, &fr);
    sim_engine *fresh = support_engine(), *used = support_engine();
    assert_int_equal(sim_profile_default()->pool_lo, 0xFFFF840000000000ull);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        support_run(used, w, NULL, seed, &b);
        assert_int_equal(b.kind, SIM_OUTCOME_BUGCHECK); /* the ud2 */
        support_run(used, r, NULL, seed + 100, &b);
        support_run(fresh, r, NULL, seed + 100, &a);
        assert_int_equal(a.kind, SIM_OUTCOME_OK);
        assert_int_equal(b.kind, SIM_OUTCOME_OK);
        assert_int_equal(b.status, a.status);
    }
    sim_engine_destroy(fresh);
    sim_engine_destroy(used);
    sim_image_destroy(w);
    sim_image_destroy(r);
    free(fw);
    free(fr);
}

/*
 * IRQL is tracked at every `mov cr8` of an image, however many: here the
 * 301st raises to DISPATCH_LEVEL before a NULL read, which must then be
 * 0xD1 (IRQL_NOT_LESS_OR_EQUAL), not 0x7E as at PASSIVE_LEVEL.
 */
static void every_cr8_move_is_tracked(void **state)
{
    (void)state;
    static uint8_t text[0x1000];
    size_t n = 0;
    text[n++] = 0x31, text[n++] = 0xC0;                       /* xor eax, eax */
    for (int i = 0; i < 300; i++)
        text[n++] = 0x44, text[n++] = 0x0F, text[n++] = 0x22, text[n++] = 0xC0; /* mov cr8, rax */
    static const uint8_t tail[] = {
        0xB8, 0x02, 0x00, 0x00, 0x00,                         /* mov eax, 2 */
        0x44, 0x0F, 0x22, 0xC0,                               /* mov cr8, rax */
        0x48, 0x8B, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00,       /* mov rax, [0] */
        0xC3,
    };
    memcpy(text + n, tail, sizeof tail);
    n += sizeof tail;
    uint8_t *file;
    sim_image *image = forge_code("irql.sys", text, (uint32_t)n, PF_SCN_TEXT, &file);
    sim_engine *engine = support_engine();
    support_run(engine, image, NULL, 1, &a);
    assert_int_equal(a.kind, SIM_OUTCOME_BUGCHECK);
    assert_int_equal(a.bugcheck, 0xD1);
    assert_int_equal(a.params[1], 2); /* the IRQL */
    sim_engine_destroy(engine);
    sim_image_destroy(image);
    free(file);
}

/*
 * An image of many small sections whose protections alternate, at every
 * KASLR slot a profile allows: the engine keeps each slot's runs of pages
 * in its region map (for fault classification and disassembly), and the
 * map must hold them all, however many slots and sections.
 */
static void many_sections_at_many_slots(void **state)
{
    (void)state;
    static const uint8_t bytes[16] = {1};
    pf_image img;
    pf_layout l;
    pf_init_driver(&img);
    while (img.nsections < 76) /* the section table still fits below 0x1000 */
        pf_add_section(&img, img.nsections % 2 ? ".rd" : ".rw",
                       img.nsections % 2 ? PF_SCN_RDATA : PF_SCN_DATA, bytes, sizeof bytes, 0);
    uint8_t *file = pf_build(&img, &l);
    sim_image *image = NULL;
    char err[256] = "";
    if (sim_image_parse(file, l.size, "many.sys", &image, err, sizeof err) != 0)
        fail_msg("parse: %s", err);
    assert_true(image->nsections > 76);

    sim_profile pr = *sim_profile_default();
    pr.kaslr_slots = 64;
    sim_engine *engine = support_engine();
    uint64_t bases[64];
    size_t distinct = 0;
    for (uint64_t seed = 1; seed <= 400 && distinct < 48; seed++) {
        support_run(engine, image, &pr, seed, &a);
        size_t j = 0;
        while (j < distinct && bases[j] != a.image_base)
            j++;
        if (j == distinct)
            bases[distinct++] = a.image_base;
    }
    /* 48 slots of over 76 runs each: far more than 24 a slot.  Every slot
     * still runs as on a fresh engine (the forged driver faults in
     * DriverEntry: the same fault, classified the same way). */
    assert_int_equal(distinct, 48);
    sim_engine *fresh = support_engine();
    for (uint64_t seed = 1; seed <= 8; seed++) {
        support_run(engine, image, &pr, seed, &a);
        support_run(fresh, image, &pr, seed, &b);
        assert_same_outcome(&a, &b);
        assert_string_equal(a.fault.module, "many");
    }
    sim_engine_destroy(fresh);
    sim_engine_destroy(engine);
    sim_image_destroy(image);
    free(file);
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    sim_engine *engine = support_engine();
    sim_run run = {0};
    char err[128];

    assert_int_equal(sim_engine_run(engine, &run, &a, err, sizeof err), SIM_EINVAL);
    assert_int_equal(sim_engine_run(NULL, &run, &a, err, sizeof err), SIM_EINVAL);
    assert_int_equal(sim_engine_create(NULL, err, sizeof err), SIM_EINVAL);
    sim_engine_destroy(engine);
    sim_engine_destroy(NULL);
}

/*
 * `test-engine --slow` runs the slow group alone: many_sections_at_many_slots
 * maps some 3,700 runs of pages, and Unicorn 2.0.1 finds room for each new
 * mapping by scanning all the others (minutes; the "slow" suite).
 */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_driver_runs_and_sees_its_events),
        cmocka_unit_test(reuse_after_faults_matches_a_fresh_engine),
        cmocka_unit_test(the_seed_draws_the_base_and_relocations_follow),
        cmocka_unit_test(a_seed_gives_the_same_outcome_on_any_engine),
        cmocka_unit_test(an_import_the_build_lacks_stops_the_load),
        cmocka_unit_test(every_cr8_move_is_tracked),
        cmocka_unit_test(code_a_run_rewrote_is_not_run_again),
        cmocka_unit_test(a_faulted_run_leaves_nothing_in_the_pool_window),
        cmocka_unit_test(missing_import_stubs_do_not_depend_on_history),
        cmocka_unit_test(bad_arguments_are_refused),
    };
    const struct CMUnitTest slow[] = {
        cmocka_unit_test(many_sections_at_many_slots),
    };
    if (argc > 1 && strcmp(argv[1], "--slow") == 0)
        return cmocka_run_group_tests(slow, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
