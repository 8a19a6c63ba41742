internal import Foundation
internal import SwiftASN1

/// X.509 times (`UTCTime`, `GeneralizedTime`) as dates.
enum DERTime {
    static func date(_ node: ASN1Node) throws -> Date {
        // swift-asn1 has checked every field's range (the day against its month, leap years included); fractions of
        // a second are dropped, as the certificate checks do.
        switch node.identifier {
        case .utcTime:
            let value = try UTCTime(derEncoded: node)
            return UTCDate.date(
                year: value.year,
                month: value.month,
                day: value.day,
                hour: value.hours,
                minute: value.minutes,
                second: value.seconds
            )
        case .generalizedTime:
            let value = try GeneralizedTime(derEncoded: node)
            return UTCDate.date(
                year: value.year,
                month: value.month,
                day: value.day,
                hour: value.hours,
                minute: value.minutes,
                second: value.seconds
            )
        default:
            throw ASN1Error.unexpectedFieldType(node.identifier)
        }
    }
}
