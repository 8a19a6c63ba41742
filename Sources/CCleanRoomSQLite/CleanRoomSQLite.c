#include "CCleanRoomSQLite.h"

// sqlite-nio's vendored SQLite (target VaporCSQLite) prefixes every API symbol with `sqlite_nio_`. Declared here
// rather than included so that this file needs only the link, not the other package's header path.
extern int sqlite_nio_sqlite3_config(int option, ...);
extern int sqlite_nio_sqlite3_db_config(void *db, int option, ...);

// From sqlite3.h: SQLITE_CONFIG_MEMSTATUS takes one int (boolean).
#define EK_SQLITE_CONFIG_MEMSTATUS 9
#define EK_SQLITE_OK 0

static int ek_memory_accounting = 0;

__attribute__((constructor)) static void ek_cleanroom_sqlite_configure(void) {
    ek_memory_accounting = sqlite_nio_sqlite3_config(EK_SQLITE_CONFIG_MEMSTATUS, 1) == EK_SQLITE_OK;
}

int ek_cleanroom_sqlite_memory_accounting(void) { return ek_memory_accounting; }

int ek_cleanroom_sqlite_harden(void *db) {
    // From sqlite3.h: SQLITE_DBCONFIG_* options that take (int value, int *result).
    static const int options[][2] = {
        {1010, 1}, // DEFENSIVE
        {1017, 0}, // TRUSTED_SCHEMA
        {1003, 0}, // ENABLE_TRIGGER
        {1015, 0}, // ENABLE_VIEW
        {1013, 0}, // DQS_DML
        {1014, 0}, // DQS_DDL
        {1005, 0}, // ENABLE_LOAD_EXTENSION
    };
    for (unsigned i = 0; i < sizeof options / sizeof options[0]; i++) {
        int result = -1;
        if (sqlite_nio_sqlite3_db_config(db, options[i][0], options[i][1], &result) != EK_SQLITE_OK ||
            result != options[i][1]) {
            return options[i][0];
        }
    }
    return 0;
}
