public import Attestation
public import EnclaveCore
public import Testing

// Error expectations that check the code, not only the type: the test fails when `body` throws nothing, throws
// another type, or throws the right type with another code. Each returns the error for further checks.

/// Expect `body` to throw an ``EnclaveError`` whose code is `code`.
@discardableResult
public func expectEnclaveError<R>(
    _ code: EnclaveError.Code,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> R
) -> EnclaveError? {
    let error = #expect(throws: EnclaveError.self, comment, sourceLocation: sourceLocation) { _ = try body() }
    if let error {
        #expect(error.code == code, "\(error.reason)", sourceLocation: sourceLocation)
    }
    return error
}

/// Expect `body` to throw an ``AttestationError`` whose code (the failed check) is `code`.
@discardableResult
public func expectAttestationError<R>(
    _ code: AttestationError.Code,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> R
) -> AttestationError? {
    let error = #expect(throws: AttestationError.self, comment, sourceLocation: sourceLocation) { _ = try body() }
    if let error {
        #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
    }
    return error
}

/// Expect the asynchronous `body` to throw an ``AttestationError`` whose code (the failed check) is `code`.
@discardableResult
public func expectAttestationError<R>(
    _ code: AttestationError.Code,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> R
) async -> AttestationError? {
    let error = await #expect(throws: AttestationError.self, comment, sourceLocation: sourceLocation) {
        _ = try await body()
    }
    if let error {
        #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
    }
    return error
}

/// Expect the asynchronous `body` to throw an ``EnclaveError`` whose code is `code`.
@discardableResult
public func expectEnclaveError<R>(
    _ code: EnclaveError.Code,
    _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> R
) async -> EnclaveError? {
    let error = await #expect(throws: EnclaveError.self, comment, sourceLocation: sourceLocation) {
        _ = try await body()
    }
    if let error {
        #expect(error.code == code, "\(error.reason)", sourceLocation: sourceLocation)
    }
    return error
}
