#include "CCleanRoomSQLite.h"

// sqlite-nio's vendored SQLite (target VaporCSQLite) prefixes every API symbol with `sqlite_nio_`. Declared here
// rather than included so that this file needs only the link, not the other package's header path.
extern int sqlite_nio_sqlite3_config(int option, ...);

// From sqlite3.h: SQLITE_CONFIG_MEMSTATUS takes one int (boolean).
#define EK_SQLITE_CONFIG_MEMSTATUS 9
#define EK_SQLITE_OK 0

static int ek_memory_accounting = 0;

__attribute__((constructor)) static void ek_cleanroom_sqlite_configure(void) {
    ek_memory_accounting = sqlite_nio_sqlite3_config(EK_SQLITE_CONFIG_MEMSTATUS, 1) == EK_SQLITE_OK;
}

int ek_cleanroom_sqlite_memory_accounting(void) { return ek_memory_accounting; }
