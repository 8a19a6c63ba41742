internal import CCleanRoomSQLite
internal import VaporCSQLite

enum SQLiteProbe {
    static var accounting: Bool { ek_cleanroom_sqlite_memory_accounting() == 1 }
    static var version: String { String(cString: sqlite_nio_sqlite3_libversion()) }
}
