/*
 * render.h — the renderers behind report_write, and what they share.
 */
#ifndef FLEETSIM_REPORTS_RENDER_H
#define FLEETSIM_REPORTS_RENDER_H

#include "report.h"

void report_write_text(FILE *out, const report *r, const report_gate *g, const report_verdict *v,
                       bool colour, bool markdown);
void report_write_html(FILE *out, const report *r, const report_gate *g,
                       const report_verdict *v);
void report_write_json(FILE *out, const report *r, const report_gate *g,
                       const report_verdict *v);
void report_write_junit(FILE *out, const report *r, const report_gate *g,
                        const report_verdict *v);

/* "81.20% [78.01%, 84.03%]", or "-" when nothing was reached. */
void report_interval_text(const report_counts *n, char *out, size_t room);
/* "Wilson" or "Clopper-Pearson". */
const char *report_interval_name(const report *r);
/* Text escaped for XML and HTML element content and attribute values. */
void report_xml_text(FILE *out, const char *s);

#endif
