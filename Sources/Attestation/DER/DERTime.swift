internal import Foundation
internal import SwiftASN1

/// X.509 times (`UTCTime`, `GeneralizedTime`) as dates.
enum DERTime {
    static func date(_ node: ASN1Node) throws -> Date {
        var components = DateComponents()
        components.timeZone = TimeZone(identifier: "UTC")
        switch node.identifier {
        case .utcTime:
            let value = try UTCTime(derEncoded: node)
            (components.year, components.month, components.day) = (value.year, value.month, value.day)
            (components.hour, components.minute, components.second) = (value.hours, value.minutes, value.seconds)
        case .generalizedTime:
            let value = try GeneralizedTime(derEncoded: node)
            (components.year, components.month, components.day) = (value.year, value.month, value.day)
            (components.hour, components.minute, components.second) = (value.hours, value.minutes, value.seconds)
        default:
            throw ASN1Error.unexpectedFieldType(node.identifier)
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!  // swift-format-ignore: UTC always exists
        guard let date = calendar.date(from: components) else { throw ASN1Error.invalidASN1Object(reason: "bad time") }
        return date
    }
}
