/// An error raised by EnclaveKit.
///
/// Errors carry an open set of ``Code`` values so that new failure kinds never break callers; two errors are equal
/// when their codes are. The ``reason`` is for people: it never contains key material or enclave secrets.
public struct EnclaveError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case malformedInput, limitExceeded, invalidConfiguration, invalidSignature, measurementMismatch
            case debugNotAllowed, imageUnreadable, launchFailed, enclaveTerminated, callFailed, unknownCall
            case channelClosed, sandboxFailed, protocolViolation, unavailable
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Bytes did not parse (truncated, trailing data, bad tag, invalid UTF-8…).
        public static let malformedInput = Code(.malformedInput)
        /// A size, count or depth limit was exceeded.
        public static let limitExceeded = Code(.limitExceeded)
        /// An enclave configuration is invalid.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// A signature structure is missing, malformed or its signature does not verify.
        public static let invalidSignature = Code(.invalidSignature)
        /// The measured image does not match the signed measurement.
        public static let measurementMismatch = Code(.measurementMismatch)
        /// A debug enclave was loaded by a host that did not ask for debug mode.
        public static let debugNotAllowed = Code(.debugNotAllowed)
        /// The enclave image or one of its libraries could not be read or parsed.
        public static let imageUnreadable = Code(.imageUnreadable)
        /// The enclave process could not be started.
        public static let launchFailed = Code(.launchFailed)
        /// The enclave process is gone; pending and future calls fail with this code.
        public static let enclaveTerminated = Code(.enclaveTerminated)
        /// The call's handler threw; the reason carries its message.
        public static let callFailed = Code(.callFailed)
        /// The other side has no handler for the call's name.
        public static let unknownCall = Code(.unknownCall)
        /// The channel was closed.
        public static let channelClosed = Code(.channelClosed)
        /// The sandbox could not be installed.
        public static let sandboxFailed = Code(.sandboxFailed)
        /// The peer broke the wire protocol.
        public static let protocolViolation = Code(.protocolViolation)
        /// A platform facility (configfs-tsm, a device) is missing or refused the request.
        public static let unavailable = Code(.unavailable)

        public var description: String { String(describing: base) }
    }

    /// The kind of failure.
    public let code: Code
    /// A human-readable explanation.
    public let reason: String
    /// Where the error was raised (`#fileID:#line`), for diagnostics.
    public let location: String

    private init(code: Code, reason: String, fileID: String, line: Int) {
        self.code = code
        self.reason = reason
        self.location = "\(fileID):\(line)"
    }

    public var description: String { "EnclaveError.\(code): \(reason)" }

    public static func == (lhs: EnclaveError, rhs: EnclaveError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// An error with code ``Code/malformedInput``: bytes did not parse.
    ///
    /// - Parameters:
    ///   - reason: What was wrong, for people. Never include secret bytes.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func malformedInput(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .malformedInput, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/limitExceeded``: a size, count or depth limit was exceeded.
    ///
    /// - Parameters:
    ///   - reason: Which limit and by how much, for people.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func limitExceeded(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .limitExceeded, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/invalidConfiguration``: an enclave configuration is invalid.
    ///
    /// - Parameters:
    ///   - reason: Which setting is invalid and why.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func invalidConfiguration(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .invalidConfiguration, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/invalidSignature``: a signature structure is missing, malformed or does not verify.
    ///
    /// - Parameters:
    ///   - reason: What did not verify.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func invalidSignature(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .invalidSignature, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/measurementMismatch``: what was measured differs from what was signed.
    ///
    /// - Parameters:
    ///   - reason: Which file or field differs (digests are public, key material never appears).
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func measurementMismatch(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .measurementMismatch, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/debugNotAllowed``: a debug enclave was loaded without asking for debug mode.
    ///
    /// - Parameters:
    ///   - reason: Which image is a debug enclave.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func debugNotAllowed(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .debugNotAllowed, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/imageUnreadable``: the image or one of its libraries could not be read or parsed.
    ///
    /// - Parameters:
    ///   - reason: Which file and what failed.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func imageUnreadable(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .imageUnreadable, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/launchFailed``: the enclave process could not be started.
    ///
    /// - Parameters:
    ///   - reason: Which step of the launch failed.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func launchFailed(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .launchFailed, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/enclaveTerminated``: the enclave process is gone.
    ///
    /// - Parameters:
    ///   - reason: How it ended (exit status or signal), when known.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func enclaveTerminated(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .enclaveTerminated, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/callFailed``: the call's handler on the other side threw.
    ///
    /// - Parameters:
    ///   - reason: The handler's message as the other side sent it (untrusted text when it comes from the host).
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func callFailed(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .callFailed, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/unknownCall``: the other side has no handler for the call's name.
    ///
    /// - Parameters:
    ///   - reason: The call's name.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func unknownCall(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .unknownCall, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/channelClosed``: the channel between host and enclave was closed.
    ///
    /// - Parameters:
    ///   - reason: Which side closed it, when known.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func channelClosed(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .channelClosed, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/sandboxFailed``: the sandbox, or a primitive it relies on, could not be set up.
    ///
    /// - Parameters:
    ///   - reason: Which step failed (and the `errno`, when there is one).
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func sandboxFailed(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .sandboxFailed, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/protocolViolation``: the peer broke the wire protocol.
    ///
    /// The peer is treated as hostile from then on; the channel is usually closed.
    ///
    /// - Parameters:
    ///   - reason: What the peer sent that was not allowed.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func protocolViolation(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .protocolViolation, reason: reason, fileID: fileID, line: line)
    }
    /// An error with code ``Code/unavailable``: a platform facility is missing or refused the request.
    ///
    /// - Parameters:
    ///   - reason: Which facility (configfs-tsm, a device, a kernel interface) and why.
    ///   - fileID: The file that raised the error; leave the default.
    ///   - line: The line that raised the error; leave the default.
    public static func unavailable(_ reason: String, fileID: String = #fileID, line: Int = #line) -> Self {
        Self(code: .unavailable, reason: reason, fileID: fileID, line: line)
    }
}
