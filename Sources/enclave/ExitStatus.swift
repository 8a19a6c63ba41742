import ArgumentParser
import Attestation
import AttestationClient
import AttestationService
import EnclaveCore

/// `enclave`'s exit statuses: one mapping from what went wrong to a number a script can test, and to the one line
/// printed for it.
///
/// | status | meaning |
/// | --- | --- |
/// | 0 | done |
/// | 1 | the evidence (or a token) does not verify |
/// | 2 | the evidence verified but the policy refused it |
/// | 3 | no collateral to verify with |
/// | 64 | usage: the command line is wrong, or names a file that cannot be used |
/// | 70 | a runtime failure: the port is in use, the service or the database cannot be reached, the enclave failed |
///
/// 1, 2 and 3 are ``Attestation/AttestationError/exitCode``. Only usage errors found while parsing print the usage
/// footer; everything else prints one line, `Error: …`, on standard error.
enum ExitStatus {
    static let success: Int32 = 0
    /// `EX_USAGE` of sysexits(3).
    static let usage: Int32 = 64
    /// `EX_SOFTWARE` of sysexits(3): kept apart from 1-3, which scripts read as verification outcomes.
    static let runtime: Int32 = 70

    /// Whether `error` is one ArgumentParser prints itself (help requested, `CleanExit`, its internal command errors),
    /// rather than a failure of the command (`ValidationError` and `ExitCode` thrown while running are the command's).
    static func isArgumentParserOwn(_ error: any Error) -> Bool {
        if error is ValidationError || error is ExitCode { return false }
        return error is CleanExit || EnclaveCommand.exitCode(for: error).isSuccess
            || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
    }

    /// The line to print (nil: the command printed its own) and the status for an error thrown while running.
    static func report(_ error: any Error) -> (message: String?, status: Int32) {
        switch error {
        case let exit as ExitCode:
            return (nil, exit.rawValue)
        case let refusal as AttestationError:
            return (EnclaveCommand.Verify.message(refusal), refusal.exitCode)
        case let failure as EnclaveCommand.Failure:
            return (failure.description, 1)
        case let failure as TokenVerifier.Failure:
            return ("verification failed at token: \(failure.reason)", 1)
        case let invalid as ValidationError:
            return (invalid.message, usage)
        case let failure as RuntimeFailure:
            return (failure.message, runtime)
        case let error as EnclaveError:
            return (error.reason, runtime)
        case let error as ServiceError:
            return ("\(error.message) (\(error.code))", runtime)
        case let failure as AttestationClient.Failure:
            return (failure.description, runtime)
        default:
            return (String(describing: error), runtime)
        }
    }
}
