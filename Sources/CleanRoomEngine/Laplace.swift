public import CleanRoom
internal import Foundation

/// Laplace noise for differential privacy.
///
/// Noise with scale `b = sensitivity / ε` from the inverse CDF of a uniform draw (`SystemRandomNumberGenerator`,
/// the OS's CSPRNG). Integers stay integers (rounded). Limit: textbook floating-point sampling; a hardened sampler
/// (discrete Laplace, as AWS's SampCert) would close the known floating-point side channels (Mironov 2012).
public enum Laplace {
    /// One draw with scale `scale`.
    public static func sample(scale: Double) -> Double {
        var generator = SystemRandomNumberGenerator()
        // u in (-0.5, 0.5), never exactly ±0.5.
        var u = 0.0
        repeat { u = Double.random(in: -0.5..<0.5, using: &generator) } while u == -0.5
        let magnitude = -scale * log(1 - 2 * abs(u))
        return u < 0 ? -magnitude : magnitude
    }

    /// `value` plus noise; NULL and text are returned unchanged (only numbers are noised).
    public static func noised(_ value: SQLValue, scale: Double) -> SQLValue {
        switch value {
        case .integer(let number):
            let noisy = (Double(number) + sample(scale: scale)).rounded()
            guard let result = Int64(exactly: noisy) else { return .integer(number < 0 ? .min : .max) }
            return .integer(result)
        case .real(let number): return .real(number + sample(scale: scale))
        case .null, .text: return value
        }
    }
}
