/* render_html.c — placeholder until the HTML renderer lands (this session). */
#include "render.h"

void report_write_html(FILE *out, const report *r, const report_gate *g, const report_verdict *v)
{
    (void)r; (void)g; (void)v;
    fputs("<!doctype html><title>fleetsim</title>\n", out);
}
