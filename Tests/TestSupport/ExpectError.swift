public import Attestation
public import EnclaveCore
public import Testing

// Error expectations that check the code, not only the type: the test fails when `body` throws nothing, throws
// another type, or throws the right type with another code. Each returns the error for further checks.

/// An error whose code names what failed: the two error types of EnclaveKit.
public protocol CodedError: Error {
    /// The code a test expects.
    associatedtype Code: Equatable
    /// What failed.
    var code: Code { get }
    /// Why, for the test's failure message.
    var explanation: String { get }
}

extension EnclaveError: CodedError {
    /// The reason.
    public var explanation: String { reason }
}

extension AttestationError: CodedError {
    /// The message.
    public var explanation: String { message }
}

/// Expect `body` to throw an `E` whose code is `code`.
@discardableResult
public func expectError<E: CodedError, R>(
    _ type: E.Type,
    _ code: E.Code,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> R
) -> E? {
    let error = #expect(throws: E.self, comment, sourceLocation: sourceLocation) { _ = try body() }
    if let error { #expect(error.code == code, "\(error.explanation)", sourceLocation: sourceLocation) }
    return error
}

/// Expect the asynchronous `body` to throw an `E` whose code is `code`.
@discardableResult
public func expectError<E: CodedError, R>(
    _ type: E.Type,
    _ code: E.Code,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> R
) async -> E? {
    let error = await #expect(throws: E.self, comment, sourceLocation: sourceLocation) { _ = try await body() }
    if let error { #expect(error.code == code, "\(error.explanation)", sourceLocation: sourceLocation) }
    return error
}

/// Expect `body` to throw an ``EnclaveError`` whose code is `code`.
@discardableResult
public func expectEnclaveError<R>(
    _ code: EnclaveError.Code,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> R
) -> EnclaveError? {
    expectError(EnclaveError.self, code, comment, sourceLocation: sourceLocation, body)
}

/// Expect the asynchronous `body` to throw an ``EnclaveError`` whose code is `code`.
@discardableResult
public func expectEnclaveError<R>(
    _ code: EnclaveError.Code,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> R
) async -> EnclaveError? {
    await expectError(EnclaveError.self, code, comment, sourceLocation: sourceLocation, body)
}

/// Expect `body` to throw an ``AttestationError`` whose code (the failed check) is `code`.
@discardableResult
public func expectAttestationError<R>(
    _ code: AttestationError.Code,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> R
) -> AttestationError? {
    expectError(AttestationError.self, code, comment, sourceLocation: sourceLocation, body)
}

/// Expect the asynchronous `body` to throw an ``AttestationError`` whose code (the failed check) is `code`.
@discardableResult
public func expectAttestationError<R>(
    _ code: AttestationError.Code,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> R
) async -> AttestationError? {
    await expectError(AttestationError.self, code, comment, sourceLocation: sourceLocation, body)
}
