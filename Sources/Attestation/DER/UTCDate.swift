internal import Foundation

/// Proleptic Gregorian UTC dates by arithmetic: what `Calendar` computes for UTC from 1583 on, without its per-call
/// set-up (a bundle's CRLs and JSON documents carry a score of dates, each read on every uncached verification).
/// Earlier dates stay proleptic Gregorian, as X.509 times are and as swift-certificates computes a certificate's
/// window (Foundation's calendar switches to Julian before the 1582 reform).
enum UTCDate {
    /// The date of a UTC calendar time; out-of-range fields carry over as `Calendar` would (callers check ranges).
    static func date(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Date {
        Date(
            timeIntervalSince1970: TimeInterval(
                daysSince1970(year: year, month: month, day: day) * 86_400
                    + hour * 3_600 + minute * 60 + second
            )
        )
    }

    /// Days from 1970-01-01 (Howard Hinnant's `days_from_civil`).
    static func daysSince1970(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Intel's `2019-05-15T00:00:00Z` exactly (20 ASCII bytes, fields in range), else `nil`: other spellings are
    /// left to Foundation's ISO 8601 reader.
    static func intelTimestamp(_ text: String) -> Date? {
        text.utf8.withContiguousStorageIfAvailable { bytes -> Date? in
            guard bytes.count == 20, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
                bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
                bytes[19] == UInt8(ascii: "Z")
            else { return nil }
            func number(_ start: Int, _ count: Int) -> Int? {
                var value = 0
                for index in start..<start + count {
                    let digit = Int(bytes[index]) - Int(UInt8(ascii: "0"))
                    guard (0...9).contains(digit) else { return nil }
                    value = value * 10 + digit
                }
                return value
            }
            guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
                let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
                (1...12).contains(month), day >= 1, day <= daysInMonth(month, year: year), hour < 24, minute < 60,
                second < 60
            else { return nil }
            return date(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        } ?? nil
    }

    static func daysInMonth(_ month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
