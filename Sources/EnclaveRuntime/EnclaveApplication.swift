/// The entry point of an enclave executable.
///
/// Mark a conforming type `@main`. The runtime's `main()` locks the process down (not dumpable, no new
/// privileges, seccomp allowlist) *before* it constructs the application, then serves the ECALLs it registers.
///
/// ```swift
/// @main
/// struct HelloEnclave: EnclaveApplication {
///     let context: EnclaveContext
///     init(context: EnclaveContext) { self.context = context }
///     func register(_ calls: inout ECallTable) {
///         calls.register(Greet.self) { name in "Hello, \(name)" }
///     }
/// }
/// ```
public protocol EnclaveApplication: Sendable {
    /// Create the application once the sandbox is in place.
    ///
    /// If it throws, the enclave writes the error to its standard error (which the host reads: keep secrets out of it)
    /// and exits with status 4 before serving any call; the host's load fails.
    init(context: EnclaveContext) async throws
    /// Register the ECALLs this enclave serves.
    func register(_ calls: inout ECallTable)
}

extension EnclaveApplication {
    /// Run the enclave: sandbox, handshake with the loader, serve ECALLs until the host goes away.
    public static func main() async {
        await EnclaveRuntime.run(Self.self)
    }
}
