import Foundation
import Testing

/// The JSON document `enclave … --json` printed, before any error line after it.
func printedJSON(_ output: String) throws -> [String: Any] {
    let start = output.firstIndex(of: "{") ?? output.startIndex
    let end = output.lastIndex(of: "}").map { output.index(after: $0) } ?? output.endIndex
    let document = String(output[start..<end])
    return try #require(try JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any])
}
