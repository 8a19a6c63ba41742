#ifndef C_CLEAN_ROOM_SQLITE_H
#define C_CLEAN_ROOM_SQLITE_H

/// Whether SQLite's memory accounting is on in this process (1) or not (0).
///
/// sqlite-nio compiles SQLite with `SQLITE_DEFAULT_MEMSTATUS=0`, and without memory accounting
/// `sqlite3_hard_heap_limit64` / `sqlite3_soft_heap_limit64` are silently not enforced. The only switch is the
/// variadic `sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1)` (which Swift cannot call), and it works only before SQLite
/// is initialised: this library turns it on from a load-time constructor, before any code of the process can open a
/// database, and this function reports whether that succeeded. The clean room engine refuses to run queries when it
/// did not (fail closed: a heap limit that is not enforced is no limit).
int ek_cleanroom_sqlite_memory_accounting(void);

#endif
