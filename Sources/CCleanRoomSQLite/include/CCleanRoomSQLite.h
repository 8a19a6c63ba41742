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

/// Harden one connection with the variadic `sqlite3_db_config` (which Swift cannot call): defensive mode on
/// (no writes to the schema or shadow tables even by a bug), untrusted schema (no SQL functions with side effects
/// from schema), triggers and views off, double-quoted string literals off, extension loading off. Returns 0 when
/// every setting took, else the first failing option.
int ek_cleanroom_sqlite_harden(void *db);

#endif
