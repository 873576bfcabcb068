/*
 * scenario_snippets.h — scenario texts the unit test and the fuzz target
 * share: a minimal valid scenario in three parts (so a test can swap one),
 * and inventory CSVs.  Line numbers matter to the tests: HEAD is lines 1–4,
 * FLEET lines 5–9, UPDATE lines 10–12, anything appended starts on line 13.
 */
#ifndef FLEETSIM_TESTS_SCENARIO_SNIPPETS_H
#define FLEETSIM_TESTS_SCENARIO_SNIPPETS_H

#define SNIP_HEAD                                                            \
    "name: t\n"                                                             \
    "seed: 7\n"                                                             \
    "duration: 12h\n"                                                       \
    "start: 2024-07-19T00:00:00Z\n"

#define SNIP_FLEET                                                           \
    "fleet:\n"                                                              \
    "  size: 1000\n"                                                        \
    "  profiles: {a: 50%, b: 50%}\n"                                        \
    "  sensors: {\"7.11\": 70%, \"7.10\": 30%}\n"                           \
    "  regions: {r1: 60%, r2: 40%}\n"

#define SNIP_UPDATE                                                          \
    "update:\n"                                                             \
    "  content: [x.sys]\n"                                                  \
    "  release: 2024-07-19T04:09:00Z\n"

#define SNIP_BASE SNIP_HEAD SNIP_FLEET SNIP_UPDATE

#define SNIP_INVENTORY_FLEET                                                 \
    "fleet:\n"                                                              \
    "  inventory: inv.csv\n"

#define SNIP_FULL                                                            \
    SNIP_BASE                                                               \
    "content:\n"                                                            \
    "  - {file: old.sys, installed_at: -1d}\n"                              \
    "  - other.sys\n"                                                       \
    "revert:\n"                                                             \
    "  content: [y.sys]\n"                                                  \
    "  at: +5h27m\n"                                                        \
    "connectivity:\n"                                                       \
    "  checkin: 10m\n"                                                      \
    "  online: {default: 80%, r1: [0%, 1%, 2%, 3%, 4%, 5%, 6%, 7%, 8%, 9%, "  \
    "10%, 11%, 12%, 13%, 14%, 15%, 16%, 17%, 18%, 19%, 20%, 21%, 22%, 23%]}\n" \
    "  boot_to_network: {min: 10s, max: 1m}\n"                              \
    "repair: {after: 6h, share: 60%}\n"                                     \
    "rollout:\n"                                                            \
    "  plans:\n"                                                            \
    "    - name: rings\n"                                                   \
    "      rings:\n"                                                        \
    "        - {name: first, where: {region: r1}, bake: 1h}\n"              \
    "        - {name: tenth, share: 10%, bake: 2h}\n"                       \
    "        - {name: rest, share: 100%}\n"                                 \
    "      gate: {min_exposure: 5, max_fault_rate_upper: 2%, alpha: 1%, on_failure: halt}\n" \
    "    - name: all-at-once\n"

#define SNIP_CSV                                                             \
    "id,region,profile,sensor,tenant\r\n"                                   \
    "host-1,r1,a,7.11,acme\r\n"                                             \
    "host-2,r2,b,7.10,acme\r\n"                                             \
    "\"host,3\",r1,a,7.11,globex\r\n"                                       \
    "host-4,r1,b,7.11,acme\r\n"

/* The same fleet with two more columns, attributes for cohorts. */
#define SNIP_CSV_EXTRA                                                       \
    "hardware,id,region,profile,sensor,tenant,site.code\n"                  \
    "Dell-7490,host-1,r1,a,7.11,acme,LHR-1\n"                               \
    "\"HP 840\",host-2,r2,b,7.10,acme,\n"                                   \
    ",host-3,r1,a,7.11,globex,LHR-1\n"                                      \
    "Dell-7490,host-4,r1,b,7.11,acme,AMS\n"

#endif
