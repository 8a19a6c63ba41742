extension FrameChannel {
    /// When the peer must have read more of the frames waiting to be sent, or the channel fails.
    ///
    /// Two rules in one deadline, on a clock the caller passes in (nanoseconds, monotonic):
    /// - a stall: the peer reads nothing for `stallNanoseconds` (the deadline is never further than that from the
    ///   last byte the peer took);
    /// - a drain rate: every byte the peer takes buys `1 / minimumBytesPerSecond` seconds, so a peer that reads on
    ///   average slower than `minimumBytesPerSecond` runs out of time even though it never stops entirely. Starting
    ///   with `stallNanoseconds` in hand, a peer reading `r` bytes per second (below the minimum `R`) fails after
    ///   `stall * R / (R - r)`: 1 byte every 29 s against 64 KiB/s and 30 s fails after about 30 s, where the stall
    ///   rule alone never failed it. A peer that keeps pace on average may pause up to `stallNanoseconds` at a time.
    ///
    /// `minimumBytesPerSecond == 0` leaves only the stall rule.
    package struct DrainDeadline: Sendable {
        /// How long the peer may take nothing.
        package let stallNanoseconds: UInt64
        /// The slowest average rate the peer may read at (0: no rate rule).
        package let minimumBytesPerSecond: UInt64
        /// When the channel fails unless the peer takes more bytes first.
        package private(set) var deadline: UInt64
        /// When the peer last took bytes (or when the wait began).
        package private(set) var lastProgress: UInt64

        /// The deadline for a wait that begins at `now`.
        package init(now: UInt64, stallNanoseconds: UInt64, minimumBytesPerSecond: UInt64) {
            self.stallNanoseconds = stallNanoseconds
            self.minimumBytesPerSecond = minimumBytesPerSecond
            self.lastProgress = now
            self.deadline = Self.adding(now, stallNanoseconds)
        }

        /// The peer took `bytes` more at `now`: the deadline moves on by the time those bytes buy at the minimum rate,
        /// but never further than `stallNanoseconds` from `now`.
        package mutating func sent(_ bytes: Int, at now: UInt64) {
            guard bytes > 0 else { return }
            lastProgress = now
            let cap = Self.adding(now, stallNanoseconds)
            guard minimumBytesPerSecond > 0 else {
                deadline = cap
                return
            }
            // bytes * 1e9 / rate, saturating (bytes is at most a frame, far below 2^64 / 1e9 in practice).
            let (product, overflow) = UInt64(bytes).multipliedReportingOverflow(by: 1_000_000_000)
            let bought = overflow ? UInt64.max : product / minimumBytesPerSecond
            // Monotonic: the old deadline is never past `cap` (it was at most `stallNanoseconds` after an earlier now).
            deadline = min(Self.adding(deadline, bought), cap)
        }

        /// Whether the time ran out at `now`.
        package func expired(at now: UInt64) -> Bool { now >= deadline }

        /// Nanoseconds left at `now` (0 once expired).
        package func remaining(at now: UInt64) -> UInt64 { deadline > now ? deadline - now : 0 }

        /// Whether, at `now`, the peer read nothing for the whole stall limit (else it read, but too slowly).
        package func stalled(at now: UInt64) -> Bool { now &- lastProgress >= stallNanoseconds }

        private static func adding(_ a: UInt64, _ b: UInt64) -> UInt64 {
            let (sum, overflow) = a.addingReportingOverflow(b)
            return overflow ? .max : sum
        }
    }
}
