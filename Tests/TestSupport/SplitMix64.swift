/// A small deterministic random number generator (SplitMix64): differential and mutation tests draw their inputs from
/// it, so the same seed gives the same inputs on every run and a failure names a reproducible case.
public struct SplitMix64: Sendable {
    /// The state, advanced by each number drawn.
    public var state: UInt64

    /// A generator that starts from `state` (the seed).
    public init(state: UInt64) { self.state = state }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number from 0 to `bound - 1` (`bound` must be positive).
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
