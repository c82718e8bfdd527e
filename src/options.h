/* options.h -- the one table of tessera's run-time options.
 *
 * Every option is read lazily from the environment variable TESSERA_<NAME>
 * (ignored in setuid programs). Booleans accept on/off, 1/0, yes/no, true/false;
 * sizes accept K/M/G suffixes. A bad value gets one warning and the default.
 * The same table is printed by `tessera help options` (tools/ includes this
 * header), so a new option is documented the moment it is added here.
 * This header is self-contained and has no dependency on the rest of src/.
 */
#ifndef TSR_OPTIONS_H
#define TSR_OPTIONS_H

/* X(ID, NAME, KIND, DEFAULT, DOC)
 *   ID      TSR_OPT_<ID> is the index in the table
 *   NAME    the environment variable is "TESSERA_" NAME
 *   KIND    BOOL, LONG, SIZE or TEXT
 *   DEFAULT the default as text (parsed like the environment)
 *   DOC     one line for `tessera help options` */
#define TSR_OPTIONS(X)                                                                    \
  X(STATS,          "STATS",          TEXT, "off",  "print statistics at exit: off, 1 (text) or json")    \
  X(STATS_FILE,     "STATS_FILE",     TEXT, "",     "write the exit statistics to this file instead of stderr") \
  X(PURGE_DELAY,    "PURGE_DELAY",    LONG, "100",  "milliseconds before free spans go back to the OS (-1: never, 0: at once); up to 10 times as long in a heap whose purged memory was soon needed again") \
  X(SECURE,         "SECURE",         BOOL, "off",  "hardened mode: blocks handed out in random order within a page, freed blocks zeroed, freed huge blocks unmapped at once") \
  X(HUGE_CACHE_DELAY, "HUGE_CACHE_DELAY", LONG, "250", "milliseconds freed huge blocks (over 1 MiB) stay mapped for reuse once the program stops reusing them (-1: never released, 0: at once)") \
  X(HUGE_PAGES,     "HUGE_PAGES",     BOOL, "on",   "ask for transparent huge pages (2 MiB) over huge blocks of 4 MiB or more (not calloc's; mapped in whole 2 MiB pages where rounding up adds at most an eighth) and over huge blocks that realloc grows: one page fault per 2 MiB written instead of 512, and blocks the cache moves keep their 2 MiB pages; off for programs that touch big blocks sparsely") \
  X(VERBOSE,        "VERBOSE",        BOOL, "off",  "print a warning when the OS refuses memory (the call still returns NULL)") \
  X(CHECK_QUARANTINE, "CHECK_QUARANTINE", SIZE, "64M", "check build: most bytes of freed blocks held back to catch use after free (also at most a quarter of the live blocks' cost, at least 256K)") \
  X(CHECK_REDZONE,  "CHECK_REDZONE",  SIZE, "16",   "check build: canary bytes after a block, and (rounded up to 16) before it, between the block and its 32-byte header") \
  X(CHECK_GUARD,    "CHECK_GUARD",    TEXT, "auto", "check build: guard-page mode: off, all, auto (the first 1024 blocks, then sampled), or a sample rate 1/N; then ,overflow ,underflow or ,both (default: sampled blocks alternate)") \
  X(CHECK_LEAKS,    "CHECK_LEAKS",    TEXT, "definite", "check build: leak report at exit: no, definite or all") \
  X(CHECK_LOG_FILE, "CHECK_LOG_FILE", TEXT, "",     "check build: write reports to this file instead of stderr") \
  X(CHECK_JSON,     "CHECK_JSON",     BOOL, "off",  "check build: write reports as JSON lines") \
  X(CHECK_ERROR_EXITCODE, "CHECK_ERROR_EXITCODE", LONG, "23", "check build: exit status of a program in which an error was reported") \
  X(CHECK_STACK_DEPTH, "CHECK_STACK_DEPTH", LONG, "12", "check build: frames kept per allocation and free stack")

typedef enum tsr_option_id_e {
#define TSR_OPTION_ENUM(id, name, kind, def, doc) TSR_OPT_##id,
  TSR_OPTIONS(TSR_OPTION_ENUM)
#undef TSR_OPTION_ENUM
  TSR_OPT_COUNT
} tsr_option_id_t;

#endif /* TSR_OPTIONS_H */
