/// An error raised by the clean room: a contract that does not verify, a data file that does not open, a query
/// that a rule refuses.
///
/// Codes form an open set (new codes never break callers); two errors are equal when their codes are. The
/// ``reason`` is for people and names the rule or check that refused; it never contains key material or data
/// values of a data set.
public struct CleanRoomError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The check or rule that failed.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name (what `description` prints and what refusals name).
        public let name: String
        private init(_ name: String) { self.name = name }

        /// Bytes are not the document they claim to be (bad JSON, wrong type, missing field, bad key encoding).
        public static let malformed = Code("malformed")
        /// A document parses but is not in canonical form (so it would have a second ID).
        public static let nonCanonical = Code("nonCanonical")
        /// A document has a field this version does not know.
        public static let unknownField = Code("unknownField")
        /// A contract is internally inconsistent (duplicate names, references to nothing, bad rules).
        public static let invalidContract = Code("invalidContract")
        /// A signature does not verify, or is over another document.
        public static let badSignature = Code("badSignature")
        /// A signature or statement names a signer that is not a party of the contract.
        public static let notAParty = Code("notAParty")
        /// A contract is not signed by every party yet.
        public static let notActive = Code("notActive")
        /// A party halted the contract.
        public static let halted = Code("halted")
        /// Something belongs to another contract (a signature, a data file, a statement).
        public static let wrongContract = Code("wrongContract")
        /// An encrypted data file is malformed, tampered, truncated or reordered.
        public static let dataTampered = Code("dataTampered")
        /// A data file's rows do not fit the contract's schema.
        public static let badRows = Code("badRows")
        /// A size or count limit was exceeded.
        public static let limitExceeded = Code("limitExceeded")
        /// The query ID is not an approved query of the contract.
        public static let queryNotApproved = Code("queryNotApproved")
        /// The party is not allowed to run the query.
        public static let runnerNotAllowed = Code("runnerNotAllowed")
        /// A query parameter is missing, unknown or of the wrong type.
        public static let badParameter = Code("badParameter")
        /// The SQL engine's authorizer refused an action (table, column, function or statement kind).
        public static let accessDenied = Code("accessDenied")
        /// A query ran longer than its time limit and was interrupted.
        public static let timeLimit = Code("timeLimit")
        /// A query needed more memory than its limit.
        public static let memoryLimit = Code("memoryLimit")
        /// An output rule refused the query (the reason names the rule).
        public static let outputRule = Code("outputRule")
        /// The differential privacy budget is spent.
        public static let budgetExhausted = Code("budgetExhausted")
        /// A stored state (the privacy budget ledger) is older than the monotonic counter says: a rollback.
        public static let rollback = Code("rollback")
        /// A recipient key is not one of the contract's recipients.
        public static let unknownRecipient = Code("unknownRecipient")
        /// An encrypted data set's upload is not signed by the data set's owner (or its bytes changed since).
        public static let uploadSignature = Code("uploadSignature")
        /// A receipt or receipt chain does not verify.
        public static let badReceipt = Code("badReceipt")
        /// A result document is not the one its verified receipt names (another digest, contract or query).
        public static let badResult = Code("badResult")
        /// A saved state or signed statement is in an older format this build no longer accepts.
        public static let formatOutdated = Code("formatOutdated")
        /// An upload older than the newest version of its data set already loaded under the contract.
        public static let staleUpload = Code("staleUpload")
        /// The SQL engine failed for another reason.
        public static let engine = Code("engine")

        public var description: String { name }
    }

    /// The kind of failure.
    public let code: Code
    /// What failed and why, for people.
    public let reason: String
    /// Where the error was raised (`#fileID:#line`).
    public let location: String

    /// An error with `code`; `reason` says which check or rule failed. Never put secrets or data values in it.
    public init(_ code: Code, _ reason: String, fileID: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.location = "\(fileID):\(line)"
    }

    public var description: String { "CleanRoomError.\(code): \(reason)" }

    public static func == (lhs: CleanRoomError, rhs: CleanRoomError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
