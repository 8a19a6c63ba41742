internal import CEnclaveSystem
internal import EnclaveCore

#if canImport(Glibc)
internal import Glibc
#endif

/// How the loader confines an enclave's process before the image runs.
///
/// The runtime's seccomp filter is installed by code inside the image, so an image that never calls the runtime (a
/// plain C program, signed by anyone's key) would run with every right of the host's user: it could read the
/// simulated platform's root secret, from which every sealing key and the quote-signing keys derive. The loader's
/// child therefore confines itself with Landlock just before it executes the image: it can open the image's
/// measured interpreter and libraries (read and execute; each only while its path still names the regular file that
/// was measured, by device and inode and without following a final symbolic link, or the launch fails with
/// `measurementMismatch`), the loader's cache, `/etc/localtime`, files under `/proc` (another process's private ones
/// need ptrace access, which Landlock refuses) and `/sys/devices/system/cpu`, `/dev/null` and `/dev/urandom` —
/// nothing else, nothing created or written but `/dev/null`. A seccomp filter of the loader's own refuses what
/// Landlock leaves open (any socket, io_uring), and the image runs without capabilities, even when the host is root.
///
/// Where the kernel has no Landlock the load fails closed (`sandboxFailed`), unless the host opts out explicitly
/// (`Enclave.Options.allowUnconfined` or `ENCLAVEKIT_ALLOW_UNCONFINED=1`): simulation only, and every such launch
/// says so on the host's standard error.
package enum Confinement {
    /// The environment variable that lets a host start enclaves unconfined where the kernel has no Landlock: `1`.
    package static let allowUnconfinedVariable = "ENCLAVEKIT_ALLOW_UNCONFINED"

    /// The Landlock ABI version of this kernel to confine the enclave with, or 0 when it runs unconfined (the
    /// kernel has none and the host opted out, by `option` or the environment).
    /// - Throws: `EnclaveError` `sandboxFailed` when the kernel has no Landlock and the host did not opt out.
    static func landlockABI(allowUnconfined option: Bool) throws(EnclaveError) -> Int32 {
        let abi = ek_landlock_abi()
        let code = abi < 1 ? ek_errno() : 0
        return try landlockABI(kernelABI: abi, errorCode: code, allowUnconfined: allowsUnconfined(option: option))
    }

    /// The Landlock ABI version to confine the enclave with, or 0 when it runs unconfined (the kernel has none and
    /// the host opted out).
    ///
    /// - Parameters:
    ///   - kernelABI: what the kernel answered (`ek_landlock_abi`): the version, or -1 with `errorCode`.
    ///   - allowUnconfined: the host's explicit opt-out.
    /// - Throws: `EnclaveError` `sandboxFailed` when the kernel has no Landlock and the host did not opt out.
    package static func landlockABI(
        kernelABI: Int32,
        errorCode: Int32,
        allowUnconfined: Bool
    ) throws(EnclaveError) -> Int32 {
        if kernelABI >= 1 { return kernelABI }
        guard allowUnconfined else {
            throw .sandboxFailed(
                "the kernel offers no Landlock (\(reason(errorCode))), so the enclave's process could read every file "
                    + "of this user, the simulated platform's root secret included; refusing to start it. Set "
                    + "\(allowUnconfinedVariable)=1 (or Enclave.Options.allowUnconfined) to start it unconfined: "
                    + "simulation only, insecure"
            )
        }
        return 0
    }

    /// Whether the host opted out: `option`, or `ENCLAVEKIT_ALLOW_UNCONFINED=1` in this process's environment.
    static func allowsUnconfined(option: Bool) -> Bool {
        if option { return true }
        guard let value = getenv(allowUnconfinedVariable) else { return false }
        return String(cString: value) == "1"
    }

    /// The line written to the host's standard error for each enclave started unconfined.
    static func unconfinedWarning(pid: Int32, name: String) -> String {
        "WARNING: enclave \(name) (pid \(pid)) runs WITHOUT Landlock confinement (\(allowUnconfinedVariable) or "
            + "Enclave.Options.allowUnconfined): it can read every file of this user, including the simulated "
            + "platform's root secret. Simulation only: nothing it seals or attests is protected.\n"
    }

    private static func reason(_ code: Int32) -> String {
        switch code {
        case ENOSYS: return "landlock_create_ruleset: not built into this kernel, or blocked by a container's filter"
        case EOPNOTSUPP: return "built in but not enabled at boot: add landlock to the lsm= kernel parameter"
        default: return "landlock_create_ruleset: errno \(code)"
        }
    }
}
