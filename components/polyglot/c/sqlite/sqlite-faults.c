/* A stock SQLite program (main, stdio, SQLite's amalgamation): built for
 * wasm32-wasi it runs under weft on a `fat:` disk (examples/sqlite,
 * examples/sqlite-faulty-disk, examples/sqlite-power-cut), built for the
 * host it is the native baseline of docs/benchmarks.md. Nothing in it knows
 * about weft.
 *
 *   sqlite-faults DB create N BATCH [full|off]
 *       N rows in transactions of BATCH rows (PRAGMA synchronous=FULL by
 *       default, OFF on request; rollback journal in DELETE mode), after
 *       the rows already there. After each COMMIT returns it prints
 *       `committed K` (K = the last row's id), at the end `created N rows in
 *       T ms (R rows/s)`; then it reopens the database and checks it (below).
 *   sqlite-faults DB check
 *       opens the database, prints `integrity_check: <each result line>`,
 *       `rows K`, `last L` (the highest id) and `gaps G` (L - K: rows are
 *       numbered 1..N, so a lost row in the middle shows here). Exit code 3
 *       when integrity_check is not `ok`.
 *   sqlite-faults DB count
 *       prints `rows K`.
 *
 * Every SQLite error is printed as `error: <where>: <code name> (<code>):
 * <message>` and ends the program with exit code 1 — what SQLite noticed is
 * always on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sqlite3.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void fail(sqlite3 *db, const char *where, int rc) {
    printf("error: %s: %s (%d): %s\n", where, sqlite3_errstr(rc), rc, db ? sqlite3_errmsg(db) : "");
    fflush(stdout);
    exit(1);
}

static void exec(sqlite3 *db, const char *sql) {
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) fail(db, sql, rc);
}

static sqlite3 *open_db(const char *path) {
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) fail(db, "open", rc);
    /* A rollback journal, deleted at commit: SQLite's default, and what works
     * without shared memory (no WAL on WASI). */
    exec(db, "PRAGMA journal_mode=DELETE");
    return db;
}

static long long scalar(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) fail(db, sql, rc);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) fail(db, sql, rc);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int create(const char *path, long n, long batch, const char *sync) {
    sqlite3 *db = open_db(path);
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous=%s", sync);
    exec(db, pragma);
    exec(db, "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    long first = (long)scalar(db, "SELECT coalesce(max(id), 0) FROM t") + 1;
    sqlite3_stmt *ins;
    int rc = sqlite3_prepare_v2(db, "INSERT INTO t(id, v) VALUES(?1, printf('row %08d %s', ?1, hex(randomblob(24))))", -1,
                                &ins, NULL);
    if (rc != SQLITE_OK) fail(db, "prepare insert", rc);
    double t0 = now_ms();
    long id = first;
    for (long done = 0; done < n;) {
        exec(db, "BEGIN");
        for (long i = 0; i < batch && done < n; i++, done++, id++) {
            sqlite3_bind_int64(ins, 1, id);
            rc = sqlite3_step(ins);
            if (rc != SQLITE_DONE) fail(db, "insert", rc);
            sqlite3_reset(ins);
        }
        exec(db, "COMMIT");
        printf("committed %ld\n", id - 1);
    }
    double ms = now_ms() - t0;
    sqlite3_finalize(ins);
    rc = sqlite3_close(db);
    if (rc != SQLITE_OK) fail(db, "close", rc);
    printf("created %ld rows in %.0f ms (%.0f rows/s)\n", n, ms, ms > 0 ? n * 1000.0 / ms : 0.0);
    return 0;
}

static int check(const char *path) {
    sqlite3 *db = open_db(path);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
    if (rc != SQLITE_OK) fail(db, "integrity_check", rc);
    long problems = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* One result can span lines ("*** in database main ***\n..."):
         * every line gets the prefix. */
        const char *text = (const char *)sqlite3_column_text(st, 0);
        if (strcmp(text, "ok") != 0) problems++;
        for (const char *p = text; *p;) {
            const char *nl = strchr(p, '\n');
            int len = nl ? (int)(nl - p) : (int)strlen(p);
            printf("integrity_check: %.*s\n", len, p);
            p += len + (nl != NULL);
        }
    }
    if (rc != SQLITE_DONE) fail(db, "integrity_check", rc);
    sqlite3_finalize(st);
    /* A crash before CREATE TABLE was durable leaves no table: no rows. */
    int table = scalar(db, "SELECT count(*) FROM sqlite_schema WHERE name = 't'") > 0;
    if (!table) printf("no table t\n");
    long long rows = table ? scalar(db, "SELECT count(*) FROM t") : 0;
    long long last = table ? scalar(db, "SELECT coalesce(max(id), 0) FROM t") : 0;
    printf("rows %lld\n", rows);
    printf("last %lld\n", last);
    printf("gaps %lld\n", last - rows);
    printf("integrity_problems %ld\n", problems);
    sqlite3_close(db);
    return problems ? 3 : 0;
}

static int count(const char *path) {
    sqlite3 *db = open_db(path);
    printf("rows %lld\n", scalar(db, "SELECT count(*) FROM t"));
    sqlite3_close(db);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 5 && strcmp(argv[2], "create") == 0) {
        const char *sync = argc >= 6 ? argv[5] : "full";
        if (strcmp(sync, "full") != 0 && strcmp(sync, "off") != 0) {
            fprintf(stderr, "synchronous must be full or off, not %s\n", sync);
            return 2;
        }
        int rc = create(argv[1], atol(argv[3]), atol(argv[4]), strcmp(sync, "full") == 0 ? "FULL" : "OFF");
        return rc ? rc : check(argv[1]); /* reopened: what is on the disk now */
    }
    if (argc == 3 && strcmp(argv[2], "check") == 0) return check(argv[1]);
    if (argc == 3 && strcmp(argv[2], "count") == 0) return count(argv[1]);
    fprintf(stderr, "usage: %s DB create N BATCH [full|off] | DB check | DB count\n", argc ? argv[0] : "sqlite-faults");
    return 2;
}

#ifdef __wasi__
/* The WASI 0.2 adapter (wasm-component-ld) allocates its state through the
 * program's `cabi_realloc`. Debian's wasi-libc (a 2022 snapshot) exports
 * none, and without it the adapter's page was overwritten by the program's
 * heap as soon as SQLite allocated in earnest (its magic canary trapped in
 * the next WASI call). One allocator for both: malloc's. */
__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *ptr, size_t old_size, size_t align,
                                                              size_t new_size) {
    (void)old_size;
    (void)align; /* malloc aligns to 16, more than any canonical ABI type needs */
    return realloc(ptr, new_size);
}
#endif
