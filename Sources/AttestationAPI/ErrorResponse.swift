/// The body of every refusal, in Azure Attestation's shape: `{"error":{"code":…,"message":…}}`.
public struct ErrorResponse: Codable, Hashable, Sendable {
    /// The error's code and message.
    public struct Detail: Codable, Hashable, Sendable {
        /// What failed, for programs (`InvalidEvidence`, `PolicyEvaluationFailed`, `NotFound`, …).
        public var code: String
        /// Why, for people.
        public var message: String

        /// A detail with `code` and `message`.
        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    /// The error.
    public var error: Detail

    /// A body naming `code` and `message`.
    public init(code: String, message: String) {
        self.error = Detail(code: code, message: message)
    }
}
