import Foundation

/// Count, mean, minimum and maximum of every column of a CSV file with a header row (computed inside the enclave).
///
/// Fields are split on commas (no quoting: the sample's files are numeric tables); a column's statistics cover the
/// fields that parse as numbers, `count` counts them. Bounded: at most 1,024 columns and 1,000,000 rows.
struct ColumnStatistics: Sendable {
    /// One column's figures.
    struct Column: Sendable {
        var name: String
        var count = 0
        var sum = 0.0
        var minimum = Double.infinity
        var maximum = -Double.infinity
    }

    enum Failure: Error, CustomStringConvertible {
        case empty, tooLarge(String), ragged(line: Int)
        var description: String {
            switch self {
            case .empty: "the file has no header row"
            case .tooLarge(let what): "the file has too many \(what)"
            case .ragged(let line): "line \(line) has another number of fields than the header"
            }
        }
    }

    static let maxColumns = 1024
    static let maxRows = 1_000_000

    private(set) var columns: [Column]
    private(set) var rows = 0

    init(csv: [UInt8]) throws(Failure) {
        var lines = String(decoding: csv, as: UTF8.self).split(omittingEmptySubsequences: true) {
            $0 == "\n" || $0 == "\r\n"
        }.makeIterator()
        guard let header = lines.next() else { throw .empty }
        let names = header.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard names.count <= Self.maxColumns else { throw .tooLarge("columns") }
        columns = names.map { Column(name: $0) }
        var line = 1
        while let text = lines.next() {
            line += 1
            let fields = text.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == columns.count else { throw .ragged(line: line) }
            rows += 1
            guard rows <= Self.maxRows else { throw .tooLarge("rows") }
            for (index, field) in fields.enumerated() {
                guard let value = Double(field.trimmingCharacters(in: .whitespaces)), value.isFinite else { continue }
                columns[index].count += 1
                columns[index].sum += value
                columns[index].minimum = min(columns[index].minimum, value)
                columns[index].maximum = max(columns[index].maximum, value)
            }
        }
    }

    /// `column,count,mean,min,max`, one line per column (empty figures for a column without numbers).
    var csv: String {
        var text = "column,count,mean,min,max\n"
        for column in columns {
            if column.count == 0 {
                text += "\(column.name),0,,,\n"
            } else {
                text +=
                    "\(column.name),\(column.count),\(Self.format(column.sum / Double(column.count))),"
                    + "\(Self.format(column.minimum)),\(Self.format(column.maximum))\n"
            }
        }
        return text
    }

    static func format(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        return rounded == rounded.rounded() && abs(rounded) < 1e15 ? String(Int64(rounded)) : String(rounded)
    }
}
