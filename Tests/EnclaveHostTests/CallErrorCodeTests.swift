import EnclaveCore
import Testing

@testable import _EnclaveChannel

/// What a failed call's error frame may say about the failure. The peer is not trusted: it may report what it found
/// wrong with the call (so a caller tells a refused seal from a malformed argument), never a state of the caller's
/// own side.
@Suite struct CallErrorCodeTests {
    @Test(arguments: [
        EnclaveError.Code.unknownCall, .malformedInput, .limitExceeded, .invalidConfiguration, .invalidSignature,
        .measurementMismatch, .debugNotAllowed, .unavailable,
    ])
    func reportableCodesCrossTheBoundary(_ code: EnclaveError.Code) {
        let error = RPCPeer.peerError(code: code.description, message: "why")
        #expect(error.code == code)
        #expect(error.reason == "why")
    }

    /// An enclave that claims the caller's enclave terminated, its channel closed or its sandbox failed gets a plain
    /// `callFailed`: those codes are only ever the host's own findings.
    @Test(arguments: [
        EnclaveError.Code.enclaveTerminated, .channelClosed, .launchFailed, .sandboxFailed, .imageUnreadable,
        .protocolViolation, .callFailed,
    ])
    func hostOwnCodesAreNotTakenFromThePeer(_ code: EnclaveError.Code) {
        #expect(RPCPeer.peerError(code: code.description, message: "claimed").code == .callFailed)
    }

    @Test func unknownOrOddCodesAreCallFailed() {
        for code in ["", "MalformedInput", "malformedInput ", "x", String(repeating: "a", count: 10_000)] {
            #expect(RPCPeer.peerError(code: code, message: "m").code == .callFailed)
        }
    }
}
