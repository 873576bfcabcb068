/*
 * support.c — what the integration tests and the benchmark share (see
 * support.h).  Anything that goes wrong here is a broken test setup, not a
 * test failure, so it prints what is wrong and aborts.
 */
#include "support.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void support_die(const char *what, const char *detail)
{
    fprintf(stderr, "support: %s: %s\n", what, detail);
    abort();
}

sim_image *support_image(const char *name)
{
    const char *dir = getenv("FLEETSIM_IMAGES");
    char path[4096], err[256] = "";
    sim_image *image = NULL;
    int rc;

    if (dir == NULL || dir[0] == '\0')
        support_die(name, "FLEETSIM_IMAGES is not set (run the tests with meson test)");
    if ((size_t)snprintf(path, sizeof path, "%s/%s.sys", dir, name) >= sizeof path)
        support_die(name, "image path too long");
    rc = sim_image_open(path, &image, err, sizeof err);
    if (rc != 0 || image == NULL) {
        fprintf(stderr, "support: %s: %s (%s)\n", path, err[0] ? err : "cannot open",
                sim_strerror(rc));
        abort();
    }
    return image;
}

sim_engine *support_engine(void)
{
    char err[256] = "";
    sim_engine *engine = NULL;
    int rc = sim_engine_create(&engine, err, sizeof err);

    if (rc != 0 || engine == NULL) {
        fprintf(stderr, "support: sim_engine_create: %s (%s)\n",
                err[0] ? err : "failed", sim_strerror(rc));
        abort();
    }
    return engine;
}

void support_run(sim_engine *engine, const sim_image *image,
                 const sim_profile *profile, uint64_t seed, sim_outcome *out)
{
    sim_run run;

    memset(&run, 0, sizeof run);
    run.image = image;
    run.profile = profile ? profile : sim_profile_default();
    run.seed = seed;
    support_run_full(engine, &run, out);
}

void support_run_full(sim_engine *engine, const sim_run *run, sim_outcome *out)
{
    char err[256] = "";
    int rc = sim_engine_run(engine, run, out, err, sizeof err);

    if (rc != 0) {
        fprintf(stderr, "support: sim_engine_run(%s): %s (%s)\n",
                run->image ? run->image->name : "?", err[0] ? err : "failed",
                sim_strerror(rc));
        abort();
    }
}

void support_dump(const sim_outcome *out)
{
    const char *name;
    int i;

    fprintf(stderr, "outcome: %s", sim_outcome_name(out->kind));
    if (out->status_valid)
        fprintf(stderr, ", status %08" PRIx32, out->status);
    fprintf(stderr, ", %" PRIu64 " instructions, image at %016" PRIx64
            ", pool at %016" PRIx64 "\n", out->instructions, out->image_base,
            out->pool_base);
    if (out->phase[0])
        fprintf(stderr, "phase: %s\n", out->phase);
    if (out->detail[0])
        fprintf(stderr, "detail: %s\n", out->detail);
    if (out->api[0])
        fprintf(stderr, "api: %s\n", out->api);
    if (out->kind == SIM_OUTCOME_BUGCHECK) {
        name = sim_bugcheck_name(out->bugcheck);
        fprintf(stderr, "bugcheck: 0x%" PRIX32 " %s (%016" PRIx64 ", %016" PRIx64
                ", %016" PRIx64 ", %016" PRIx64 ")\n", out->bugcheck,
                name ? name : "?", out->params[0], out->params[1], out->params[2],
                out->params[3]);
    }
    if (out->has_fault) {
        const sim_fault *f = &out->fault;
        const sim_regs *r = &out->regs;

        fprintf(stderr, "fault: %s!%s+0x%" PRIx64 " at %016" PRIx64 ": %s\n",
                f->module[0] ? f->module : "?", f->function, f->offset, f->rip,
                f->instruction);
        fprintf(stderr, "       %s %016" PRIx64 " (%s%s%s), irql %u\n",
                sim_access_name(f->access), f->address,
                sim_addr_class_name(f->address_class), f->region[0] ? ", " : "",
                f->region, (unsigned)f->irql);
        fprintf(stderr, "regs:  rax=%016" PRIx64 " rbx=%016" PRIx64 " rcx=%016" PRIx64
                " rdx=%016" PRIx64 "\n", r->rax, r->rbx, r->rcx, r->rdx);
        fprintf(stderr, "       rsi=%016" PRIx64 " rdi=%016" PRIx64 " rbp=%016" PRIx64
                " rsp=%016" PRIx64 "\n", r->rsi, r->rdi, r->rbp, r->rsp);
        fprintf(stderr, "       r8=%016" PRIx64 "  r9=%016" PRIx64 "  r10=%016" PRIx64
                " r11=%016" PRIx64 "\n", r->r8, r->r9, r->r10, r->r11);
        fprintf(stderr, "       r12=%016" PRIx64 " r13=%016" PRIx64 " r14=%016" PRIx64
                " r15=%016" PRIx64 "\n", r->r12, r->r13, r->r14, r->r15);
        fprintf(stderr, "       rip=%016" PRIx64 " rflags=%08" PRIx64 "\n", r->rip,
                r->rflags);
        fprintf(stderr, "disasm:\n");
        for (i = 0; i < out->ndisasm && i < SIM_MAX_DISASM; i++)
            fprintf(stderr, "  %016" PRIx64 "  %s\n", out->disasm[i].address,
                    out->disasm[i].text);
        fprintf(stderr, "stack:\n");
        for (i = 0; i < out->nframes && i < SIM_MAX_FRAMES; i++)
            fprintf(stderr, "  #%02d %016" PRIx64 " %016" PRIx64 " %s!%s+0x%" PRIx64 "\n",
                    i, out->stack[i].rsp, out->stack[i].rip,
                    out->stack[i].module[0] ? out->stack[i].module : "?",
                    out->stack[i].function, out->stack[i].offset);
    }
    if (out->loglen > 0)
        fprintf(stderr, "log (%zu bytes%s):\n%s%s", out->loglen,
                out->log_truncated ? ", truncated" : "", out->log,
                out->log[out->loglen - 1] == '\n' ? "" : "\n");
}
